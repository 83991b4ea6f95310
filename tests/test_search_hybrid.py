"""Rank fusion and the hybrid searcher."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.search import Filters, Hit, HybridSearch, KeywordIndex, SemanticSearch, VectorIndex
from shelfwise.search.hybrid import reciprocal_rank_fusion, weighted_score_fusion


def hits(*pairs):
    return [Hit(i, s) for i, s in pairs]


def test_rrf_rewards_agreement_and_weights():
    a = hits(("x", 9.0), ("y", 5.0))
    b = hits(("y", 0.9), ("z", 0.8))
    fused = reciprocal_rank_fusion([a, b], [1.0, 1.0], k=60)
    assert [h.item_id for h in fused] == ["y", "x", "z"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert [h.item_id for h in reciprocal_rank_fusion([a, b], [0.0, 1.0])][0] == "y"
    assert [h.item_id for h in reciprocal_rank_fusion([a, b], [1.0, 0.0])][0] == "x"


def test_weighted_fusion_minmax():
    a = hits(("x", 10.0), ("y", 0.0))
    b = hits(("y", 0.5), ("z", 0.4))
    fused = {h.item_id: h.score for h in weighted_score_fusion([a, b], [0.5, 1.0])}
    assert fused == pytest.approx({"x": 0.5, "y": 1.0, "z": 0.0})
    assert weighted_score_fusion([hits(("x", 3.0)), []], [1.0, 1.0])[0].score == 1.0


class KeyedEncoder:
    """Stands in for MiniLM where the test is about fusion, not embeddings: text -> fixed vector."""

    dim = 4
    table = {"drill": [1, 0, 0, 0], "hose": [0, 1, 0, 0], "fan": [0, 0, 1, 0]}

    def encode(self, texts, batch_size=64, progress=False):
        out = np.array([self.table.get(t.split()[-1].lower(), [0, 0, 0, 1]) for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture()
def hybrid():
    items = pd.DataFrame(
        {
            "item_id": ["p1", "p2", "p3"],
            "title": ["Power drill", "Garden hose", "Ceiling fan"],
            "brand": ["DeWalt", "Flexzilla", "Hunter"],
            "in_stock": [True, True, False],
        }
    )
    keyword = KeywordIndex().fit(items)
    semantic = SemanticSearch(KeyedEncoder(), VectorIndex(dim=4)).fit(items)
    return HybridSearch(keyword, semantic, fusion="rrf", candidates=3)


def test_hybrid_combines_both(hybrid):
    assert hybrid.search("garden hose").item_ids[0] == "p2"
    # "hunter fan": keyword finds p3 by brand, semantic by vector: both agree
    assert hybrid.search("hunter fan", top=1).item_ids == ["p3"]
    assert [p.item_ids[0] for p in hybrid.search_many(["power drill", "garden hose"], top=2)] == ["p1", "p2"]


def test_hybrid_filters_apply_to_semantic_hits(hybrid):
    assert "p3" not in hybrid.search("ceiling fan", filters=Filters(in_stock=True)).item_ids


def test_hybrid_weighted_and_unknown_fusion(hybrid):
    hybrid.fusion = "weighted"
    assert hybrid.search("power drill").item_ids[0] == "p1"
    with pytest.raises(ValueError, match="fusion"):
        HybridSearch(hybrid.keyword, hybrid.semantic, fusion="max")
