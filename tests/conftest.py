"""Shared fixtures: a store on each backend (SQLite file, real PostgreSQL), and the shared data path."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from shelfwise.config import Settings
from shelfwise.store import Store

# Test apps search by keyword only unless a test asks for semantic search: loading MiniLM in
# every app's background would slow the suite and disturb its timing-sensitive tests.
os.environ.setdefault("SHELFWISE_SEARCH_SEMANTIC", "0")
# Those that do use torch's MiniLM rather than exporting it to ONNX first (a minute of CPU);
# tests/test_encoders_onnx.py checks the ONNX path of serving with the export it makes anyway.
os.environ.setdefault("SHELFWISE_TEXT_ENCODER", "torch")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PG_ADMIN_URL = os.environ.get("SHELFWISE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_database():
    """A database of our own on the real PostgreSQL, dropped at the end of the session."""
    import psycopg

    name = f"shelfwise_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {e}")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Store:
    """A fresh, migrated store on each backend."""
    if request.param == "sqlite":
        s = Store.open(Settings(home=tmp_path / "home"))
    else:
        import sqlalchemy as sa

        url = request.getfixturevalue("pg_database")
        s = Store.open(url.replace("postgresql://", "postgresql+psycopg://"))
        with s.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        s.migrate()
    yield s
    s.close()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared benchmark data is not at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def torch_one_thread():
    """Tiny models run fastest on one thread, and leave the other core to whoever shares the machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
