"""DeepDRiD (Liu et al., 2022), the regular fundus images."""

from __future__ import annotations

import re
from pathlib import Path

from drscreen.data._tables import (
    ImageIndex,
    handle_missing,
    log_excluded,
    parse_grade,
    present_splits,
    read_table,
    splits_to_load,
)
from drscreen.data.catalog import DATASETS
from drscreen.data.errors import DatasetError
from drscreen.data.sample import Eye, Sample

#: drscreen split name -> DeepDRiD's folder (and CSV) name.
SPLIT_FOLDERS: dict[str, str] = {"train": "regular-fundus-training", "val": "regular-fundus-validation"}
GRADE_COLUMNS: dict[Eye, str] = {"left": "left_eye_DR_Level", "right": "right_eye_DR_Level"}
UNGRADABLE = "5"
_IMAGE_ID = re.compile(r"^(?P<patient>.+)_(?P<eye>[lr])\d*$")


@DATASETS.register(
    "deepdrid",
    description="DeepDRiD regular fundus: regular-fundus-{training,validation}/ CSV + Images/",
    splits=tuple(SPLIT_FOLDERS),
)
def load_deepdrid(root: Path, split: str | None = None, *, skip_missing: bool = False) -> list[Sample]:
    """DeepDRiD regular fundus images; ``root`` is the dataset root or ``regular_fundus_images``.

    The image id (``<patient>_<l|r><view>``, e.g. ``12_l2``) gives the eye, and the grade is that
    eye's column (``left_eye_DR_Level`` / ``right_eye_DR_Level``); grade 5 is excluded as ungradable.
    """
    regular = root / "regular_fundus_images" if (root / "regular_fundus_images").is_dir() else root
    samples: list[Sample] = []
    label_files = {name: regular / folder / f"{folder}.csv" for name, folder in SPLIT_FOLDERS.items()}
    for name in splits_to_load(split, present_splits(label_files, "deepdrid", regular), "deepdrid"):
        labels = label_files[name]
        folder = labels.parent
        rows = read_table(labels, required=("patient_id", "image_id", *GRADE_COLUMNS.values()))
        index = ImageIndex(folder / "Images", recursive=True)
        missing: list[str] = []
        ungradable = 0
        for row in rows:
            where = f"{labels}, line {row.line}"
            image_id = row.get("image_id")
            match = _IMAGE_ID.match(image_id)
            if match is None:
                raise DatasetError(f"{where}: image_id {image_id!r} does not end in _l<n> or _r<n>")
            eye: Eye = "left" if match["eye"] == "l" else "right"
            grade = row.get(GRADE_COLUMNS[eye])
            if grade == UNGRADABLE:
                ungradable += 1
                continue
            image = index.find(image_id)
            if image is None:
                missing.append(image_id)
                continue
            samples.append(
                Sample(
                    id=image_id,
                    image_path=image,
                    dr_grade=parse_grade(grade, "DR", where),
                    eye=eye,
                    patient_id=row.get("patient_id") or match["patient"],
                    dataset="deepdrid",
                    split=name,
                )
            )
        log_excluded("deepdrid", ungradable, f"grade 5 in {labels.name}")
        handle_missing(missing, total=len(rows) - ungradable, listing=labels, folder=index.folder,
                       skip_missing=skip_missing)
    return samples
