"""Index samplers: epoch-seeded sharding for training, plain sharding for evaluation, and the
alternating lesion / grade-only batches of SUNet training.

Every training order is a pure function of (seed, epoch, rank, world size), so a resumed run
sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class ShardSampler(Sampler[int]):
    """Evaluation order: indices ``rank, rank + world, ...`` (no padding, no duplicates)."""

    def __init__(self, length: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def shard(order: Sequence[int], rank: int, world_size: int) -> list[int]:
    """This rank's part of ``order``, padded by wrapping so that every rank gets as many."""
    if world_size == 1 or not order:
        return list(order)
    per_rank = -(-len(order) // world_size)
    padded = [order[i % len(order)] for i in range(per_rank * world_size)]
    return padded[rank::world_size]


class AlternatingBatchSampler(Sampler[list[int]]):
    """Batches that alternate between two subsets: one of subset ``first``, one of ``second``, ...

    Tu et al. (SUNet) split the training set into the images with lesion masks and the images
    with grades only and train on the two alternately. Here an epoch is one pass over the
    larger subset; each step draws one batch from each subset in turn (``first`` first), and the
    smaller subset is reshuffled and repeated as often as needed. Both subsets are shuffled
    with ``seed + epoch`` and sharded over the ranks; with ``drop_last`` an incomplete batch is
    dropped unless the (sharded) subset is smaller than one batch.

    Shapes: yields lists of ``batch_size`` (or fewer) dataset indices; ``len`` is the number of
    batches per epoch, ``2 * max(batches of first, batches of second)``.
    """

    def __init__(
        self,
        first: Sequence[int],
        second: Sequence[int],
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ) -> None:
        if not first or not second:
            raise ValueError(
                f"alternate training needs images in both subsets, got {len(first)} and {len(second)}"
            )
        self.subsets = (list(first), list(second))
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffling of ``epoch`` (call before iterating)."""
        self.epoch = epoch

    def _batches_per_pass(self, size: int) -> int:
        per_rank = -(-size // self.world_size)
        full, rest = divmod(per_rank, self.batch_size)
        return full if (self.drop_last and full) or not rest else full + 1

    def __len__(self) -> int:
        return 2 * max(self._batches_per_pass(len(s)) for s in self.subsets)

    def _stream(self, subset: list[int], generator: torch.Generator) -> Iterator[list[int]]:
        """Endless batches of ``subset``, reshuffled at every pass."""
        per_pass = self._batches_per_pass(len(subset))
        while True:
            order = [subset[i] for i in torch.randperm(len(subset), generator=generator).tolist()]
            mine = shard(order, self.rank, self.world_size)
            for b in range(per_pass):
                yield mine[b * self.batch_size : (b + 1) * self.batch_size]

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        streams = [self._stream(subset, generator) for subset in self.subsets]
        for step in range(len(self)):
            yield next(streams[step % 2])
