"""Readers of the public benchmark formats: small files written here, and the real folders in
../shared/data when they are present."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.datasets.public import STORE_LOADERS, fashion_items, read_recbole_text, read_sessions, sequence_events
from shelfwise.ingest import ingest_frame


def test_sessions_reader(tmp_path):
    (tmp_path / "train_sessions.txt").write_text("1 2\n3 4 5\n\n6 7\n")
    (tmp_path / "test_prefix_target.tsv").write_text("1 2 3\t4\n5\t6\n")
    data = read_sessions(tmp_path)
    assert len(data.train) == 3 and list(data.train[1]) == [3, 4, 5]
    assert list(data.test_prefix[0]) == [1, 2, 3] and list(data.test_target) == [4, 6]
    assert data.train.n_items == 7


@pytest.mark.parametrize("train,test,where", [
    ("1 2\n3 x 5\n", "1\t2\n", "train_sessions.txt:2"),
    ("1 2\n", "1 2\t3\n4 5\n", "test_prefix_target.tsv:2"),
    ("1 2\n", "\t3\n", "test_prefix_target.tsv:1"),
])
def test_sessions_reader_names_bad_line(tmp_path, train, test, where):
    (tmp_path / "train_sessions.txt").write_text(train)
    (tmp_path / "test_prefix_target.tsv").write_text(test)
    with pytest.raises(ValueError, match=where):
        read_sessions(tmp_path)


def write_recbole(folder, valid_rows, test_rows):
    folder.mkdir()
    (folder / "Toy.item2index").write_text("ASIN0\t0\nASIN1\t1\nASIN2\t2\n")
    (folder / "Toy.text").write_text("item_id:token\ttext:token_seq\nASIN0\tred pan\nASIN1\tblue pot\nASIN2\tknife\n")
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    (folder / "Toy.valid.inter").write_text(header + valid_rows)
    (folder / "Toy.test.inter").write_text(header + test_rows)


def test_recbole_text_reader(tmp_path):
    write_recbole(tmp_path / "toy", "0\t0 1\t2\n1\t2\t0\n", "0\t0 1 2\t1\n1\t2 0\t1\n")
    data = read_recbole_text(tmp_path / "toy", name="Toy")
    assert list(data.split.train[0]) == [1, 2] and list(data.split.valid_target) == [3, 1]
    assert list(data.split.test_target) == [2, 2]
    assert data.item_text["text"].tolist() == ["red pan", "blue pot", "knife"]
    assert data.split.train.item_ids[3] == "ASIN2"


def test_recbole_text_reader_names_bad_row(tmp_path):
    write_recbole(tmp_path / "toy", "0\t0 one\t2\n", "0\t0 1 2\t1\n")
    with pytest.raises(ValueError, match=r"Toy.valid.inter:2"):
        read_recbole_text(tmp_path / "toy", name="Toy")


def test_sequence_events_round_trip(store):
    data = read_sessions_like()
    events = sequence_events(data)
    assert list(events["user_id"]) == ["a", "a", "b"] and list(events["item_id"]) == ["1", "2", "3"]
    ingest_frame(store, "items", events[["item_id"]].drop_duplicates().assign(title="x"))
    assert ingest_frame(store, "events", events).stored == 3


def read_sessions_like():
    from shelfwise.datasets.sequences import Sequences

    return Sequences.from_lists([[1, 2], [3]], n_items=3, keys=np.array(["a", "b"], dtype=object))


def test_real_folders_load(shared_data):
    sessions = read_sessions(shared_data / "sessions" / "diginetica")
    assert (len(sessions.train), len(sessions.test_prefix), sessions.train.n_items) == (186_670, 60_858, 43_097)
    scientific = read_recbole_text(shared_data / "amazon_scientific")
    assert (len(scientific.split.train), scientific.split.train.n_items) == (8_442, 4_385)
    fashion = fashion_items(shared_data / "fashion")
    assert len(fashion) == 44_446 and fashion["image"].notna().sum() == 3_805
    items = STORE_LOADERS["homedepot"](shared_data / "homedepot")["items"]
    assert len(items) == 54_667


def test_real_fashion_into_store_rejects_untitled(shared_data, store):
    items = fashion_items(shared_data / "fashion", with_images_only=True)
    report = ingest_frame(store, "items", items, skip_invalid=True)
    assert report.read == 3_805 and report.stored + report.rejected == 3_805
    assert store.counts()["items"] == report.stored
