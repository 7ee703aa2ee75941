"""Losses behind one registry (``create_loss``); each module registers its losses on import."""

from drscreen.losses.registry import LOSSES, create_loss, list_losses, register_loss
from drscreen.registry import import_submodules

import_submodules(__name__)

__all__ = ["LOSSES", "create_loss", "list_losses", "register_loss"]
