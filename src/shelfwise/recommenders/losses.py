"""Training losses for next-item models. Each takes hidden states ``[n, d]`` at the positions
that have a target, the target item indexes ``[n]`` and the item table ``[n_items + 1, d]``
(row 0 = padding, never a valid answer), and returns a scalar.

* ``ce``: full-softmax cross-entropy over every item: the strongest, and cheap up to a few
  hundred thousand items at these batch shapes. With ``future_window`` K > 1, targets are
  ``[n, K]``: the next item and the K - 1 after it (0 = none), the k-th weighing
  ``future_decay ** (k - 1)``; the loss is the cross-entropy against that weighted distribution.
* ``sampled``: softmax over the target and ``n_negatives`` uniformly sampled items shared
  across the batch, with the log-Q correction; for catalogues too large for a full softmax.
* ``bce``: binary cross-entropy with one random negative per target, as in the original
  SASRec paper; kept to compare with older published numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossConfig:
    name: str = "ce"  # a key of LOSSES
    n_negatives: int = 256  # for "sampled"
    label_smoothing: float = 0.0  # for "ce"
    # "ce" without label smoothing, next-item models: learn the items up to this many places after each
    # position, the k-th weighing future_decay ** (k - 1). 5 / 0.7 were chosen on Beauty's validation step
    # (window 1 = the next item only; docs/benchmarks.md). Other losses and masked-item models learn the one target they have.
    future_window: int = 5
    future_decay: float = 0.7
    # "ce", text-aware models: whether items that never occur in training count as negatives. Left out (the default),
    # a cold item is scored as one added after training is (SequentialRecommender.add_items): by its text, never
    # pushed down for having no events. amazon_scientific, 10 % of the items held out: cold HR@10 0.0335 -> 0.0490
    # (text), 0.0203 -> 0.0406 (text+id), for -1.3 % / -1.6 % blended validation NDCG@10 on warm targets
    # (docs/benchmarks.md). ID-only models always count them: a cold ID vector means nothing either way.
    cold_negatives: bool = False

    def __post_init__(self):
        for name, kind in (("n_negatives", int), ("future_window", int), ("label_smoothing", (int, float)), ("future_decay", (int, float))):
            value = getattr(self, name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"loss {name} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        if self.future_window < 1:
            raise ValueError(f"future_window must be at least 1, got {self.future_window}")
        if not 0 < self.future_decay <= 1:
            raise ValueError(f"future_decay must be in (0, 1], got {self.future_decay}")

    def window(self, objective: str) -> int:
        """How many items ahead a model with ``objective`` ("next" or "masked") learns with this loss."""
        return self.future_window if objective == "next" and self.name == "ce" and not self.label_smoothing else 1


def full_softmax(hidden: torch.Tensor, targets: torch.Tensor, items: torch.Tensor, config: LossConfig,
                 absent: torch.Tensor | None = None) -> torch.Tensor:
    logits = hidden @ items.T
    logits[:, 0] = float("-inf")  # padding is never the answer
    if absent is not None:  # bool [n_items + 1]: items left out of every row's softmax (never a target)
        logits = logits.masked_fill(absent, float("-inf"))
    if targets.dim() == 2:  # the next item and the ones after it
        weights = config.future_decay ** torch.arange(targets.shape[1], dtype=hidden.dtype, device=hidden.device)
        weights = weights * (targets > 0)
        # Missing targets (0) read the -inf padding column; zero them, as 0 * -inf is NaN.
        log_probs = torch.log_softmax(logits, dim=-1).gather(1, targets).masked_fill(targets == 0, 0.0)
        return -((weights * log_probs).sum(1) / weights.sum(1)).mean()
    if config.label_smoothing:
        # Smoothing mass goes to real items only: the -inf padding column would make it NaN.
        return F.cross_entropy(logits[:, 1:], targets - 1, label_smoothing=config.label_smoothing)
    return F.cross_entropy(logits, targets)


def sampled_softmax(hidden: torch.Tensor, targets: torch.Tensor, items: torch.Tensor, config: LossConfig) -> torch.Tensor:
    n_items = items.shape[0] - 1
    negatives = torch.randint(1, n_items + 1, (config.n_negatives,), device=hidden.device)
    positive_logits = (hidden * items[targets]).sum(-1, keepdim=True)
    negative_logits = hidden @ items[negatives].T
    # A sampled negative that is the row's own target is not a negative.
    negative_logits = negative_logits.masked_fill(negatives[None, :] == targets[:, None], float("-inf"))
    # Uniform sampling makes log Q constant over negatives; correcting it keeps the scores
    # on the full-softmax scale: each negative stands for n_items / n_negatives items.
    negative_logits = negative_logits + torch.log(torch.tensor(n_items / config.n_negatives, device=hidden.device))
    logits = torch.cat([positive_logits, negative_logits], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long, device=hidden.device))


def bce_one_negative(hidden: torch.Tensor, targets: torch.Tensor, items: torch.Tensor, config: LossConfig) -> torch.Tensor:
    n_items = items.shape[0] - 1
    negatives = torch.randint(1, n_items + 1, targets.shape, device=hidden.device)
    positive = (hidden * items[targets]).sum(-1)
    negative = (hidden * items[negatives]).sum(-1)
    return F.binary_cross_entropy_with_logits(positive, torch.ones_like(positive)) + F.binary_cross_entropy_with_logits(
        negative, torch.zeros_like(negative)
    )


LOSSES = {"ce": full_softmax, "sampled": sampled_softmax, "bce": bce_one_negative}


def compute_loss(hidden: torch.Tensor, targets: torch.Tensor, items: torch.Tensor, config: LossConfig,
                 absent: torch.Tensor | None = None) -> torch.Tensor:
    if config.name not in LOSSES:
        raise ValueError(f"unknown loss {config.name!r}; choose one of {sorted(LOSSES)}")
    if absent is not None:
        return LOSSES[config.name](hidden, targets, items, config, absent)
    return LOSSES[config.name](hidden, targets, items, config)
