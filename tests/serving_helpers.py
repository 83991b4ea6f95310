"""A small shop for the serving tests, an app or a real server over it, and API keys.

The shop: 30 items in three categories (I00-I09 pans, I10-I19 knives, I20-I29 garden; I29 out
of stock). Sessions run I0x -> I1x -> I2x, so after a pan come knives, after a knife garden."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import httpx
import pandas as pd
import uvicorn

from shelfwise.config import Settings
from shelfwise.ingest import ingest_frame
from shelfwise.serving import create_app
from shelfwise.serving.auth import create_key
from shelfwise.store import Store

CATEGORIES = ["Kitchen > Pans"] * 10 + ["Kitchen > Knives"] * 10 + ["Garden"] * 10


def shop_items() -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": [f"I{i:02d}" for i in range(30)],
        "title": [f"Product {i}" for i in range(30)],
        "category": CATEGORIES,
        "price": [float(i) for i in range(30)],
        "in_stock": [True] * 29 + [False],
    })


def shop_events(n_sessions: int = 60) -> pd.DataFrame:
    rows = []
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    for s in range(n_sessions):
        a = s % 10
        path = [f"I{a:02d}", f"I{10 + a:02d}", f"I{20 + a:02d}"]
        for step, item in enumerate(path):
            rows.append({"event_id": f"e{s}-{step}", "user_id": f"u{s % 20}", "session_id": f"s{s}", "item_id": item,
                         "type": "view", "ts": (t0 + pd.Timedelta(minutes=10 * s + step)).isoformat()})
    return pd.DataFrame(rows)


def fill_shop(store: Store) -> None:
    ingest_frame(store, "items", shop_items())
    ingest_frame(store, "events", shop_events())


def make_settings(tmp_path, **overrides) -> Settings:
    return Settings(home=tmp_path / "home", **overrides)


def key(store: Store, *scopes: str) -> dict[str, str]:
    """Headers carrying a new key with these scopes."""
    _, plain = create_key(store, list(scopes))
    return {"Authorization": f"Bearer {plain}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app):
    """``app`` on a real socket on 127.0.0.1; yields a client; the server is stopped after."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def shop_app(tmp_path, store: Store | None = None, require_read_key: bool = True, **settings):
    s = make_settings(tmp_path, **settings)
    store = store or Store.open(s)
    if not store.counts()["items"]:
        fill_shop(store)
    return create_app(s, store, require_read_key=require_read_key), store
