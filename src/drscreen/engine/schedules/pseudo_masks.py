"""How a run uses partially labelled data, and ``train``, the entry point of a training run.

Schedules (``schedule.name``):

* ``standard``: one stage on every training sample; each loss term uses the samples that carry
  its label (``MultiTaskLoss`` skips missing grades and masks).
* ``alternate``: Tu et al., *SUNet*: the training set is split into the images with lesion masks
  and the images with grades only, and batches alternate between the two
  (``AlternatingBatchSampler``). ``phi`` is the fraction of all training images that keep their
  masks: a seeded random choice among the images that have them; the others' masks are hidden.
* ``pseudo_masks``: Foo et al., *MTUnet*, semi-supervised: stage ``segmentation`` trains on
  the images with masks; the resulting network then predicts masks for the grade-only images,
  with the lesion channels (red: MA, HE; yellow: EX, SE) emptied on DR-0 images as the paper
  prescribes (the optic disc is kept); stage ``multitask`` retrains on both sets.
* ``rounds``: Lin et al., *ELLG*, iterative learning: a ``base`` stage (unless ``base_stage`` is
  off and the rounds start from ``model.checkpoint``), then ``rounds`` times: run the round
  hooks (lesion generation plugs in here; they may add generated samples), then fine-tune on
  the original plus generated samples (stage ``round<r>``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from drscreen.data import Sample, load_dataset, patient_kfold, split_by_patient
from drscreen.engine.checkpoint import read_checkpoint
from drscreen.engine.config import DataConfig, DatasetSpec, ExperimentConfig, optim_with, save_config
from drscreen.engine.dataset import FundusDataset, mask_classes_available
from drscreen.engine.distributed import (
    DistContext,
    all_gather_objects,
    barrier,
    init_distributed,
    shutdown_distributed,
)
from drscreen.engine.inference import eval_loader, iterate_outputs, lesion_probabilities
from drscreen.engine.trainer import Trainer
from drscreen.grading import LESION_BY_CODE
from drscreen.registry import Registry

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------- samples
def load_samples(specs: list[DatasetSpec]) -> list[Sample]:
    """The samples of every dataset in ``specs``, concatenated, each spec's ``drop_labels`` unset."""
    samples: list[Sample] = []
    for spec in specs:
        unknown = dict.fromkeys(spec.drop_labels)
        for sample in load_dataset(spec.name, spec.root, spec.split, **spec.options):
            samples.append(dataclasses.replace(sample, **unknown) if unknown else sample)
    return samples


def load_parts(config: DataConfig) -> dict[str, list[Sample]]:
    """``{"train", "val", "test"}`` samples. With ``folds``, the held-out fold of the training
    patients is the test part; ``balance_grades`` then evens the DR grades of the training part;
    without ``val`` datasets, ``val_fraction`` of the training patients are held out last
    (``split_by_patient``)."""
    train = load_samples(config.train)
    test = load_samples(config.test)
    if config.folds.k is not None:
        train, test = patient_kfold(train, config.folds.k, seed=config.folds.seed)[config.folds.index]
    if config.balance_grades:
        train = balance_grades(train, config.split_seed)
    val = load_samples(config.val)
    if not config.val and config.val_fraction > 0:
        split = split_by_patient(
            train, {"train": 1.0 - config.val_fraction, "val": config.val_fraction}, seed=config.split_seed
        )
        train, val = split["train"], split["val"]
    return {"train": train, "val": val, "test": test}


def balance_grades(samples: list[Sample], seed: int) -> list[Sample]:
    """``samples`` with every DR grade cut down to the count of the rarest grade present (a seeded
    random choice, order kept); samples without a DR grade are all kept. Foo et al. (MTUnet)
    train on EyePACS balanced this way."""
    by_grade: dict[int, list[int]] = {}
    for index, sample in enumerate(samples):
        if sample.dr_grade is not None:
            by_grade.setdefault(sample.dr_grade, []).append(index)
    if not by_grade:
        return samples
    count = min(len(members) for members in by_grade.values())
    rng = np.random.default_rng(seed)
    dropped: set[int] = set()
    for grade in sorted(by_grade):
        members = by_grade[grade]
        dropped.update(rng.choice(members, size=len(members) - count, replace=False).tolist())
    return [s for i, s in enumerate(samples) if i not in dropped]


def keep_mask_fraction(samples: list[Sample], phi: float, classes: tuple[str, ...], seed: int) -> list[Sample]:
    """``samples`` with lesion masks kept on ``round(phi * len(samples))`` of them (at least one).

    The kept images are a seeded random choice among those whose masks cover ``classes``; the
    masks of the others are hidden (``lesion_masks=None``). Fails when too few images have masks.
    """
    candidates = [i for i, s in enumerate(samples) if mask_classes_available(s, classes)]
    wanted = max(1, round(phi * len(samples)))
    if wanted > len(candidates):
        raise ValueError(
            f"schedule.alternate.phi={phi} asks for {wanted} of {len(samples)} training images with "
            f"lesion masks, but only {len(candidates)} have masks for {', '.join(classes)}"
        )
    keep = set(np.random.default_rng(seed).choice(candidates, size=wanted, replace=False).tolist())
    return [s if i in keep else replace(s, lesion_masks=None) for i, s in enumerate(samples)]


def pseudo_mask_channels(
    probs: torch.Tensor, classes: tuple[str, ...], activation: str, threshold: float
) -> np.ndarray:
    """(C, S, S) bool masks from (C, S, S) lesion probabilities.

    Sigmoid models: ``probs >= threshold`` per class; softmax models: the arg-max class of each
    pixel (background included, as 1 - the sum of the class probabilities).
    """
    if activation == "softmax":
        background = (1.0 - probs.sum(dim=0, keepdim=True)).clamp(min=0.0)
        winner = torch.cat([background, probs]).argmax(dim=0)
        masks = torch.stack([winner == c + 1 for c in range(len(classes))])
    else:
        masks = probs >= threshold
    return masks.cpu().numpy()


def clear_lesions_on_dr0(masks: np.ndarray, classes: tuple[str, ...], dr_grade: int | None) -> np.ndarray:
    """``masks`` (C, S, S) with every lesion channel emptied when ``dr_grade`` is 0 (MTUnet:
    no red or yellow lesion on a DR-0 image); non-lesion structures (optic disc) are kept."""
    if dr_grade != 0:
        return masks
    cleared = masks.copy()
    for c, code in enumerate(classes):
        if code not in LESION_BY_CODE or LESION_BY_CODE[code].is_lesion:
            cleared[c] = False
    return cleared


def write_pseudo_masks(trainer: Trainer, samples: list[Sample], out_dir: Path, threshold: float) -> list[Sample]:
    """Predict lesion masks for ``samples`` with the trainer's model and return them as samples
    whose ``lesion_masks`` point to the PNG files written under ``out_dir`` (original image
    geometry; a class with an empty mask is recorded as absent, ``None``)."""
    classes = trainer.model.lesion_classes
    dataset = trainer.dataset(samples, train=False)
    loader = eval_loader(dataset, trainer.config.optim.batch_size, trainer.config.train.workers, trainer.context)
    written: dict[int, dict[str, str | None]] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for batch, output in iterate_outputs(trainer.model, loader, trainer.device, trainer.amp_dtype):
        if output.lesion_logits is None:
            raise ValueError(f"model {trainer.config.model.name} predicts no lesion maps: no pseudo-masks")
        size = tuple(batch.images.shape[-2:])
        probs = lesion_probabilities(output.lesion_logits, trainer.model.lesion_activation, size)
        for row, index in enumerate(batch.indices.tolist()):
            sample = samples[index]
            masks = pseudo_mask_channels(probs[row], classes, trainer.model.lesion_activation, threshold)
            masks = clear_lesions_on_dr0(masks, classes, sample.dr_grade)
            geometry = dataset.prepared(index).geometry
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{sample.dataset}_{sample.id}")
            files: dict[str, str | None] = {}
            for code, mask in zip(classes, masks, strict=True):
                if not mask.any():
                    files[code] = None
                    continue
                path = out_dir / f"{stem}_{code}.png"
                original = geometry.to_original(mask, interpolation="nearest")
                cv2.imwrite(str(path), original.astype(np.uint8) * 255)
                files[code] = str(path)
            written[index] = files
    merged: dict[int, dict[str, str | None]] = {}
    for part in all_gather_objects(written, trainer.context):
        merged.update(part)
    barrier(trainer.context)
    return [replace(s, lesion_masks=merged[i]) for i, s in enumerate(samples)]


# ---------------------------------------------------------------------------------- round hooks
@dataclass(frozen=True)
class RoundContext:
    """What a round hook sees before fine-tuning round ``round`` (1-based).

    ``trainer``: the run (model with the previous stage's weights, ``trainer.predict``,
    ``trainer.dataset``, ``trainer.context`` for rank checks). ``train_samples``: the original
    training samples. ``extra_samples``: the generated samples the previous round trained on.
    ``work_dir``: a folder for this round's generated files.
    """

    round: int
    trainer: Trainer
    train_samples: list[Sample]
    extra_samples: list[Sample]
    work_dir: Path


class RoundHook(Protocol):
    """Runs between ELLG rounds on every rank; returns the generated samples the next round
    trains on beside the original ones (return ``context.extra_samples`` to keep them, or a
    longer list to add). Every rank must return the same list; write files on rank 0 and wait
    (``drscreen.engine.distributed.barrier``)."""

    def __call__(self, context: RoundContext) -> list[Sample]: ...


#: Registered round hooks: ``schedule.rounds.hooks: [{name: ..., kwargs: {...}}]``.
ROUND_HOOKS: Registry[RoundHook] = Registry("round hook")


@ROUND_HOOKS.register("noop", description="adds nothing: rounds are plain fine-tuning")
def noop_hook() -> RoundHook:
    """A hook that keeps the extra samples as they are."""

    def hook(context: RoundContext) -> list[Sample]:
        return context.extra_samples

    return hook


# ------------------------------------------------------------------------------------ schedules
Schedule = Callable[[Trainer, list[Sample], FundusDataset | None], None]


def run_standard(trainer: Trainer, train: list[Sample], val: FundusDataset | None) -> None:
    """One stage on every training sample."""
    config = trainer.config
    trainer.run_stage("train", lambda: train, epochs=config.optim.epochs, optim=config.optim, val_dataset=val)


def run_alternate(trainer: Trainer, train: list[Sample], val: FundusDataset | None) -> None:
    """SUNet: alternate lesion-labelled and grade-only batches, masks kept on a ``phi`` fraction."""
    config = trainer.config
    phi = config.schedule.alternate.phi

    def samples() -> list[Sample]:
        if phi is None:
            return train
        return keep_mask_fraction(train, phi, trainer.model.lesion_classes, config.train.seed)

    trainer.run_stage(
        "train", samples, epochs=config.optim.epochs, optim=config.optim, val_dataset=val, alternate=True
    )


def run_pseudo_masks(trainer: Trainer, train: list[Sample], val: FundusDataset | None) -> None:
    """MTUnet: segmentation stage, pseudo-masks for the grade-only images, multi-task stage."""
    config = trainer.config
    settings = config.schedule.pseudo_masks
    classes = trainer.model.lesion_classes
    if not classes:
        raise ValueError(f"schedule pseudo_masks needs a model with lesion maps; {config.model.name} has none")
    labelled = [s for s in train if mask_classes_available(s, classes)]
    grade_only = [s for s in train if not mask_classes_available(s, classes) and s.dr_grade is not None]
    if not labelled:
        raise ValueError(f"schedule pseudo_masks: no training image has masks for {', '.join(classes)}")
    first = optim_with(config.optim, {"epochs": settings.segmentation_epochs}, "optim")
    trainer.run_stage("segmentation", lambda: labelled, epochs=first.epochs, optim=first, val_dataset=val)

    def multitask_samples() -> list[Sample]:
        pseudo = write_pseudo_masks(trainer, grade_only, trainer.run_dir / "pseudo_masks", settings.threshold)
        trainer.save_weights("segmentation")
        if settings.restart:
            trainer.reinitialise()
        return labelled + pseudo

    trainer.run_stage("multitask", multitask_samples, epochs=config.optim.epochs, optim=config.optim, val_dataset=val)


def run_rounds(trainer: Trainer, train: list[Sample], val: FundusDataset | None) -> None:
    """ELLG: base training, then hooks + fine-tuning, ``rounds`` times."""
    import drscreen.augment  # noqa: F401  (registers the "ellg" hook; imported here: it imports the engine)

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


SCHEDULES: dict[str, Schedule] = {
    "standard": run_standard,
    "alternate": run_alternate,
    "pseudo_masks": run_pseudo_masks,
    "rounds": run_rounds,
}


# ---------------------------------------------------------------------------------- entry point
def prepare_run_dir(config: ExperimentConfig, context: DistContext, resume: bool) -> tuple[Path, bool]:
    """Create the run folder and write ``config.yaml``; returns (folder, whether to resume)."""
    run_dir = config.run.path
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file() and not resume:
        raise FileExistsError(f"{run_dir} already holds a run: pass --resume to continue it, or set run.name")
    if resume and not last.is_file():
        log.info("no checkpoint in %s: starting from scratch", run_dir)
        resume = False
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
    barrier(context)
    return run_dir, resume


def train(config: ExperimentConfig, *, resume: bool = False) -> Path:
    """Train ``config`` (in this process, or as one rank of a torchrun job); returns the run folder.

    Writes ``config.yaml``, ``log.csv``, ``checkpoints/{last,best}.pt`` and ``metrics.json``
    (the final model's validation and test metrics) under ``run.dir/run.name``.
    """
    context = init_distributed(config.train.device)
    try:
        run_dir, resume = prepare_run_dir(config, context, resume)
        random.seed(config.train.seed + context.rank)
        np.random.seed(config.train.seed + context.rank)
        trainer = Trainer(config, context, run_dir, resume=resume)
        parts = load_parts(config.data)
        val = trainer.dataset(parts["val"], train=False) if parts["val"] else None
        SCHEDULES[config.schedule.name](trainer, parts["train"], val)
        results: dict[str, Any] = {"monitor": config.train.monitor}
        for name in ("val", "test"):
            if parts[name]:
                dataset = val if name == "val" and val is not None else trainer.dataset(parts[name], train=False)
                results[name] = trainer.validate(dataset)
        if context.is_main:
            best = run_dir / "checkpoints" / "best.pt"
            if best.is_file():
                meta = read_checkpoint(best)
                value = meta["metrics"].get(config.train.monitor)
                results["best"] = {"stage": meta["stage"], "epoch": meta["epoch"], "value": value}
            write_json(results, run_dir / "metrics.json")
        trainer.close()
        return run_dir
    finally:
        shutdown_distributed(context)


def write_json(data: Any, path: Path) -> None:
    """Write ``data`` as strict JSON (NaN becomes ``null``)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    path.write_text(json.dumps(clean(data), indent=2) + "\n", encoding="utf-8")
