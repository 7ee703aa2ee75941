"""The loss registry and ``create_loss``."""

from __future__ import annotations

from typing import Any

from torch import nn

from drscreen.registry import Registry

LOSSES: Registry[nn.Module] = Registry("loss")
register_loss = LOSSES.register


def create_loss(name: str, **config: Any) -> nn.Module:
    """Build the registered loss ``name`` with ``config``."""
    return LOSSES.create(name, **config)


def list_losses() -> list[str]:
    """Names of every registered loss."""
    return LOSSES.names()
