"""The step-based fine-tuning loop the search tuners share (bi-encoder and cross-encoder).

AdamW with a linear warm-up then linear decay to zero at ``max_steps``; one optimizer step per
batch, gradients clipped to norm 1; validation before the first step, every ``eval_every`` steps
and at the last one; stop after ``patience`` validations in a row that did not beat the best, and
put the best validation's trainable weights back. What a batch is, how its loss is computed and
backpropagated and how validation scores are left to the caller, so a tuner's random draws happen
in its own order (the loop draws nothing itself).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
import torch


def linear_warmup_decay(warmup: int, total: int) -> Callable[[int], float]:
    """The learning-rate factor at ``step``: up from 1/warmup to 1 over ``warmup`` steps, then down
    linearly to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


@dataclass
class StepsResult:
    best: float  # best validation score; the weights are the ones that scored it
    initial: float  # validation score before the first step
    best_step: int  # 0: no step beat the initial weights
    steps: int
    history: list[dict]  # {"step": 0, "valid_ndcg@10"}, then {"step", "loss", "valid_ndcg@10"} per validation
    seconds: float  # time spent in the steps (from after the first validation)


def train_steps(
    param_groups: list[dict],
    batches: Callable[[], Iterable[Any]],
    backward: Callable[[Any], torch.Tensor | float],
    validate: Callable[[], float],
    *,
    max_steps: int,
    warmup_fraction: float,
    eval_every: int,
    patience: int,
    weight_decay: float,
    after_backward: Callable[[int], None] | None = None,
    description: str | None = None,
) -> StepsResult:
    """Train the parameters of ``param_groups`` (AdamW groups: ``{"params": [...], "lr": ...}``).

    ``batches()`` starts a new pass over the training data (called again when a pass runs out);
    ``backward(batch)`` computes the batch's loss, backpropagates it and returns it;
    ``after_backward(step)`` runs between the backward and the gradient clipping (0-based step);
    ``validate()`` scores the current weights, higher is better. ``description`` shows a progress bar.
    """
    parameters = [p for group in param_groups for p in group["params"]]
    optimizer = torch.optim.AdamW(param_groups, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear_warmup_decay(int(warmup_fraction * max_steps), max_steps))

    def snapshot() -> list[torch.Tensor]:
        return [p.detach().clone() for p in parameters]

    best = initial = validate()
    best_state, best_step, stale = snapshot(), 0, 0
    history = [{"step": 0, "valid_ndcg@10": best}]
    bar = None
    if description is not None:
        from tqdm import tqdm

        bar = tqdm(total=max_steps, desc=description, unit="step")
    step, losses, started = 0, [], time.perf_counter()
    while step < max_steps and stale < patience:
        pass_start = step
        for batch in batches():
            if step >= max_steps or stale >= patience:
                break
            loss = backward(batch)
            if after_backward is not None:
                after_backward(step)
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(float(loss))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", best=f"{best:.4f}")
            if step % eval_every == 0 or step == max_steps:
                score = validate()
                history.append({"step": step, "loss": float(np.mean(losses[-eval_every:])), "valid_ndcg@10": score})
                if score > best:
                    best, best_state, best_step, stale = score, snapshot(), step, 0
                else:
                    stale += 1
        if step == pass_start:
            raise ValueError("batches() gave no batch: nothing to train on")
    if bar is not None:
        bar.close()
    with torch.no_grad():
        for p, value in zip(parameters, best_state):
            p.copy_(value)
    return StepsResult(best, initial, best_step, step, history, time.perf_counter() - started)
