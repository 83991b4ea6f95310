"""Adversarial training on the embedding layer: FGM and PGD, combinable with any fine-tuning method.

The perturbation is added to the *output* of the word-embedding layer through a forward hook, not
to its weight: with LoRA/IA3/prefix the embedding weight is frozen and has no gradient, but the
gradient with respect to its output always exists. ``loss_fn`` may call the encoder several times
(queries, then items); the i-th call of the attack pass gets the perturbation computed for the
i-th call of the clean pass, so batches must be re-encoded in the same order.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch


@contextmanager
def _perturbed_embeddings(model: torch.nn.Module, perturbations: list[torch.Tensor] | None, record: bool):
    """Add ``perturbations[i]`` to the i-th embedding output; with ``record``, also add a zero leaf
    tensor whose ``.grad`` will be d(loss)/d(embedding output). Yields the list of those leaves."""
    leaves: list[torch.Tensor] = []
    calls = [0]

    def hook(module, inputs, output):
        i = calls[0]
        calls[0] += 1
        if perturbations is not None:
            output = output + perturbations[i]
        if record:
            leaf = torch.zeros_like(output, requires_grad=True)
            leaves.append(leaf)
            output = output + leaf
        return output

    handle = model.get_input_embeddings().register_forward_hook(hook)
    try:
        yield leaves
    finally:
        handle.remove()


def _unit(grad: torch.Tensor) -> torch.Tensor:
    # Normalised per sequence, so short and long texts are pushed equally hard.
    norm = grad.flatten(1).norm(dim=1).clamp(min=1e-12)
    return grad / norm.view(-1, *([1] * (grad.dim() - 1)))


def _project(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    norm = delta.flatten(1).norm(dim=1).clamp(min=1e-12)
    scale = (epsilon / norm).clamp(max=1.0)
    return delta * scale.view(-1, *([1] * (delta.dim() - 1)))


@dataclass(frozen=True)
class NoAdversary:
    name: str = "none"

    def backward(self, model: torch.nn.Module, loss_fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        loss = loss_fn()
        loss.backward()
        return loss.detach()


@dataclass(frozen=True)
class FGM:
    """Fast gradient method: one step of size ``epsilon`` along the gradient; clean + adversarial gradients."""

    name: str = "fgm"
    epsilon: float = 1.0

    def backward(self, model: torch.nn.Module, loss_fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        with _perturbed_embeddings(model, None, record=True) as leaves:
            loss = loss_fn()
            loss.backward()
        perturbations = [self.epsilon * _unit(leaf.grad) for leaf in leaves]
        with _perturbed_embeddings(model, perturbations, record=False):
            loss_fn().backward()
        return loss.detach()


@dataclass(frozen=True)
class PGD:
    """Projected gradient descent: ``steps`` ascent steps of size ``alpha`` kept inside an
    ``epsilon`` ball; only the last adversarial loss contributes gradients to the weights."""

    name: str = "pgd"
    epsilon: float = 1.0
    alpha: float = 0.3
    steps: int = 3

    def backward(self, model: torch.nn.Module, loss_fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        with _perturbed_embeddings(model, None, record=True) as leaves:
            loss = loss_fn()
            loss.backward()
        grads = [leaf.grad for leaf in leaves]
        deltas = [torch.zeros_like(g) for g in grads]
        for step in range(self.steps):
            deltas = [_project(d + self.alpha * _unit(g), self.epsilon) for d, g in zip(deltas, grads)]
            if step < self.steps - 1:
                # Intermediate steps only move the perturbation: gradients w.r.t. it, not the weights.
                with _perturbed_embeddings(model, deltas, record=True) as inner:
                    adversarial = loss_fn()
                    grads = list(torch.autograd.grad(adversarial, inner))
            else:
                with _perturbed_embeddings(model, deltas, record=False):
                    loss_fn().backward()
        return loss.detach()


ADVERSARIES = {a.name: a for a in (NoAdversary(), FGM(), PGD())}


def get_adversary(name: str):
    if name not in ADVERSARIES:
        raise ValueError(f"unknown adversarial training {name!r}; expected one of {sorted(ADVERSARIES)}")
    return ADVERSARIES[name]
