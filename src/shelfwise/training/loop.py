"""The one training loop, for every model in the project.

AdamW, linear warm-up then cosine decay, gradient clipping, early stopping on a validation
metric, crash-safe checkpoints with resume, seeded determinism, a progress bar showing the
loss and the validation metric, and data-parallel training under torchrun (DDP, gloo on CPU).

What is trained is described by a ``Task``: how to cut an epoch into batches, the loss of
one batch, and how to evaluate the model. The loop itself knows nothing about recommenders.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from shelfwise.training import distributed
from shelfwise.training.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint


@dataclass
class TrainConfig:
    # Defaults: SASRec with full-softmax CE on whole sequences (measured on Amazon Beauty, held
    # unchanged on other datasets; see docs/benchmarks-sequential.md).
    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.1  # AdamW; not applied to biases, norms and embeddings
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 100
    decay: str = "cosine"  # "cosine" to min_lr_ratio * lr at the last epoch, or "constant"
    min_lr_ratio: float = 0.05
    clip_norm: float = 1.0  # 0 = no clipping
    metric: str = "ndcg@10"  # validation metric for early stopping and model selection
    patience: int = 5  # epochs without improvement before stopping; 0 = never stop early
    seed: int = 0
    checkpoint_dir: str | None = None  # save after every epoch and resume from here
    max_seconds: float | None = None  # stop after the epoch that crosses this wall time
    precision: str = "fp32"  # "bf16": autocast the forward and loss to bfloat16 (fast on CPUs with AMX / AVX-512 BF16)
    progress: bool = True


class Task(Protocol):
    def batches(self, epoch: int, rng: np.random.Generator) -> Sequence[Any]:
        """All batches of one epoch, in order."""

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The scalar loss of one batch; ``model`` may be wrapped in DDP, call it for the forward."""

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics (model is the plain module, in eval mode, under no_grad)."""


@dataclass
class TrainResult:
    best_epoch: int = -1  # 0-based; -1 when nothing was evaluated
    best_metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)  # per epoch: epoch, loss, lr, seconds, metrics
    epochs_run: int = 0
    train_seconds: float = 0.0  # training only, summed over epochs (this process and earlier ones)
    eval_seconds: float = 0.0
    stopped: str = ""  # why training ended

    def to_dict(self) -> dict:
        return asdict(self)


def learning_rate(step: int, total_steps: int, c: TrainConfig) -> float:
    if step < c.warmup_steps:
        return c.lr * (step + 1) / c.warmup_steps
    if c.decay == "constant":
        return c.lr
    progress = min((step - c.warmup_steps) / max(total_steps - c.warmup_steps, 1), 1.0)
    return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: nn.Module, c: TrainConfig) -> torch.optim.AdamW:
    # Weight decay only on matrices of linear layers; decaying embeddings hurts rare items.
    # A parameter with an ``lr_scale`` attribute (a pretrained backbone fine-tuned beside fresh
    # heads) gets its own groups, at that multiple of the scheduled learning rate.
    groups: dict[tuple[bool, float], list] = {(True, 1.0): [], (False, 1.0): []}
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            decay = isinstance(module, (nn.Linear, nn.GRU, nn.LSTM)) and "weight" in name
            groups.setdefault((decay, getattr(p, "lr_scale", 1.0)), []).append(p)
    return torch.optim.AdamW(
        [{"params": params, "weight_decay": c.weight_decay if decay else 0.0, "lr_scale": scale} for (decay, scale), params in groups.items()],
        lr=c.lr, betas=c.betas,
    )


def train(model: nn.Module, task: Task, config: TrainConfig) -> TrainResult:
    """Train ``model`` in place; on return it holds the weights of the best validation epoch."""
    c = config
    rank, world = distributed.rank(), distributed.world_size()
    torch.manual_seed(c.seed + rank)  # dropout and sampling differ across ranks, repeatably
    optimizer = make_optimizer(model, c)
    result, start_epoch, step = TrainResult(), 0, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    best_value, bad_epochs = -math.inf, 0
    last = Path(c.checkpoint_dir) / "last" if c.checkpoint_dir else None
    if last is not None and has_checkpoint(last):
        saved = load_checkpoint(last, model, optimizer)
        if rank:  # rank 0 restored its own RNG state from the checkpoint; the others start a fresh stream
            torch.manual_seed(c.seed + rank + 7919 * (saved["epoch"] + 1))
        result = TrainResult(**saved["result"])
        start_epoch, step, bad_epochs = saved["epoch"] + 1, saved["step"], saved["bad_epochs"]
        best_value = result.best_metrics.get(c.metric, -math.inf)
        best_file = Path(c.checkpoint_dir) / "best" / "model.safetensors"
        if best_file.exists():
            best_state = load_file(str(best_file))
    trainable = nn.parallel.DistributedDataParallel(model) if distributed.active() else model
    started = time.time()
    stop = result.stopped != "" and start_epoch > 0
    for epoch in range(start_epoch, c.epochs):
        if stop:
            break
        rng = np.random.default_rng([c.seed, epoch])  # the same batches on every rank and after a resume
        batches = list(task.batches(epoch, rng))
        per_rank = len(batches) // world if world > 1 else len(batches)  # DDP needs equal step counts
        mine = batches[rank : per_rank * world : world] if world > 1 else batches
        total_steps = c.epochs * per_rank
        model.train()
        t0 = time.time()
        loss_sum, loss_n = 0.0, 0
        bar = _progress(mine, f"epoch {epoch + 1}/{c.epochs}", c.progress and distributed.is_main())
        for batch in bar:
            lr = learning_rate(step, total_steps, c)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=c.precision == "bf16"):
                loss = task.loss(trainable, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if c.clip_norm:
                nn.utils.clip_grad_norm_(model.parameters(), c.clip_norm)
            optimizer.step()
            step += 1
            loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
            if hasattr(bar, "set_postfix") and loss_n % 10 == 0:
                shown = {f"best_val_{c.metric}": f"{best_value:.4f}"} if best_value > -math.inf else {}
                bar.set_postfix(loss=f"{loss_sum / loss_n:.4f}", **shown)
        train_seconds = time.time() - t0
        t1 = time.time()
        metrics = {}
        if distributed.is_main():
            model.eval()
            with torch.no_grad():
                metrics = task.evaluate(model)
        metrics = distributed.broadcast(metrics)
        eval_seconds = time.time() - t1
        value = metrics.get(c.metric, -math.inf)
        # Without a validation metric there is nothing to select on: the latest weights are kept.
        improved = value > best_value or c.metric not in metrics
        if improved:
            best_value, bad_epochs = value, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            result.best_epoch, result.best_metrics = epoch, dict(metrics)
        else:
            bad_epochs += 1
        result.history.append(
            {"epoch": epoch, "loss": loss_sum / max(loss_n, 1), "lr": lr if loss_n else c.lr, "train_seconds": train_seconds,
             "eval_seconds": eval_seconds, "metrics": metrics}
        )
        result.epochs_run = epoch + 1
        result.train_seconds += train_seconds
        result.eval_seconds += eval_seconds
        if hasattr(bar, "write"):
            bar.write(f"epoch {epoch + 1}: loss {loss_sum / max(loss_n, 1):.4f}  val {c.metric} {value:.4f}"
                      f"{'  *' if improved else ''}  ({train_seconds:.1f}s + {eval_seconds:.1f}s eval)")
        if c.patience and bad_epochs >= c.patience:
            result.stopped, stop = f"no improvement of {c.metric} for {c.patience} epochs", True
        elif c.max_seconds is not None and time.time() - started >= c.max_seconds:
            result.stopped, stop = f"time budget of {c.max_seconds:.0f}s reached", True
        if last is not None and distributed.is_main():
            if improved:
                save_checkpoint(Path(c.checkpoint_dir) / "best", model, optimizer, {"epoch": epoch})
            save_checkpoint(last, model, optimizer, {"epoch": epoch, "step": step, "bad_epochs": bad_epochs,
                                                     "result": result.to_dict(), "config": _jsonable(asdict(c))})
    if not result.stopped:
        result.stopped = f"ran all {c.epochs} epochs"
    model.load_state_dict(best_state)
    return result


def _progress(batches, description: str, enabled: bool):
    if not enabled:
        return batches
    from tqdm.auto import tqdm

    return tqdm(batches, desc=description, leave=False, dynamic_ncols=True)


def _jsonable(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
