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
    from drscreen.engine.config import ConfigError as ConfigError
    from drscreen.engine.config import ExperimentConfig as ExperimentConfig
    from drscreen.engine.config import config_from_dict as config_from_dict
    from drscreen.engine.config import load_config as load_config
    from drscreen.engine.config import save_config as save_config
    from drscreen.engine.evaluation import evaluate as evaluate
    from drscreen.engine.runs import train as train
    from drscreen.engine.schedules import ROUND_HOOKS as ROUND_HOOKS
    from drscreen.engine.schedules import SCHEDULES as SCHEDULES
    from drscreen.engine.schedules import RoundContext as RoundContext
    from drscreen.engine.schedules import RoundHook as RoundHook


__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "drscreen.engine.config": ("ConfigError", "ExperimentConfig", "config_from_dict", "load_config", "save_config"),
        "drscreen.engine.evaluation": ("evaluate",),
        "drscreen.engine.runs": ("train",),
        "drscreen.engine.schedules": ("ROUND_HOOKS", "SCHEDULES", "RoundContext", "RoundHook"),
    },
)
