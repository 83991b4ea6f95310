"""A network's next-item probabilities blended with item-to-item transitions.

The two are good at different things: the network generalises over whole histories, the
transitions count what followed the last items, which is sharp for pairs bought together and
free to update with the latest events. Blending probabilities (not logits) keeps both on one scale:

    p(item) = (1 - w) * softmax(network scores) + w * transitions(item)

``w`` is chosen on the validation cases, like the epoch, from ``WEIGHTS``; 0 keeps the network alone.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from shelfwise.datasets.sequences import Sequences
from shelfwise.evaluation.metrics import evaluate_rankings
from shelfwise.recommenders.baselines import ItemTransitions

WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)


def blended_scores(network_scores: torch.Tensor, transitions: ItemTransitions | None, histories: Sequences, weight: float) -> torch.Tensor:
    """[n, n_items + 1] scores (column 0 = -inf): the network's logits when ``weight`` is 0, else blended probabilities."""
    if not weight or transitions is None:
        return network_scores
    return blend_parts(network_scores, transitions, histories, weight)[2]


def blend_parts(network_scores: torch.Tensor, transitions: ItemTransitions, histories: Sequences,
                weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(the network's probabilities, the transitions' scores, their blend) [n, n_items + 1] each."""
    probabilities = torch.softmax(network_scores, dim=1)
    follows = _follows(transitions, histories, probabilities)
    return probabilities, follows, _mix(probabilities, follows, weight)


def _follows(transitions: ItemTransitions, histories: Sequences, probabilities: torch.Tensor) -> torch.Tensor:
    """The transitions' next-item distribution. An item the counts never saw (new in the catalogue)
    takes the network's probability instead: the counts say nothing about it, and a zero would bury
    it under every item that ever followed anything (text-aware cold items scored 0 HR@10 that way)."""
    follows = torch.from_numpy(transitions.score(histories))
    unseen = torch.from_numpy(transitions.popularity_ == 0)
    follows[:, unseen] = probabilities[:, unseen]
    follows[:, 0] = 0.0  # the padding column, -inf in scores, would poison the sum
    return follows


def _mix(probabilities: torch.Tensor, follows: torch.Tensor, weight: float) -> torch.Tensor:
    out = (1 - weight) * probabilities + weight * follows
    out[:, 0] = float("-inf")
    return out


def choose_weight(network: Callable[[Sequences], torch.Tensor], transitions: ItemTransitions, histories: Sequences,
                  targets: np.ndarray, mask_history: bool, metric: str = "ndcg@10") -> tuple[float, dict[float, dict[str, float]]]:
    """The weight of ``WEIGHTS`` with the best validation ``metric``, and the validation metrics of
    each weight. Each batch is scored by the network and the transitions once, for all weights."""
    def scorings(batch: Sequences) -> dict[float, torch.Tensor]:
        scores = network(batch)
        probabilities = torch.softmax(scores, dim=1)
        follows = _follows(transitions, batch, probabilities)
        return {w: _mix(probabilities, follows, w) if w else scores for w in WEIGHTS}

    # Small batches: all weights' score matrices of a batch are alive at once.
    results = evaluate_rankings(scorings, histories, targets, mask_history=mask_history, batch_size=256)
    values = {w: metrics for w, (metrics, _) in results.items()}
    best = max(values, key=lambda w: (values[w][metric], -w))  # ties go to the smaller weight
    return best, values


def transitions_to_bytes(transitions: ItemTransitions) -> bytes:
    buffer = io.BytesIO()
    m = transitions.transitions_
    np.savez(buffer, data=m.data, indices=m.indices, indptr=m.indptr, shape=np.array(m.shape), popularity=transitions.popularity_)
    return buffer.getvalue()


def transitions_from_bytes(data: bytes) -> ItemTransitions:
    arrays = np.load(io.BytesIO(data))
    out = ItemTransitions()
    out.transitions_ = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"]))
    out.popularity_ = arrays["popularity"]
    return out
