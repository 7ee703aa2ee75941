"""Losses behind one registry (``create_loss``); each module registers its losses on import."""

from drscreen.losses.registry import LOSSES, create_loss, list_losses, register_loss
from drscreen.registry import import_submodules

import_submodules(__name__)

from drscreen.losses.multitask import MULTITASK_PRESETS, MultiTaskLoss  # noqa: E402
from drscreen.losses.targets import MISSING, UNION_POSITIVE, TaskTargets  # noqa: E402

__all__ = [
    "LOSSES",
    "MISSING",
    "MULTITASK_PRESETS",
    "MultiTaskLoss",
    "TaskTargets",
    "UNION_POSITIVE",
    "create_loss",
    "list_losses",
    "register_loss",
]
