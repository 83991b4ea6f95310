"""Real-time serving over a real socket: posted events shape the next recommendation within a
second without retraining; versioned models are switched and rolled back while requests keep
flowing, none failing; trained sequence-model artifacts are served through the same path."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from shelfwise.serving import create_app
from shelfwise.store import Store
from tests.serving_helpers import fill_shop, key, live_server, make_settings


@pytest.fixture
def shop(tmp_path):
    settings = make_settings(tmp_path)
    store = Store.open(settings)
    fill_shop(store)
    yield settings, store
    store.close()


def test_posted_events_shape_the_next_recommendation_within_a_second(shop):
    settings, store = shop
    with live_server(create_app(settings, store)) as client:
        read, write = key(store, "read"), key(store, "events")
        cold = client.get("/sessions/visitor-1/recommendations", params={"k": 3}, headers=read).json()
        assert cold["history_length"] == 0 and cold["items"][0]["reason"] == "popular"
        for viewed, expected in [("I05", "I15"), ("I17", "I27")]:
            started = time.perf_counter()
            posted = client.post("/events", headers=write, json={"events": [
                {"session_id": "visitor-1", "user_id": "new-user", "item_id": viewed, "type": "view",
                 "ts": "2024-07-01T12:00:00Z" if viewed == "I05" else "2024-07-01T12:01:00Z"}]})
            assert posted.json()["stored"] == 1
            session = client.get("/sessions/visitor-1/recommendations", params={"k": 3}, headers=read).json()
            user = client.get("/recommendations/new-user", params={"k": 3}, headers=read).json()
            elapsed = time.perf_counter() - started
            assert elapsed < 1.0, elapsed
            for answer in (session, user):
                top = answer["items"][0]
                assert top["item_id"] == expected and top["reason"] == "history"
                assert top["because"][0]["item_id"] == viewed
        assert session["history_length"] == 2
        metrics = client.get("/metrics").text
        assert "shelfwise_events_stored_total 2.0" in metrics and "shelfwise_event_write_seconds_count 2.0" in metrics


def save_sasrec(settings, item_ids: list[str], seed: int) -> str:
    """A small, untrained SASRec saved the way ``shelfwise train recommender`` saves one."""
    import torch

    from shelfwise.recommenders.neural import SequentialRecommender
    from shelfwise.recommenders.registry import build_model

    torch.manual_seed(seed)
    config = {"hidden": 16, "layers": 1, "heads": 1, "inner": 32, "max_len": 20}
    rec = SequentialRecommender(model="sasrec", model_config=config)
    rec.network_ = build_model("sasrec", len(item_ids), **config)
    rec.item_ids_ = np.array([""] + item_ids, dtype=object)
    rec.transitions_, rec.transitions_weight_ = None, 0.0  # the network alone
    return rec.save(settings.artifacts / "sasrec", {"test": {"ndcg@10": 0.1 * seed}}).version


def test_versions_switch_and_roll_back_while_serving_without_a_failed_request(shop):
    settings, store = shop
    # The artifact's vocabulary is not the catalogue's: it misses I20-I29 and knows an item
    # the catalogue no longer has. Scores are mapped by item id.
    vocab = [f"I{i:02d}" for i in range(20)] + ["GONE"]
    first = save_sasrec(settings, vocab, seed=1)
    time.sleep(1.1)  # versions are named by the second
    second = save_sasrec(settings, vocab, seed=2)
    with live_server(create_app(settings, store)) as client:
        admin, read = key(store, "admin"), key(store, "read")
        # With SASRec artifacts on disk, the newest trained model is served from the start.
        models = client.get("/admin/models", headers=admin).json()
        assert models["serving"]["name"] == "sasrec" and models["serving"]["version"] == second
        assert models["serving"]["source"] == "artifact" and models["previous"] is None
        assert models["available"]["sasrec"] == {"latest": second, "versions": [first, second]}

        statuses: list[int] = []
        versions: set[str] = set()
        strays: list[str] = []  # items outside the artifact's vocabulary served by a sasrec version
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                r = client.get("/recommendations/u4", params={"k": 5}, headers=read)
                statuses.append(r.status_code)
                if r.status_code == 200:
                    body = r.json()
                    versions.add(body["model"]["version"])
                    if body["model"]["name"] == "sasrec":
                        strays.extend(i["item_id"] for i in body["items"] if i["item_id"] not in vocab)

        workers = [threading.Thread(target=hammer) for _ in range(2)]
        for w in workers:
            w.start()
        try:
            switched = client.post("/admin/reload", headers=admin, json={"model": "sasrec", "version": first}).json()
            assert switched["previous"]["version"] == second and switched["current"]["version"] == first
            baseline = client.post("/admin/reload", headers=admin, json={"model": "transitions"}).json()["current"]
            assert baseline["source"] == "fitted"
            back = client.post("/admin/rollback", headers=admin).json()
            assert back["current"]["version"] == first and back["previous"]["version"] == baseline["version"]
            latest = client.post("/admin/reload", headers=admin, json={"model": "sasrec"}).json()["current"]
            assert latest["version"] == second
            time.sleep(0.2)
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=10)
        assert statuses and set(statuses) == {200}, {s for s in statuses if s != 200}
        assert {first, second} <= versions and strays == []
        recs = client.get("/recommendations/u4", params={"k": 30}, headers=read).json()
        assert recs["model"] == {"name": "sasrec", "version": second}
        assert {i["item_id"] for i in recs["items"]} <= set(vocab) - {"GONE"}  # only items both know
        assert client.get("/readyz").json()["model"]["version"] == second
        assert f'shelfwise_model_info{{name="sasrec",source="artifact",version="{second}"}} 1.0' in client.get("/metrics").text
        missing = client.post("/admin/reload", headers=admin, json={"model": "sasrec", "version": "1999"})
        assert missing.status_code == 404 and "1999" in missing.json()["detail"]
        assert client.post("/admin/reload", headers=admin, json={"model": "nope"}).status_code == 404
        assert client.get("/admin/models", headers=admin).json()["serving"]["version"] == second


def test_events_and_history_on_both_backends(store, tmp_path):
    """The hot path (hashed keys, plain-SQL history reads, transactional writes) on SQLite and
    on the real PostgreSQL."""
    from fastapi.testclient import TestClient

    fill_shop(store)
    with TestClient(create_app(make_settings(tmp_path), store)) as client:
        read, write = key(store, "read"), key(store, "events")
        posted = client.post("/events", headers=write, json={"events": [
            {"user_id": "pg-user", "item_id": "I08", "type": "view", "ts": "2024-07-01T12:00:00Z"},
            {"user_id": "pg-user", "item_id": "I18", "type": "purchase", "ts": "2024-07-01T12:00:05Z"},
        ]})
        assert posted.json() == {"received": 2, "stored": 2, "already_stored": 0}
        recs = client.get("/recommendations/pg-user", headers=read).json()
        assert recs["history_length"] == 2
        ids = [i["item_id"] for i in recs["items"]]
        assert ids[0] == "I28" and "I18" not in ids  # after I18 comes I28; I18 was bought
        assert client.get("/users", params={"q": "pg-"}, headers=read).json()["total"] == 1


def _events(prefix: str, n: int, item: str = "I01") -> list[dict]:
    return [{"event_id": f"{prefix}-{i}", "session_id": f"{prefix}-s", "item_id": item, "type": "view",
             "ts": "2024-07-02T00:00:00Z"} for i in range(n)]


def test_group_commit_answers_each_request_on_its_own(store):
    from shelfwise.ingest import IngestError
    from shelfwise.serving.event_writer import EventWriter

    fill_shop(store)
    before = store.counts()["events"]
    writer = EventWriter(store)
    # A thread not started yet: the three requests queue up and are written as one group.
    writer._thread = threading.Thread(target=writer._run, daemon=True)
    good = writer.submit(_events("a", 3))
    bad = writer.submit(_events("b", 2) + [{**_events("b", 1)[0], "event_id": "b-x", "item_id": "NOPE"}])
    resent = writer.submit(_events("a", 2) + _events("c", 2))  # a-0, a-1 are in the first request
    writer._thread.start()
    assert good.result(10).__dict__ == {"stored": 3, "already_stored": 0}
    assert resent.result(10).__dict__ == {"stored": 2, "already_stored": 2}
    with pytest.raises(IngestError, match="unknown item 'NOPE'"):
        bad.result(10)
    assert store.counts()["events"] == before + 5  # nothing of the bad request
    assert writer.submit(_events("a", 1)).result(10).__dict__ == {"stored": 0, "already_stored": 1}
    writer.close()


def test_concurrent_event_batches_are_all_stored(shop):
    settings, store = shop
    before = store.counts()["events"]
    app = create_app(settings, store)
    with live_server(app) as client:
        write = key(store, "events")
        answers: list[dict] = []

        def post(worker: int):
            for batch in range(5):
                r = client.post("/events", headers=write, json={"events": _events(f"w{worker}-{batch}", 40)})
                answers.append(r.json())

        threads = [threading.Thread(target=post, args=(w,)) for w in range(8)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    assert len(answers) == 40 and all(a == {"received": 40, "stored": 40, "already_stored": 0} for a in answers)
    assert store.counts()["events"] == before + 1600
    # Concurrent requests shared transactions (group commit).
    assert app.state.event_writer.groups_written < 40, (app.state.event_writer.groups_written, elapsed)
