"""A synthetic stand-in for a data root: every dataset the paper configs read, in its official
layout (docs/data.md), written from ``drscreen.synth`` images. SYNTHETIC DATA, not real patients;
the tests and the synthetic experiment benchmark use it (``drscreen experiment --synthetic N``).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2

from drscreen.synth.writers import write_dataset

#: Sub-folder of the data root for each dataset the paper configs read (layouts: docs/data.md).
DATASET_FOLDERS: dict[str, str] = {
    "idrid": "IDRiD: A. Segmentation/ and B. Disease Grading/",
    "eyepacs": "EyePACS (Kaggle DR Detection): trainLabels.csv, train/, retinopathy_solution.csv, test/",
    "aptos2019": "APTOS 2019: train.csv, train_images/",
    "deepdrid": "DeepDRiD: regular_fundus_images/",
}
#: The file that marks a complete synthetic data root.
SYNTHETIC_MARKER = "synthetic.json"


def write_synthetic_data_root(root: str | Path, n: int = 10, size: int = 128, seed: int = 0, workers: int = 1) -> Path:
    """Write a synthetic stand-in for a data root: ``n`` images per dataset, in the official
    layouts of ``DATASET_FOLDERS`` (docs/data.md). SYNTHETIC DATA, not real patients.

    ``idrid/`` and ``aptos2019/`` are ``drscreen.synth`` layouts; ``eyepacs/`` (80 % in
    ``trainLabels.csv``, the rest in ``retinopathy_solution.csv`` alternately ``Public`` and
    ``Private``) and ``deepdrid/`` (75 % training, 25 % validation) are written from its plain
    ``folder`` layout, one patient per image. ``synthetic.json`` is written last and marks a
    complete root, which is then returned unchanged.
    """
    root = Path(root)
    marker = root / SYNTHETIC_MARKER
    if marker.is_file():
        return root
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} exists, is not empty and is no complete synthetic data root")
    common = {"n": n, "size": size, "seed": seed, "workers": workers, "progress": False}
    write_dataset(root / "idrid", layout="idrid", **common)
    write_dataset(root / "aptos2019", layout="aptos", **common)
    staging = write_dataset(root / ".folder", layout="folder", **common)
    with (staging / "labels.csv").open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    _write_eyepacs(root / "eyepacs", staging, rows)
    _write_deepdrid(root / "deepdrid", staging, rows)
    shutil.rmtree(staging)
    settings = {"synthetic": True, "n": n, "size": size, "seed": seed, "datasets": list(DATASET_FOLDERS)}
    marker.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return root


def _copy_as_jpeg(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(target), cv2.imread(str(source)), [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise RuntimeError(f"could not write {target}")


def _write_eyepacs(root: Path, staging: Path, rows: list[dict[str, str]]) -> None:
    """EyePACS: ``<patient>_<eye>.jpeg`` in ``train/`` or ``test/`` with their label files."""
    n_train = max(1, round(0.8 * len(rows)))
    tables: dict[str, list[str]] = {
        "trainLabels.csv": ["image,level"],
        "retinopathy_solution.csv": ["image,level,Usage"],
    }
    for index, row in enumerate(rows):
        name = f"{index + 1}_{row['eye']}"
        if index < n_train:
            _copy_as_jpeg(staging / "images" / row["image"], root / "train" / f"{name}.jpeg")
            tables["trainLabels.csv"].append(f"{name},{row['grade']}")
        else:
            _copy_as_jpeg(staging / "images" / row["image"], root / "test" / f"{name}.jpeg")
            usage = "Public" if (index - n_train) % 2 == 0 else "Private"
            tables["retinopathy_solution.csv"].append(f"{name},{row['grade']},{usage}")
    for file, lines in tables.items():
        (root / file).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_deepdrid(root: Path, staging: Path, rows: list[dict[str, str]]) -> None:
    """DeepDRiD regular fundus images: ``Images/<patient>/<patient>_<l|r>1.jpg`` and the CSVs."""
    n_train = max(1, round(0.75 * len(rows)))
    header = "patient_id,image_id,left_eye_DR_Level,right_eye_DR_Level"
    numbered = list(enumerate(rows))
    for chosen, folder in (
        (numbered[:n_train], "regular-fundus-training"),
        (numbered[n_train:], "regular-fundus-validation"),
    ):
        base = root / "regular_fundus_images" / folder
        lines = [header]
        for index, row in chosen:
            patient = str(index + 1)
            image_id = f"{patient}_{row['eye'][0]}1"
            _copy_as_jpeg(staging / "images" / row["image"], base / "Images" / patient / f"{image_id}.jpg")
            lines.append(f"{patient},{image_id},{row['grade']},{row['grade']}")
        base.mkdir(parents=True, exist_ok=True)
        (base / f"{folder}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
