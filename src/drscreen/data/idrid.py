"""IDRiD (Porwal et al., 2018): part A segmentation, part B disease grading, and the shared subset."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from drscreen.data._tables import (
    ImageIndex,
    first_existing,
    handle_missing,
    parse_grade,
    present_splits,
    read_table,
    splits_to_load,
)
from drscreen.data.catalog import DATASETS
from drscreen.data.errors import DatasetError
from drscreen.data.sample import LESION_UNION, Sample
from drscreen.io import find_images, read_image, read_mask

SPLIT_FOLDERS: dict[str, str] = {"train": "a. Training Set", "test": "b. Testing Set"}
#: Part A ground-truth folder of each structure, in the official numbering.
LESION_FOLDERS: dict[str, str] = {
    "MA": "1. Microaneurysms",
    "HE": "2. Haemorrhages",
    "EX": "3. Hard Exudates",
    "SE": "4. Soft Exudates",
    "OD": "5. Optic Disc",
}
GRADING_LABEL_FILES: dict[str, str] = {
    "train": "a. IDRiD_Disease Grading_Training Labels.csv",
    "test": "b. IDRiD_Disease Grading_Testing Labels.csv",
}
GRADING_COLUMNS = ("Image name", "Retinopathy grade", "Risk of macular edema")
MASK_SUFFIXES = (".tif", ".tiff", ".png")
#: Masks of the shared subset folder, by file-name suffix.
SUBSET_MASKS = (LESION_UNION, "OD")
_IDRID_NAME = re.compile(r"^IDRiD_\d+$")


def locate_part(root: Path, part: str) -> Path:
    """The folder of IDRiD ``part`` ("A. Segmentation", "B. Disease Grading").

    ``root`` may be that folder, the dataset root holding it, or a parent of the dataset root;
    the zip's doubled "A. Segmentation/A. Segmentation" is accepted as well.
    """
    candidates = [root, root / part, root / part / part]
    if root.is_dir():
        children = sorted(child for child in root.iterdir() if child.is_dir())
        candidates += [child / part for child in children] + [child / part / part for child in children]
    for candidate in candidates:
        if (candidate / "1. Original Images").is_dir():
            return candidate
    raise DatasetError(f"no IDRiD '{part}' folder with '1. Original Images' in or below {root}")


@DATASETS.register(
    "idrid-segmentation",
    description="IDRiD part A: 81 images with pixel masks of MA, HE, EX, SE and the optic disc",
    splits=("train", "test"),
)
def load_idrid_segmentation(root: Path, split: str | None = None) -> list[Sample]:
    """IDRiD part A in its official layout.

    A structure whose mask file is missing for an image is annotated as absent (``None``): IDRiD
    ships no empty masks. A structure whose whole folder is missing is not annotated (no key).
    """
    part = locate_part(root, "A. Segmentation")
    image_dirs = {name: part / "1. Original Images" / folder for name, folder in SPLIT_FOLDERS.items()}
    present = present_splits(image_dirs, "idrid-segmentation", part)
    samples: list[Sample] = []
    for name in splits_to_load(split, present, "idrid-segmentation"):
        truth_dir = part / "2. All Segmentation Groundtruths" / SPLIT_FOLDERS[name]
        lesion_dirs = {code: truth_dir / folder for code, folder in LESION_FOLDERS.items()}
        lesion_dirs = {code: folder for code, folder in lesion_dirs.items() if folder.is_dir()}
        if not lesion_dirs:
            folders = ", ".join(LESION_FOLDERS.values())
            raise DatasetError(f"no IDRiD ground-truth folder ({folders}) in {truth_dir}")
        for image in _idrid_images(image_dirs[name]):
            masks = {code: _mask_file(folder, f"{image.stem}_{code}") for code, folder in lesion_dirs.items()}
            samples.append(
                Sample(
                    id=image.stem, image_path=image, lesion_masks=masks, dataset="idrid-segmentation", split=name
                )
            )
    return samples


@DATASETS.register(
    "idrid-grading",
    description="IDRiD part B: 516 images with ICDR DR grade and DME risk",
    splits=("train", "test"),
)
def load_idrid_grading(root: Path, split: str | None = None, *, skip_missing: bool = False) -> list[Sample]:
    """IDRiD part B in its official layout: the label CSVs name the images (without extension).

    Both splits number their images from IDRiD_001, so the sample id is ``<split>/<image name>``
    (``train/IDRiD_001``, ``test/IDRiD_001``): two different photographs.
    """
    part = locate_part(root, "B. Disease Grading")
    label_files = {name: part / "2. Groundtruths" / file for name, file in GRADING_LABEL_FILES.items()}
    present = present_splits(label_files, "idrid-grading", part)
    samples: list[Sample] = []
    for name in splits_to_load(split, present, "idrid-grading"):
        labels = label_files[name]
        index = ImageIndex(part / "1. Original Images" / SPLIT_FOLDERS[name])
        rows = read_table(labels, required=GRADING_COLUMNS)
        missing: list[str] = []
        for row in rows:
            image_name = row.get("Image name")
            image = index.find(image_name)
            if image is None:
                missing.append(image_name)
                continue
            where = f"{labels}, line {row.line}"
            samples.append(
                Sample(
                    id=f"{name}/{image_name}",
                    image_path=image,
                    dr_grade=parse_grade(row.get("Retinopathy grade"), "DR", where),
                    dme_grade=parse_grade(row.get("Risk of macular edema"), "DME", where),
                    dataset="idrid-grading",
                    split=name,
                )
            )
        handle_missing(
            missing, total=len(rows), listing=labels, folder=index.folder, skip_missing=skip_missing
        )
    return samples


@DATASETS.register(
    "idrid-seg-subset",
    description="shared IDRiD subset: images/IDRiD_NN.jpg, union-lesion and optic-disc PNG masks",
    splits=(),
)
def load_idrid_seg_subset(root: Path, split: str | None = None) -> list[Sample]:
    """The non-official half-resolution subset: ``images/IDRiD_NN.jpg``, ``masks/IDRiD_NN_{LESION,OD}.png``.

    ``lesion_masks`` holds ``LESION_UNION`` (MA, HE, EX and SE merged) and ``OD``.
    """
    splits_to_load(split, (), "idrid-seg-subset")
    mask_dir = first_existing([root / "masks"], "idrid-seg-subset masks folder")
    image_dir = first_existing([root / "images"], "idrid-seg-subset images folder")
    return [
        Sample(
            id=image.stem,
            image_path=image,
            lesion_masks={code: _mask_file(mask_dir, f"{image.stem}_{code}") for code in SUBSET_MASKS},
            dataset="idrid-seg-subset",
        )
        for image in _idrid_images(image_dir)
    ]


def read_seg_subset(root: Path) -> Iterator[tuple[Sample, np.ndarray, np.ndarray]]:
    """Each photograph of the ``idrid-seg-subset`` at ``root``, read: its sample, the image (H, W, 3)
    uint8 RGB and its union-of-lesion mask (H, W) bool, all False where the subset has none."""
    for sample in load_idrid_seg_subset(root):
        image = read_image(sample.image_path)
        path = (sample.lesion_masks or {}).get(LESION_UNION)
        union = read_mask(path) if path is not None else np.zeros(image.shape[:2], bool)
        yield sample, image, union


def _idrid_images(folder: Path) -> list[Path]:
    """The ``IDRiD_<number>`` images of ``folder``, sorted."""
    return [path for path in find_images(folder) if _IDRID_NAME.match(path.stem)]


def _mask_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` with the first mask extension present, or ``None``."""
    return next((folder / f"{stem}{s}" for s in MASK_SUFFIXES if (folder / f"{stem}{s}").is_file()), None)
