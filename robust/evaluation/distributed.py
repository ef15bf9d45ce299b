"""Running ``robust evaluate`` under ``torchrun``: one process per device, one result.

``torchrun --nproc-per-node N -m robust evaluate ...`` (and multi-node through torchrun's
usual options) sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. Each process then attacks
every N-th batch of each attack (see :mod:`robust.runner`); the per-sample outcomes are
gathered on every rank after each attack, and rank 0 runs the checks and writes the
result, which equals a single-process run with the same seed (timings aside).
"""

from __future__ import annotations

import os

import torch

from robust.errors import RobustError


def world_size() -> int:
    """Processes in this run, from torchrun's environment (1 when not under torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as exc:
        raise RobustError(f"WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}") from exc


def setup(device: str) -> tuple[int, str]:
    """Join the process group when under torchrun; return this process's rank and device.

    CUDA runs use NCCL and the GPU named by ``LOCAL_RANK``; CPU runs use gloo.
    """
    if world_size() <= 1:
        return 0, device
    if not torch.distributed.is_initialized():
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = f"cuda:{local}"
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    return torch.distributed.get_rank(), device


def teardown() -> None:
    """Leave the process group, after a barrier so that no rank exits while others gather."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
