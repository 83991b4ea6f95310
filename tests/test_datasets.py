"""Sequences, splits and training pairs built from the store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.datasets.sequences import Sequences, leave_one_out, time_split
from shelfwise.datasets.store_data import query_item_pairs, session_sequences, user_sequences
from shelfwise.ingest import ingest_frame

T0 = 1_700_000_000_000


def ev(user, session, item, type_, minute, query=None, position=None):
    return {"user_id": user, "session_id": session, "item_id": item, "type": type_, "ts": (T0 + minute * 60_000) / 1000, "query": query, "position": position}


@pytest.fixture
def shop(store):
    ingest_frame(store, "items", pd.DataFrame({"item_id": ["a", "b", "c", "d", "e"], "title": ["A", "B", "C", "D", "E"]}))
    rows = [
        ev("u1", "s1", "a", "view", 0), ev("u1", "s1", "a", "click", 1), ev("u1", "s1", "b", "view", 2),
        ev("u1", "s2", "c", "view", 60), ev("u1", "s2", "c", "purchase", 61),
        ev("u2", "s3", None, "search", 5, query="Red Pan"), ev("u2", "s3", "b", "impression", 5, position=0),
        ev("u2", "s3", "c", "impression", 5, position=1), ev("u2", "s3", "c", "click", 6), ev("u2", "s3", "c", "add_to_cart", 7),
        ev(None, "anon", "d", "view", 3), ev(None, "anon", "e", "view", 4),
        ev("u2", "s3", "d", "view", 200),  # more than 30 minutes after the search: not an answer to it
    ]
    ingest_frame(store, "events", pd.DataFrame(rows))
    return store


def test_user_sequences_collapse_repeats_and_keep_cold_items(shop):
    seqs = user_sequences(shop)
    assert list(seqs.keys) == ["u1", "u2"]
    names = seqs.item_ids
    assert [names[i] for i in seqs[0]] == ["a", "b", "c"]
    assert [names[i] for i in seqs[1]] == ["c", "d"]
    assert seqs.n_items == 5  # e has no user events but still has an index
    assert np.all(np.diff(seqs.times[seqs.offsets[0] : seqs.offsets[1]]) > 0)


def test_session_sequences_include_anonymous(shop):
    seqs = session_sequences(shop)
    assert sorted(seqs.keys) == ["anon", "s1", "s2", "s3"]
    anon = list(seqs.keys).index("anon")
    assert [seqs.item_ids[i] for i in seqs[anon]] == ["d", "e"]


def test_query_item_pairs_grades_strongest_action(shop):
    pairs = query_item_pairs(shop)
    assert pairs.to_dict("records") == [
        {"query": "red pan", "item_id": "b", "grade": 0},
        {"query": "red pan", "item_id": "c", "grade": 2},
    ]


def test_judgments_from_logs_put_grades_on_the_judgments_scale(shop):
    from shelfwise.tuning.judgments import judgments_from_logs

    judged = judgments_from_logs(shop)
    assert judged.to_dict("records") == [
        {"query": "red pan", "item_id": "b", "relevance": 1.0},  # shown, skipped
        {"query": "red pan", "item_id": "c", "relevance": 2.75},  # clicked, then carted
    ]


def test_leave_one_out():
    seqs = Sequences.from_lists([[1, 2, 3, 4], [2, 3], [5, 1, 2]], n_items=5)
    split = leave_one_out(seqs)
    assert len(split.train) == 2  # the 2-item sequence cannot give train, valid and test
    assert list(split.train[0]) == [1, 2] and list(split.train[1]) == [5]
    assert list(split.valid_target) == [3, 1] and list(split.test_target) == [4, 2]
    assert list(split.test_history[0]) == [1, 2, 3]
    with pytest.raises(ValueError):
        leave_one_out(seqs, min_length=2)


def test_time_split_never_leaks_the_future():
    seqs = Sequences.from_lists([[1, 2, 3, 4], [2, 3], [5, 1, 2]], n_items=5)
    seqs.times = np.array([1, 2, 3, 4, 1, 5, 2, 3, 9])
    split = time_split(seqs, valid_from=3, test_from=4)
    assert list(split.train[0]) == [1, 2] and list(split.train[1]) == [2]
    assert list(split.valid_target) == [3, 1]  # sequence 1's next event falls in the test window
    assert list(split.test_target) == [4, 3, 2]
    assert all(split.test_history.times < 4)
    with pytest.raises(ValueError):
        time_split(seqs, valid_from=5, test_from=4)


def test_sequences_validate_their_arrays():
    with pytest.raises(ValueError):
        Sequences(np.array([1, 2]), np.array([0, 3]), np.array(["u"]), n_items=2)
    with pytest.raises(ValueError):
        Sequences(np.array([1, 7]), np.array([0, 2]), np.array(["u"]), n_items=2)
