"""The adapters and readers on the real data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from drscreen.data import LESION_UNION, load_dataset, split_by_patient
from drscreen.data.idrid import GRADING_LABEL_FILES
from drscreen.data.splits import patient_key
from drscreen.io import find_images, read_image, read_mask

pytestmark = pytest.mark.realdata


def _every_nth(items: list, count: int) -> list:
    return items[:: max(1, len(items) // count)][:count]


def test_aptos2019_224(shared_data: Path) -> None:
    samples = load_dataset("aptos2019", shared_data / "aptos2019-224")
    by_split = Counter(s.split for s in samples)
    assert by_split == {"train": 2563, "val": 549}
    assert Counter(s.dr_grade for s in samples if s.split == "val") == {0: 271, 1: 55, 2: 150, 3: 29, 4: 44}
    assert len(load_dataset("aptos2019", shared_data / "aptos2019-224", split="val")) == 549
    for sample in _every_nth(samples, 6):
        assert read_image(sample.image_path).shape == (224, 224, 3)


def test_eyepacs_256(shared_data: Path) -> None:
    samples = load_dataset("eyepacs", shared_data / "eyepacs-256")
    assert len(samples) == 1860 and Counter(s.eye for s in samples) == {"left": 930, "right": 930}
    assert Counter(s.dr_grade for s in samples) == {0: 989, 1: 244, 2: 405, 3: 129, 4: 93}
    patients = Counter(patient_key(s) for s in samples)
    assert len(patients) == 930 and set(patients.values()) == {2}
    splits = split_by_patient(samples, seed=0)
    owners = [{patient_key(s) for s in part} for part in splits.values()]
    assert not (owners[0] & owners[1]) and not (owners[0] & owners[2]) and not (owners[1] & owners[2])
    for sample in _every_nth(samples, 6):
        assert read_image(sample.image_path).shape == (256, 256, 3)


def test_idrid_grading_real_label_files(shared_data: Path, tmp_path: Path) -> None:
    """The byte-exact official CSVs, placed in the official layout with stand-in images."""
    part = tmp_path / "B. Disease Grading"
    (part / "2. Groundtruths").mkdir(parents=True)
    stand_in = tmp_path / "stand_in.jpg"
    Image.new("RGB", (4, 4)).save(stand_in)
    for split, file_name in GRADING_LABEL_FILES.items():
        shutil.copyfile(shared_data / "idrid-grading-labels" / file_name, part / "2. Groundtruths" / file_name)
        folder = part / "1. Original Images" / {"train": "a. Training Set", "test": "b. Testing Set"}[split]
        folder.mkdir(parents=True)
        count = {"train": 413, "test": 103}[split]
        for number in range(1, count + 1):
            (folder / f"IDRiD_{number:03d}.jpg").symlink_to(stand_in)
    samples = load_dataset("idrid-grading", tmp_path)
    train = [s for s in samples if s.split == "train"]
    test = [s for s in samples if s.split == "test"]
    assert len(train) == 413 and len(test) == 103
    assert Counter(s.dr_grade for s in train) == {0: 134, 1: 20, 2: 136, 3: 74, 4: 49}
    assert Counter(s.dme_grade for s in train) == {0: 177, 1: 41, 2: 195}
    assert Counter(s.dr_grade for s in test) == {0: 34, 1: 5, 2: 32, 3: 19, 4: 13}
    assert Counter(s.dme_grade for s in test) == {0: 45, 1: 10, 2: 48}
    assert (train[0].id, train[0].dr_grade, train[0].dme_grade) == ("train/IDRiD_001", 3, 2)


def test_idrid_seg_subset(shared_data: Path) -> None:
    samples = load_dataset("idrid-seg-subset", shared_data / "idrid-seg-subset")
    assert len(samples) == 30
    assert all(s.lesion_masks and s.lesion_masks[LESION_UNION] and s.lesion_masks["OD"] for s in samples)
    for sample in _every_nth(samples, 2):
        image = read_image(sample.image_path)
        lesions = read_mask(sample.lesion_masks[LESION_UNION])  # type: ignore[index, arg-type]
        disc = read_mask(sample.lesion_masks["OD"])  # type: ignore[index, arg-type]
        assert image.shape[:2] == lesions.shape == disc.shape
        assert 0 < lesions.mean() < 0.2 and 0.002 < disc.mean() < 0.1


def test_fullres_samples(shared_data: Path) -> None:
    eyepacs = load_dataset("eyepacs", shared_data / "fullres-samples" / "eyepacs", labels_csv="labels.csv")
    assert len(eyepacs) == 10 and len({s.patient_id for s in eyepacs}) == 5
    assert [s.dr_grade for s in eyepacs if s.patient_id == "315"] == [None, None], "blank level = unlabelled"
    aptos = load_dataset("csv", shared_data / "fullres-samples" / "aptos", image_column="id_code",
                         grade_column="diagnosis", dataset_name="aptos2019")
    assert [(s.id, s.dr_grade) for s in aptos] == [("000c1434d8d7", 2), ("1ae3c58759fb", 0)]
    for sample in [*aptos, eyepacs[0]]:
        with Image.open(sample.image_path) as image:
            width, height = image.size
        assert read_image(sample.image_path).shape == (height, width, 3)


def test_drive_images_and_fov_masks(shared_data: Path) -> None:
    images = find_images(shared_data / "drive" / "training" / "images")
    masks = find_images(shared_data / "drive" / "training" / "mask")
    assert len(images) == len(masks) == 20
    for image_path, mask_path in zip(_every_nth(images, 5), _every_nth(masks, 5), strict=True):
        image, fov = read_image(image_path), read_mask(mask_path)
        assert image.shape == (584, 565, 3) and fov.shape == (584, 565)
        assert 0.6 < fov.mean() < 0.8 and image[~fov].mean() < 10 < image[fov].mean()
