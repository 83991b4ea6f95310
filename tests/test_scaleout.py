"""Scale-out: two API processes on one PostgreSQL database serve the same shop; events posted
to one shape the next recommendation from the other, because history is read from the store
on every request and no process keeps events of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager

import httpx
import pytest

from shelfwise.store import Store
from tests.serving_helpers import fill_shop, free_port, key


@contextmanager
def api_process(db_url: str, home, port: int):
    """``shelfwise serve`` in a process of its own on 127.0.0.1; terminated on exit."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SHELFWISE_SEARCH_SEMANTIC": "0"}
    command = [sys.executable, "-m", "shelfwise.cli", "--home", str(home), "--db", db_url, "--quiet",
               "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.time() + 90
        while True:
            assert process.poll() is None, f"the API process exited:\n{process.stdout.read()}"
            assert time.time() < deadline, "the API process did not become ready"
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_two_api_processes_on_one_postgresql_see_each_others_events(pg_database, tmp_path):
    store = Store.open(pg_database)
    store.migrate()
    fill_shop(store)
    read, write = key(store, "read"), key(store, "events")
    with ExitStack() as stack:
        a = stack.enter_context(api_process(pg_database, tmp_path / "home", free_port()))
        b = stack.enter_context(api_process(pg_database, tmp_path / "home", free_port()))
        # A visitor's events go to whichever process the load balancer picks.
        for writer, reader, viewed, expected in [(a, b, "I05", "I15"), (b, a, "I17", "I27")]:
            stored = writer.post("/events", headers=write, json={"events": [
                {"session_id": "visitor-9", "item_id": viewed, "type": "view",
                 "ts": "2024-07-01T12:00:00Z" if viewed == "I05" else "2024-07-01T12:01:00Z"}]})
            assert stored.status_code == 200 and stored.json()["stored"] == 1
            top = reader.get("/sessions/visitor-9/recommendations", params={"k": 3}, headers=read).json()["items"][0]
            assert top["item_id"] == expected and top["because"][0]["item_id"] == viewed
        # A key made after both started works on both (keys live in the store, not in a process).
        late = key(store, "read")
        assert all(c.get("/items/I01", headers=late).status_code == 200 for c in (a, b))
    store.close()
