"""Datasets in no published layout: any label CSV, or one folder per grade."""

from __future__ import annotations

from pathlib import Path

from drscreen.data._tables import ImageIndex, handle_missing, parse_eye, parse_grade, read_table
from drscreen.data.catalog import DATASETS
from drscreen.data.errors import DatasetError
from drscreen.data.sample import Sample
from drscreen.grading import DR_GRADE_NAMES
from drscreen.io import find_images


@DATASETS.register(
    "csv",
    description="any CSV: configurable image/grade/DME/patient/eye/split columns and image folder",
    splits=(),
)
def load_csv(
    root: Path,
    split: str | None = None,
    *,
    csv: str = "labels.csv",
    images: str = ".",
    image_column: str = "image",
    grade_column: str | None = "grade",
    dme_column: str | None = None,
    patient_column: str | None = None,
    eye_column: str | None = None,
    split_column: str | None = None,
    dataset_name: str = "csv",
    skip_missing: bool = False,
) -> list[Sample]:
    """Rows of ``root/csv``; ``image_column`` names a file (extension optional) in ``root/images``.

    Grade cells may be empty (``None``). With ``split_column``, ``split`` keeps only the rows of that
    split; without it, ``split`` is just recorded on the samples. ``dataset_name`` becomes ``Sample.dataset``.
    """
    labels = root / csv
    optional = (grade_column, dme_column, patient_column, eye_column, split_column)
    rows = read_table(labels, required=[image_column, *(c for c in optional if c)])
    if split is not None and split_column:
        rows = [row for row in rows if row.get(split_column) == split]
    index = ImageIndex(root / images)
    samples: list[Sample] = []
    missing: list[str] = []
    for row in rows:
        where = f"{labels}, line {row.line}"
        image = index.find(row.get(image_column))
        if image is None:
            missing.append(row.get(image_column))
            continue
        samples.append(
            Sample(
                id=image.stem,
                image_path=image,
                dr_grade=parse_grade(row.get(grade_column), "DR", where) if grade_column else None,
                dme_grade=parse_grade(row.get(dme_column), "DME", where) if dme_column else None,
                eye=parse_eye(row.get(eye_column), where) if eye_column else None,
                patient_id=(row.get(patient_column) or None) if patient_column else None,
                dataset=dataset_name,
                split=(row.get(split_column) or None) if split_column else split,
            )
        )
    handle_missing(missing, total=len(rows), listing=labels, folder=index.folder, skip_missing=skip_missing)
    return samples


@DATASETS.register(
    "folder",
    description="one sub-folder per ICDR grade: <root>[/<split>]/{0,1,2,3,4}/<image>",
    splits=(),
)
def load_folder(root: Path, split: str | None = None, *, dataset_name: str = "folder") -> list[Sample]:
    """Images sorted into ``0/`` ... ``4/`` (under ``root/<split>/`` when ``split`` is given).

    Other sub-folders are ignored. The file stem is the sample id, so it must be unique.
    ``dataset_name`` becomes ``Sample.dataset``.
    """
    base = root / split if split else root
    grade_dirs = {grade: base / str(grade) for grade in DR_GRADE_NAMES if (base / str(grade)).is_dir()}
    if not grade_dirs:
        raise DatasetError(f"no grade folders 0/ ... 4/ in {base}")
    return [
        Sample(id=image.stem, image_path=image, dr_grade=grade, dataset=dataset_name, split=split)
        for grade, folder in grade_dirs.items()
        for image in find_images(folder)
    ]
