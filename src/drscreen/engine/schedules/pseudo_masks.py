"""``pseudo_masks``: Foo et al., *MTUnet*, semi-supervised lesion masks.

Stage ``segmentation`` trains on the images with masks; the resulting network then predicts masks
for the grade-only images, with the lesion channels (red: MA, HE; yellow: EX, SE) emptied on DR-0
images as the paper prescribes (the optic disc is kept); stage ``multitask`` retrains on both sets.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from drscreen.data import Sample
from drscreen.engine.config import optim_with
from drscreen.engine.dataset import FundusDataset, mask_classes_available
from drscreen.engine.distributed import all_gather_objects, barrier
from drscreen.engine.inference import eval_loader, iterate_probabilities
from drscreen.engine.trainer import Trainer
from drscreen.grading import LESION_BY_CODE


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
    for batch, probabilities in iterate_probabilities(trainer.predictor(), loader):
        probs = probabilities.lesions
        if probs is None:
            raise ValueError(f"model {trainer.config.model.name} predicts no lesion maps: no pseudo-masks")
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
