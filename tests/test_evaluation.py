import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from shelfwise.datasets.sequences import Sequences
from shelfwise.evaluation.metrics import evaluate_ranking, mask_seen, ranking_metrics, top_k
from shelfwise.evaluation.report import write_report

SCORER = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "seq_score.py"


def test_ranking_metrics_by_hand():
    top = torch.tensor([[3, 1, 2], [1, 2, 3], [2, 3, 1]])
    targets = torch.tensor([3, 2, 4])  # rank 1, rank 2, missing
    m = ranking_metrics(top, targets, ks=(1, 3), n_items=4)
    assert m["hr@1"] == pytest.approx(1 / 3)
    assert m["hr@3"] == pytest.approx(2 / 3) and m["recall@3"] == m["hr@3"]
    assert m["ndcg@3"] == pytest.approx((1 + 1 / np.log2(3)) / 3)
    assert m["mrr@3"] == pytest.approx((1 + 1 / 2) / 3)
    assert m["coverage@1"] == pytest.approx(3 / 4)  # items 3, 1 and 2 head the lists

def test_mask_seen_removes_history_and_padding():
    histories = Sequences.from_lists([[1, 2], [3]], n_items=4)
    scores = torch.zeros(2, 5)
    mask_seen(scores, histories)
    assert torch.isinf(scores).tolist() == [[True, True, True, False, False], [True, False, False, True, False]]


def test_evaluate_ranking_batches_and_masking_agree():
    rng = np.random.default_rng(0)
    histories = Sequences.from_lists([list(rng.integers(1, 30, size=rng.integers(1, 6))) for _ in range(50)], n_items=30)
    table = torch.from_numpy(rng.random((50, 31)).astype(np.float32))
    targets = rng.integers(1, 31, size=50)
    keys = {k: i for i, k in enumerate(histories.keys)}

    def score(h):
        return table[[keys[k] for k in h.keys]]

    whole, top_whole = evaluate_ranking(score, histories, targets, batch_size=1000, keep=15)
    batched, top_batched = evaluate_ranking(score, histories, targets, batch_size=7, keep=15)
    assert whole == batched and torch.equal(top_whole, top_batched)
    for row in range(50):
        assert not set(top_whole[row].tolist()) & set(histories[row].tolist())
    unmasked, _ = evaluate_ranking(score, histories, targets, mask_history=False)
    expected = top_k(table.clone().index_fill_(1, torch.tensor([0]), float("-inf")), 20)
    assert unmasked == ranking_metrics(expected, torch.from_numpy(targets), (10, 20), 30)


def test_report_has_tables_and_curves(tmp_path):
    history = [{"epoch": e, "loss": 5 - e, "metrics": {"ndcg@10": 0.01 * e, "hr@10": 0.02 * e}} for e in range(3)]
    path = write_report(tmp_path / "r.html", "demo <run>", {"test": {"ndcg@10": 0.05, "hr@10": 0.1}}, history, {"epochs": "3"})
    text = path.read_text()
    assert "demo &lt;run&gt;" in text and "0.0500" in text and "data:image/png;base64," in text


@pytest.mark.skipif(not SCORER.exists(), reason=f"needs the shared scorer {SCORER}")
def test_metrics_match_the_shared_scorer(tmp_path):
    rng = np.random.default_rng(1)
    lines = [[u] + list(rng.integers(1, 40, size=rng.integers(3, 9))) for u in range(1, 61)]
    data = tmp_path / "data.txt"
    data.write_text("".join(" ".join(map(str, line)) + "\n" for line in lines))
    seqs = Sequences.from_lists([line[1:] for line in lines], n_items=40, keys=[str(line[0]) for line in lines])
    histories, targets = seqs.truncate(1), seqs.last(1)
    table = torch.from_numpy(rng.random((60, 41)).astype(np.float32))
    metrics, top = evaluate_ranking(lambda h: table[[int(k) - 1 for k in h.keys]], histories, targets, keep=100)
    recs = tmp_path / "recs.tsv"
    recs.write_text("".join(f"{u}\t{i}\t{r + 1}\n" for u, row in zip(seqs.keys, top.tolist()) for r, i in enumerate(row)))
    out = subprocess.run([sys.executable, str(SCORER), str(data), str(recs)], capture_output=True, text=True, check=True).stdout
    scored = dict(part.split("=") for part in out.split() if "@" in part)
    assert float(scored["HR@10"]) == pytest.approx(metrics["hr@10"], abs=5e-5)
    assert float(scored["NDCG@10"]) == pytest.approx(metrics["ndcg@10"], abs=5e-5)
    assert float(scored["NDCG@20"]) == pytest.approx(metrics["ndcg@20"], abs=5e-5)
