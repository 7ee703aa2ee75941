"""The fixed train / val / test split of drscreen's multi-source grader (configs/grader.yaml).

``write_grader_splits(data_root, out)`` writes label files that the ordinary adapters read:

* ``<out>/aptos2019-224/{train,val,test}.csv``: APTOS 2019's ``train.csv`` cut into train (85 %)
  and val (15 %), stratified by grade (APTOS has no patient ids: each image is its own patient);
  its ``val.csv`` becomes ``test.csv``, never used for a choice;
* ``<out>/eyepacs-256/{train,val,test}.csv``: EyePACS-256 split by patient (both eyes together,
  ``<patient>_left/right``), 70 / 15 / 15 %, stratified by the patient's worst grade;

each folder with an ``images`` link to the data's own image folder. The split is a function of
the label files and ``seed`` only (``split_by_patient``).

    python -m drscreen.data.grader_splits ../shared/data runs/splits
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path

from drscreen.data.catalog import load_dataset
from drscreen.data.sample import Sample
from drscreen.data.splits import split_by_patient

#: Fractions of APTOS 2019 ``train.csv`` (images) and of EyePACS-256 (patients).
APTOS_FRACTIONS = {"train": 0.85, "val": 0.15}
EYEPACS_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}


def write_table(path: Path, samples: Sequence[Sample], columns: tuple[str, str]) -> None:
    """Write ``samples`` as a two-column label file: image id, DR grade."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        writer.writerows((sample.id, sample.dr_grade) for sample in samples)


def link_images(folder: Path, images: Path) -> None:
    """Make ``folder/images`` a link to ``images`` (replacing an older link)."""
    link = folder / "images"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(images.resolve(), target_is_directory=True)


def write_grader_splits(data_root: Path, out: Path, *, seed: int = 0) -> dict[str, dict[str, int]]:
    """Write the split folders (module docstring); returns ``{source: {split: images}}``."""
    aptos_root, eyepacs_root = data_root / "aptos2019-224", data_root / "eyepacs-256"
    aptos = split_by_patient(load_dataset("aptos2019", aptos_root, "train"), APTOS_FRACTIONS, seed=seed)
    aptos["test"] = load_dataset("aptos2019", aptos_root, "val")
    eyepacs = split_by_patient(load_dataset("eyepacs", eyepacs_root, "train"), EYEPACS_FRACTIONS, seed=seed)
    counts: dict[str, dict[str, int]] = {}
    for source, parts, images, columns in (
        ("aptos2019-224", aptos, aptos_root / "images", ("id_code", "diagnosis")),
        ("eyepacs-256", eyepacs, eyepacs_root / "images", ("image", "level")),
    ):
        for split, samples in parts.items():
            write_table(out / source / f"{split}.csv", samples, columns)
        link_images(out / source, images)
        counts[source] = {split: len(samples) for split, samples in parts.items()}
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the multi-source grader's train/val/test label files.")
    parser.add_argument("data_root", type=Path, help="folder holding aptos2019-224/ and eyepacs-256/")
    parser.add_argument("out", type=Path, help="output folder (e.g. runs/splits)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for source, counts in write_grader_splits(args.data_root, args.out, seed=args.seed).items():
        print(source, counts)


if __name__ == "__main__":
    main()
