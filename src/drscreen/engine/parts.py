"""The data parts of a run: ``{"train", "val", "test"}`` samples from ``DataConfig``."""

from __future__ import annotations

import dataclasses

import numpy as np

from drscreen.data import Sample, load_dataset, patient_kfold, split_by_patient
from drscreen.engine.config import DataConfig, DatasetSpec


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
