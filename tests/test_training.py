import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from shelfwise.datasets.sequences import Sequences
from shelfwise.recommenders.registry import build_model
from shelfwise.training.batches import left_pad, length_batches, trim, windows
from shelfwise.training.loop import TrainConfig, learning_rate, train
from shelfwise.training.sequential import NextItemTask
from tests.serving_helpers import free_port


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def sequences(n=40, n_items=15, seed=0):
    rng = np.random.default_rng(seed)
    return Sequences.from_lists([list(rng.integers(1, n_items + 1, size=rng.integers(3, 12))) for _ in range(n)], n_items=n_items)


def test_left_pad_and_windows():
    seqs = Sequences.from_lists([[1, 2, 3, 4, 5], [6], [7, 8]], n_items=8)
    assert left_pad(seqs, 3).tolist() == [[3, 4, 5], [0, 0, 6], [0, 7, 8]]
    # windows of 3 share one item, so each item after the first is a target exactly once
    assert windows(seqs, 3).tolist() == [[3, 4, 5], [1, 2, 3], [0, 7, 8]]
    assert trim(np.array([[0, 0, 1], [0, 2, 3]])).tolist() == [[0, 1], [2, 3]]
    batches = length_batches(np.array([1, 5, 2, 5, 1, 2]), 2, np.random.default_rng(0), pool=10)
    assert sorted(np.concatenate(batches).tolist()) == list(range(6))
    assert all(len(set(np.array([1, 5, 2, 5, 1, 2])[b])) == 1 for b in batches)  # equal lengths batch together


def test_learning_rate_warms_up_then_decays():
    c = TrainConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [learning_rate(s, 100, c) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] == pytest.approx(0.1, abs=0.01)


def run(config: TrainConfig, task_wrapper=None):
    torch.manual_seed(123)
    seqs = sequences()
    model = build_model("sasrec", seqs.n_items, hidden=16, layers=1, heads=1, inner=16, max_len=8)
    task = NextItemTask(model, seqs.truncate(1), seqs.truncate(1), seqs.last(1), batch_size=8)
    return model, train(model, task_wrapper(task) if task_wrapper else task, config)


def test_seeded_runs_are_identical_and_resume_after_a_crash_continues_exactly(tmp_path):
    config = TrainConfig(epochs=3, batch_size=8, warmup_steps=3, patience=0, progress=False, seed=5)
    model_a, result_a = run(config)
    model_b, _ = run(config)
    assert all(torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values()))

    class CrashOnce:
        """Dies at the start of the second epoch, as a killed process would."""

        def __init__(self, task):
            self.task, self.crashed = task, False

        def __getattr__(self, name):
            return getattr(self.task, name)

        def batches(self, epoch, rng):
            if epoch == 1 and not self.crashed:
                self.crashed = True
                raise KeyboardInterrupt
            return self.task.batches(epoch, rng)

    resumable = TrainConfig(**{**config.__dict__, "checkpoint_dir": str(tmp_path / "ckpt")})
    with pytest.raises(KeyboardInterrupt):
        run(resumable, CrashOnce)
    state = json.loads((tmp_path / "ckpt" / "last" / "state.json").read_text())
    assert state["epoch"] == 0
    model_c, result_c = run(resumable)  # a fresh process would do the same: it finds the checkpoint
    assert all(torch.equal(a, c) for a, c in zip(model_a.state_dict().values(), model_c.state_dict().values()))
    assert [h["loss"] for h in result_c.history] == pytest.approx([h["loss"] for h in result_a.history])
    assert result_c.epochs_run == 3 and result_c.best_epoch == result_a.best_epoch
    assert (tmp_path / "ckpt" / "best" / "model.safetensors").exists()


def test_early_stopping_keeps_the_best_epoch():
    class Worsening:
        def __init__(self, task):
            self.task, self.calls = task, 0

        def __getattr__(self, name):
            return getattr(self.task, name)

        def evaluate(self, model):
            self.calls += 1
            self.snapshot = {k: v.clone() for k, v in model.state_dict().items()} if self.calls == 2 else getattr(self, "snapshot", None)
            return {"ndcg@10": [0.1, 0.3, 0.2, 0.1, 0.05, 0.0][self.calls - 1]}

    wrapper = {}

    def wrap(task):
        wrapper["task"] = Worsening(task)
        return wrapper["task"]

    model, result = run(TrainConfig(epochs=6, batch_size=8, patience=2, progress=False), wrap)
    assert result.best_epoch == 1 and result.epochs_run == 4 and "no improvement" in result.stopped
    assert all(torch.equal(model.state_dict()[k], v) for k, v in wrapper["task"].snapshot.items())


DDP_SCRIPT = """
import json, sys, numpy as np, torch
from shelfwise.datasets.sequences import Sequences
from shelfwise.recommenders.registry import build_model
from shelfwise.training import distributed
from shelfwise.training.loop import TrainConfig, train
from shelfwise.training.sequential import NextItemTask
torch.set_num_threads(1)
assert distributed.init() and distributed.world_size() == 2
rng = np.random.default_rng(0)
seqs = Sequences.from_lists([[(s + t) % 30 + 1 for t in range(rng.integers(4, 9))] for s in rng.integers(0, 30, 96)], n_items=30)
torch.manual_seed(0)
model = build_model("gru4rec", 30, hidden=16, state=16, max_len=8, dropout=0.0)
task = NextItemTask(model, seqs.truncate(1), seqs.truncate(1), seqs.last(1), batch_size=8)
result = train(model, task, TrainConfig(epochs=10, lr=1e-2, warmup_steps=2, patience=0, progress=False, seed=1))
total = sum(p.detach().double().sum().item() for p in model.parameters())
json.dump({"rank": distributed.rank(), "checksum": total, "losses": [h["loss"] for h in result.history],
           "best": result.best_metrics}, open(sys.argv[1] + f"/rank{distributed.rank()}.json", "w"))
distributed.shutdown()
"""


@pytest.mark.slow
def test_two_processes_train_with_torchrun(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    for attempt in (1, 2):
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
                               f"--master_port={free_port()}", str(script), str(tmp_path)], env=env, timeout=300,
                              cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
        # Gloo now and then aborts a process ("terminate called without an active exception"; once in CI at stop 10,
        # once at stop 17 in a full run on a loaded machine, never alone): that signature gets a second run; any other failure fails.
        if done.returncode == 0 or "terminate called without an active exception" not in done.stderr or attempt == 2:
            break
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["checksum"] == pytest.approx(ranks[1]["checksum"], rel=1e-6)  # gradients were averaged: same weights
    assert ranks[0]["best"] == ranks[1]["best"] and ranks[0]["best"]["ndcg@10"] > 0.5  # rank 0 evaluated, all agree
    assert ranks[0]["losses"] != ranks[1]["losses"]  # each rank trained on its own share of the batches
    for r in ranks:
        assert r["losses"][-1] < 0.8 * r["losses"][0]
