"""The HTTP API over a real socket: health, readiness, the catalogue and the storefront page."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pandas as pd
import pytest
import uvicorn

from shelfwise.config import Settings
from shelfwise.ingest import ingest_frame
from shelfwise.serving import create_app
from shelfwise.store import Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live(tmp_path):
    """A server on 127.0.0.1 with a small catalogue; stopped when the test ends."""
    settings = Settings(home=tmp_path / "home")
    store = Store.open(settings)
    ingest_frame(store, "items", pd.DataFrame({
        "item_id": [f"I{i:02d}" for i in range(30)],
        "title": [f"Product {i}" for i in range(30)],
        "category": ["Kitchen > Pans"] * 10 + ["Kitchen > Knives"] * 10 + ["Garden"] * 10,
        "price": [float(i) for i in range(30)],
    }))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings, store), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline, "server did not start"
        time.sleep(0.05)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client
    server.should_exit = True
    thread.join(timeout=10)


def test_health_and_ready(live):
    assert live.get("/healthz").json() == {"status": "ok"}
    ready = live.get("/readyz").json()
    assert ready["status"] == "ready" and ready["items"] == 30


def test_items_pages_and_category_filter(live):
    page = live.get("/items", params={"per_page": 12, "page": 3}).json()
    assert page["total"] == 30 and len(page["results"]) == 6
    assert page["results"][0]["id"] == "I24"
    knives = live.get("/items", params={"category": "Kitchen"}).json()
    assert knives["total"] == 20
    assert live.get("/items", params={"category": "Kitchen > Knives"}).json()["total"] == 10
    assert live.get("/items/I05").json()["title"] == "Product 5"
    missing = live.get("/items/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    assert live.get("/items", params={"per_page": 1000}).status_code == 422


def test_storefront_page_and_assets(live):
    page = live.get("/")
    assert page.status_code == 200 and "<title>shelfwise" in page.text
    assert live.get("/static/storefront.js").status_code == 200
    assert "/items" in live.get("/openapi.json").json()["paths"]
