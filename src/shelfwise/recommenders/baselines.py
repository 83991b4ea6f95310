"""Baselines every model must beat: popularity, and item-to-item transitions (a first-order
Markov chain over consecutive items, smoothed with popularity)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shelfwise.datasets.sequences import Sequences
from shelfwise.recommenders.sparse import gather_rows


class Popularity:
    """Scores every item by how often it occurs in training."""

    def fit(self, train: Sequences) -> "Popularity":
        counts = np.bincount(train.items, minlength=train.n_items + 1).astype(np.float32)
        counts[0] = -np.inf
        self.counts_ = counts
        return self

    def score(self, histories: Sequences) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(histories), len(self.counts_))).copy()


class ItemTransitions:
    """Scores the items that followed the history's last items in training, the most recent
    history item weighing most, with popularity to break ties and fill the gaps."""

    def __init__(self, last_n: int = 3, decay: float = 0.5, popularity_weight: float = 1e-6):
        self.last_n = last_n
        self.decay = decay
        self.popularity_weight = popularity_weight

    def fit(self, train: Sequences) -> "ItemTransitions":
        n = train.n_items + 1
        same_seq = np.ones(len(train.items), dtype=bool)
        same_seq[train.offsets[1:-1] - 1] = False  # no transition from a sequence's end to the next one
        src, dst = train.items[:-1][same_seq[:-1]], train.items[1:][same_seq[:-1]]
        counts = sp.csr_matrix((np.ones(len(src), np.float32), (src, dst)), shape=(n, n))
        rows = np.asarray(counts.sum(axis=1)).ravel()
        self.transitions_ = sp.diags(1.0 / np.maximum(rows, 1)).dot(counts).tocsr()
        self.popularity_ = Popularity().fit(train).counts_
        return self

    def score(self, histories: Sequences) -> np.ndarray:
        n = len(histories)
        scores = np.zeros((n, histories.n_items + 1), dtype=np.float32)
        for back in range(1, self.last_n + 1):
            row, cols, vals = gather_rows(self.transitions_, histories.last(back))
            scores[row, cols] += self.decay ** (back - 1) * vals  # (row, col) pairs are unique
        pop = self.popularity_ / np.nanmax(self.popularity_[1:]) if n else self.popularity_
        scores += self.popularity_weight * pop
        scores[:, 0] = -np.inf
        return scores
