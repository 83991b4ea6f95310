"""Readers for public benchmark file formats. Each returns a validated ``Sequences`` or raises a
``ValueError`` that names the file and the line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shelfwise.datasets.sequences import Sequences


def read_user_sequences(path: str | Path) -> Sequences:
    """Read the S3-Rec / SASRec text format: one user per line, ``user_id item_1 ... item_n`` in
    time order, whitespace separated, integer tokens. Blank lines are skipped.

    Returns ``Sequences`` with ``keys`` = user ids (str, as written) and ``item_ids`` = the
    external item tokens (str; ``item_ids[i]`` is the token of item index ``i``, index 0 = padding).
    Item indexes follow the numeric order of the item ids, so ids 1..n map to indexes 1..n."""
    path = Path(path)
    users: list[str] = []
    tokens: list[str] = []
    lengths: list[int] = []
    with path.open() as f:
        for number, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise ValueError(f"{path}:{number}: expected 'user_id item_1 ... item_n', got {line.strip()!r}")
            for token in parts:
                if not token.isdigit():  # also rejects signs and decimals: ids are non-negative integers
                    raise ValueError(f"{path}:{number}: token {token!r} is not an integer id")
            users.append(parts[0])
            tokens.extend(parts[1:])
            lengths.append(len(parts) - 1)
    if not users:
        raise ValueError(f"{path}: no sequences")
    numeric = np.array(tokens, dtype=np.int64)
    vocabulary, index = np.unique(numeric, return_inverse=True)
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    return Sequences(
        items=index.astype(np.int64) + 1,
        offsets=offsets,
        keys=np.array(users, dtype=object),
        n_items=len(vocabulary),
        item_ids=np.r_[np.array([""], dtype=object), vocabulary.astype(str).astype(object)],
        meta={"source": str(path)},
    )
