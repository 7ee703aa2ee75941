"""DDR (Li et al., 2019), the DR grading part."""

from __future__ import annotations

from pathlib import Path

from drscreen.data._tables import (
    ImageIndex,
    handle_missing,
    log_excluded,
    parse_grade,
    present_splits,
    splits_to_load,
)
from drscreen.data.catalog import DATASETS
from drscreen.data.errors import DatasetError
from drscreen.data.sample import Sample

#: drscreen split name -> DDR's file and folder name.
SPLIT_NAMES: dict[str, str] = {"train": "train", "val": "valid", "test": "test"}
UNGRADABLE = "5"


@DATASETS.register(
    "ddr",
    description="DDR grading: DR_grading/{train,valid,test}.txt ('name grade') + image folders",
    splits=tuple(SPLIT_NAMES),
)
def load_ddr(root: Path, split: str | None = None, *, skip_missing: bool = False) -> list[Sample]:
    """DDR grading: ``root`` is ``DR_grading`` or a folder above it (e.g. ``DDR-dataset``).

    Each line of ``<split>.txt`` is ``<file name> <grade>``; grade 5 (ungradable) is excluded.
    DDR publishes no patient ids.
    """
    grading = _locate_grading(root)
    samples: list[Sample] = []
    listings = {name: grading / f"{file}.txt" for name, file in SPLIT_NAMES.items()}
    for name in splits_to_load(split, present_splits(listings, "ddr", grading), "ddr"):
        listing = listings[name]
        index = ImageIndex(grading / SPLIT_NAMES[name])
        missing: list[str] = []
        ungradable = total = 0
        for number, line in enumerate(listing.read_text(encoding="utf-8-sig").splitlines(), start=1):
            if not line.strip():
                continue
            total += 1
            fields = line.split()
            if len(fields) != 2:
                raise DatasetError(f"{listing}, line {number}: expected '<file name> <grade>', got {line!r}")
            file_name, grade = fields
            if grade == UNGRADABLE:
                ungradable += 1
                continue
            image = index.find(file_name)
            if image is None:
                missing.append(file_name)
                continue
            samples.append(
                Sample(
                    id=image.stem,
                    image_path=image,
                    dr_grade=parse_grade(grade, "DR", f"{listing}, line {number}"),
                    dataset="ddr",
                    split=name,
                )
            )
        log_excluded("ddr", ungradable, f"grade 5 (ungradable) in {listing.name}")
        handle_missing(missing, total=total - ungradable, listing=listing, folder=index.folder,
                       skip_missing=skip_missing)
    return samples


def _locate_grading(root: Path) -> Path:
    for candidate in (root, root / "DR_grading", root / "DDR-dataset" / "DR_grading"):
        if any((candidate / f"{file}.txt").is_file() for file in SPLIT_NAMES.values()):
            return candidate
    raise DatasetError(f"no DDR 'DR_grading' folder with train.txt/valid.txt/test.txt in or below {root}")
