"""Optimiser and per-iteration learning-rate schedule from an ``OptimConfig``."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from drscreen.engine.config import OptimConfig


def build_optimizer(parameters: Iterable[nn.Parameter], config: OptimConfig) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay), Adam (L2 weight decay) or SGD with momentum."""
    params = [p for p in parameters if p.requires_grad]
    if config.name == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.name == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.nesterov
    )


@dataclass
class LRFactor:
    """Multiplier of the base learning rate after ``step`` optimiser steps (``LambdaLR`` lambda).

    A picklable callable whose state is its fields, so ``LambdaLR.state_dict`` round-trips.
    """

    schedule: str
    steps_per_epoch: int
    epochs: int
    warmup_epochs: float
    min_factor: float
    step_size: int
    gamma: float
    step_start: int

    def __call__(self, step: int) -> float:
        epoch = step / self.steps_per_epoch
        warmup = min(1.0, (step + 1) / (self.warmup_epochs * self.steps_per_epoch)) if self.warmup_epochs else 1.0
        if self.schedule == "cosine":
            progress = min(1.0, epoch / self.epochs)
            factor = self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        elif self.schedule == "step":
            factor = self.gamma ** (max(0, math.floor(epoch) - self.step_start) // self.step_size)
        else:
            factor = 1.0
        return warmup * factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepped once per optimiser step, following ``config.schedule``."""
    factor = LRFactor(
        schedule=config.schedule,
        steps_per_epoch=max(1, steps_per_epoch),
        epochs=config.epochs,
        warmup_epochs=config.warmup_epochs,
        min_factor=config.min_lr / config.lr,
        step_size=config.step_size,
        gamma=config.gamma,
        step_start=config.step_start,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
