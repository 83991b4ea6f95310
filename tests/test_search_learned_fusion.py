"""The learned fusion: features, fitting, saving, and reordering the hybrid top."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.search import Hit, HybridSearch, KeywordIndex, LearnedFusion, SemanticSearch, VectorIndex, fit_learned_fusion
from shelfwise.search.learned_fusion import FEATURES, candidate_features
from tests.test_search_hybrid import KeyedEncoder


def column(name):
    return FEATURES.index(name)


def test_features_describe_each_candidate():
    keyword = [Hit("a", 8.0), Hit("b", 4.0)]
    semantic = [Hit("b", 0.9), Hit("c", 0.5)]
    tokens = {"a": ["deck", "board", "screw"], "b": ["board", "deck"], "c": ["fan"]}
    query = np.array([1.0, 0.0, 0.0], np.float32)
    vectors = np.array([[0.6, 0.8, 0.0], [0.9, 0.0, np.sqrt(0.19)], [0.5, 0.0, np.sqrt(0.75)]], np.float32)
    x = candidate_features(["deck", "board"], keyword, semantic, ["a", "b", "c"], tokens.get, query, vectors)
    assert x.shape == (3, len(FEATURES))
    assert x[:, column("keyword_score")] == pytest.approx([1.0, 0.5, 0.0])
    assert x[:, column("in_keyword")].tolist() == [1, 1, 0] and x[:, column("in_semantic")].tolist() == [0, 1, 1]
    # The cosine is read from the vectors, also for "a", which semantic search did not return.
    assert x[:, column("semantic_score")] == pytest.approx([0.6, 0.9, 0.5], abs=1e-6)
    assert x[:, column("semantic_gap")] == pytest.approx([-0.3, 0.0, -0.4], abs=1e-6)
    centroid = vectors.mean(0) / np.linalg.norm(vectors.mean(0))  # the first three candidates
    assert x[:, column("feedback_cosine")] == pytest.approx(vectors @ centroid, abs=1e-6)
    assert x[:, column("word_coverage")].tolist() == [1.0, 1.0, 0.0]
    assert x[:, column("pair_coverage")].tolist() == [1.0, 0.0, 0.0]  # only "a" has "deck board" side by side


def synthetic_lists(n_queries=60, n=20, seed=0):
    """Relevance follows word coverage; the keyword score is noise."""
    rng = np.random.default_rng(seed)
    lists = []
    for _ in range(n_queries):
        x = rng.random((n, len(FEATURES))).astype(np.float32)
        gains = (x[:, column("word_coverage")] > 0.8).astype(np.float32) * 2
        lists.append((x, gains))
    return lists


def test_fit_learns_what_predicts_relevance_and_survives_a_save(tmp_path):
    lists = synthetic_lists()
    fusion = LearnedFusion(epochs=20).fit(lists)
    weights = dict(zip(FEATURES, fusion.weights))
    assert weights["word_coverage"] > 5 * abs(weights["keyword_score"])
    x, gains = synthetic_lists(1, seed=1)[0]
    fused = [Hit(f"i{j}", 0.0) for j in range(len(x))]
    reordered = fusion.rerank(fused, x)
    best = {f"i{j}" for j in np.flatnonzero(gains)}
    assert {h.item_id for h in reordered[: len(best)]} == best
    loaded = LearnedFusion.load(fusion.save(tmp_path / "fusion"))
    assert loaded.score(x) == pytest.approx(fusion.score(x), abs=1e-5)
    assert LearnedFusion.load(tmp_path / "fusion").depth == fusion.depth  # the root's latest version


def test_only_the_top_depth_is_reordered():
    fusion = LearnedFusion(depth=2)
    fusion.weights = np.eye(len(FEATURES), dtype=np.float32)[column("word_coverage")]
    x = np.zeros((3, len(FEATURES)), np.float32)
    x[:, column("word_coverage")] = [0.0, 1.0, 2.0]
    fused = [Hit("a", 3.0), Hit("b", 2.0), Hit("c", 1.0)]
    assert [h.item_id for h in fusion.rerank(fused, x)] == ["b", "a", "c"]


def test_bad_inputs_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="no query has a relevant item"):
        LearnedFusion().fit([(np.zeros((3, len(FEATURES)), np.float32), np.zeros(3, np.float32))])
    with pytest.raises(FileNotFoundError, match="no artifact"):
        LearnedFusion.load(tmp_path)


ITEMS = pd.DataFrame({
    "item_id": ["p1", "p2", "p3", "p4"],
    "title": ["Garden hose reel", "Hose garden", "Power drill", "Ceiling fan"],
})


def test_hybrid_search_reorders_its_top_with_a_learned_fusion():
    keyword = KeywordIndex(phrase_weight=0).fit(ITEMS)
    semantic = SemanticSearch(KeyedEncoder(), VectorIndex(dim=4)).fit(ITEMS)
    texts = dict(zip(ITEMS["item_id"], ITEMS["title"]))
    judgments = pd.DataFrame({"query": ["garden hose"] * 2, "item_id": ["p1", "p2"], "relevance": [3.0, 1.0]})
    with pytest.raises(ValueError, match="item texts"):
        fit_learned_fusion(HybridSearch(keyword, semantic), judgments)
    plain = HybridSearch(keyword, semantic, candidates=4, texts=texts)
    learned = fit_learned_fusion(plain, judgments, LearnedFusion(epochs=50))
    assert learned.report["queries"] == 1
    assert learned.mean[column("word_coverage")] > 0  # the items' words were read while fitting
    # A fusion that trusts the word pair "garden hose" side by side above all else.
    learned.weights = np.eye(len(FEATURES), dtype=np.float32)[column("pair_coverage")]
    learned.mean[:], learned.std[:] = 0.0, 1.0
    with pytest.raises(ValueError, match="texts"):
        HybridSearch(keyword, semantic, learned=learned)
    hybrid = HybridSearch(keyword, semantic, candidates=4, learned=learned, texts=texts)
    assert plain.search("garden hose", top=1).item_ids == ["p2"]  # the shorter title wins BM25
    assert hybrid.search("garden hose", top=1).item_ids == ["p1"]
    assert [p.item_ids[0] for p in hybrid.search_many(["garden hose"], top=2)] == ["p1"]
    found, plain_found = hybrid.retrieve_many(["garden hose"], 4)[0], plain.retrieve_many(["garden hose"], 4)[0]
    assert hybrid.fuse(found.keyword, found.semantic) == plain.fuse(plain_found.keyword, plain_found.semantic)
