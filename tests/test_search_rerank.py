"""Cross-encoder reranker: scoring, reordering only the top N, training a few steps, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.search import Hit
from shelfwise.search.rerank import Reranker
from shelfwise.tuning.cross_encoder import CrossEncoderConfig, CrossEncoderTuner

ITEMS = pd.DataFrame({"item_id": ["1", "2", "3", "4"], "title": ["Cordless Drill", "Hammer Drill", "Garden Hose", "Ceiling Fan"]})
JUDGMENTS = pd.DataFrame(
    {"query": ["drill", "drill", "hose", "fan", "hammer drill"], "item_id": ["1", "3", "3", "4", "2"], "relevance": [3.0, 1.0, 3.0, 3.0, 2.67]}
)


@pytest.fixture(scope="module")
def reranker():
    return Reranker(max_length=16, top_n=2)


def test_rerank_reorders_only_top_n(reranker):
    hits = [Hit("3", 3.0), Hit("1", 2.0), Hit("2", 1.0)]
    texts = dict(zip(ITEMS["item_id"], ITEMS["title"]))
    out = reranker.rerank("drill", hits, texts)
    assert {h.item_id for h in out[:2]} == {"1", "3"} and out[2].item_id == "2"
    assert [h.score for h in out] == sorted((h.score for h in out), reverse=True)
    assert reranker.score("drill", ["a", "b", "c"]).shape == (3,)
    assert reranker.rerank("drill", [], texts) == []


def test_train_save_load(tmp_path):
    config = CrossEncoderConfig(method="lora", batch_size=4, max_steps=2, eval_every=1, max_length=16, rerank_depth=4)
    tuner = CrossEncoderTuner(config, reranker=Reranker(max_length=16)).fit(ITEMS, JUDGMENTS, JUDGMENTS)
    assert tuner.metrics["steps"] == 2 and tuner.metrics["valid_ndcg@10"] >= tuner.metrics["valid_ndcg@10_before_training"]
    expected = tuner.reranker.score("drill", ["Cordless Drill", "Garden Hose"])
    tuner.save(tmp_path / "rr")
    loaded = Reranker.from_artifact(tmp_path / "rr")
    assert np.allclose(loaded.score("drill", ["Cordless Drill", "Garden Hose"]), expected, atol=1e-5)
    with pytest.raises(ValueError):
        CrossEncoderConfig(method="nope")
