"""From ``Sequences`` to padded training and inference tensors, on whole arrays.

Every model reads left-padded rows (0 = padding), so a row's most recent item sits in the last
column whatever the row's length.
"""

from __future__ import annotations

import numpy as np

from shelfwise.datasets.sequences import Sequences


def left_pad(seqs: Sequences, max_len: int) -> np.ndarray:
    """[n, width] int64: each sequence's last ``max_len`` items, right-aligned; width is the
    longest kept length (at least 1)."""
    lengths = np.minimum(seqs.lengths, max_len)
    width = max(int(lengths.max()) if len(lengths) else 1, 1)
    rows = np.repeat(np.arange(len(seqs)), lengths)
    within = np.arange(lengths.sum()) - np.repeat(np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    source = np.repeat(seqs.offsets[1:] - lengths, lengths) + within
    out = np.zeros((len(seqs), width), dtype=np.int64)
    out[rows, width - np.repeat(lengths, lengths) + within] = seqs.items[source]
    return out


def windows(seqs: Sequences, width: int) -> np.ndarray:
    """[m, width] int64: every sequence cut into left-padded windows of ``width`` items, the last
    window ending at the sequence's end and each earlier one ending where the next one starts
    (consecutive windows share one item, so every item after the first is a target once)."""
    lengths = seqs.lengths
    counts = np.where(lengths >= 2, np.ceil((lengths - 1) / max(width - 1, 1)), 0).astype(np.int64)
    seq_of_window = np.repeat(np.arange(len(seqs)), counts)
    back = np.arange(counts.sum()) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)  # 0 = last window
    end = seqs.offsets[1:][seq_of_window] - back * (width - 1)  # exclusive
    index = end[:, None] - width + np.arange(width)[None, :]
    valid = index >= seqs.offsets[:-1][seq_of_window][:, None]
    return np.where(valid, seqs.items[np.clip(index, 0, None)], 0)


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 50) -> list[np.ndarray]:
    """Shuffled batches of row indexes where rows of similar length go together, so a batch
    pads only to its own longest row. Rows are shuffled, sorted by length within pools of
    ``pool`` batches, cut into batches, and the batches shuffled."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * pool
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def trim(rows: np.ndarray) -> np.ndarray:
    """Drop the leading columns that are padding in every row."""
    used = np.flatnonzero((rows != 0).any(axis=0))
    return rows[:, used[0] :] if len(used) else rows[:, -1:]
