"""Screening in many processes or on many nodes (``torchrun``): one shard of the inputs per rank.

Every rank collects the same ordered input list and screens ``shard(records, rank, world_size)``
(every ``world_size``-th input from its rank on: stable, and balanced when inputs are sorted by
size or camera). Results are per-image files, so the ranks write into the same output folder
(on a shared file system across nodes); after a barrier, rank 0 rebuilds the tables and the
report from all of them. The barriers go through ``torch.distributed`` with the gloo backend, which
needs no GPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

T = TypeVar("T")

#: How long a rank waits at a barrier for the others (a shard of a large programme takes hours).
BARRIER_TIMEOUT = timedelta(hours=48)


@dataclass(frozen=True)
class RankInfo:
    """Where this process stands in a ``torchrun`` job: global ``rank`` of ``world_size``, and
    ``local_rank`` on its node (which GPU it uses)."""

    rank: int
    world_size: int
    local_rank: int


def rank_from_environment(environment: Mapping[str, str] | None = None) -> RankInfo | None:
    """The rank set by ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); None for one process."""
    env = os.environ if environment is None else environment
    world_size = int(env.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return None
    return RankInfo(rank=int(env["RANK"]), world_size=world_size, local_rank=int(env.get("LOCAL_RANK", "0")))


def shard(records: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The records of ``rank``: ``records[rank::world_size]``."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return list(records[rank::world_size])


def rank_device(device: str, local_rank: int) -> str:
    """``cuda`` becomes this rank's GPU ``cuda:<local_rank>``; any other device is kept."""
    return f"cuda:{local_rank}" if device == "cuda" else device


@contextmanager
def process_group() -> Iterator[None]:
    """Join the ``torchrun`` job's gloo process group for the duration (env:// rendezvous)."""
    import torch.distributed as dist

    dist.init_process_group(backend="gloo", timeout=BARRIER_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank of the process group gets here."""
    import torch.distributed as dist

    dist.barrier()
