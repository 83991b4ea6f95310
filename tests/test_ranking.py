"""Ranking rules: eligibility (bought, out of stock), pins, boosts, diversity (MMR) and the
explanations, on arrays and through the recommender service and the API."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from fastapi.testclient import TestClient

from shelfwise.serving.ranking import CompiledRules, MerchandisingRules, explain, rank
from tests.serving_helpers import key, shop_app

# Six items: 1-3 in "A > x", 4 in "A > y", 5-6 in "B". Index 0 is padding.
CATS = np.array([None, "A > x", "A > x", "A > x", "A > y", "B", "B"], dtype=object)
CODES = np.array([-1, 0, 0, 0, 1, 2, 2])
TOPS = np.array([-1, 0, 0, 0, 0, 1, 1])
INDEX = {f"i{i}": i for i in range(1, 7)}


def rules(**kw) -> CompiledRules:
    return CompiledRules.build(MerchandisingRules(**kw), INDEX, CATS)


def test_only_eligible_items_in_score_order_without_diversity():
    scores = np.array([-np.inf, 6, 5, 4, 3, 2, 1], dtype=np.float32)
    eligible = np.array([False, True, False, True, True, True, True])
    out = rank(scores, eligible, 3, rules(diversity=0.0), CODES, TOPS)
    assert out.items.tolist() == [1, 3, 4] and not out.pinned.any()
    assert out.scores[0] == 1.0 and np.all(np.diff(out.scores) < 0)


def test_diversity_spreads_categories():
    scores = np.array([-np.inf, 1.0, 0.99, 0.98, 0.5, 0.4, 0.3], dtype=np.float32)
    eligible = np.ones(7, bool)
    assert rank(scores, eligible, 3, rules(diversity=0.0), CODES, TOPS).items.tolist() == [1, 2, 3]
    # With diversity, the second pick is from another category, not the near-tie of the first.
    assert rank(scores, eligible, 3, rules(diversity=0.6), CODES, TOPS).items.tolist() == [1, 5, 4]


def test_pins_come_first_and_boosts_lift():
    scores = np.array([-np.inf, 6, 5, 4, 3, 2, 1], dtype=np.float32)
    eligible = np.ones(7, bool)
    eligible[2] = False
    r = rules(pinned=["i6", "i2", "unknown"], item_boosts={"i5": 20.0}, diversity=0.0)
    out = rank(scores, eligible, 3, r, CODES, TOPS)
    # i2 is pinned but not eligible (bought / out of stock): pins never override that.
    assert out.items.tolist() == [6, 5, 1] and out.pinned.tolist() == [True, False, False]
    assert out.boosted.tolist() == [False, True, False]
    demoted = rank(scores, eligible, 2, rules(category_boosts={"A": 0.05}, diversity=0.0), CODES, TOPS)
    assert demoted.items.tolist() == [5, 6]  # the category boost covers A > x and A > y


def test_fewer_candidates_than_k_and_nothing_eligible():
    scores = np.arange(7, dtype=np.float32)
    assert rank(scores, np.zeros(7, bool), 5, rules(), CODES, TOPS).items.tolist() == []
    eligible = np.zeros(7, bool)
    eligible[[2, 5]] = True
    assert sorted(rank(scores, eligible, 5, rules(), CODES, TOPS).items.tolist()) == [2, 5]


def test_rules_are_validated():
    with pytest.raises(ValueError, match="boost must lie in 0..100"):
        MerchandisingRules(item_boosts={"x": -1})
    with pytest.raises(ValueError):
        MerchandisingRules(diversity=2)
    with pytest.raises(ValueError):
        MerchandisingRules(colour="red")


def test_explain_names_the_history_items_next_to_each_pick():
    n = 7
    pairs = [(1, 5, 3.0), (2, 5, 1.0), (3, 6, 2.0)]
    rows = [a for a, b, _ in pairs] + [b for a, b, _ in pairs]
    cols = [b for a, b, _ in pairs] + [a for a, b, _ in pairs]
    vals = [v for *_, v in pairs] * 2
    cooc = sp.csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float32)
    reasons = explain(cooc, history=np.array([1, 2, 3]), recommended=np.array([5, 6, 4]))
    assert reasons == [[1, 2], [3], []]
    assert explain(cooc, np.array([], dtype=np.int64), np.array([5])) == [[]]


@pytest.fixture
def app(tmp_path):
    app, store = shop_app(tmp_path, require_read_key=False)
    with TestClient(app) as client:
        client.headers.update(key(store, "admin"))
        yield client
    store.close()


def _ids(client, path: str, **params) -> list[str]:
    return [i["item_id"] for i in client.get(path, params=params).json()["items"]]


def test_bought_and_out_of_stock_items_are_left_out(app):
    # A new session viewed I09 and I19: next comes I29 (out of stock), never shown.
    app.post("/events", json={"events": [
        {"session_id": "fresh", "item_id": "I09", "type": "view", "ts": "2024-06-01T00:00:00Z"},
        {"session_id": "fresh", "item_id": "I19", "type": "view", "ts": "2024-06-01T00:00:01Z"},
    ]})
    assert "I29" not in _ids(app, "/sessions/fresh/recommendations", k=30)
    before = _ids(app, "/sessions/fresh/recommendations", k=30)
    assert "I19" in before
    app.post("/events", json={"events": [{"session_id": "fresh", "item_id": "I19", "type": "purchase",
                                          "ts": "2024-06-01T00:00:02Z"}]})
    assert "I19" not in _ids(app, "/sessions/fresh/recommendations", k=30)
    assert "I09" not in _ids(app, "/sessions/fresh/recommendations", k=30, exclude_history=True)


def test_shop_rules_through_the_api(app):
    assert app.get("/admin/rules").json()["pinned"] == []
    rules = {"pinned": ["I07"], "item_boosts": {"I25": 50.0}, "category_boosts": {}, "diversity": 0.0}
    assert app.put("/admin/rules", json=rules).status_code == 200
    items = app.get("/recommendations/u3", params={"k": 3}).json()["items"]
    assert items[0]["item_id"] == "I07" and items[0]["pinned"] and items[0]["reason"] == "pinned"
    assert any(i["item_id"] == "I25" and i["boosted"] for i in items)
    bad = app.put("/admin/rules", json={"pinned": [], "diversity": 5})
    assert bad.status_code == 422 and "diversity" in bad.json()["detail"]
    # Kept in the home, so a restarted server applies them too.
    assert app.get("/admin/rules").json()["pinned"] == ["I07"]


def test_stock_changes_apply_without_a_reload(app):
    assert "I12" in _ids(app, "/items/I02/similar")
    r = app.post("/admin/ingest", json={"items": [{"item_id": "I12", "title": "Product 12", "category": "Kitchen > Knives",
                                                   "in_stock": False}]})
    assert r.json()["items"] == 1
    assert "I12" not in _ids(app, "/items/I02/similar")
