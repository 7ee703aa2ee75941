"""The training and evaluation engine: YAML config -> run folder, for every registered model.

``load_config`` reads an experiment; ``train`` runs it (single process, or one rank of a
torchrun job); ``evaluate`` scores a checkpoint. Partially labelled data is handled by the
schedules (``standard``, SUNet ``alternate``, MTUnet ``pseudo_masks``, ELLG ``rounds``);
ELLG's lesion generation plugs into ``ROUND_HOOKS``. See docs/training.md.

Names resolve on first use (PEP 562), so importing the package (or ``drscreen.engine.config``)
does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drscreen._lazy import lazy_exports

if TYPE_CHECKING:
    from drscreen.engine.config import ConfigError, ExperimentConfig, config_from_dict, load_config, save_config
    from drscreen.engine.evaluation import evaluate
    from drscreen.engine.runs import train
    from drscreen.engine.schedules import ROUND_HOOKS, SCHEDULES, RoundContext, RoundHook

__all__ = [
    "ROUND_HOOKS",
    "SCHEDULES",
    "ConfigError",
    "ExperimentConfig",
    "RoundContext",
    "RoundHook",
    "config_from_dict",
    "evaluate",
    "load_config",
    "save_config",
    "train",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "drscreen.engine.config": ("ConfigError", "ExperimentConfig", "config_from_dict", "load_config", "save_config"),
        "drscreen.engine.evaluation": ("evaluate",),
        "drscreen.engine.runs": ("train",),
        "drscreen.engine.schedules": ("ROUND_HOOKS", "SCHEDULES", "RoundContext", "RoundHook"),
    },
)
