"""Process-group set-up for torchrun (DDP) and the few collectives the engine needs.

A run started by ``torchrun`` / ``python -m torch.distributed.run`` finds ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK`` in its environment and joins the process group (NCCL on CUDA, gloo
on CPU), unless the caller already did. Without them everything runs in one process and the
collectives are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job and its device (``owns_group``: joined by ``init_distributed``)."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only process that writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; other names as given."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def init_distributed(device: str = "auto") -> DistContext:
    """Join the torchrun process group if the environment describes one; pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    owns_group = world_size > 1 and not dist.is_initialized()
    if owns_group:
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(minutes=30))
    return DistContext(rank, local_rank, world_size, resolved, owns_group)


def shutdown_distributed(context: DistContext) -> None:
    """Leave the process group if ``init_distributed`` joined it (a caller's own group stays)."""
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistContext) -> None:
    """Wait for every process."""
    if context.distributed:
        dist.barrier()


def all_gather_objects(value: Any, context: DistContext) -> list[Any]:
    """``[value of rank 0, value of rank 1, ...]`` on every rank (picklable values)."""
    if not context.distributed:
        return [value]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast_object(value: Any, context: DistContext) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not context.distributed:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def all_reduce_sum(values: torch.Tensor, context: DistContext) -> torch.Tensor:
    """Element-wise sum of ``values`` over the ranks (returns a new tensor)."""
    total = values.detach().clone()
    if context.distributed:
        reduce_on = context.device if context.device.type == "cuda" else torch.device("cpu")
        total = total.to(reduce_on)
        dist.all_reduce(total)
    return total
