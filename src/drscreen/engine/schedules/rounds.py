"""``rounds``: Lin et al., *ELLG*, iterative learning.

A ``base`` stage (unless ``base_stage`` is off and the rounds start from ``model.checkpoint``),
then ``rounds`` times: run the round hooks (``ROUND_HOOKS``; ELLG's lesion generation,
``drscreen.engine.schedules.ellg_round``, plugs in here; they may add generated samples), then
fine-tune on the original plus generated samples (stage ``round<r>``).
"""

from __future__ import annotations

from drscreen.data import Sample
from drscreen.engine.config import optim_with
from drscreen.engine.dataset import FundusDataset
from drscreen.engine.schedules.round_hooks import ROUND_HOOKS, RoundContext
from drscreen.engine.trainer import Trainer


def run_rounds(trainer: Trainer, train: list[Sample], val: FundusDataset | None) -> None:
    """ELLG: base training, then hooks + fine-tuning, ``rounds`` times."""
    config = trainer.config
    settings = config.schedule.rounds
    hooks = [ROUND_HOOKS.create(spec.name, **spec.kwargs) for spec in settings.hooks]
    if settings.base_stage:
        trainer.run_stage("base", lambda: train, epochs=config.optim.epochs, optim=config.optim, val_dataset=val)
    round_optim = optim_with(config.optim, {"epochs": settings.epochs, **settings.optim}, "schedule.rounds.optim")
    for number in range(1, settings.rounds + 1):

        def round_samples(number: int = number) -> list[Sample]:
            # The previous stage trained on the original samples followed by its extras (none
            # before the first round when the base stage is skipped).
            extra = trainer.current_samples[len(train) :]
            work_dir = trainer.run_dir / "rounds" / str(number)
            for hook in hooks:
                extra = list(hook(RoundContext(number, trainer, train, extra, work_dir)))
            return train + extra

        trainer.run_stage(
            f"round{number}", round_samples, epochs=round_optim.epochs, optim=round_optim, val_dataset=val
        )
