"""The HTTP API over a real socket: health, readiness, the catalogue, users, recommendations,
similar items, metrics, the OpenAPI document and the storefront page."""

from __future__ import annotations

import pytest

from shelfwise.serving import create_app
from shelfwise.store import Store
from tests.serving_helpers import fill_shop, key, live_server, make_settings



@pytest.fixture
def live(tmp_path):
    """A server on 127.0.0.1 over the small shop, every request with a read key; stopped after."""
    settings = make_settings(tmp_path)
    store = Store.open(settings)
    fill_shop(store)
    with live_server(create_app(settings, store)) as client:
        client.headers.update(key(store, "read"))
        yield client
    store.close()


def test_health_and_ready(live):
    assert live.get("/healthz").json() == {"status": "ok"}
    ready = live.get("/readyz").json()
    assert ready["status"] == "ready" and ready["items"] == 30
    assert ready["model"]["name"] == "transitions" and ready["model"]["version"].startswith("fitted-")


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
    too_many = live.get("/items", params={"per_page": 1000})
    assert too_many.status_code == 422 and too_many.json()["detail"].startswith("query.per_page: ")


def test_users_for_a_picker(live):
    page = live.get("/users", params={"per_page": 5}).json()
    assert page["total"] == 20 and [u["user_id"] for u in page["results"]] == ["u0", "u1", "u10", "u11", "u12"]
    assert live.get("/users", params={"q": "u1"}).json()["total"] == 11  # u1, u10..u19


def test_recommendations_for_user_and_session(live):
    recs = live.get("/recommendations/u3", params={"k": 5}).json()
    assert recs["user_id"] == "u3" and recs["model"]["name"] == "transitions" and recs["history_length"] > 0
    assert len(recs["items"]) == 5 and recs["items"][0]["reason"] == "history"
    session = live.get("/sessions/s4/recommendations", params={"k": 3}).json()
    # s4 ran I04 -> I14 -> I24: I24 followed I14 (and I04 two steps before), I14 followed I04;
    # the third pick has no history item next to it: the popularity prior chose it.
    assert session["session_id"] == "s4" and session["history_length"] == 3
    first, second, third = session["items"]
    assert first["item_id"] == "I24" and [b["item_id"] for b in first["because"]] == ["I14", "I04"]
    assert second["item_id"] == "I14" and first["because"][0]["title"] == "Product 14"
    assert third["reason"] == "popular" and third["because"] == []
    newcomer = live.get("/recommendations/nobody").json()
    assert newcomer["history_length"] == 0 and {i["reason"] for i in newcomer["items"]} == {"popular"}
    assert live.get("/recommendations/u3", params={"k": 0}).status_code == 422


def test_similar_items(live):
    similar = live.get("/items/I02/similar", params={"k": 4}).json()
    assert similar["items"][0]["item_id"] == "I12" and similar["items"][0]["reason"] == "co-occurrence"
    # I02 only ever sat next to I12 and I22 (I22 is two steps away); pans fill up the rest.
    assert [i["item_id"] for i in similar["items"][:2]] == ["I12", "I22"]
    assert {i["reason"] for i in similar["items"][2:]} == {"same category"}
    assert all(i["category"] == "Kitchen > Pans" for i in similar["items"][2:])
    assert live.get("/items/NOPE/similar").status_code == 404


def test_metrics_after_requests(live):
    live.get("/recommendations/u1")
    live.get("/items/I01")
    text = live.get("/metrics").text
    assert 'shelfwise_http_request_duration_seconds_bucket{le="0.02",method="GET",route="/recommendations/{user_id}"}' in text
    assert 'shelfwise_http_requests_total{method="GET",route="/items/{item_id}",status="200"} 1.0' in text
    assert 'shelfwise_model_info{name="transitions"' in text
    assert 'shelfwise_index_size{index="catalogue_items"} 30.0' in text
    assert "shelfwise_model_created_timestamp_seconds" in text and "shelfwise_event_lag_seconds_bucket" in text


def test_openapi_documents_every_endpoint_and_the_key(live):
    spec = live.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ["/recommendations/{user_id}", "/sessions/{session_id}/recommendations", "/items/{item_id}/similar",
                 "/items/{item_id}", "/events", "/users", "/healthz", "/readyz", "/metrics", "/admin/reload",
                 "/admin/rollback", "/admin/ingest", "/admin/models", "/admin/rules"]:
        assert path in paths, path
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert paths["/events"]["post"]["security"] == [{"HTTPBearer": []}]
    assert {"401", "403", "422", "429"} <= set(paths["/events"]["post"]["responses"])
    assert {"401", "403", "429"} <= set(paths["/recommendations/{user_id}"]["get"]["responses"])
    assert "because" in spec["components"]["schemas"]["RecommendedItem"]["properties"]


def test_storefront_page_and_assets(live):
    page = live.get("/")
    assert page.status_code == 200 and "<title>shelfwise" in page.text
    assert live.get("/static/storefront.js").status_code == 200
    assert "/items" in live.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("demo", [False, True])
def test_serve_needs_read_keys_and_demo_says_reads_are_open(tmp_path, monkeypatch, capsys, demo):
    """``shelfwise serve`` requires a read key; ``shelfwise demo`` serves reads without one and
    says so. (uvicorn.run is replaced: the app it would run is inspected instead.)"""
    import logging

    import uvicorn

    from shelfwise.commands.serve import run_server

    settings = make_settings(tmp_path)
    fill_shop(Store.open(settings))
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    try:
        run_server(settings, "127.0.0.1", 8123, require_read_key=not demo)
    finally:
        logger = logging.getLogger("shelfwise")  # undo setup_logging for the tests that follow
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate, logger.level = True, logging.NOTSET
    out = capsys.readouterr().out
    assert served["host"] == "127.0.0.1" and served["port"] == 8123
    assert served["app"].state.require_read_key is (not demo)
    assert ("demo mode: reads are open without an API key" in out) is demo
    assert ("every request needs an API key" in out) is (not demo)
    assert "model transitions fitted-" in out
