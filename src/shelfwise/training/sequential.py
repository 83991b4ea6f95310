"""The next-item task for the training loop: batches of whole user sequences, the loss, and
validation by full ranking. Works for every model in ``recommenders.registry`` (causal models
predict the next item at every position; BERT4Rec recovers masked items)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from shelfwise.datasets.sequences import Sequences
from shelfwise.evaluation.metrics import evaluate_ranking
from shelfwise.recommenders.item_repr import text_table
from shelfwise.recommenders.losses import LossConfig, compute_loss
from shelfwise.training.batches import left_pad, length_batches, trim, windows


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@torch.no_grad()
def score_histories(model: nn.Module, histories: Sequences, item_vectors: torch.Tensor | None = None) -> torch.Tensor:
    """[n, n_items + 1] scores of every item as the next one after each history (column 0 = -inf).
    ``item_vectors``: the model's output embeddings when the caller has them already (a text-aware table computes them)."""
    model = unwrap(model)
    c = model.config
    was_training = model.training
    model.eval()
    if model.objective == "masked":  # the next item is a masked slot after the history
        inputs = left_pad(histories, c.max_len - 1)
        inputs = np.concatenate([inputs, np.full((len(inputs), 1), model.mask_token)], axis=1)
    else:
        inputs = left_pad(histories, c.max_len)
    hidden = model(torch.from_numpy(inputs))[:, -1]
    scores = hidden @ (model.output_embeddings() if item_vectors is None else item_vectors).T
    scores[:, 0] = float("-inf")
    model.train(was_training)
    return scores


class NextItemTask:
    def __init__(
        self,
        model: nn.Module,
        train: Sequences,
        valid_history: Sequences | None = None,
        valid_target: np.ndarray | None = None,
        batch_size: int = 128,
        loss: LossConfig | None = None,
        ks=(10, 20),
        mask_history: bool = True,
    ):
        self.loss_config = loss or LossConfig()
        self.batch_size = batch_size
        self.objective = model.objective
        self.window = self.loss_config.window(self.objective)
        self.mask_token = getattr(model, "mask_token", 0)
        self.mask_ratio = getattr(model.config, "mask_ratio", 0.0)
        width = model.config.max_len + (1 if self.objective == "next" else 0)
        self.rows = windows(train, width)  # [m, width], left-padded
        # Items that never occur in these sequences, left out of a text-aware model's softmax (LossConfig.cold_negatives).
        self.absent = None
        c = self.loss_config
        if text_table(unwrap(model)) is not None and c.name == "ce" and not (
                c.cold_negatives or c.label_smoothing):  # smoothing would spread mass onto the left-out items
            self.absent = torch.from_numpy(np.bincount(train.items, minlength=train.n_items + 1) == 0)
        self.lengths = (self.rows > 0).sum(1)
        self.valid_history, self.valid_target = valid_history, valid_target
        self.ks, self.mask_history = ks, mask_history

    def batches(self, epoch: int, rng: np.random.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for index in length_batches(self.lengths, self.batch_size, rng):
            rows = trim(self.rows[index])
            if self.objective == "next":
                out.append((torch.from_numpy(rows[:, :-1].copy()), torch.from_numpy(self._next_targets(rows))))
            else:
                out.append(self._mask(rows, rng))
        return out

    def _next_targets(self, rows: np.ndarray) -> np.ndarray:
        """[b, w - 1] next items, or [b, w - 1, K] the next item and the K - 1 after it (0 = none)."""
        k = self.window
        if k == 1:
            return rows[:, 1:].copy()
        padded = np.pad(rows, ((0, 0), (0, k - 1)))
        return np.stack([padded[:, 1 + j : rows.shape[1] + j] for j in range(k)], axis=-1)

    def _mask(self, rows: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        real = rows > 0
        masked = real & (rng.random(rows.shape) < self.mask_ratio)
        masked[~masked.any(1), -1] = True  # every row trains on something: its last item, as at inference
        inputs = np.where(masked, self.mask_token, rows)
        targets = np.where(masked, rows, 0)
        return torch.from_numpy(inputs), torch.from_numpy(targets)

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        inputs, targets = batch
        hidden = model(inputs)
        where = (targets[..., 0] if targets.dim() == 3 else targets) > 0
        return compute_loss(hidden[where], targets[where], unwrap(model).output_embeddings(), self.loss_config, self.absent)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        if self.valid_history is None:
            return {}
        metrics, _ = evaluate_ranking(lambda h: score_histories(model, h), self.valid_history, self.valid_target,
                                      ks=self.ks, mask_history=self.mask_history)
        return metrics
