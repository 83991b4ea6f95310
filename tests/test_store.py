"""The store on both backends: migrations, upserts, counts."""

from __future__ import annotations

import pandas as pd
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shelfwise.ingest import ingest_frame
from shelfwise.store import Store, metadata


def test_migrations_build_exactly_the_declared_tables(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_open_twice_keeps_data(store):
    ingest_frame(store, "items", pd.DataFrame({"item_id": ["x"], "title": ["X"]}))
    store.migrate()
    assert store.counts()["items"] == 1


def test_sqlite_uses_wal(tmp_path):
    from shelfwise.config import Settings

    store = Store.open(Settings(home=tmp_path / "h"))
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert (tmp_path / "h" / "shelfwise.db").exists()


def test_item_upsert_keeps_created_at(store):
    ingest_frame(store, "items", pd.DataFrame({"item_id": ["x"], "title": ["X"], "created_at": ["2024-01-01"]}))
    ingest_frame(store, "items", pd.DataFrame({"item_id": ["x"], "title": ["Y"]}))
    row = store.items_frame().iloc[0]
    assert row["title"] == "Y" and row["created_at"] == 1704067200000


def _event_indexes(store) -> set[str]:
    import sqlalchemy as sa

    return {ix["name"] for ix in sa.inspect(store.engine).get_indexes("events")}


def test_bulk_event_load_rebuilds_indexes_and_rolls_back_whole(store):
    import pytest

    before = _event_indexes(store)
    with store.transaction() as conn, store.bulk_events(conn, expected_rows=200_000):
        pass
    assert _event_indexes(store) == before
    with pytest.raises(RuntimeError):
        with store.transaction() as conn, store.bulk_events(conn, expected_rows=200_000):
            raise RuntimeError("a bad batch")
    assert _event_indexes(store) == before


def test_writers_on_one_sqlite_file_wait_for_each_other(tmp_path):
    """Two writers (API processes) on one SQLite file: every load reads the catalogue first and
    writes later, which SQLite refuses at once ("database is locked") when the other wrote in
    between, unless the write transaction takes the lock when it begins."""
    import threading

    from shelfwise.config import Settings

    settings = Settings(home=tmp_path / "home")
    first = Store.open(settings)
    ingest_frame(first, "items", pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"]}))
    stores = [first, Store.open(settings)]
    failures = []

    def write(n: int) -> None:
        try:
            for batch in range(40):
                ingest_frame(stores[n], "events", pd.DataFrame({
                    "event_id": [f"{n}-{batch}-{i}" for i in range(5)], "session_id": f"s{n}",
                    "item_id": ["a", "b"] * 2 + ["a"], "type": "view", "ts": 1_700_000_000 + batch}))
        except Exception as e:  # noqa: BLE001 (reported below)
            failures.append(repr(e))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and first.counts()["events"] == 2 * 40 * 5
    for s in stores:
        s.close()
