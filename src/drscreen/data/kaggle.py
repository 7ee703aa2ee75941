"""The Kaggle competitions: APTOS 2019 Blindness Detection and EyePACS (Diabetic Retinopathy Detection)."""

from __future__ import annotations

import re
from pathlib import Path

from drscreen.data._tables import (
    ImageIndex,
    first_existing,
    handle_missing,
    parse_eye,
    parse_grade,
    present_splits,
    read_table,
    splits_to_load,
)
from drscreen.data.catalog import DATASETS
from drscreen.data.sample import Sample

APTOS_SPLITS = ("train", "val", "test")
#: EyePACS label file of each split; the test labels were published after the competition.
EYEPACS_LABEL_FILES: dict[str, str] = {"train": "trainLabels.csv", "test": "retinopathy_solution.csv"}
_EYEPACS_NAME = re.compile(r"^(?P<patient>.+)_(?P<eye>left|right)$")


@DATASETS.register(
    "aptos2019",
    description="APTOS 2019: <split>.csv (id_code,diagnosis) + <split>_images/ (Kaggle) or images/",
    splits=APTOS_SPLITS,
)
def load_aptos2019(root: Path, split: str | None = None, *, skip_missing: bool = False) -> list[Sample]:
    """APTOS 2019: ``split`` selects ``<split>.csv``; images in ``<split>_images/`` or ``images/``.

    The Kaggle layout has ``train.csv`` + ``train_images/*.png`` and an unlabelled ``test.csv`` +
    ``test_images/`` (grades ``None``); derivatives such as the 224-px set use ``train.csv``,
    ``val.csv`` and one ``images/`` folder. ``split=None`` loads every CSV present. APTOS
    publishes no patient ids.
    """
    label_files = {name: root / f"{name}.csv" for name in APTOS_SPLITS}
    samples: list[Sample] = []
    for name in splits_to_load(split, present_splits(label_files, "aptos2019", root), "aptos2019"):
        labels = label_files[name]
        index = ImageIndex(first_existing([root / f"{name}_images", root / "images"], f"APTOS {name} images"))
        rows = read_table(labels, required=("id_code",))
        missing: list[str] = []
        for row in rows:
            image = index.find(row.get("id_code"))
            if image is None:
                missing.append(row.get("id_code"))
                continue
            grade = parse_grade(row.get("diagnosis"), "DR", f"{labels}, line {row.line}")
            samples.append(
                Sample(id=row.get("id_code"), image_path=image, dr_grade=grade, dataset="aptos2019", split=name)
            )
        handle_missing(
            missing, total=len(rows), listing=labels, folder=index.folder, skip_missing=skip_missing
        )
    return samples


@DATASETS.register(
    "eyepacs",
    description="EyePACS / Kaggle DR Detection: trainLabels.csv (image,level) with train/ or images/",
    splits=tuple(EYEPACS_LABEL_FILES),
)
def load_eyepacs(
    root: Path,
    split: str | None = None,
    *,
    labels_csv: str | None = None,
    skip_missing: bool = False,
) -> list[Sample]:
    """EyePACS: ``trainLabels.csv`` and, when present, ``retinopathy_solution.csv`` (test), columns
    ``image,level``; images in ``<split>/`` (Kaggle), ``images/`` (derivatives) or beside the CSV.

    ``labels_csv`` reads another label file of the same columns instead (e.g. ``labels.csv``;
    the samples then carry ``split``, ``None`` by default). Names ``<patient>_<left|right>``
    give ``patient_id`` and ``eye``.
    """
    if labels_csv is not None:
        return _load_eyepacs_table(root / labels_csv, root, split, skip_missing)
    label_files = {name: root / file for name, file in EYEPACS_LABEL_FILES.items()}
    samples: list[Sample] = []
    for name in splits_to_load(split, present_splits(label_files, "eyepacs", root), "eyepacs"):
        samples += _load_eyepacs_table(label_files[name], root, name, skip_missing)
    return samples


def _load_eyepacs_table(labels: Path, root: Path, split: str | None, skip_missing: bool) -> list[Sample]:
    folders = ([root / split] if split else []) + [root / "images", root]
    index = ImageIndex(next(folder for folder in folders if folder.is_dir()))
    rows = read_table(labels, required=("image", "level"))
    samples: list[Sample] = []
    missing: list[str] = []
    for row in rows:
        image_name = row.get("image")
        image = index.find(image_name)
        if image is None:
            missing.append(image_name)
            continue
        match = _EYEPACS_NAME.match(image_name)
        where = f"{labels}, line {row.line}"
        samples.append(
            Sample(
                id=image_name,
                image_path=image,
                dr_grade=parse_grade(row.get("level"), "DR", where),
                eye=parse_eye(match["eye"], where) if match else None,
                patient_id=match["patient"] if match else None,
                dataset="eyepacs",
                split=split,
            )
        )
    handle_missing(missing, total=len(rows), listing=labels, folder=index.folder, skip_missing=skip_missing)
    return samples
