"""A learned re-ranking of each history's top candidates.

The blend (blend.py) mixes the network and the transitions with one weight for every history; how
much each deserves differs from one history and one item to the next (a long history, a last item
with many followers, an item the network ranks high but nothing followed). Here a small MLP reads,
for each of the blend's top ``CANDIDATES`` items, what both sides say of it and orders them:

    the network's probability and the item's rank by it, the transitions' score and rank, what
    followed each of the last three items alone and the whole history, the blended score and rank,
    the item's cosine to the last item and to the history in the network's item table, the item's
    popularity, the history's length, how peaked the network is and how much the transitions know.

It is trained on the validation step (listwise: a softmax over each history's warm candidates, the
target the label), after the epoch and the blend weight are chosen, and kept only if a 2-fold
split of the validation histories says it beats the blend. The warm candidates then share their
blended probability in its proportions; cold candidates and every other item keep their blended
probability (Candidates.rescored). On Amazon Beauty's validation step (2-fold by user): NDCG@10 /
HR@10 0.0712 / 0.1181 with the blend, 0.0763 / 0.1258 re-ranked; test 0.0624 / 0.1031 -> 0.0669 /
0.1096 (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from shelfwise.datasets.sequences import Sequences
from shelfwise.evaluation.metrics import mask_seen, ranking_metrics
from shelfwise.recommenders.baselines import ItemTransitions
from shelfwise.recommenders.blend import blend_parts

CANDIDATES = 100
FEATURES = 16


class Candidates(NamedTuple):
    """Each history's top ``CANDIDATES`` items of the blend, best first, with what the ranker reads of them."""

    items: torch.Tensor  # [n, k] item indexes
    blended: torch.Tensor  # [n, k] their blended scores (history items unmasked)
    features: torch.Tensor  # [n, k, FEATURES]
    warm: torch.Tensor  # [n, k] bool: the item occurs in the counts (and is no masked history item); only these are re-ranked

    @classmethod
    def cat(cls, parts: list["Candidates"]) -> "Candidates":
        return cls(*(torch.cat(column) for column in zip(*parts)))

    def rescored(self, logits: torch.Tensor) -> torch.Tensor:
        """[n, k] new scores: the warm candidates share their blended probability mass in the ranker's
        proportions (softmax of ``logits``); cold ones (no history to learn from; text-aware models
        recommend them by their text) keep their blended score, so both stay on one scale."""
        warm = self.warm
        mass = torch.where(warm, self.blended, 0.0).sum(1, keepdim=True)
        shares = torch.softmax(logits.masked_fill(~warm, float("-inf")), dim=1)
        return torch.where(warm, mass * shares, self.blended)


def candidate_features(network_scores: torch.Tensor, transitions: ItemTransitions, histories: Sequences, weight: float,
                       item_vectors: torch.Tensor, mask_history: bool) -> tuple[torch.Tensor, Candidates]:
    """(the blend's scores [n, n_items + 1], its candidates) from the network's scores, the transitions and
    the network's item vectors."""
    probabilities, follows, blended = blend_parts(network_scores, transitions, histories, weight)
    n = len(histories)
    selection = blended.clone()
    selection[:, 0] = float("-inf")
    if mask_history:
        mask_seen(selection, histories)
    k = min(CANDIDATES, selection.shape[1] - 1)
    top = torch.topk(selection, k, dim=1)
    candidates = top.indices

    def at(scores) -> torch.Tensor:
        return torch.gather(torch.as_tensor(scores), 1, candidates)

    def rank(values: torch.Tensor) -> torch.Tensor:
        return torch.argsort(torch.argsort(-values, dim=1), dim=1).float() / k

    log_p = torch.log(at(probabilities) + 1e-12)
    log_f = torch.log(at(follows) + 1e-6)
    m = transitions.transitions_
    steps = [torch.log(_entries(m, histories.last(back), candidates) + 1e-6) for back in (1, 2, 3)]
    whole = torch.log(_entries(_history_followers(transitions, histories), np.arange(n), candidates) + 1e-6)
    vectors = nn.functional.normalize(item_vectors, dim=1)
    last = vectors[torch.from_numpy(histories.last(1))]
    rows = torch.from_numpy(np.repeat(np.arange(n), histories.lengths))
    mean = torch.zeros(n, vectors.shape[1]).index_add_(0, rows, vectors[torch.from_numpy(histories.items)])
    mean = nn.functional.normalize(mean, dim=1)
    popularity = torch.from_numpy(np.log1p(np.maximum(transitions.popularity_, 0).astype(np.float32)))[candidates]
    per_history = torch.stack([torch.from_numpy(np.log(np.maximum(histories.lengths, 1)).astype(np.float32)),
                               torch.log(probabilities[:, 1:].max(1).values + 1e-12),
                               torch.log(follows[:, 1:].sum(1) + 1e-6)], 1)[:, None].expand(n, k, 3)
    features = torch.cat([
        torch.stack([log_p, rank(log_p), log_f, rank(log_f), *steps, whole, torch.log(top.values.clamp_min(1e-12)),
                     torch.arange(k, dtype=torch.float32).expand(n, k) / k,
                     (vectors[candidates] * last[:, None]).sum(-1), (vectors[candidates] * mean[:, None]).sum(-1), popularity], 2),
        per_history], 2)
    # Masked history items fill the list only in catalogues smaller than it; they are not re-ranked.
    warm = torch.from_numpy(transitions.popularity_ > 0)[candidates] & (top.values > float("-inf"))
    return blended, Candidates(candidates, at(blended), features, warm)


def _entries(matrix: sp.csr_matrix, rows: np.ndarray, columns: torch.Tensor) -> torch.Tensor:
    """[n, k]: ``matrix[rows[i], columns[i, j]]``, read from the sparse matrix (no dense [n, n_items] copy)."""
    n, k = columns.shape
    values = matrix[np.repeat(np.asarray(rows, dtype=np.int64), k), columns.reshape(-1).numpy().astype(np.int64)]
    return torch.from_numpy(np.asarray(values, dtype=np.float32).reshape(n, k))


def _history_followers(transitions: ItemTransitions, histories: Sequences) -> sp.csr_matrix:
    """[n, n_items + 1]: what followed the history's items, all of them alike (mean of their rows)."""
    m = transitions.transitions_
    rows = np.repeat(np.arange(len(histories)), histories.lengths)
    weights = (1.0 / np.maximum(histories.lengths, 1))[rows].astype(np.float32)
    pick = sp.csr_matrix((weights, (rows, histories.items)), shape=(len(histories), m.shape[0]))
    return (pick @ m).tocsr()


class CandidateRanker(nn.Module):
    """Scores each candidate from its features; standardisation is part of the module (buffers)."""

    def __init__(self, n_features: int = FEATURES, hidden: int = 64):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.mlp = nn.Sequential(nn.Linear(n_features, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp((features - self.mean) / self.std).squeeze(-1)

    @torch.no_grad()
    def logits(self, features: torch.Tensor, rows: int = 2048) -> torch.Tensor:
        """``self(features)`` a few thousand histories at a time: the hidden layers of all at once are large."""
        return torch.cat([self(part) for part in features.split(rows)]) if len(features) else features.new_zeros(features.shape[:2])

    def fit(self, candidates: Candidates, labels: torch.Tensor, epochs: int = 20, lr: float = 3e-3, batch_size: int = 256,
            seed: int = 0) -> "CandidateRanker":
        """Listwise training (a softmax over each history's warm candidates) on the histories whose target is
        a warm candidate (``labels`` [n, k] bool)."""
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        keep = (labels & candidates.warm).any(1)
        if not keep.any():
            raise ValueError("no history has its target among its warm candidates: nothing to learn an order from")
        x, y, warm = candidates.features[keep], labels[keep].float().argmax(1), candidates.warm[keep]
        flat = x.reshape(-1, x.shape[-1])
        self.mean.copy_(flat.mean(0))
        self.std.copy_(flat.std(0) + 1e-6)
        optimizer = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=1e-4)
        steps = epochs * -(-len(x) // batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=max(steps, 1))
        self.train()
        for _ in range(epochs):
            for batch in torch.randperm(len(x), generator=generator).split(batch_size):
                loss = nn.functional.cross_entropy(self(x[batch]).masked_fill(~warm[batch], float("-inf")), y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
        self.eval()
        return self


def reranked(blended: torch.Tensor, candidates: Candidates, ranker: CandidateRanker) -> torch.Tensor:
    """``blended`` [n, n_items + 1] with its candidates rescored by ``ranker`` (Candidates.rescored)."""
    return blended.clone().scatter_(1, candidates.items, candidates.rescored(ranker.logits(candidates.features)))


def fit_if_better(candidates: Candidates, targets: np.ndarray, metric: str = "ndcg@10",
                  seed: int = 0) -> tuple[CandidateRanker | None, dict[str, dict[str, float]]]:
    """Train on the validation cases if the ranker, trained on one half of them and scored on the other
    (both ways), beats the blend's order on ``metric``; returns (ranker or None, the two halves' metrics)."""
    targets_t = torch.from_numpy(np.asarray(targets))
    labels = candidates.items == targets_t[:, None]
    half = torch.from_numpy(np.random.default_rng(seed).integers(0, 2, len(targets)).astype(bool))
    scores = candidates.blended.clone()
    for part in (half, ~half):
        if not (labels & candidates.warm)[~part].any():
            return None, {}
        ranker = CandidateRanker(candidates.features.shape[-1]).fit(Candidates(*(c[~part] for c in candidates)), labels[~part], seed=seed)
        held = Candidates(*(c[part] for c in candidates))
        scores[part] = held.rescored(ranker.logits(held.features))
    order = torch.argsort(-scores, dim=1, stable=True)
    values = {"blend": ranking_metrics(candidates.items, targets_t),
              "reranked": ranking_metrics(torch.gather(candidates.items, 1, order), targets_t)}
    if values["reranked"][metric] <= values["blend"][metric]:
        return None, values
    return CandidateRanker(candidates.features.shape[-1]).fit(candidates, labels, seed=seed), values
