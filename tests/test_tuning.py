"""Fine-tuning recipes on a tiny catalogue: 2 steps each, real MiniLM weights, real peft."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from shelfwise.encoders import TextEncoder
from shelfwise.tuning.adversarial import ADVERSARIES, get_adversary
from shelfwise.tuning.bi_encoder import BiEncoderConfig, BiEncoderTuner
from shelfwise.tuning.judgments import read_judgments, split_by_query
from shelfwise.tuning.methods import METHODS, get_method, method_config, method_from_config, trainable_parameters
from shelfwise.tuning.pairs import Example, batches, build_examples, merge_negatives, mine_hard_negatives
from shelfwise.tuning.steps import linear_warmup_decay, train_steps
from shelfwise.tuning.validation import ndcg_at_k

ITEMS = pd.DataFrame(
    {
        "item_id": ["1", "2", "3", "4", "5", "6"],
        "title": ["Cordless Drill Kit", "Hammer Drill", "Claw Hammer", "Garden Hose 50 ft", "Hose Nozzle", "Ceiling Fan"],
    }
)
JUDGMENTS = pd.DataFrame(
    {
        "query": ["drill", "drill", "hammer", "hammer", "hose", "hose", "fan", "garden hose", "nozzle"],
        "item_id": ["1", "3", "3", "1", "4", "6", "6", "4", "5"],
        "relevance": [3.0, 1.0, 3.0, 1.33, 2.67, 1.0, 3.0, 3.0, 2.5],
    }
)


def test_read_and_split_judgments(tmp_path):
    path = tmp_path / "j.csv"
    path.write_text("query,product_id,relevance\n Drill ,1,3\nhose,4,2.67\nfan,6,3\n")
    judgments = read_judgments(path)
    assert judgments["query"].tolist() == ["drill", "hose", "fan"] and judgments["item_id"].tolist() == ["1", "4", "6"]
    parts = split_by_query(JUDGMENTS, {"a": 0.5, "b": 0.5})
    assert len(parts["a"]) + len(parts["b"]) == len(JUDGMENTS)
    assert not set(parts["a"]["query"]) & set(parts["b"]["query"])
    assert split_by_query(JUDGMENTS, {"a": 0.5, "b": 0.5})["a"].equals(parts["a"])  # deterministic
    path.write_text("query,product_id,relevance\ndrill,1,high\n")
    with pytest.raises(ValueError, match="line 2"):
        read_judgments(path)


def test_hard_negatives_prefer_judged_low_then_retrieved():
    retrieve = lambda queries, depth: [["1", "2", "3", "4"] for _ in queries]  # noqa: E731
    negatives = mine_hard_negatives(JUDGMENTS, retrieve, per_query=3, skip_top=1)
    assert negatives["drill"] == ["3", "2", "4"]  # 3 judged low; 1 relevant; unjudged 2, 4 (after skip_top)
    assert "3" not in negatives["hammer"] and negatives["hammer"][0] == "1"
    examples = build_examples(JUDGMENTS, negatives)
    assert {(e.query, e.positive) for e in examples} == {("drill", "1"), ("hammer", "3"), ("hose", "4"), ("fan", "6"), ("garden hose", "4"), ("nozzle", "5")}
    assert merge_negatives({"q": ["a", "b"]}, {"q": ["b", "c", "d"]}) == {"q": ["a", "b", "c", "d"]}


def test_batches_never_repeat_a_query():
    examples = [Example("q1", str(i)) for i in range(5)] + [Example(f"q{i}", "x") for i in range(2, 9)]
    out = batches(examples, 4, np.random.default_rng(0))
    assert sum(map(len, out)) == len(examples)
    assert all(len({e.query for e in b}) == len(b) for b in out)


def test_ndcg():
    assert ndcg_at_k(["a", "b"], {"a": 2.0, "b": 1.0}) == pytest.approx(1.0)
    assert ndcg_at_k(["b", "a"], {"a": 2.0, "b": 1.0}) < 1.0
    assert ndcg_at_k(["x"], {}) == 0.0


def test_method_registry_roundtrip():
    lora = get_method("lora", r=4)
    assert method_from_config(method_config(lora)) == lora
    with pytest.raises(ValueError):
        get_method("qlora")


def test_warmup_then_linear_decay():
    factor = linear_warmup_decay(2, 6)
    assert [factor(s) for s in range(8)] == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert linear_warmup_decay(0, 4)(0) == 1.0


def test_step_loop_stops_after_patience_and_restores_the_best_weights():
    weight = torch.nn.Parameter(torch.zeros(2))
    scores = iter([0.5, 0.6, 0.9, 0.8, 0.7, 0.99])  # initial, then steps 1, 2, ...: best at step 2
    seen, after = [], []

    def validate():
        seen.append(weight.detach().clone())
        return next(scores)

    def backward(target):
        loss = ((weight - target) ** 2).sum()
        loss.backward()
        return loss.detach()

    passes = []
    run = train_steps(
        [{"params": [weight], "lr": 0.1}], batches=lambda: passes.append(1) or iter([1.0, 2.0, 3.0]), backward=backward,
        validate=validate, max_steps=10, warmup_fraction=0.2, eval_every=1, patience=2, weight_decay=0.0,
        after_backward=after.append,
    )
    assert (run.steps, run.best_step, run.best, run.initial) == (4, 2, 0.9, 0.5)
    assert [h["step"] for h in run.history] == [0, 1, 2, 3, 4] and len(passes) == 2 and after == [0, 1, 2, 3]
    assert not torch.equal(seen[4], seen[2]) and torch.equal(weight.detach(), seen[2])
    with pytest.raises(ValueError, match="no batch"):
        train_steps([{"params": [weight], "lr": 0.1}], lambda: iter([]), backward, lambda: 0.0,
                    max_steps=3, warmup_fraction=0.0, eval_every=1, patience=2, weight_decay=0.0)


@pytest.fixture(scope="module")
def base_encoder():
    return TextEncoder(max_length=16)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_methods_train_few_parameters_and_embed(name, base_encoder):
    import copy

    encoder = copy.deepcopy(base_encoder)
    total = sum(p.numel() for p in encoder.model.parameters())
    model = get_method(name).wrap(encoder.model, total_steps=20)
    trainable = trainable_parameters(model)
    assert trainable > 0.99 * total if name == "full" else 0 < trainable < 0.01 * total
    vectors = encoder.embed(["drill", "garden hose"], model=model)
    vectors.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", sorted(ADVERSARIES))
def test_adversaries_add_gradients(name, base_encoder):
    import copy

    encoder = copy.deepcopy(base_encoder)
    model = get_method("lora").wrap(encoder.model)
    lora_b = next(p for n, p in model.named_parameters() if "lora_B" in n)
    with torch.no_grad():
        lora_b.normal_(0, 0.1)  # B starts at 0; non-zero B lets every LoRA weight get a gradient

    def loss_fn():
        q = encoder.embed(["drill", "hose"], model=model)
        c = encoder.embed(["cordless drill", "garden hose"], model=model)
        return torch.nn.functional.cross_entropy(q @ c.T / 0.05, torch.arange(2))

    loss = get_adversary(name).backward(model, loss_fn)
    assert torch.isfinite(loss)
    assert lora_b.grad is not None and lora_b.grad.abs().sum() > 0
    # The hooks are gone afterwards: a plain forward gives the same embedding twice.
    model.eval()
    assert torch.allclose(encoder.embed(["x"], model=model), encoder.embed(["x"], model=model))


@pytest.mark.parametrize("method,adversarial", [("lora", "fgm"), ("full", "none"), ("prefix", "pgd"), ("adalora", "none"), ("ia3", "none")])
def test_tuner_fits_saves_and_serves(method, adversarial, base_encoder, tmp_path):
    import copy

    config = BiEncoderConfig(
        method=method, adversarial=adversarial, batch_size=4, max_steps=2, eval_every=1, patience=5,
        max_length=16, valid_queries=10, valid_pool_depth=3,
    )
    tuner = BiEncoderTuner(config, encoder=copy.deepcopy(base_encoder)).fit(ITEMS, JUDGMENTS, JUDGMENTS)
    assert tuner.metrics["steps"] == 2 and len(tuner.history) == 3
    assert 0 <= tuner.metrics["valid_ndcg@10"] <= 1
    assert tuner.metrics["valid_ndcg@10"] >= tuner.metrics["valid_ndcg@10_zero_shot"]
    expected = tuner.encoder.encode(["cordless drill"]) if method != "prefix" else None
    artifact = tuner.save(tmp_path / "enc")
    assert artifact.config["method"]["name"] == method
    assert (artifact.path / "adapter.safetensors").exists() == (method != "full")
    loaded = TextEncoder.from_artifact(tmp_path / "enc")
    vector = loaded.encode(["cordless drill"])
    assert vector.shape == (1, 384)
    if expected is not None:
        assert np.allclose(vector, expected, atol=1e-5)
    if method == "lora":
        assert (artifact.path / "adapter.safetensors").stat().st_size < 0.02 * (artifact.path / "model.safetensors").stat().st_size


def test_config_rejects_unknown_names():
    with pytest.raises(ValueError):
        BiEncoderConfig(method="nope")
    with pytest.raises(ValueError):
        BiEncoderConfig(adversarial="nope")
    with pytest.raises(ValueError):
        BiEncoderConfig(hard_negative_miners=("nope",))
