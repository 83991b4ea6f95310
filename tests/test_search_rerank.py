"""Cross-encoder reranker: scoring, reordering only the top N, training a few steps, save/load, and its
ONNX export (fp32 and int8) served through ONNX Runtime (`search export-onnx`, `search run --reranker <export>`)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

import torch
from click.testing import CliRunner

from shelfwise.search import Hit

from shelfwise.commands.search import search
from shelfwise.config import Settings
from shelfwise.encoders.onnx import EXPORT_CONFIG, FP32_FILE, INT8_FILE, is_onnx_export
from shelfwise.search.rerank import OnnxReranker, Reranker, RerankerBase, load_reranker
from shelfwise.tuning.cross_encoder import CrossEncoderConfig, CrossEncoderTuner, QueryList, build_lists, listwise_loss

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


def test_lists_hold_judged_gains_and_unjudged_retrieved_items():
    texts = dict(zip(ITEMS["item_id"], ITEMS["title"]))
    retrieved = {"drill": ["2", "1", "3", "4"], "hose": ["3", "1"]}
    lists = {x.query: x for x in build_lists(JUDGMENTS, retrieved, texts, negatives_per_query=1)}
    # "drill": item 3 was judged irrelevant (gain 0): neither a positive nor an unjudged negative.
    assert lists["drill"].judged == [("Cordless Drill", 2.0)] and lists["drill"].unjudged == ["Hammer Drill"]
    assert lists["hose"].unjudged == ["Cordless Drill"]
    texts_, gains = QueryList("q", [("a", 2.0), ("b", 1.0), ("c", 1.5)], ["x", "y", "z"]).sample(4, np.random.default_rng(0))
    assert len(texts_) == 4 and sum(g > 0 for g in gains) == 2 and set(texts_[2:]) <= {"x", "y", "z"}


def test_listwise_loss_prefers_the_graded_order():
    gains = torch.tensor([2.0, 1.0, 0.0])
    assert listwise_loss(torch.tensor([3.0, 1.0, -1.0]), gains) < listwise_loss(torch.tensor([-1.0, 1.0, 3.0]), gains)
    # At the optimum the softmax equals the normalised gains (an unjudged item's logit goes to -inf).
    assert listwise_loss(torch.log(torch.tensor([2 / 3, 1 / 3, 1e-9])), gains) < listwise_loss(torch.tensor([1.0, 0.0, -5.0]), gains)


def test_config_refuses_lists_larger_than_the_batch():
    with pytest.raises(ValueError, match="batch_size >= list_size"):
        CrossEncoderConfig(batch_size=8, list_size=16)


def test_train_save_load(tmp_path):
    config = CrossEncoderConfig(method="lora", batch_size=4, list_size=2, max_steps=2, eval_every=1, max_length=16, rerank_depth=4)
    tuner = CrossEncoderTuner(config, reranker=Reranker(max_length=16)).fit(ITEMS, JUDGMENTS, JUDGMENTS)
    assert tuner.metrics["steps"] == 2 and tuner.metrics["valid_ndcg@10"] >= tuner.metrics["valid_ndcg@10_before_training"]
    expected = tuner.reranker.score("drill", ["Cordless Drill", "Garden Hose"])
    tuner.save(tmp_path / "rr")
    loaded = Reranker.from_artifact(tmp_path / "rr")
    assert np.allclose(loaded.score("drill", ["Cordless Drill", "Garden Hose"]), expected, atol=1e-5)
    with pytest.raises(ValueError):
        CrossEncoderConfig(method="nope")


# Home Depot-like (query, title) pairs for the ONNX checks.
TITLES = [
    "Milwaukee M18 18-Volt Lithium-Ion Cordless 1/2 in. Hammer Drill/Driver Kit", "DEWALT 20-Volt MAX Cordless Drill/Driver Kit",
    "Ryobi ONE+ 18-Volt Cordless Drill", "Hunter Builder 52 in. White Ceiling Fan with Light", "Garden hose 50 ft heavy duty",
    "Melnor Hose Nozzle 8-Pattern", "Estwing 16 oz. Claw Hammer", "3/4 in. Copper Pressure 90-Degree Elbow Fitting",
    "Behr Premium Plus 1 gal. Flat Interior Paint", "Rust-Oleum 12 oz. Gloss Black Spray Paint",
]
PAIRS = [(q, t) for q in ("cordless drill", "ceiling fan light") for t in TITLES]  # 20 pairs


@pytest.fixture(scope="module")
def ce_artifact(tmp_path_factory):
    """A cross-encoder artifact as `search finetune --target cross-encoder` saves one (untrained
    head, seeded), and the torch reranker loaded from it, at one torch thread (the cores are shared)."""
    import torch

    from shelfwise import artifacts
    from shelfwise.encoders.text import BASE_MODEL_NAME

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("ce") / "reranker"
    artifacts.save(root, Reranker(max_length=32).model.state_dict(), {"kind": "cross-encoder", "base": BASE_MODEL_NAME, "max_length": 32})
    yield root, Reranker.from_artifact(root)
    torch.set_num_threads(before)


def _cli(args, home):
    return CliRunner().invoke(search, args, obj=Settings(home=home, quiet=True))


@pytest.fixture(scope="module")
def onnx_dir(ce_artifact, tmp_path_factory):
    """`search export-onnx --model CE_DIR --int8`, once for the module (~15 s): the command sees a cross-encoder."""
    out = tmp_path_factory.mktemp("ce-onnx") / "export"
    result = _cli(["export-onnx", "--model", str(ce_artifact[0]), "--out", str(out), "--int8"], out.parent / "home")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["files"].keys() == {FP32_FILE, INT8_FILE}
    return out


def test_export_folder_is_a_cross_encoder_export(onnx_dir, ce_artifact):
    from shelfwise.encoders import load_text_encoder

    assert is_onnx_export(onnx_dir) and (onnx_dir / "tokenizer.json").is_file()
    config = json.loads((onnx_dir / EXPORT_CONFIG).read_text())
    assert config["kind"] == "onnx-cross-encoder" and config["max_length"] == 32
    assert config["inputs"] == ["input_ids", "attention_mask", "token_type_ids"] and config["output"] == "logits"
    assert config["source"] == str(ce_artifact[0].resolve())
    assert (onnx_dir / INT8_FILE).stat().st_size < 0.35 * (onnx_dir / FP32_FILE).stat().st_size
    with pytest.raises(ValueError, match="kind is 'onnx-cross-encoder', expected 'onnx-text-encoder'"):
        load_text_encoder(onnx_dir)  # a reranker export is no text encoder


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ranks = lambda x: np.argsort(np.argsort(x))  # noqa: E731 (no ties in float logits)
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def test_fp32_logits_equal_torch_and_int8_rank_alike(onnx_dir, ce_artifact):
    torch_reranker = ce_artifact[1]
    queries, texts = [q for q, _ in PAIRS], [t for _, t in PAIRS]
    reference = torch_reranker._score_batch(queries, texts)
    fp32 = OnnxReranker(onnx_dir, int8=False, threads=1)
    int8 = OnnxReranker(onnx_dir, threads=1)
    assert int8.int8 and not fp32.int8  # an export with int8 serves it by default, as the text encoder
    assert fp32.max_length == 32 and fp32.top_n == 20
    logits = fp32._score_batch(queries, texts)
    assert logits.shape == (20,) and logits.dtype == np.float32
    assert np.allclose(logits, reference, atol=1e-4)
    assert _spearman(int8._score_batch(queries, texts), reference) > 0.9
    # Dynamic batch and sequence axes: one pair at a time, a long title (cut to max_length) and none.
    one_query = fp32.score("cordless drill", TITLES + ["drill " * 200])
    assert np.allclose(one_query, torch_reranker.score("cordless drill", TITLES + ["drill " * 200]), atol=1e-4)
    fp32.batch_size = 1
    assert np.allclose(fp32.score("cordless drill", TITLES), one_query[:-1], atol=1e-5)
    assert fp32.score("drill", []).shape == (0,)


def test_onnx_rerank_orders_like_torch(onnx_dir, ce_artifact):
    torch_reranker = ce_artifact[1]
    texts = {str(i): title for i, title in enumerate(TITLES)}
    hits = [Hit(str(i), 10.0 - i) for i in range(len(TITLES))]
    loaded = load_reranker(onnx_dir, top_n=6, threads=1)
    assert isinstance(loaded, OnnxReranker) and loaded.top_n == 6 and loaded.int8
    onnx = OnnxReranker(onnx_dir, top_n=6, int8=False, threads=1)
    torch_reranker.top_n = 6
    try:
        for query in ("cordless drill", "ceiling fan light", "hose"):
            expected, got = torch_reranker.rerank(query, hits, texts), onnx.rerank(query, hits, texts)
            assert [h.item_id for h in got] == [h.item_id for h in expected]
            assert np.allclose([h.score for h in got], [h.score for h in expected], atol=1e-4)
            assert [h.item_id for h in got[6:]] == [h.item_id for h in hits[6:]]  # only the top 6 move
    finally:
        torch_reranker.top_n = 20
    assert isinstance(load_reranker(ce_artifact[0], top_n=3), Reranker)


def test_cli_hybrid_rerank_serves_the_onnx_export(onnx_dir, tmp_path):
    (tmp_path / "products.csv").write_text(
        "product_id,title\n1,Cordless Drill Kit\n2,Hammer Drill\n3,Claw Hammer\n4,Garden Hose 50 ft\n5,Hose Nozzle\n6,Ceiling Fan\n"
    )
    (tmp_path / "queries.txt").write_text("drill\ngarden hose\n")
    run = tmp_path / "run.tsv"
    result = _cli(["run", "--products", str(tmp_path / "products.csv"), "--queries", str(tmp_path / "queries.txt"), "--mode", "hybrid-rerank",
                   "--reranker", str(onnx_dir), "--rerank-top", "3", "--top", "4", "--out", str(run)], tmp_path / "home")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(run.open(), delimiter="\t"))[1:]
    assert len(rows) == 2 * 4
    for query in ("drill", "garden hose"):
        scores = [float(r[3]) for r in rows if r[0] == query]
        assert scores == sorted(scores, reverse=True)


def test_a_folder_that_is_no_reranker_gives_a_clear_error(tmp_path, onnx_dir):
    with pytest.raises(FileNotFoundError) as error:
        load_reranker(tmp_path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path}: not a reranker") and "config.json" in message and FP32_FILE in message
    (tmp_path / "products.csv").write_text("product_id,title\n1,Drill\n")
    (tmp_path / "queries.txt").write_text("drill\n")
    result = _cli(["run", "--products", str(tmp_path / "products.csv"), "--queries", str(tmp_path / "queries.txt"), "--mode", "hybrid-rerank",
                   "--reranker", str(tmp_path), "--out", str(tmp_path / "run.tsv")], tmp_path / "home")
    assert result.exit_code != 0 and "not a reranker" in result.output and "Traceback" not in result.output
    # An ONNX export of another kind, and an int8 model the folder does not have.
    text_export = tmp_path / "text-export"
    text_export.mkdir()
    (text_export / FP32_FILE).write_bytes(b"")
    (text_export / EXPORT_CONFIG).write_text(json.dumps({"kind": "onnx-text-encoder"}))
    with pytest.raises(ValueError, match="kind is 'onnx-text-encoder', expected 'onnx-cross-encoder'"):
        load_reranker(text_export)
    (text_export / EXPORT_CONFIG).unlink()
    with pytest.raises(FileNotFoundError, match="not an ONNX cross-encoder .*export-onnx --model CROSS_ENCODER_DIR"):
        OnnxReranker(text_export)
    (text_export / EXPORT_CONFIG).write_bytes((onnx_dir / EXPORT_CONFIG).read_bytes())  # a cross-encoder export without int8
    with pytest.raises(FileNotFoundError, match="no model.int8.onnx; export with --int8"):
        OnnxReranker(text_export, int8=True)


def test_first_stage_weight_mixes_standardised_scores():
    class Fixed(RerankerBase):
        top_n, batch_size = 3, 8

        def _score_batch(self, queries, texts):
            return np.array([{"a": 0.0, "b": 1.0, "c": 2.0}[t] for t in texts], dtype=np.float32)

    hits = [Hit("1", 10.0), Hit("2", 5.0), Hit("3", 4.0), Hit("4", 1.0)]
    texts = {"1": "a", "2": "b", "3": "c", "4": "c"}
    reranker = Fixed()
    assert [h.item_id for h in reranker.rerank("q", hits, texts)] == ["3", "2", "1", "4"]  # the cross-encoder alone
    reranker.first_stage_weight = 3.0  # the first stage's 10 / 5 / 4 now outweighs the cross-encoder
    assert [h.item_id for h in reranker.rerank("q", hits, texts)] == ["1", "3", "2", "4"]
    # Precomputed scores are used as given (nothing re-scored).
    assert [h.item_id for h in reranker.rerank("q", hits, texts, scores=np.array([5.0, 0.0, 0.0]))][0] == "1"
