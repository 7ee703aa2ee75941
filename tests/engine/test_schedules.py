"""The partial-label schedules end to end: SUNet alternate batches, MTUnet pseudo-masks, ELLG rounds
with hooks (the ``ellg`` hook itself: test_ellg_round.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from engine_fixtures import tiny_config, trainer_samples

from drscreen.data import Sample
from drscreen.engine import ROUND_HOOKS, RoundContext, train
from drscreen.engine.checkpoint import read_checkpoint
from drscreen.engine.distributed import init_distributed
from drscreen.engine.recorder import read_log
from drscreen.engine.trainer import Trainer


def test_alternate_schedule_alternates_lesion_and_grade_batches(
    synth_root: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """φ = 0.25 of the 16 training images (8 with masks, 8 with grades) keep masks: 4."""
    config = tiny_config(
        synth_root, tmp_path, cache_dir, "schedule.name=alternate", "schedule.alternate.phi=0.25", "optim.epochs=1"
    )
    seen: list[tuple[bool, bool]] = []
    datasets: list[Any] = []

    def record(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if torch.is_grad_enabled():  # training steps, not validation
            has = args[1].has_lesion_masks
            seen.append((bool(has.all()), bool(has.any())))

    original_dataset, original_stage = Trainer.dataset, Trainer.run_stage

    def spy_dataset(self: Trainer, samples: Any, *, train: bool) -> Any:
        dataset = original_dataset(self, samples, train=train)
        if train:
            datasets.append(dataset)
        return dataset

    def spy_stage(self: Trainer, *args: Any, **kwargs: Any) -> None:
        self.loss_fn.register_forward_pre_hook(record, with_kwargs=True)
        original_stage(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "dataset", spy_dataset)
    monkeypatch.setattr(Trainer, "run_stage", spy_stage)
    train(config)
    (dataset,) = datasets
    assert len(dataset) == 16 and sum(dataset.has_masks) == 4
    # 4 lesion images -> 1 batch of 4; 12 others -> 3 batches; 2 x 3 steps, lesion batch first.
    assert seen == [(True, True), (False, False)] * 3


def test_pseudo_mask_schedule(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    config = tiny_config(synth_root, tmp_path, cache_dir, "schedule.name=pseudo_masks",
                         "schedule.pseudo_masks.segmentation_epochs=1", "optim.epochs=1")  # fmt: skip
    run_dir = train(config)
    assert [row["stage"] for row in read_log(run_dir)] == ["segmentation", "multitask"]
    assert [row["train_samples"] for row in read_log(run_dir)] == ["8", "16"]
    assert (run_dir / "checkpoints" / "segmentation.pt").is_file()
    stage = read_checkpoint(run_dir / "checkpoints" / "last.pt")
    pseudo = [Sample(**s) for s in stage["train_samples"] if s["dataset"] == "idrid-grading"]
    assert len(pseudo) == 8 and all(s.lesion_masks is not None for s in pseudo)
    for sample in pseudo:
        assert sample.lesion_masks is not None and set(sample.lesion_masks) == {"MA", "HE", "EX", "SE", "OD"}
        for path in sample.lesion_masks.values():
            assert path is None or path.parent == run_dir / "pseudo_masks"
        if sample.dr_grade == 0:
            assert all(sample.lesion_masks[code] is None for code in ("MA", "HE", "EX", "SE"))


def test_pseudo_masks_are_cleared_on_dr0_images(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    """With a stub network that sees every lesion everywhere, DR-0 images keep only the disc."""
    from drscreen.engine.schedules.pseudo_masks import write_pseudo_masks
    from drscreen.io import read_mask
    from drscreen.models import ModelOutput

    trainer = Trainer(tiny_config(synth_root, tmp_path, cache_dir), init_distributed("cpu"), tmp_path)

    class SeesEverything(torch.nn.Module):
        lesion_classes = trainer.model.lesion_classes
        lesion_activation = "sigmoid"

        def forward(self, images: torch.Tensor) -> ModelOutput:
            b, _, h, w = images.shape
            return ModelOutput(lesion_logits=torch.full((b, len(self.lesion_classes), h, w), 10.0))

    trainer.model = SeesEverything()  # type: ignore[assignment]
    graded = [s for s in trainer_samples(synth_root) if s.dr_grade is not None]
    assert {s.dr_grade == 0 for s in graded} == {True, False}
    pseudo = write_pseudo_masks(trainer, graded, tmp_path / "pseudo", threshold=0.5)
    for before, after in zip(graded, pseudo, strict=True):
        assert after.id == before.id and after.dr_grade == before.dr_grade and after.lesion_masks is not None
        od = after.lesion_masks["OD"]
        assert od is not None and read_mask(od).shape == (128, 128)
        for code in ("MA", "HE", "EX", "SE"):
            assert (after.lesion_masks[code] is None) == (before.dr_grade == 0)


ROUND_CALLS: list[tuple[int, int, int]] = []


@ROUND_HOOKS.register("test_duplicate_first", description="test hook: adds a copy of a training sample")
def _duplicate_first_hook() -> Any:
    def hook(context: RoundContext) -> list[Sample]:
        ROUND_CALLS.append((context.round, len(context.train_samples), len(context.extra_samples)))
        first = context.train_samples[0]
        copy = Sample(**{**first.__dict__, "id": f"generated-{context.round}"})
        return [*context.extra_samples, copy]

    return hook


def test_rounds_call_the_hooks(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    ROUND_CALLS.clear()
    config = tiny_config(synth_root, tmp_path, cache_dir, "schedule.name=rounds", "schedule.rounds.rounds=2",
                         "schedule.rounds.epochs=1", "optim.epochs=1",
                         "schedule.rounds.hooks=[{name: noop}, {name: test_duplicate_first}]",
                         "schedule.rounds.optim={lr: 1.0e-4, schedule: step, step_size: 10}")  # fmt: skip
    run_dir = train(config)
    assert ROUND_CALLS == [(1, 16, 0), (2, 16, 1)]
    rows = read_log(run_dir)
    assert [(r["stage"], r["train_samples"]) for r in rows] == [("base", "16"), ("round1", "17"), ("round2", "18")]
    assert float(rows[1]["lr"]) == pytest.approx(1e-4)
