"""``alternate``: Tu et al., *SUNet*: lesion-labelled and grade-only batches in turn.

The training set is split into the images with lesion masks and the images with grades only, and
batches alternate between the two (``AlternatingBatchSampler``). ``phi`` is the fraction of all
training images that keep their masks: a seeded random choice among the images that have them;
the others' masks are hidden.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from drscreen.data import Sample
from drscreen.engine.dataset import FundusDataset, mask_classes_available
from drscreen.engine.trainer import Trainer


def keep_mask_fraction(samples: list[Sample], phi: float, classes: tuple[str, ...], seed: int) -> list[Sample]:
    """``samples`` with lesion masks kept on ``round(phi * len(samples))`` of them (at least one).

    The kept images are a seeded random choice among those whose masks cover ``classes``; the
    masks of the others are hidden (``lesion_masks=None``). Fails when too few images have masks.
    """
    candidates = [i for i, s in enumerate(samples) if mask_classes_available(s, classes)]
    wanted = max(1, round(phi * len(samples)))
    if wanted > len(candidates):
        raise ValueError(
            f"schedule.alternate.phi={phi} asks for {wanted} of {len(samples)} training images with "
            f"lesion masks, but only {len(candidates)} have masks for {', '.join(classes)}"
        )
    keep = set(np.random.default_rng(seed).choice(candidates, size=wanted, replace=False).tolist())
    return [s if i in keep else replace(s, lesion_masks=None) for i, s in enumerate(samples)]


def run_alternate(trainer: Trainer, train: list[Sample], val: FundusDataset | None) -> None:
    """SUNet: alternate lesion-labelled and grade-only batches, masks kept on a ``phi`` fraction."""
    config = trainer.config
    phi = config.schedule.alternate.phi

    def samples() -> list[Sample]:
        if phi is None:
            return train
        return keep_mask_fraction(train, phi, trainer.model.lesion_classes, config.train.seed)

    trainer.run_stage(
        "train", samples, epochs=config.optim.epochs, optim=config.optim, val_dataset=val, alternate=True
    )
