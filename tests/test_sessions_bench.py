"""``shelfwise bench sessions``: session-based next-item benchmark on a folder in the shared
data's format (train_sessions.txt, test_prefix_target.tsv), end to end on tiny files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from shelfwise.commands.recommend import sessions
from shelfwise.config import Settings

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def write_sessions(folder, n_train: int = 120, n_test: int = 20):
    """Sessions that walk a ring of 12 items (item k is followed by k + 1), so the next item is learnable;
    the test file lists every prefix of each test session, like the shared data."""
    folder.mkdir()
    rng = np.random.default_rng(0)

    def session():
        start, length = rng.integers(1, 13), rng.integers(2, 7)
        return [int((start + j - 1) % 12 + 1) for j in range(length)]

    (folder / "train_sessions.txt").write_text("".join(" ".join(map(str, session())) + "\n" for _ in range(n_train)))
    rows = []
    for _ in range(n_test):
        s = session()
        rows += [f"{' '.join(map(str, s[:k]))}\t{s[k]}\n" for k in range(len(s) - 1, 0, -1)]
    (folder / "test_prefix_target.tsv").write_text("".join(rows))
    return len(rows)


def run(tmp_path, *args):
    return CliRunner().invoke(sessions, ["--out", str(tmp_path / "run"), "--threads", "1", *args],
                              obj=Settings(home=tmp_path / "home", quiet=True))


@pytest.mark.parametrize("model", ["gru4rec", "sasrec", "transitions"])
def test_sessions_bench_end_to_end(tmp_path, model):
    cases = write_sessions(tmp_path / "toy")
    result = run(tmp_path, "--data", str(tmp_path / "toy"), "--model", model, "--epochs", "3", "--set", "model.hidden=16",
                 "--set", "train.warmup_steps=2")
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["test_cases"] == cases and m["items"] == 12
    assert set(m["test"]) >= {"hr@20", "mrr@20", "hr@10", "ndcg@10"}
    assert "HR@20" in result.output and "MRR@20" in result.output
    if model == "transitions":  # the ring is deterministic: the last item names the next one
        assert m["test"]["hr@20"] == 1.0 and m["test"]["mrr@20"] == 1.0
    else:
        assert m["epochs"] == 3 and m["valid"] and (tmp_path / "run" / "model").is_dir()
        assert isinstance(m["reranker"], bool) and "transitions_weight" in m  # what the scores went through, recorded
        assert m["test"]["hr@20"] == 1.0  # 12 items: every list holds all of them
        assert m["test"]["mrr@20"] > 1 / 6  # well above a random order of 12 items (mean 1/rank ~ 0.26 only by luck)


def test_sessions_bench_missing_file(tmp_path):
    write_sessions(tmp_path / "toy")
    (tmp_path / "toy" / "test_prefix_target.tsv").unlink()
    result = run(tmp_path, "--data", str(tmp_path / "toy"), "--model", "transitions")
    assert result.exit_code != 0 and "test_prefix_target.tsv" in result.output


def test_sessions_bench_wrong_format_names_the_line(tmp_path):
    write_sessions(tmp_path / "toy")
    (tmp_path / "toy" / "train_sessions.txt").write_text("1 2 3\nuser7,1,2\n")
    result = run(tmp_path, "--data", str(tmp_path / "toy"), "--model", "transitions")
    assert result.exit_code != 0 and "train_sessions.txt:2: expected whole numbers" in result.output


def test_sessions_bench_wants_a_folder(tmp_path):
    write_sessions(tmp_path / "toy")
    result = run(tmp_path, "--data", str(tmp_path / "toy" / "train_sessions.txt"))
    assert result.exit_code != 0 and "is a file" in result.output
