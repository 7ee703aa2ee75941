"""The training and evaluation engine: YAML config -> run folder, for every registered model.

``load_config`` reads an experiment; ``train`` runs it (single process, or one rank of a
torchrun job); ``evaluate`` scores a checkpoint. Partially labelled data is handled by the
schedules (``standard``, SUNet ``alternate``, MTUnet ``pseudo_masks``, ELLG ``rounds``);
ELLG's lesion generation plugs into ``ROUND_HOOKS``. See docs/training.md.
"""

from drscreen.engine.config import ConfigError, ExperimentConfig, config_from_dict, load_config, save_config
from drscreen.engine.evaluate import evaluate
from drscreen.engine.schedules import ROUND_HOOKS, SCHEDULES, RoundContext, RoundHook, train

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
