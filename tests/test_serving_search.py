"""Search over HTTP: GET /search (shape, facets, filters, sorting, pages, spelling, personal
re-ranking), GET /autocomplete, POST /search/image and POST /search/voice, keys, and items added
through POST /admin/ingest.

The shop is the serving tests' one (30 items in three categories, sessions pan -> knife ->
garden) with real titles: pans "Ferro Steel Frying Pan N", knives "Blade Steel Chef Knife Set N", garden
hoses. Most apps are keyword-only (``search_semantic=False``: no MiniLM); one slow test builds
the semantic index over the small shop."""

from __future__ import annotations

import io
import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shelfwise.ingest import ingest_frame
from shelfwise.serving import create_app
from shelfwise.store import Store
from tests.serving_helpers import CATEGORIES, key, make_settings, shop_events

ESPEAK = shutil.which("espeak-ng")
TOP_LEVEL = {"query", "corrected", "results", "facets", "total", "page", "per_page", "mode"}
RESULT_FIELDS = {"id", "title", "category", "brand", "price", "image", "in_stock", "score", "explanation"}


def search_items() -> pd.DataFrame:
    titles = ([f"Ferro Steel Frying Pan {i}" for i in range(10)] + [f"Blade Steel Chef Knife Set {i}" for i in range(10)]
              + [f"Greeno Garden Hose {i} m" for i in range(10)])
    brands = ["Ferro"] * 10 + ["Blade"] * 10 + ["Greeno"] * 10
    return pd.DataFrame({"item_id": [f"I{i:02d}" for i in range(30)], "title": titles, "category": CATEGORIES,
                         "brand": brands, "price": [float(i) for i in range(30)], "in_stock": [True] * 29 + [False]})


def search_events() -> pd.DataFrame:
    """Past searches (three of "frying pan", one typo) and a shopper who only looks at knives."""
    t0 = pd.Timestamp("2024-02-01", tz="UTC")
    rows = [{"event_id": f"q{i}", "session_id": f"qs{i}", "type": "search", "query": query, "ts": (t0 + pd.Timedelta(minutes=i)).isoformat()}
            for i, query in enumerate(["frying pan"] * 3 + ["fryng pan"])]
    rows += [{"event_id": f"k{i}", "user_id": "knife-fan", "session_id": "knife-session", "item_id": f"I1{i}", "type": "view",
              "ts": (t0 + pd.Timedelta(hours=1, minutes=i)).isoformat()} for i in range(3)]
    return pd.DataFrame(rows)


def fill_search_shop(store: Store) -> None:
    ingest_frame(store, "items", search_items())
    ingest_frame(store, "events", shop_events())
    ingest_frame(store, "events", search_events())


@pytest.fixture
def shop(tmp_path):
    """(client with a read key, store, settings) over a keyword-only app."""
    settings = make_settings(tmp_path)
    store = Store.open(settings)
    fill_search_shop(store)
    client = TestClient(create_app(settings, store, search_semantic=False))
    client.headers.update(key(store, "read"))
    yield client, store, settings
    store.close()


def search(client, **params) -> dict:
    response = client.get("/search", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_results_and_facets_have_the_documented_shape(shop):
    client, _, _ = shop
    body = search(client, q="steel")
    assert set(body) == TOP_LEVEL
    assert body["query"] == "steel" and body["corrected"] is None
    # Hybrid was asked for; without a semantic index the keyword index answers and says so.
    assert body["mode"] == "keyword" and body["page"] == 1 and body["per_page"] == 24
    assert body["total"] == 20 and len(body["results"]) == 20
    first = body["results"][0]
    assert set(first) == RESULT_FIELDS
    assert first["explanation"]["matched_terms"] == ["steel"] and first["explanation"]["retrievers"] == ["keyword"]
    assert body["facets"]["category"] == {"Kitchen > Pans": 10, "Kitchen > Knives": 10}
    assert body["facets"]["brand"] == {"Ferro": 10, "Blade": 10}
    assert sum(body["facets"]["price"].values()) == 20 and body["facets"]["price"]["0-25"] == 20


def test_filters(shop):
    client, _, _ = shop
    knives = search(client, q="steel", category="Kitchen > Knives")
    assert knives["total"] == 10 and {r["category"] for r in knives["results"]} == {"Kitchen > Knives"}
    # A category covers everything below it.
    assert search(client, q="steel", category="Kitchen")["total"] == 20
    assert search(client, q="steel", category="Kitch")["total"] == 0
    assert {r["brand"] for r in search(client, q="steel", brand="Ferro")["results"]} == {"Ferro"}
    cheap = search(client, q="steel", price_min=3, price_max=12)
    assert sorted(r["price"] for r in cheap["results"]) == [float(p) for p in range(3, 13)]
    sold_out = search(client, q="hose", in_stock=False)
    assert [r["id"] for r in sold_out["results"]] == ["I29"] and sold_out["results"][0]["in_stock"] is False


def test_sorting_and_pages(shop):
    client, _, _ = shop
    second = search(client, q="steel", sort="price_asc", per_page=5, page=2)
    assert [r["price"] for r in second["results"]] == [5.0, 6.0, 7.0, 8.0, 9.0] and second["total"] == 20
    assert [r["price"] for r in search(client, q="steel", sort="price_desc", per_page=3)["results"]] == [19.0, 18.0, 17.0]
    past_the_end = search(client, q="steel", page=3, per_page=10)
    assert past_the_end["results"] == [] and past_the_end["total"] == 20
    assert client.get("/search", params={"q": "steel", "per_page": 101}).status_code == 422
    assert client.get("/search", params={"q": "steel", "sort": "cheapest"}).status_code == 422
    assert client.get("/search", params={"q": ""}).status_code == 422


def test_a_misspelled_query_is_searched_corrected(shop):
    client, _, _ = shop
    body = search(client, q="hsoe")
    assert body["query"] == "hsoe" and body["corrected"] == "hose"
    assert body["total"] == 10 and body["results"][0]["explanation"]["matched_terms"] == ["hose"]
    assert search(client, q="hose")["corrected"] is None


def test_autocomplete_from_past_queries_and_titles(shop):
    client, _, _ = shop
    response = client.get("/autocomplete", params={"q": "fry", "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "fry" and body["suggestions"][0] == "frying pan"
    assert "fryng pan" not in client.get("/autocomplete", params={"q": "fryn"}).json()["suggestions"]  # typos are not offered
    assert client.get("/autocomplete", params={"q": "gard"}).json()["suggestions"][0].startswith("garden")


def test_personal_reranking_follows_the_shoppers_history(shop):
    client, _, _ = shop
    anonymous = search(client, q="steel", per_page=5)
    assert {r["category"] for r in anonymous["results"]} == {"Kitchen > Pans"}  # shorter titles: pans first
    for who in ({"user_id": "knife-fan"}, {"session_id": "knife-session"}):
        personal = search(client, q="steel", per_page=5, **who)
        assert {r["category"] for r in personal["results"]} == {"Kitchen > Knives"}
        assert personal["results"][0]["explanation"]["personal_boost"] > 1
        assert personal["total"] == anonymous["total"]
    # A shopper without history gets the anonymous order.
    assert search(client, q="steel", per_page=5, user_id="nobody")["results"] == anonymous["results"]


def test_search_needs_a_read_key(tmp_path):
    settings = make_settings(tmp_path)
    store = Store.open(settings)
    fill_search_shop(store)
    client = TestClient(create_app(settings, store, search_semantic=False))
    for method, path in (("GET", "/search?q=pan"), ("GET", "/autocomplete?q=pa"), ("POST", "/search/image"), ("POST", "/search/voice")):
        response = client.request(method, path, content=b"x")
        assert response.status_code == 401, path
    events_only = client.get("/search", params={"q": "pan"}, headers=key(store, "events"))
    assert events_only.status_code == 403
    assert client.get("/search", params={"q": "pan"}, headers=key(store, "read")).status_code == 200
    store.close()


def _png(size: int = 32) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (180, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_photo_search_without_a_model_or_with_a_bad_photo(shop):
    client, _, _ = shop
    no_model = client.post("/search/image", files={"file": ("shoe.png", _png(), "image/png")})
    assert no_model.status_code == 503 and "bench multimodal" in no_model.json()["detail"]
    assert client.post("/search/image", content=_png(), headers={"content-type": "image/png"}).status_code == 503
    garbage = client.post("/search/image", files={"file": ("x.jpg", b"not a photo at all", "image/jpeg")})
    assert garbage.status_code == 400 and "not a recognised image format" in garbage.json()["detail"]
    truncated = client.post("/search/image", content=_png(256)[:200], headers={"content-type": "image/png"})
    assert truncated.status_code == 400 and "cannot" in truncated.json()["detail"]
    empty = client.post("/search/image", files={"other": ("x.png", b"", "image/png")})
    assert empty.status_code == 400 and "'file'" in empty.json()["detail"]


def test_bad_audio_is_a_400(shop):
    client, _, _ = shop
    response = client.post("/search/voice", files={"file": ("q.wav", b"RIFF" + b"\0" * 300, "audio/wav")})
    assert response.status_code == 400 and "cannot read the audio" in response.json()["detail"]


def test_ingested_items_are_searchable_at_once(shop):
    client, store, _ = shop
    assert search(client, q="watering can")["results"] == []  # (and this answer is now cached)
    new = {"item_id": "I99", "title": "Copper Watering Can 5 l", "category": "Garden", "brand": "Greeno", "price": 12.5, "in_stock": True}
    response = client.post("/admin/ingest", json={"items": [new]}, headers=key(store, "admin"))
    assert response.status_code == 200, response.text
    body = search(client, q="watering can")
    assert [r["id"] for r in body["results"]] == ["I99"] and body["results"][0]["price"] == 12.5
    # An update replaces the item (here: out of stock), never duplicates it.
    client.post("/admin/ingest", json={"items": [{**new, "in_stock": False}]}, headers=key(store, "admin"))
    assert [r["in_stock"] for r in search(client, q="watering")["results"]] == [False]


def test_learned_synonyms_in_the_home_are_searched(tmp_path):
    """`search fit-synonyms` writes <home>/artifacts/search-synonyms; the API's keyword index searches them."""
    from shelfwise.search import LearnedSynonyms

    settings = make_settings(tmp_path)
    store = Store.open(settings)
    fill_search_shop(store)
    synonyms = LearnedSynonyms()
    synonyms.table = {"skillet": [("pan", 1.0)]}  # the shop's shoppers say "skillet", its titles "pan"
    synonyms.save(settings.artifacts / "search-synonyms")
    with TestClient(create_app(settings, store, search_semantic=False)) as client:
        client.headers.update(key(store, "read"))
        assert client.get("/readyz").json()["search"]["synonyms"].startswith("learned")
        found = search(client, q="skillet", mode="keyword", per_page=30)["results"]
        assert len(found) == 10 and {r["category"] for r in found} == {"Kitchen > Pans"}
    store.close()


def test_documented_in_openapi_and_readiness(shop):
    client, _, _ = shop
    spec = client.get("/openapi.json").json()
    for path, method in (("/search", "get"), ("/autocomplete", "get"), ("/search/image", "post"), ("/search/voice", "post")):
        assert method in spec["paths"][path], path
    assert "multipart/form-data" in spec["paths"]["/search/image"]["post"]["requestBody"]["content"]
    assert set(spec["components"]["schemas"]["SearchResults"]["properties"]) == TOP_LEVEL
    assert client.get("/readyz").json()["search"] == {"items": 30, "keyword": "ready", "semantic": "off", "photos": "no model", "fusion": "weighted",
                                                         "synonyms": "none"}


@pytest.mark.slow
@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (Debian/Ubuntu: apt-get install -y espeak-ng)")
def test_voice_search_returns_the_transcript_and_results(shop, tmp_path):
    client, _, _ = shop
    clip = tmp_path / "hose.wav"
    subprocess.run([ESPEAK, "-v", "en-us", "-s", "140", "-w", str(clip), "garden hose"], check=True, capture_output=True)
    response = client.post("/search/voice", files={"file": ("hose.wav", clip.read_bytes(), "audio/wav")}, params={"per_page": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == TOP_LEVEL | {"transcript"}
    assert "hose" in body["transcript"].lower() and "hose" in body["query"]
    assert len(body["results"]) == 3 and all(r["category"] == "Garden" for r in body["results"])


@pytest.mark.slow
def test_semantic_index_builds_in_the_background_and_is_cached(tmp_path):
    settings = make_settings(tmp_path)
    store = Store.open(settings)
    fill_search_shop(store)
    app = create_app(settings, store, search_semantic=True)
    with TestClient(app) as client:  # the lifespan starts the background build
        client.headers.update(key(store, "read"))
        wait_until_ready(client)
        hybrid = search(client, q="steel pan", per_page=5)
        assert hybrid["mode"] == "hybrid" and hybrid["results"][0]["category"] == "Kitchen > Pans"
        assert "semantic" in hybrid["results"][0]["explanation"]["retrievers"]
        # Meaning without shared words: no title says "cookware", the vectors still find pans.
        semantic = search(client, q="cookware for eggs", mode="semantic", per_page=3)
        assert semantic["mode"] == "semantic" and semantic["results"][0]["category"].startswith("Kitchen")
        filtered = search(client, q="steel pan", mode="hybrid", category="Garden")
        assert {r["category"] for r in filtered["results"]} <= {"Garden"}
    assert list((settings.home / "search" / "indexes").glob("*/vectors/complete.json"))
    # The next start loads the cached vectors instead of encoding the catalogue again.
    again = create_app(settings, store, search_semantic=True)
    started = time.perf_counter()
    with TestClient(again) as client:
        wait_until_ready(client)
    assert time.perf_counter() - started < 30
    store.close()


def wait_until_ready(client) -> dict:
    deadline = time.time() + 300
    while (state := client.get("/readyz").json()["search"])["semantic"] != "ready":
        assert not state["semantic"].startswith("failed") and time.time() < deadline, state
        time.sleep(0.05)
    return state


@pytest.mark.slow
def test_a_learned_fusion_in_the_home_reorders_hybrid_search(tmp_path, monkeypatch):
    """`search fit-fusion` writes <home>/artifacts/search-fusion; the API loads it with the semantic
    index and reorders the hybrid top by it. Here a fusion that prefers long item texts, which
    puts the knife sets (the longest titles) above the pans for "steel pan"."""
    from shelfwise.search.learned_fusion import FEATURES, LearnedFusion

    monkeypatch.setenv("SHELFWISE_TEXT_ENCODER", "torch")  # no ONNX export for this home: the fusion is under test
    settings = make_settings(tmp_path)
    store = Store.open(settings)
    fill_search_shop(store)
    fusion = LearnedFusion()
    fusion.weights = np.eye(len(FEATURES), dtype=np.float32)[FEATURES.index("text_length")]
    fusion.save(settings.artifacts / "search-fusion")
    with TestClient(create_app(settings, store, search_semantic=True)) as client:
        client.headers.update(key(store, "read"))
        assert wait_until_ready(client)["fusion"].startswith("learned")
        assert [r["category"] for r in search(client, q="steel pan", per_page=10)["results"]] == ["Kitchen > Knives"] * 10
        assert search(client, q="steel pan", mode="keyword")["results"][0]["category"] == "Kitchen > Pans"  # keyword mode: unchanged
        # An item added while serving is read by the fusion at once (here: the longest text of all).
        long = {"item_id": "I98", "title": "Ferro Steel Frying Pan with Glass Lid and Long Stay Cool Handle", "category": "Kitchen > Pans",
                "brand": "Ferro", "price": 30.0, "in_stock": True}
        assert client.post("/admin/ingest", json={"items": [long]}, headers=key(store, "admin")).status_code == 200
        assert search(client, q="steel pan")["results"][0]["id"] == "I98"
    # A broken fusion file is reported and left out: hybrid search fuses by weights, as without one.
    latest = settings.artifacts / "search-fusion" / (settings.artifacts / "search-fusion" / "latest").read_text().strip()
    (latest / "model.safetensors").write_bytes(b"not tensors")
    with TestClient(create_app(settings, store, search_semantic=True)) as client:
        client.headers.update(key(store, "read"))
        assert wait_until_ready(client)["fusion"].startswith("failed")
        assert search(client, q="steel pan")["results"][0]["category"] == "Kitchen > Pans"
    store.close()


@pytest.mark.slow
def test_photo_search_with_a_trained_model(tmp_path):
    from shelfwise.multimodal.model import MultimodalModel
    from tests.test_multimodal import _aligner

    settings = make_settings(tmp_path)
    store = Store.open(settings)
    fill_search_shop(store)
    MultimodalModel(_aligner(epochs=1)).save(settings.artifacts / "multimodal" / "model")  # where `bench multimodal --out` puts it
    with TestClient(create_app(settings, store, search_semantic=False)) as client:
        client.headers.update(key(store, "read"))
        deadline = time.time() + 300
        while (state := client.get("/readyz").json()["search"]["photos"]) != "ready":
            assert not state.startswith("failed") and time.time() < deadline, state
            if state != "ready":  # while the photo index builds: 503, asking to retry
                assert client.post("/search/image", content=_png(), headers={"content-type": "image/png"}).status_code in (200, 503)
            time.sleep(0.2)
        response = client.post("/search/image", files={"file": ("red.png", _png(), "image/png")},
                               params={"per_page": 5, "category": "Kitchen"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == TOP_LEVEL and body["mode"] == "image" and body["query"] == "red.png"
        assert len(body["results"]) == 5 and body["total"] == 20  # the Kitchen items, every one indexed by its title
        assert all(r["category"].startswith("Kitchen") and r["explanation"]["retrievers"] == ["photo"] for r in body["results"])
        assert client.post("/search/image", content=b"GIF89a broken", headers={"content-type": "image/gif"}).status_code == 400
    store.close()
