import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shelfwise.datasets.sequences import Sequences, leave_one_out
from shelfwise.evaluation.metrics import evaluate_ranking
from shelfwise.recommenders.baselines import ItemTransitions, Popularity
from shelfwise.recommenders.losses import LossConfig, compute_loss
from shelfwise.recommenders.neural import SequentialRecommender
from shelfwise.recommenders.registry import MODELS, build_model, names
from shelfwise.training.loop import TrainConfig
from shelfwise.training.sequential import NextItemTask, score_histories

TINY = {"hidden": 16, "max_len": 8}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def tiny_model(name):
    extra = {"layers": 1, "heads": 2, "inner": 32} if name in ("sasrec", "bert4rec") else {"state": 16}
    return build_model(name, 20, **TINY, **extra)


def cyclic_sequences(n_users=60, n_items=12, seed=0) -> Sequences:
    """Each user walks the items in a fixed cycle from a random start: the next item is always known."""
    rng = np.random.default_rng(seed)
    lists = [[(start + t) % n_items + 1 for t in range(rng.integers(5, 10))] for start in rng.integers(0, n_items, n_users)]
    return Sequences.from_lists(lists, n_items=n_items, keys=[f"u{i}" for i in range(n_users)])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shapes_and_padding_invariance(name):
    torch.manual_seed(0)
    model = tiny_model(name).eval()
    x = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    assert model(x).shape == (2, 5, 16)
    histories = Sequences.from_lists([[3, 4, 5], [1, 2, 3, 4, 5]], n_items=20)
    scores = score_histories(model, histories)
    assert scores.shape == (2, 21) and torch.isinf(scores[:, 0]).all()
    alone = score_histories(model, histories.take(np.array([0])))  # different padding width, same answer
    assert torch.allclose(alone[0, 1:], scores[0, 1:], atol=1e-5)


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "lstm"])
def test_causal_models_do_not_see_the_future(name):
    torch.manual_seed(0)
    model = tiny_model(name).eval()
    a = model(torch.tensor([[1, 2, 3, 4]]))
    b = model(torch.tensor([[1, 2, 9, 7]]))
    assert torch.allclose(a[0, :2], b[0, :2], atol=1e-6) and not torch.allclose(a[0, 2], b[0, 2])


def test_registry_rejects_unknown_names_and_settings():
    from shelfwise.commands.recommend import MODEL_NAMES  # the CLI's list, kept without importing torch

    assert {"sasrec", "gru4rec", "lstm", "bert4rec", "popularity", "transitions"} == set(names()) == set(MODEL_NAMES)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope", 5)
    with pytest.raises(ValueError, match="no setting"):
        build_model("sasrec", 5, hiden=3)


def test_losses():
    torch.manual_seed(0)
    hidden, items, targets = torch.randn(6, 8), torch.randn(11, 8), torch.randint(1, 11, (6,))
    logits = hidden @ items.T
    logits[:, 0] = float("-inf")
    assert torch.allclose(compute_loss(hidden, targets, items, LossConfig("ce")), F.cross_entropy(logits, targets))
    smoothed = compute_loss(hidden, targets, items, LossConfig("ce", label_smoothing=0.1))
    assert torch.isfinite(smoothed)
    for config in (LossConfig("sampled", n_negatives=4), LossConfig("bce")):
        value = compute_loss(hidden, targets, items, config)
        assert torch.isfinite(value) and value > 0
    with pytest.raises(ValueError, match="unknown loss"):
        compute_loss(hidden, targets, items, LossConfig("nope"))


def test_future_window_loss_is_cross_entropy_against_the_weighted_next_items():
    torch.manual_seed(0)
    hidden, items = torch.randn(3, 8), torch.randn(11, 8)
    targets = torch.tensor([[4, 7, 2], [5, 9, 0], [6, 0, 0]])  # 0 = no item that far ahead
    log_probs = torch.log_softmax(torch.cat([torch.full((3, 1), float("-inf")), hidden @ items[1:].T], 1), 1)
    expected = torch.stack([
        -(log_probs[0, 4] + 0.5 * log_probs[0, 7] + 0.25 * log_probs[0, 2]) / 1.75,
        -(log_probs[1, 5] + 0.5 * log_probs[1, 9]) / 1.5,
        -log_probs[2, 6],
    ]).mean()
    config = LossConfig("ce", future_window=3, future_decay=0.5)
    assert torch.allclose(compute_loss(hidden, targets, items, config), expected)
    # One column is the plain next-item cross-entropy.
    assert torch.allclose(compute_loss(hidden, targets[:, :1], items, config), compute_loss(hidden, targets[:, 0], items, LossConfig("ce")))
    with pytest.raises(ValueError, match="at least 1"):
        LossConfig("ce", future_window=0)
    with pytest.raises(ValueError, match="future_decay"):
        LossConfig("ce", future_decay=0)
    with pytest.raises(ValueError, match="future_window must be an integer, got 'abc'"):
        LossConfig("ce", future_window="abc")  # what `--set loss.future_window=abc` passes


def test_items_absent_from_training_are_left_out_of_the_softmax():
    torch.manual_seed(0)
    hidden, items, targets = torch.randn(6, 8), torch.randn(11, 8), torch.tensor([1, 2, 4, 5, 6, 8])
    absent = torch.zeros(11, dtype=torch.bool)
    absent[[3, 7]] = True
    config = LossConfig("ce", future_window=1)
    loss = compute_loss(hidden, targets, items, config, absent)
    moved = items.clone()
    moved[[3, 7]] += 5.0  # whatever an absent item scores, it is no negative
    assert torch.allclose(compute_loss(hidden, targets, moved, config, absent), loss)
    assert loss < compute_loss(hidden, targets, items, config)


def test_future_window_batches_hold_the_items_after_each_position():
    seqs = Sequences.from_lists([[1, 2, 3, 4]], n_items=4)
    model = build_model("sasrec", 4, hidden=8, max_len=10)
    task = NextItemTask(model, seqs, loss=LossConfig("ce", future_window=3))
    ((inputs, targets),) = task.batches(0, np.random.default_rng(0))
    assert inputs.tolist() == [[1, 2, 3]]
    assert targets.tolist() == [[[2, 3, 4], [3, 4, 0], [4, 0, 0]]]
    assert torch.isfinite(task.loss(model, (inputs, targets)))
    # One target where the loss or the model has no window: sampled softmax, masked-item prediction.
    ((_, sampled_targets),) = NextItemTask(model, seqs, loss=LossConfig("sampled", future_window=3)).batches(0, np.random.default_rng(0))
    assert sampled_targets.tolist() == [[2, 3, 4]]
    assert NextItemTask(build_model("bert4rec", 4, hidden=8, max_len=10), seqs, loss=LossConfig("ce", future_window=3)).window == 1


def test_baselines_keep_the_contract():
    seqs = cyclic_sequences()
    split = leave_one_out(seqs)
    for rec in (Popularity(), ItemTransitions()):
        scores = rec.fit(split.train).score(split.test_history)
        assert scores.shape == (len(seqs), seqs.n_items + 1) and scores.dtype == np.float32 and np.isinf(scores[:, 0]).all()
    metrics, _ = evaluate_ranking(ItemTransitions().fit(split.train).score, split.test_history, split.test_target, ks=(1,))
    assert metrics["hr@1"] == 1.0  # transitions are deterministic in a cycle (the next item outweighs the rest of the window)


def test_transitions_reach_a_window_ahead_and_back():
    seqs = Sequences.from_lists([[1, 2, 3], [4, 1]], n_items=4)
    rows = lambda t: {i: round(float(v), 4) for i, v in zip(t.transitions_[1].indices, t.transitions_[1].data)}  # noqa: E731
    assert rows(ItemTransitions(window=1, backward=0).fit(seqs)) == {2: 1.0}  # consecutive items only
    assert rows(ItemTransitions(window=2, window_decay=0.5, backward=0).fit(seqs)) == {2: round(1 / 1.5, 4), 3: round(0.5 / 1.5, 4)}
    # Item 4 came right before 1: with backward 0.5 it counts half as much as what followed; never across sequences.
    assert rows(ItemTransitions(window=2, window_decay=0.5, backward=0.5).fit(seqs)) == {2: 0.5, 3: 0.25, 4: 0.25}
    assert ItemTransitions().fit(Sequences.from_lists([[1], [2]], n_items=2)).transitions_.nnz == 0  # nothing followed anything


@pytest.mark.parametrize("name, loss", [("sasrec", "ce"), ("sasrec", "sampled"), ("gru4rec", "ce"), ("lstm", "bce"), ("bert4rec", "ce")])
def test_models_learn_a_cycle_and_round_trip(tmp_path, name, loss):
    seqs = cyclic_sequences()
    split = leave_one_out(seqs)
    extra = {"layers": 1, "inner": 32, "dropout": 0.0, "attention_dropout": 0.0} if name in ("sasrec", "bert4rec") else {"state": 32, "dropout": 0.0}
    epochs = 30
    if name == "bert4rec":  # masked-item training learns more slowly
        extra["mask_ratio"], epochs = 0.4, 60
    rec = SequentialRecommender(name, {"hidden": 32, "max_len": 10, **extra}, LossConfig(loss, n_negatives=6),
                                TrainConfig(epochs=epochs, batch_size=16, lr=5e-3, warmup_steps=5, patience=0, progress=False))
    rec.fit(split.train, split.valid_history, split.valid_target)
    metrics, _ = evaluate_ranking(rec.score, split.test_history, split.test_target, ks=(1, 3), mask_history=False)
    assert metrics["hr@3"] >= 0.8, metrics
    assert rec.result_.best_metrics["ndcg@10"] > 0.5
    again = SequentialRecommender.load(rec.save(tmp_path / name).path)
    assert np.allclose(again.score(split.test_history), rec.score(split.test_history), equal_nan=True)
    assert list(again.item_ids_ or []) == list(rec.item_ids_ or [])


def weak_sasrec(**kwargs) -> SequentialRecommender:
    """One short epoch: the network knows little, so what the transitions add shows."""
    return SequentialRecommender("sasrec", {"hidden": 8, "heads": 1, "layers": 1, "inner": 8, "max_len": 6},
                                 train_config=TrainConfig(epochs=1, batch_size=64, warmup_steps=1, progress=False), **kwargs)


def test_transitions_blend_is_chosen_on_validation_and_saved(tmp_path):
    split = leave_one_out(cyclic_sequences())
    rec = weak_sasrec().fit(split.train, split.valid_history, split.valid_target)
    assert rec.transitions_weight_ > 0 and rec.blend_validation_[rec.transitions_weight_]["ndcg@10"] > rec.blend_validation_[0.0]["ndcg@10"]
    alone = weak_sasrec(transitions_weight=0).fit(split.train, split.valid_history, split.valid_target)
    assert alone.transitions_ is None  # the network alone keeps no counts to update
    # History items left out, as in the benchmark protocol (the transitions also count what came before).
    blended, _ = evaluate_ranking(rec.score, split.test_history, split.test_target, ks=(1,))
    network, _ = evaluate_ranking(alone.score, split.test_history, split.test_target, ks=(1,))
    assert blended["hr@1"] > network["hr@1"] and blended["hr@1"] > 0.9
    again = SequentialRecommender.load(rec.save(tmp_path / "blend").path)
    assert again.transitions_weight_ == rec.transitions_weight_
    assert np.allclose(again.score(split.test_history), rec.score(split.test_history), equal_nan=True)


def test_blend_leaves_items_the_transitions_never_saw_to_the_network():
    from shelfwise.recommenders.blend import blended_scores

    transitions = ItemTransitions().fit(Sequences.from_lists([[1, 2], [2, 1]], n_items=3))  # item 3 is new
    network = torch.tensor([[float("-inf"), 0.0, 0.0, 1.0]])
    probabilities = torch.softmax(network, dim=1)
    blended = blended_scores(network, transitions, Sequences.from_lists([[1]], n_items=3), 0.5)
    assert torch.isclose(blended[0, 3], probabilities[0, 3])  # not halved: the counts know nothing of it
    assert blended[0, 2] > probabilities[0, 2] and torch.isinf(blended[0, 0])  # 2 followed 1: raised


def test_partial_fit_learns_the_newest_transitions():
    split = leave_one_out(cyclic_sequences())
    rec = weak_sasrec(transitions_weight=0.5).fit(split.train, split.valid_history, split.valid_target)
    history = Sequences.from_lists([[3]], n_items=12)
    assert rec.score(history)[0].argmax() == 4  # the cycle: 4 follows 3
    before = {k: v.clone() for k, v in rec.network_.state_dict().items()}
    rec.partial_fit(Sequences.from_lists([[3, 9]] * 50, n_items=12), epochs=1)  # now 9 follows 3
    assert rec.score(history)[0].argmax() == 9
    assert any(not torch.equal(before[k], v) for k, v in rec.network_.state_dict().items())  # the network trained too


@pytest.mark.parametrize("weight", ["often", 1.5, -0.1, True])
def test_transitions_weight_must_be_auto_or_a_share(weight):
    with pytest.raises(ValueError, match="transitions_weight"):
        SequentialRecommender(transitions_weight=weight)


def test_fit_without_validation_holds_out_last_items():
    rec = SequentialRecommender("gru4rec", {"hidden": 8, "state": 8, "max_len": 6},
                                train_config=TrainConfig(epochs=1, batch_size=32, progress=False))
    rec.fit(cyclic_sequences())
    assert rec.result_.history[0]["metrics"]["hr@10"] >= 0.0 and rec.result_.best_epoch == 0


def test_bench_sequential_writes_metrics_the_scorer_reproduces(tmp_path):
    from click.testing import CliRunner

    from shelfwise.commands.recommend import sequential
    from shelfwise.config import Settings

    rng = np.random.default_rng(3)
    data = tmp_path / "tiny.txt"
    data.write_text("".join(f"{u} " + " ".join(str((s + t) % 25 + 1) for t in range(rng.integers(3, 9))) + "\n"
                            for u, s in enumerate(rng.integers(0, 25, 80), start=1)))
    out = tmp_path / "run"
    args = ["--data", str(data), "--model", "gru4rec", "--out", str(out), "--epochs", "3", "--threads", "1",
            "--set", "model.hidden=8", "--set", "model.state=8", "--set", "train.batch_size=16"]
    result = CliRunner().invoke(sequential, args, obj=Settings(home=tmp_path / "home", quiet=True))
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and 1 <= metrics["best_epoch"] <= 3 and metrics["peak_memory_mb"] > 0
    assert set(metrics["test"]) >= {"hr@10", "ndcg@10", "recall@10", "mrr@10", "coverage@10"}
    assert isinstance(metrics["reranker"], bool) and set(metrics["rerank_validation"]) in ({"blend", "reranked"}, set())
    lines = (out / "test_top100.tsv").read_text().splitlines()
    assert lines[0] == "user_id\titem_id\trank" and 80 * 15 < len(lines) - 1 < 80 * 25  # all items but the history
    assert (out / "report.html").exists() and (out / "model" / "latest").exists()
    scorer = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "seq_score.py"
    if scorer.exists():
        printed = subprocess.run([sys.executable, str(scorer), str(data), str(out / "test_top100.tsv")], capture_output=True,
                                 text=True, check=True).stdout
        scored = dict(part.split("=") for part in printed.split() if "@" in part)
        assert float(scored["NDCG@10"]) == pytest.approx(metrics["test"]["ndcg@10"], abs=5e-5)
        assert float(scored["HR@10"]) == pytest.approx(metrics["test"]["hr@10"], abs=5e-5)


def test_train_recommender_on_the_store(tmp_path):
    from click.testing import CliRunner

    from shelfwise.commands.recommend import recommender
    from shelfwise.config import Settings
    from shelfwise.datasets.demo import generate
    from shelfwise.ingest import ingest_frame
    from shelfwise.store import Store

    settings = Settings(home=tmp_path / "home", quiet=True)
    store = Store.open(settings)
    shop = generate(n_items=120, n_users=40, n_events=2500, seed=0)
    for kind, frame in (("items", shop.items), ("users", shop.users), ("events", shop.events)):
        ingest_frame(store, kind, frame, source="test")
    store.close()
    args = ["--model", "gru4rec", "--epochs", "2", "--threads", "1", "--set", "model.hidden=8", "--set", "model.state=8"]
    result = CliRunner().invoke(recommender, args, obj=settings)
    assert result.exit_code == 0, result.output
    assert "test HR@10" in result.output
    rec = SequentialRecommender.load(settings.artifacts / "gru4rec")
    assert rec.model == "gru4rec" and len(rec.item_ids_) == rec.network_.config.n_items + 1


def test_same_seed_same_model():
    seqs = cyclic_sequences(n_users=20)
    runs = [SequentialRecommender("sasrec", {"hidden": 8, "heads": 1, "layers": 1, "inner": 8, "max_len": 6},
                                  train_config=TrainConfig(epochs=1, batch_size=8, progress=False, seed=3)).fit(seqs)
            for _ in range(2)]
    assert np.array_equal(runs[0].score(seqs), runs[1].score(seqs))
