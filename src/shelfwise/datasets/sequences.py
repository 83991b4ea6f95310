"""Interaction sequences in CSR form, and the splits every protocol uses.

A ``Sequences`` holds many sequences (one per user or per session) as two flat arrays:
``items`` (all item indexes, sequence after sequence, in time order) and ``offsets``
(sequence ``k`` is ``items[offsets[k]:offsets[k + 1]]``). Item indexes start at 1; 0 is padding.
Everything here works on whole arrays; nothing loops over events in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Sequences:
    items: np.ndarray  # int64, all sequences concatenated, item indexes from 1
    offsets: np.ndarray  # int64, len = n_sequences + 1
    keys: np.ndarray  # the user or session id of each sequence (str or int)
    n_items: int  # item indexes are 1..n_items
    item_ids: np.ndarray | None = None  # optional: external id of item index i at position i (0 = pad)
    times: np.ndarray | None = None  # optional: event time (ms) aligned with ``items``
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.items = np.asarray(self.items, dtype=np.int64)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.items) or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must start at 0, end at len(items) and never decrease")
        if len(self.keys) != len(self.offsets) - 1:
            raise ValueError(f"{len(self.keys)} keys for {len(self.offsets) - 1} sequences")
        if len(self.items) and (self.items.min() < 1 or self.items.max() > self.n_items):
            raise ValueError(f"item indexes must lie in 1..{self.n_items}")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __getitem__(self, k: int) -> np.ndarray:
        return self.items[self.offsets[k] : self.offsets[k + 1]]

    @classmethod
    def from_lists(cls, lists: list[list[int]], n_items: int | None = None, keys=None) -> "Sequences":
        lengths = np.array([len(s) for s in lists], dtype=np.int64)
        items = np.concatenate([np.asarray(s, dtype=np.int64) for s in lists]) if lists else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        keys = np.arange(len(lists)) if keys is None else np.asarray(keys)
        return cls(items, offsets, keys, int(n_items if n_items is not None else (items.max() if len(items) else 0)))

    @classmethod
    def from_sorted_events(
        cls, keys: np.ndarray, item_ids: np.ndarray, times: np.ndarray | None = None, vocabulary: np.ndarray | None = None
    ) -> "Sequences":
        """Group events already sorted by (key, time) into sequences.

        ``vocabulary`` fixes the item index order (index = position + 1); by default the
        sorted distinct item ids."""
        keys = np.asarray(keys)
        item_ids = np.asarray(item_ids)
        if vocabulary is None:
            vocabulary = np.unique(item_ids)
        order = np.argsort(vocabulary, kind="stable")
        pos = np.searchsorted(vocabulary, item_ids, sorter=order)
        pos = np.clip(pos, 0, len(vocabulary) - 1)
        index = order[pos]
        if len(item_ids) and not np.all(vocabulary[index] == item_ids):
            raise ValueError("an event names an item that is not in the vocabulary")
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)
        offsets = np.r_[starts, len(keys)].astype(np.int64)
        return cls(
            items=index + 1,
            offsets=offsets,
            keys=keys[starts],
            n_items=len(vocabulary),
            item_ids=np.r_[np.array([""], dtype=object), vocabulary.astype(object)],
            times=None if times is None else np.asarray(times, dtype=np.int64),
        )

    def take(self, rows: np.ndarray) -> "Sequences":
        """The sequences at positions ``rows`` (in that order)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        idx = np.repeat(starts - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
        return Sequences(
            items=self.items[idx],
            offsets=np.r_[0, np.cumsum(lengths)],
            keys=self.keys[rows],
            n_items=self.n_items,
            item_ids=self.item_ids,
            times=None if self.times is None else self.times[idx],
            meta=dict(self.meta),
        )

    def truncate(self, drop_last: int) -> "Sequences":
        """Every sequence without its last ``drop_last`` events (sequences never go below empty)."""
        lengths = np.maximum(self.lengths - drop_last, 0)
        keep = np.repeat(self.offsets[:-1], lengths) + (np.arange(lengths.sum()) - np.repeat(np.r_[0, np.cumsum(lengths)[:-1]], lengths))
        return Sequences(
            items=self.items[keep],
            offsets=np.r_[0, np.cumsum(lengths)],
            keys=self.keys,
            n_items=self.n_items,
            item_ids=self.item_ids,
            times=None if self.times is None else self.times[keep],
            meta=dict(self.meta),
        )

    def last(self, back: int = 1) -> np.ndarray:
        """The item ``back`` places from the end of each sequence (0 where it is too short)."""
        pos = self.offsets[1:] - back
        ok = pos >= self.offsets[:-1]
        out = np.zeros(len(self), dtype=np.int64)
        out[ok] = self.items[pos[ok]]
        return out


@dataclass
class LeaveOneOut:
    """Leave-one-out: per sequence the last item is the test target, the one before it the
    validation target; training sees everything before the validation target."""

    train: Sequences  # histories for training (all but the last two items)
    valid_history: Sequences  # all but the last two items
    valid_target: np.ndarray
    test_history: Sequences  # all but the last item
    test_target: np.ndarray


def leave_one_out(seqs: Sequences, min_length: int = 3) -> LeaveOneOut:
    """Split for next-item evaluation; sequences shorter than ``min_length`` are dropped."""
    if min_length < 3:
        raise ValueError("leave-one-out needs at least 3 items per sequence (train, valid, test)")
    kept = seqs.take(np.flatnonzero(seqs.lengths >= min_length))
    train = kept.truncate(2)
    return LeaveOneOut(
        train=train,
        valid_history=train,
        valid_target=kept.last(2),
        test_history=kept.truncate(1),
        test_target=kept.last(1),
    )


@dataclass
class TimeSplit:
    """A global time cut: events before ``valid_from`` train; ``valid_from``..``test_from``
    validate; events from ``test_from`` on test. Targets are the first event of each sequence
    inside a window; histories are everything before it."""

    train: Sequences
    valid_history: Sequences
    valid_target: np.ndarray
    test_history: Sequences
    test_target: np.ndarray
    valid_from: int
    test_from: int


def _before(seqs: Sequences, cut: int) -> tuple[Sequences, np.ndarray]:
    """Each sequence cut to events before ``cut``, and the first item at or after it (0 if none)."""
    before = seqs.times < cut
    seq_id = np.repeat(np.arange(len(seqs)), seqs.lengths)
    lengths = np.bincount(seq_id[before], minlength=len(seqs))
    out = Sequences(
        items=seqs.items[before],
        offsets=np.r_[0, np.cumsum(lengths)],
        keys=seqs.keys,
        n_items=seqs.n_items,
        item_ids=seqs.item_ids,
        times=seqs.times[before],
        meta=dict(seqs.meta),
    )
    first_after = seqs.offsets[:-1] + lengths
    target = np.zeros(len(seqs), dtype=np.int64)
    has = first_after < seqs.offsets[1:]
    target[has] = seqs.items[first_after[has]]
    return out, target


def time_split(seqs: Sequences, valid_from: int, test_from: int) -> TimeSplit:
    """Split on two global times (ms). Only sequences with history before a window and an event
    inside it are evaluated in that window; their targets are nonzero."""
    if seqs.times is None:
        raise ValueError("a time split needs event times")
    if not valid_from <= test_from:
        raise ValueError("valid_from must not be after test_from")
    train, _ = _before(seqs, valid_from)
    valid_hist, valid_target = _before(seqs, valid_from)
    test_hist, test_target = _before(seqs, test_from)
    valid_ok = (valid_target > 0) & (valid_hist.lengths > 0)
    valid_ok &= _first_time_after(seqs, valid_from) < test_from
    test_ok = (test_target > 0) & (test_hist.lengths > 0)
    rows_v, rows_t = np.flatnonzero(valid_ok), np.flatnonzero(test_ok)
    return TimeSplit(
        train=train,
        valid_history=valid_hist.take(rows_v),
        valid_target=valid_target[rows_v],
        test_history=test_hist.take(rows_t),
        test_target=test_target[rows_t],
        valid_from=valid_from,
        test_from=test_from,
    )


def _first_time_after(seqs: Sequences, cut: int) -> np.ndarray:
    seq_id = np.repeat(np.arange(len(seqs)), seqs.lengths)
    times = np.where(seqs.times >= cut, seqs.times, np.iinfo(np.int64).max)
    out = np.full(len(seqs), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, seq_id, times)
    return out
