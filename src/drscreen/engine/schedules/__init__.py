"""How a run uses partially labelled data: one module per procedure (``schedule.name``).

* ``standard``: one stage on every training sample.
* ``alternate``: SUNet's alternating lesion-labelled and grade-only batches (``phi``).
* ``pseudo_masks``: MTUnet's segmentation stage, pseudo-masks, then a multi-task stage.
* ``rounds``: ELLG's iterative rounds with hooks (``round_hooks``; the ``ellg`` hook is in
  ``ellg_round``).
"""

from __future__ import annotations

from collections.abc import Callable

from drscreen.data import Sample
from drscreen.engine.dataset import FundusDataset
from drscreen.engine.schedules import ellg_round  # noqa: F401  (registers the "ellg" round hook)
from drscreen.engine.schedules.alternate import run_alternate
from drscreen.engine.schedules.pseudo_masks import run_pseudo_masks
from drscreen.engine.schedules.round_hooks import ROUND_HOOKS, RoundContext, RoundHook
from drscreen.engine.schedules.rounds import run_rounds
from drscreen.engine.schedules.standard import run_standard
from drscreen.engine.trainer import Trainer

#: A procedure: (trainer, training samples, validation dataset or None) -> trains the run's stages.
Schedule = Callable[[Trainer, list[Sample], FundusDataset | None], None]

SCHEDULES: dict[str, Schedule] = {
    "standard": run_standard,
    "alternate": run_alternate,
    "pseudo_masks": run_pseudo_masks,
    "rounds": run_rounds,
}

__all__ = ["ROUND_HOOKS", "SCHEDULES", "RoundContext", "RoundHook", "Schedule"]
