"""Next-item ranking metrics under full ranking over all items, on whole tensors.

Metrics are computed from the top-K lists themselves (not from a target's rank among tied
scores), so the numbers here are exactly what an external scorer computes from the same lists.
With one target per user, Recall@K equals HR@K; both are reported under their own names.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from shelfwise.datasets.sequences import Sequences


def mask_seen(scores: torch.Tensor, histories: Sequences) -> torch.Tensor:
    """Set each row's history items to -inf, in place (the S3-Rec protocol: an item the user
    already has is not recommended again). Also masks the padding column 0."""
    rows = torch.from_numpy(np.repeat(np.arange(len(histories)), histories.lengths))
    scores[rows, torch.from_numpy(histories.items)] = float("-inf")
    scores[:, 0] = float("-inf")
    return scores


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """[n, k] item indexes, best first; 0 (padding) fills the slots past a row's last item
    that may be recommended (score -inf), so lists never hold masked items."""
    values, indices = torch.topk(scores, min(k, scores.shape[1]), dim=1)
    return indices.masked_fill_(values == float("-inf"), 0)


def ranking_metrics(top: torch.Tensor, targets: torch.Tensor, ks=(10, 20), n_items: int | None = None) -> dict[str, float]:
    """HR, Recall, NDCG, MRR @K from top lists [n, >=max(ks)] (0 = empty slot) and one target per row; and
    coverage@K (distinct recommended items / n_items) when ``n_items`` is given."""
    hit_at = top == targets[:, None]  # [n, K]: at most one True per row
    position = torch.where(hit_at.any(1), hit_at.float().argmax(1), torch.full_like(targets, 1 << 30))
    out: dict[str, float] = {}
    n = max(len(targets), 1)
    for k in ks:
        hit = position < k
        gain = torch.where(hit, 1.0 / torch.log2(position.float() + 2), torch.zeros(()))
        rr = torch.where(hit, 1.0 / (position.float() + 1), torch.zeros(()))
        out[f"hr@{k}"] = hit.sum().item() / n
        out[f"recall@{k}"] = out[f"hr@{k}"]
        out[f"ndcg@{k}"] = gain.sum().item() / n
        out[f"mrr@{k}"] = rr.sum().item() / n
        if n_items:
            shown = torch.unique(top[:, :k])
            out[f"coverage@{k}"] = int((shown > 0).sum()) / n_items
    return out


def evaluate_ranking(
    score: Callable[[Sequences], torch.Tensor | np.ndarray],
    histories: Sequences,
    targets: np.ndarray,
    ks=(10, 20),
    mask_history: bool = True,
    keep: int = 0,
    batch_size: int = 1024,
) -> tuple[dict[str, float], torch.Tensor]:
    """Score every history against all items, batch by batch, and compute ranking metrics.

    ``score`` maps histories to [n, n_items + 1] scores (the recommender contract).
    ``mask_history`` leaves each user's history items out of the lists (documented protocol
    choice; on by default). Returns the metrics and the top ``max(keep, max(ks))`` lists."""
    return evaluate_rankings(lambda batch: {"": score(batch)}, histories, targets, ks, mask_history, keep, batch_size)[""]


def evaluate_rankings(
    score: Callable[[Sequences], dict[str, torch.Tensor | np.ndarray]],
    histories: Sequences,
    targets: np.ndarray,
    ks=(10, 20),
    mask_history: bool = True,
    keep: int = 0,
    batch_size: int = 1024,
) -> dict[str, tuple[dict[str, float], torch.Tensor]]:
    """:func:`evaluate_ranking` for several scorings of the same histories at once (e.g. one model
    blended at several weights): ``score`` returns a dict of score matrices per batch, and each
    name gets its metrics and top lists. Only one batch of scores is held at a time."""
    k = max(max(ks), keep)
    # Histories of similar length go together, so a padded batch is no wider than it must be.
    order = np.argsort(histories.lengths, kind="stable")
    tops: dict[str, torch.Tensor] = {}
    for start in range(0, len(histories), batch_size):
        rows = order[start : start + batch_size]
        batch = histories.take(rows)
        for name, scored in score(batch).items():
            scores = torch.as_tensor(scored, dtype=torch.float32).clone()
            if mask_history:
                mask_seen(scores, batch)
            else:
                scores[:, 0] = float("-inf")
            top = tops.setdefault(name, torch.zeros((len(histories), min(k, histories.n_items + 1)), dtype=torch.long))
            top[torch.from_numpy(rows)] = top_k(scores, k)
    truth = torch.as_tensor(targets, dtype=torch.long)
    return {name: (ranking_metrics(top, truth, ks, histories.n_items), top) for name, top in tops.items()}
