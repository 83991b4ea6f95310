"""Persistence through SQLAlchemy Core: a SQLite file (WAL) by default, PostgreSQL by URL.

The schema is owned by Alembic migrations; ``Store.open`` brings any database up to date.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from shelfwise.config import Settings
from shelfwise.store.tables import events, items, metadata, users

__all__ = ["Store", "items", "users", "events", "metadata"]

MIGRATIONS = Path(__file__).parent / "migrations"
# Bound parameters per statement stay below SQLite's limit (32,766) and PostgreSQL's (65,535).
MAX_PARAMS = 30_000
WRITES = "shelfwise_writes"  # execution option of the connections Store.transaction() opens


def _engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA cache_size=-65536")  # 64 MiB: index pages stay in memory during bulk loads
            cur.close()
            # pysqlite only opens a transaction before INSERT/UPDATE/DELETE, so DDL at the start of
            # one would commit on its own; SQLAlchemy's recipe: we say BEGIN ourselves.
            dbapi_conn.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # A write transaction takes the write lock when it begins. One that reads first and
            # writes later cannot wait for it: when another process committed in between, SQLite
            # answers "database is locked" at once, whatever busy_timeout says. IMMEDIATE waits.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITES) else "BEGIN")

    return engine


def _column_values(column: pd.Series) -> list:
    """A column as a list of plain Python values, missing ones as None."""
    values = column.astype(object).tolist()
    if column.isna().any():
        values = [None if m else v for v, m in zip(values, column.isna().tolist())]
    return values


class Store:
    """The shop's catalogue, users and events in one relational database."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._writer = engine.execution_options(**{WRITES: True})

    @classmethod
    def open(cls, settings: Settings | str) -> "Store":
        """Open (creating if needed) the store for these settings or URL, migrated to head."""
        if isinstance(settings, Settings):
            if settings.db_url is None:
                settings.ensure_home()
            url = settings.database_url
        else:
            url = settings
        store = cls(_engine(url))
        store.migrate()
        return store

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self, revision: str = "head") -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: everything written inside it lands together or not at all."""
        with self._writer.begin() as conn:
            yield conn

    @contextmanager
    def bulk_events(self, conn: Connection, expected_rows: int) -> Iterator[None]:
        """For a load of at least as many events as are stored (and 100,000 or more), SQLite
        drops the secondary event indexes and rebuilds them at the end, inside the same
        transaction: one sorted build is far cheaper than a million random index inserts."""
        bulk = self.dialect == "sqlite" and expected_rows >= 100_000
        if bulk:
            stored = conn.execute(sa.select(sa.func.max(events.c.id))).scalar() or 0
            bulk = expected_rows >= stored
        if bulk:
            for index in events.indexes:
                if not index.unique:
                    index.drop(conn)
        yield
        if bulk:
            for index in events.indexes:
                if not index.unique:
                    index.create(conn)

    # -- writes -----------------------------------------------------------------------------

    def _insert(self, table: sa.Table):
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(table)

    def _chunks(self, rows: list[dict], table: sa.Table) -> Iterable[list[dict]]:
        size = max(1, MAX_PARAMS // len(table.columns))
        for start in range(0, len(rows), size):
            yield rows[start : start + size]

    def upsert_items(self, conn: Connection, rows: list[dict]) -> int:
        """Insert items, replacing every given field of items that already exist."""
        if not rows:
            return 0
        stmt = self._insert(items)
        keep_created = sa.func.coalesce(items.c.created_at, stmt.excluded.created_at)
        updates = {c.name: stmt.excluded[c.name] for c in items.columns if c.name != "item_id"}
        updates["created_at"] = keep_created
        stmt = stmt.on_conflict_do_update(index_elements=["item_id"], set_=updates)
        for chunk in self._chunks(rows, items):
            conn.execute(stmt, chunk)
        return len(rows)

    def upsert_users(self, conn: Connection, rows: list[dict], replace: bool = True) -> int:
        """Insert users; with ``replace`` their attributes are overwritten, else left alone."""
        if not rows:
            return 0
        stmt = self._insert(users)
        if replace:
            stmt = stmt.on_conflict_do_update(
                index_elements=["user_id"], set_={"attributes": stmt.excluded.attributes}
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=["user_id"])
        for chunk in self._chunks(rows, users):
            conn.execute(stmt, chunk)
        return len(rows)

    def insert_events(self, conn: Connection, frame: pd.DataFrame) -> int:
        """Insert events (columns named as in the events table); one whose event_id is already
        stored is skipped. Returns the number of rows stored."""
        if frame.empty:
            return 0
        stmt = self._insert(events).on_conflict_do_nothing(index_elements=["event_id"])
        if self.dialect == "sqlite":
            # The hot path of ingestion: plain tuples straight to the driver, compiled once.
            compiled = stmt.compile(dialect=conn.dialect, column_keys=list(frame.columns))
            columns = [_column_values(frame[name]) for name in compiled.positiontup]
            return conn.exec_driver_sql(str(compiled), list(zip(*columns))).rowcount
        # psycopg reports no rowcount for batched inserts; count the rows it returns instead.
        stmt = stmt.returning(events.c.id)
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        return sum(len(conn.execute(stmt, chunk).fetchall()) for chunk in self._chunks(records, events))

    # -- reads ------------------------------------------------------------------------------

    def existing_item_ids(self, conn: Connection, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` (unique strings) are in the catalogue: a boolean mask."""
        found: set[str] = set()
        size = MAX_PARAMS
        for start in range(0, len(ids), size):
            chunk = [str(i) for i in ids[start : start + size]]
            found.update(conn.execute(sa.select(items.c.item_id).where(items.c.item_id.in_(chunk))).scalars().all())
        return np.fromiter((i in found for i in ids), dtype=bool, count=len(ids))

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (items, users, events)
            }

    def read_frame(self, query: sa.Select | str, **params) -> pd.DataFrame:
        """Run a query and return its rows as a DataFrame."""
        with self.engine.connect() as conn:
            result = conn.execute(sa.text(query) if isinstance(query, str) else query, params)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def items_frame(self) -> pd.DataFrame:
        return self.read_frame(sa.select(items).order_by(items.c.item_id))
