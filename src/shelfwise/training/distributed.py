"""Data-parallel training with ``torchrun`` (PyTorch DDP; gloo on CPU). No home-made cluster code:
torchrun sets RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT, and ``init()`` joins the group."""

from __future__ import annotations

import os

import torch.distributed as dist


def init(backend: str = "gloo") -> bool:
    """Join the process group when launched by torchrun; return True when distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return active()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def broadcast(value):
    """``value`` as rank 0 has it, on every rank (any JSON-like object)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        # Leave together: a rank that tears gloo down while the other still talks to it can abort
        # both ("terminate called without an active exception", seen once in CI at stop 10).
        dist.barrier()
        dist.destroy_process_group()
