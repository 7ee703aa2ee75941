"""Patient-level splits: every image of a patient (both eyes) lands in the same split.

Samples without ``patient_id`` are their own patient. Stratification uses each patient's worst
DR grade (unlabelled patients form their own stratum), so the grade mix is kept in every split.
"""

from __future__ import annotations

import csv
import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from drscreen.data.errors import DatasetError
from drscreen.data.sample import Sample

PatientKey = tuple[str, str, str]
SPLIT_FILE_COLUMNS = ("split", "dataset", "id", "patient_id", "eye", "dr_grade", "dme_grade", "image_path")
_DEFAULT_NAMES: dict[int, tuple[str, ...]] = {2: ("train", "val"), 3: ("train", "val", "test")}
_UNLABELLED = -1


def patient_key(sample: Sample) -> PatientKey:
    """Identity of the sample's patient: (dataset, "patient", patient_id), or its own image's id."""
    if sample.patient_id is not None:
        return (sample.dataset, "patient", sample.patient_id)
    return (sample.dataset, "image", sample.id)


def split_by_patient(
    samples: Sequence[Sample],
    fractions: Sequence[float] | Mapping[str, float] = (0.8, 0.1, 0.1),
    *,
    seed: int = 0,
    stratify: bool = True,
) -> dict[str, list[Sample]]:
    """Split ``samples`` into named parts by patient.

    ``fractions``: a mapping {split name: fraction}, or 2 or 3 fractions for ("train", "val"[,
    "test"]); they must sum to 1 and count patients, not images. Within each stratum patients are
    shuffled with ``seed`` and cut by the fractions; leftover patients go to the split furthest
    below its overall target, so small strata still reach every split over the whole set. The
    result depends only on the samples and ``seed``, not on their order; each split keeps the
    input order of its samples.
    """
    names, weights = _split_fractions(fractions)
    patients = _patients(samples)
    strata: dict[int, list[PatientKey]] = defaultdict(list)
    for key, members in patients.items():
        strata[_worst_grade(members) if stratify else 0].append(key)

    rng = np.random.default_rng(seed)
    target = np.zeros(len(names))
    assigned = np.zeros(len(names))
    split_of: dict[PatientKey, str] = {}
    for stratum in sorted(strata):
        keys = sorted(strata[stratum])
        counts = np.floor(len(keys) * weights).astype(int)
        target += len(keys) * weights
        for _ in range(len(keys) - int(counts.sum())):
            counts[int(np.argmax(target - assigned - counts))] += 1
        assigned += counts
        shuffled = [keys[i] for i in rng.permutation(len(keys))]
        start = 0
        for name, count in zip(names, counts, strict=True):
            split_of.update((key, name) for key in shuffled[start : start + count])
            start += count

    result: dict[str, list[Sample]] = {name: [] for name in names}
    for sample in samples:
        result[split_of[patient_key(sample)]].append(sample)
    return result


def patient_kfold(
    samples: Sequence[Sample], k: int = 5, *, seed: int = 0, stratify: bool = True
) -> list[tuple[list[Sample], list[Sample]]]:
    """``k`` (train, validation) folds with each patient in exactly one validation fold.

    Stratified by the patient's worst grade (scikit-learn's ``StratifiedGroupKFold``), or
    ``GroupKFold`` when ``stratify`` is False; shuffled with ``seed``.
    """
    keys = [patient_key(sample) for sample in samples]
    patients = _patients(samples)
    group_ids = {key: number for number, key in enumerate(sorted(patients))}
    groups = np.array([group_ids[key] for key in keys])
    strata = np.array([_worst_grade(patients[key]) for key in keys])
    splitter = (
        StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        if stratify
        else GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    )
    return [
        ([samples[i] for i in train], [samples[i] for i in validation])
        for train, validation in splitter.split(np.zeros(len(samples)), strata, groups)
    ]


def write_splits(splits: Mapping[str, Sequence[Sample]], path: str | os.PathLike[str]) -> None:
    """Write one CSV row per sample (columns ``SPLIT_FILE_COLUMNS``), e.g. to freeze a split."""
    with Path(path).open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(SPLIT_FILE_COLUMNS)
        for name, members in splits.items():
            for s in members:
                writer.writerow(
                    [name, s.dataset, s.id, s.patient_id or "", s.eye or "",
                     "" if s.dr_grade is None else s.dr_grade, "" if s.dme_grade is None else s.dme_grade,
                     s.image_path]
                )


def read_splits(path: str | os.PathLike[str], samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    """Assign ``samples`` to the splits recorded by ``write_splits`` (matched by dataset and id).

    Every sample must be listed; rows of samples not given are ignored.
    """
    split_of: dict[tuple[str, str], str] = {}
    with Path(path).open(newline="", encoding="utf-8-sig") as stream:
        for row in csv.DictReader(stream):
            split_of[(row["dataset"], row["id"])] = row["split"]
    unlisted = [s.id for s in samples if (s.dataset, s.id) not in split_of]
    if unlisted:
        raise DatasetError(f"{len(unlisted)} samples are not in split file {path} (e.g. {unlisted[:5]})")
    result: dict[str, list[Sample]] = {}
    for sample in samples:
        result.setdefault(split_of[(sample.dataset, sample.id)], []).append(sample)
    return result


def _split_fractions(fractions: Sequence[float] | Mapping[str, float]) -> tuple[tuple[str, ...], np.ndarray]:
    if isinstance(fractions, Mapping):
        names, values = tuple(fractions), tuple(fractions.values())
    elif len(fractions) in _DEFAULT_NAMES:
        names, values = _DEFAULT_NAMES[len(fractions)], tuple(fractions)
    else:
        raise ValueError(f"give 2 or 3 fractions, or a {{name: fraction}} mapping; got {fractions!r}")
    weights = np.asarray(values, dtype=float)
    if (weights < 0).any() or not math.isclose(weights.sum(), 1.0, abs_tol=1e-6):
        given = dict(zip(names, values, strict=True))
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {given}")
    return names, weights


def _patients(samples: Sequence[Sample]) -> dict[PatientKey, list[Sample]]:
    patients: dict[PatientKey, list[Sample]] = defaultdict(list)
    for sample in samples:
        patients[patient_key(sample)].append(sample)
    return patients


def _worst_grade(members: Sequence[Sample]) -> int:
    """The highest DR grade among ``members``, or -1 when none is graded."""
    return max((s.dr_grade for s in members if s.dr_grade is not None), default=_UNLABELLED)
