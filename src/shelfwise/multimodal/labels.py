"""Categorical labels (article type, colour, ...) as integer codes with a fixed vocabulary, so a
trained model and its config agree on what class 17 is."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

UNKNOWN = -1  # the code of a missing or unseen label; ignored by the losses


def build_vocab(*columns: Iterable[str]) -> list[str]:
    """Sorted distinct non-empty values over all the given columns."""
    values = set()
    for column in columns:
        values.update(str(v) for v in column if isinstance(v, str) and v)
    return sorted(values)


def encode_labels(values: Sequence, vocab: Sequence[str]) -> np.ndarray:
    """int64 codes, :data:`UNKNOWN` for values not in ``vocab``."""
    index = {v: i for i, v in enumerate(vocab)}
    return np.array([index.get(v if isinstance(v, str) else "", UNKNOWN) for v in values], dtype=np.int64)


def encode_all(frame_columns: Mapping[str, Sequence], vocabs: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
    return {name: encode_labels(frame_columns[name], vocab) for name, vocab in vocabs.items()}
