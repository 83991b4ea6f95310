"""Vector index (exact and HNSW, add/remove/save) and semantic search with the real MiniLM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.search import SemanticSearch, VectorIndex, item_texts


def unit(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("exact_below", [1000, 10])
def test_search_finds_itself(exact_below):
    vectors = unit(50)
    index = VectorIndex(dim=8, exact_below=exact_below).fit([f"i{k}" for k in range(50)], vectors)
    assert index.kind == ("exact" if exact_below > 50 else "hnsw")
    results = index.search(vectors[:5], top=3)
    assert [r[0][0] for r in results] == [f"i{k}" for k in range(5)]
    assert results[0][0][1] == pytest.approx(1.0, abs=1e-5)
    assert all(len(r) == 3 for r in results)


@pytest.mark.parametrize("exact_below", [1000, 10])
def test_stored_vectors_are_given_back(exact_below):
    vectors = unit(30)
    index = VectorIndex(dim=8, exact_below=exact_below).fit([f"i{k}" for k in range(30)], vectors)
    assert index.vectors(["i7", "i2"]) == pytest.approx(vectors[[7, 2]], abs=1e-6)
    assert not index.vectors(["i1", "new"])[1].any()  # not indexed (yet): zeros


def test_hybrid_encodes_each_query_once_and_the_learned_fusion_reads_that_vector():
    """The learned fusion's cosine features use the vector the semantic side searched with, not a second encoding."""
    from shelfwise.search.hybrid import HybridSearch
    from shelfwise.search.keyword import KeywordIndex
    from shelfwise.search.learned_fusion import LearnedFusion

    class CountingEncoder:
        dim, calls = 8, []

        def encode(self, texts, batch_size=64, progress=False):
            self.calls.append(list(texts))
            return unit(len(texts), seed=len(self.calls))

    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["cordless drill", "garden hose"]})
    encoder = CountingEncoder()
    semantic = SemanticSearch(encoder, VectorIndex(dim=8)).fit(items, unit(2))
    learned = LearnedFusion(depth=2)
    learned.weights = np.ones(learned.mean.shape, np.float32)
    hybrid = HybridSearch(KeywordIndex().fit(items), semantic, candidates=2, learned=learned,
                          texts=dict(zip(items["item_id"], items["title"])))
    hybrid.search("hose", top=2)
    hybrid.search_many(["drill", "hose"], top=2)
    assert encoder.calls == [["hose"], ["drill", "hose"]]
    found = hybrid.retrieve_many(["drill"], 2)[0]
    assert found.vector == pytest.approx(unit(1, seed=3)[0])  # the third call's vector, as searched


@pytest.mark.parametrize("exact_below", [1000, 10])
def test_add_replace_remove(exact_below):
    vectors = unit(30)
    index = VectorIndex(dim=8, exact_below=exact_below, rebuild_fraction=0.5).fit([str(k) for k in range(30)], vectors)
    index.remove(["0", "1", "nope"])
    assert len(index) == 28
    hits = index.search(vectors[:2], top=30)
    assert all(item not in {"0", "1"} for row in hits for item, _ in row)
    assert len(hits[0]) == 28
    index.add(["2"], vectors[5:6])  # replace: item 2 now points where item 5 does
    assert {index.search(vectors[5:6], top=2)[0][i][0] for i in range(2)} == {"2", "5"}
    index.remove([str(k) for k in range(3, 20)])  # past rebuild_fraction: HNSW rebuilds without tombstones
    assert len(index) == 11 and index.kind == ("exact" if exact_below > 11 else "hnsw")
    assert len(index.search(vectors[:1], top=50)[0]) == 11


def test_switches_to_hnsw_when_growing():
    index = VectorIndex(dim=8, exact_below=20).fit([str(k) for k in range(10)], unit(10))
    assert index.kind == "exact"
    index.add([str(k) for k in range(10, 25)], unit(15, seed=1))
    assert index.kind == "hnsw" and len(index) == 25
    assert len(index.search(unit(1, seed=2), top=25)[0]) == 25


def test_save_load(tmp_path):
    vectors = unit(30)
    index = VectorIndex(dim=8, exact_below=10).fit([str(k) for k in range(30)], vectors)
    index.remove(["3"])
    index.save(tmp_path / "vec")
    loaded = VectorIndex.load(tmp_path / "vec")
    assert loaded.kind == "hnsw" and len(loaded) == 29
    assert loaded.search(vectors[:3], top=3) == index.search(vectors[:3], top=3)


def test_rejects_bad_input():
    index = VectorIndex(dim=8)
    with pytest.raises(ValueError, match="shape"):
        index.fit(["a"], np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="duplicate"):
        index.fit(["a", "a"], unit(2))
    assert index.search(unit(1), top=3) == [[]]


def test_item_texts_uses_available_fields():
    items = pd.DataFrame({"item_id": [1, 2], "title": ["Drill", "Hose"], "brand": ["DeWalt", None]})
    assert item_texts(items) == ["Drill . DeWalt", "Hose"]


def test_semantic_search_with_minilm():
    from shelfwise.encoders import TextEncoder

    items = pd.DataFrame(
        {"item_id": ["p1", "p2", "p3"], "title": ["Cordless Power Drill", "Garden Hose 50 ft", "Ceiling Fan with Light"]}
    )
    search = SemanticSearch(TextEncoder()).fit(items)
    assert search.search("tool to make holes in wood", top=1).item_ids == ["p1"]
    assert [p.item_ids[0] for p in search.search_many(["watering the lawn", "fan for bedroom"], top=2)] == ["p2", "p3"]
    search.remove(["p1"])
    search.add(pd.DataFrame({"item_id": ["p4"], "title": ["Hammer Drill"]}))
    assert search.search("drill", top=1).item_ids == ["p4"]


def test_single_threaded_restores_thread_counts():
    import faiss
    import torch

    from shelfwise.search.semantic import single_threaded

    before = (torch.get_num_threads(), faiss.omp_get_max_threads())
    with single_threaded():
        assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1
    assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == before
