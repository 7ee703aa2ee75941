"""``standard``: one stage on every training sample; each loss term uses the samples that carry
its label (``MultiTaskLoss`` skips missing grades and masks)."""

from __future__ import annotations

from drscreen.data import Sample
from drscreen.engine.dataset import FundusDataset
from drscreen.engine.trainer import Trainer


def run_standard(trainer: Trainer, train: list[Sample], val: FundusDataset | None) -> None:
    """One stage on every training sample."""
    config = trainer.config
    trainer.run_stage("train", lambda: train, epochs=config.optim.epochs, optim=config.optim, val_dataset=val)
