"""What runs between the rounds of the ``rounds`` schedule: ``RoundContext``, ``ROUND_HOOKS``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from drscreen.data import Sample
from drscreen.engine.trainer import Trainer
from drscreen.registry import Registry


@dataclass(frozen=True)
class RoundContext:
    """What a round hook sees before fine-tuning round ``round`` (1-based).

    ``trainer``: the run (model with the previous stage's weights, ``trainer.predict``,
    ``trainer.dataset``, ``trainer.context`` for rank checks). ``train_samples``: the original
    training samples. ``extra_samples``: the generated samples the previous round trained on.
    ``work_dir``: a folder for this round's generated files.
    """

    round: int
    trainer: Trainer
    train_samples: list[Sample]
    extra_samples: list[Sample]
    work_dir: Path


class RoundHook(Protocol):
    """Runs between ELLG rounds on every rank; returns the generated samples the next round
    trains on beside the original ones (return ``context.extra_samples`` to keep them, or a
    longer list to add). Every rank must return the same list; write files on rank 0 and wait
    (``drscreen.engine.distributed.barrier``)."""

    def __call__(self, context: RoundContext) -> list[Sample]: ...


#: Registered round hooks: ``schedule.rounds.hooks: [{name: ..., kwargs: {...}}]``.
ROUND_HOOKS: Registry[RoundHook] = Registry("round hook")


@ROUND_HOOKS.register("noop", description="adds nothing: rounds are plain fine-tuning")
def noop_hook() -> RoundHook:
    """A hook that keeps the extra samples as they are."""

    def hook(context: RoundContext) -> list[Sample]:
        return context.extra_samples

    return hook
