"""Ingestion of every format, and every kind of bad input a shop would send, on both backends."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from shelfwise.ingest import IngestError, ingest_file, ingest_frame
from shelfwise.store import events, items

ITEMS_CSV = """item_id,title,description,category,brand,price,currency,in_stock,colour
P1,Cast iron pan 28 cm,Heavy pan,Kitchen > Pans,Lodge,39.90,EUR,true,black
P2,Steel saucepan,,Kitchen > Pots,Fissler,59,EUR,false,silver
P3,"Chef's knife, 20 cm","Forged, sharp",Kitchen > Knives,Wusthof,89.5,EUR,1,
"""

EVENTS_JSONL = "\n".join(
    json.dumps(e)
    for e in [
        {"event_id": "e1", "user_id": "u1", "session_id": "s1", "item_id": "P1", "type": "view", "ts": "2024-05-01T10:00:00Z"},
        {"event_id": "e2", "user_id": "u1", "session_id": "s1", "item_id": "P1", "type": "add_to_cart", "ts": "2024-05-01T10:01:00Z"},
        {"event_id": "e3", "session_id": "anon-9", "type": "search", "query": "knife", "ts": 1714557700},
        {"event_id": "e4", "user_id": "u2", "item_id": "P3", "type": "impression", "ts": "2024-05-01T10:05:00", "position": 2, "sponsored": True},
    ]
) + "\n"


def write(path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.fixture
def catalogue(store, tmp_path):
    ingest_file(store, "items", write(tmp_path / "items.csv", ITEMS_CSV))
    return store


def snapshot(store) -> dict:
    with store.engine.connect() as conn:
        return {
            "items": conn.execute(sa.select(items).order_by(items.c.item_id)).fetchall(),
            "events": conn.execute(sa.select(events).order_by(events.c.id)).fetchall(),
            "counts": store.counts(),
        }


def test_items_csv_typed_and_extra_columns_become_attributes(store, tmp_path):
    report = ingest_file(store, "items", write(tmp_path / "items.csv", ITEMS_CSV))
    assert (report.read, report.stored, report.rejected) == (3, 3, 0)
    frame = store.items_frame().set_index("item_id")
    assert frame.loc["P1", "price"] == pytest.approx(39.9)
    assert frame.loc["P2", "in_stock"] in (False, 0)
    assert frame.loc["P1", "attributes"] == {"colour": "black"}
    assert frame.loc["P3", "title"] == "Chef's knife, 20 cm"
    assert pd.isna(frame.loc["P2", "description"])


def test_items_upsert_by_id(catalogue, tmp_path):
    ingest_file(catalogue, "items", write(tmp_path / "update.jsonl", json.dumps({"item_id": "P1", "title": "Pan", "price": 10}) + "\n"))
    frame = catalogue.items_frame().set_index("item_id")
    assert len(frame) == 3
    assert frame.loc["P1", "title"] == "Pan" and frame.loc["P1", "price"] == 10


def test_events_jsonl_and_not_stored_twice(catalogue, tmp_path):
    path = write(tmp_path / "events.jsonl", EVENTS_JSONL)
    first = ingest_file(catalogue, "events", path)
    again = ingest_file(catalogue, "events", path)
    assert (first.read, first.stored) == (4, 4)
    assert (again.stored, again.already_stored) == (0, 4)
    counts = catalogue.counts()
    assert counts == {"items": 3, "users": 2, "events": 4}
    frame = catalogue.read_frame(sa.select(events).order_by(events.c.event_id))
    assert frame["ts"].iloc[0] == 1714557600000  # 2024-05-01T10:00:00Z in ms
    assert frame["ts"].iloc[3] == frame["ts"].iloc[0] + 300_000  # naive times are UTC
    assert frame.set_index("event_id").loc["e4", "position"] == 2


def test_events_parquet(catalogue, tmp_path):
    frame = pd.DataFrame(
        {
            "event_id": ["p1", "p2"],
            "user_id": ["u7", "u7"],
            "item_id": ["P2", "P3"],
            "type": ["view", "purchase"],
            "ts": pd.to_datetime(["2024-06-01 12:00", "2024-06-01 12:30"], utc=True),
            "position": pd.array([3, None], dtype="Int64"),  # nullable columns, as Parquet gives them back
        }
    )
    frame.to_parquet(tmp_path / "events.parquet")
    report = ingest_file(catalogue, "events", tmp_path / "events.parquet")
    assert report.stored == 2
    assert catalogue.counts()["events"] == 2


def test_users_csv(store, tmp_path):
    report = ingest_file(store, "users", write(tmp_path / "users.csv", 'user_id,attributes\nu1,"{""country"": ""DE""}"\nu2,\n'))
    assert report.stored == 2
    assert store.counts()["users"] == 2


BAD_EVENT_FILES = {
    "malformed JSON": ("events.jsonl", EVENTS_JSONL + '{"event_id": "e5", "user_id": \n', 5, None, "malformed JSON"),
    "missing field": ("events.jsonl", EVENTS_JSONL + json.dumps({"user_id": "u1", "item_id": "P1", "type": "view"}) + "\n", 5, "ts", "required"),
    "mistyped field": ("events.csv", "user_id,item_id,type,ts,position\nu1,P1,view,2024-01-01,1\nu1,P2,view,2024-01-01,second\n", 3, "position", "whole number"),
    "bad enum": ("events.csv", "user_id,item_id,type,ts\nu1,P1,like,2024-01-01\n", 2, "type", "one of"),
    "unknown item": ("events.jsonl", EVENTS_JSONL + json.dumps({"user_id": "u1", "item_id": "NOPE", "type": "view", "ts": 1}) + "\n", 5, "item_id", "unknown item"),
    "cut off mid-line": ("events.jsonl", EVENTS_JSONL + '{"event_id": "e9", "user_id": "u1", "ite', 5, None, "cut off"),
    "csv cut off mid-line": ("events.csv", "user_id,item_id,type,ts\nu1,P1,view,2024-01-01\nu1,P2,vi", 3, None, "cut off"),
    "csv cut inside quotes": ("events.csv", 'user_id,item_id,type,ts,query\nu1,P1,view,2024-01-01,\nu1,,search,2024-01-01,"red pa', 3, None, "cut off"),
    "non-UTF-8 csv": ("events.csv", b"user_id,item_id,type,ts,query\nu1,P1,view,2024-01-01,\nu\xe9\xff1,,search,2024-01-01,pan\n", 3, "user_id", "text"),
    "non-UTF-8 jsonl": ("events.jsonl", EVENTS_JSONL.encode() + b'{"user_id": "\xff", "item_id": "P1", "type": "view", "ts": 1}\n', 5, None, "UTF-8"),
    "unknown column": ("events.csv", "user_id,item_id,type,ts,colour\nu1,P1,view,2024-01-01,red\n", 2, "colour", "unknown field"),
    "search without query": ("events.csv", "user_id,item_id,type,ts\nu1,,search,2024-01-01\n", 2, "query", "search event"),
    "no user nor session": ("events.csv", "item_id,type,ts\nP1,view,2024-01-01\n", 2, "user_id", "user_id or a session_id"),
    "negative position": ("events.csv", "user_id,item_id,type,ts,position\nu1,P1,view,2024-01-01,-1\n", 2, "position", "at least 0"),
    "bad time": ("events.csv", "user_id,item_id,type,ts\nu1,P1,view,yesterday\n", 2, "ts", "ISO 8601"),
}


@pytest.mark.parametrize("case", list(BAD_EVENT_FILES), ids=list(BAD_EVENT_FILES))
def test_bad_event_file_stops_names_line_and_field_and_keeps_nothing(catalogue, tmp_path, case):
    name, text, line, field, words = BAD_EVENT_FILES[case]
    ingest_file(catalogue, "events", write(tmp_path / "before.jsonl", EVENTS_JSONL))
    before = snapshot(catalogue)
    path = write(tmp_path / name, text)
    with pytest.raises(IngestError) as err:
        ingest_file(catalogue, "events", path)
    message = str(err.value)
    assert f"{path}:{line}:" in message
    if field:
        assert f"field '{field}'" in message
    assert words in message
    assert snapshot(catalogue) == before


def test_bad_items_keep_store_unchanged(catalogue, tmp_path):
    before = snapshot(catalogue)
    cases = {
        "dupes.csv": ("item_id,title\nP9,One\nP9,Two\n", "dupes.csv:3", "duplicate id 'P9' (first on line 2)"),
        "notitle.jsonl": ('{"item_id": "P1", "title": "x"}\n{"item_id": "P8"}\n', ":2", "field 'title'"),
        "price.csv": ("item_id,title,price\nP1,New title,-3\n", ":2", "field 'price': must be at least 0"),
        "price2.csv": ("item_id,title,price\nP1,New title,cheap\n", ":2", "expected a number, got 'cheap'"),
        "currency.csv": ("item_id,title,currency\nP1,New,EURO\n", ":2", "field 'currency'"),
        "attrs.jsonl": ('{"item_id": "P1", "title": "x", "attributes": [1]}\n', ":1", "JSON object"),
    }
    for name, (text, where, words) in cases.items():
        with pytest.raises(IngestError) as err:
            ingest_file(catalogue, "items", write(tmp_path / name, text))
        assert where in str(err.value) and words in str(err.value), str(err.value)
        assert snapshot(catalogue) == before, name


@pytest.mark.parametrize("name,text,words", [
    ("empty.csv", "", "empty"),
    ("empty.jsonl", "", "empty"),
    ("header_only.csv", "item_id,title\n", "no records"),
    ("blank.jsonl", "\n\n", "no records"),
    ("bad_header.csv", "item_id,title,title\nP1,a,b\n", "more than once"),
    ("table.parquet", "not parquet at all", "Parquet"),
    ("items.xml", "<items/>", "format"),
])
def test_files_without_records_are_refused(catalogue, tmp_path, name, text, words):
    before = snapshot(catalogue)
    with pytest.raises(IngestError) as err:
        ingest_file(catalogue, "items", write(tmp_path / name, text))
    assert words in str(err.value)
    assert str(tmp_path / name) in str(err.value)
    assert snapshot(catalogue) == before


def test_missing_file(catalogue, tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        ingest_file(catalogue, "items", tmp_path / "nope.csv")


def test_skip_invalid_keeps_good_rows_and_writes_rejects(catalogue, tmp_path):
    text = "event_id,user_id,item_id,type,ts\nk1,u1,P1,view,2024-01-01\nk2,u1,NOPE,view,2024-01-01\nk3,u1,P2,jump,2024-01-01\nk4,u2,P3,click,2024-01-02\n"
    rejects = tmp_path / "rejects.jsonl"
    report = ingest_file(catalogue, "events", write(tmp_path / "ev.csv", text), skip_invalid=True, rejects_path=rejects)
    assert (report.read, report.stored, report.rejected) == (4, 2, 2)
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in lines] == [(3, "item_id"), (4, "type")]
    assert lines[0]["raw"]["item_id"] == "NOPE"
    assert catalogue.counts()["events"] == 2


def test_batches_stream_and_one_bad_batch_rolls_back_all(catalogue, tmp_path):
    rows = [f"b{i},u{i % 7},P{1 + i % 3},view,{1_700_000_000 + i}" for i in range(1000)]
    rows[950] = "b950,u1,P1,view,not-a-time"
    path = write(tmp_path / "big.csv", "event_id,user_id,item_id,type,ts\n" + "\n".join(rows) + "\n")
    with pytest.raises(IngestError, match=r"big.csv:952: field 'ts'"):
        ingest_file(catalogue, "events", path, batch_size=100)
    assert catalogue.counts()["events"] == 0
    rows[950] = "b950,u1,P1,view,1700000950"
    write(path, "event_id,user_id,item_id,type,ts\n" + "\n".join(rows) + "\n")
    assert ingest_file(catalogue, "events", path, batch_size=100).stored == 1000


def test_ingest_frame_for_api_batches(catalogue):
    frame = pd.DataFrame([{"user_id": "u1", "item_id": "P1", "type": "click", "ts": "2024-01-01T00:00:00Z"}])
    assert ingest_frame(catalogue, "events", frame).stored == 1
    with pytest.raises(IngestError, match=r"request:1: field 'type'"):
        ingest_frame(catalogue, "events", frame.assign(type="poke"))


def test_anonymous_events_register_no_user(catalogue):
    frame = pd.DataFrame([{"session_id": "anon-1", "item_id": "P1", "type": "view", "ts": "2024-01-01T00:00:00Z"}])
    assert ingest_frame(catalogue, "events", frame).stored == 1
    assert catalogue.counts()["users"] == 0
