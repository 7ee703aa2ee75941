"""drscreen.data: adapters on official layouts built in tmp_path, label-file quirks, splits, CLI."""

from __future__ import annotations

import argparse
import io
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from drscreen.commands import data as data_command
from drscreen.data import (
    DATASETS,
    LESION_UNION,
    DatasetError,
    Sample,
    list_datasets,
    load_dataset,
    patient_kfold,
    read_seg_subset,
    read_splits,
    split_by_patient,
    write_splits,
)
from drscreen.data.splits import patient_key


@pytest.fixture(scope="module")
def tiny_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 30, 10)).save(buffer, "JPEG")
    return buffer.getvalue()


def _touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _write(path: Path, text: str, *, crlf: bool = False, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes(("\ufeff" if bom else "").encode() + data.encode())
    return path


# ---------------------------------------------------------------------------------------------
# Sample


def test_sample_validates_and_keeps_unknowns_as_none(tmp_path: Path) -> None:
    sample = Sample(id="a", image_path=str(tmp_path / "a.jpg"), dataset="x")  # type: ignore[arg-type]
    assert isinstance(sample.image_path, Path)
    assert (sample.dr_grade, sample.dme_grade, sample.lesion_masks, sample.eye, sample.patient_id) == (None,) * 5
    assert hash(Sample(id="b", image_path=tmp_path, dataset="x", lesion_masks={"MA": None}))
    with pytest.raises(ValueError, match="0-4"):
        Sample(id="a", image_path=tmp_path, dr_grade=5, dataset="x")
    with pytest.raises(ValueError, match="0-2"):
        Sample(id="a", image_path=tmp_path, dme_grade=3, dataset="x")
    with pytest.raises(ValueError, match="eye"):
        Sample(id="a", image_path=tmp_path, eye="both", dataset="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown lesion codes"):
        Sample(id="a", image_path=tmp_path, lesion_masks={"XX": None}, dataset="x")


def test_registry_lists_every_adapter() -> None:
    assert set(list_datasets()) == {
        "aptos2019", "csv", "ddr", "deepdrid", "eyepacs", "folder",
        "idrid-grading", "idrid-seg-subset", "idrid-segmentation", "messidor2",
    }
    assert all(DATASETS.get(name).metadata["description"] for name in list_datasets())
    with pytest.raises(KeyError, match="Did you mean aptos2019"):
        load_dataset("aptos2091", ".")


def test_load_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("aptos2019", tmp_path / "absent")
    with pytest.raises(DatasetError, match="no split found"):
        load_dataset("aptos2019", tmp_path)


# ---------------------------------------------------------------------------------------------
# IDRiD


def _idrid_segmentation(root: Path, jpeg: bytes) -> Path:
    """Official part A layout: 3 training images (02 lacks SE), 1 test image, test has no SE folder."""
    part = root / "A. Segmentation"
    folders = {"MA": "1. Microaneurysms", "HE": "2. Haemorrhages", "EX": "3. Hard Exudates",
               "SE": "4. Soft Exudates", "OD": "5. Optic Disc"}
    for split_folder, numbers in [("a. Training Set", ["01", "02", "03"]), ("b. Testing Set", ["55"])]:
        for number in numbers:
            _touch(part / "1. Original Images" / split_folder / f"IDRiD_{number}.jpg", jpeg)
            for code, folder in folders.items():
                if code == "SE" and (number == "02" or split_folder.startswith("b")):
                    continue
                truth = part / "2. All Segmentation Groundtruths" / split_folder / folder
                _touch(truth / f"IDRiD_{number}_{code}.tif")
    _touch(part / "1. Original Images" / "a. Training Set" / "Thumbs.db")
    return part


def test_idrid_segmentation_official_layout(tmp_path: Path, tiny_jpeg: bytes) -> None:
    part = _idrid_segmentation(tmp_path / "IDRiD", tiny_jpeg)
    for root in (tmp_path / "IDRiD", tmp_path, part):  # dataset root, its parent, the part folder
        samples = load_dataset("idrid-segmentation", root)
        assert [(s.id, s.split) for s in samples] == [
            ("IDRiD_01", "train"), ("IDRiD_02", "train"), ("IDRiD_03", "train"), ("IDRiD_55", "test")
        ]
    by_id = {s.id: s for s in samples}
    first = by_id["IDRiD_01"].lesion_masks
    assert first is not None and set(first) == {"MA", "HE", "EX", "SE", "OD"}
    assert first["SE"] == part / "2. All Segmentation Groundtruths/a. Training Set/4. Soft Exudates/IDRiD_01_SE.tif"
    assert by_id["IDRiD_02"].lesion_masks["SE"] is None, "missing mask file = lesion absent"  # type: ignore[index]
    assert "SE" not in by_id["IDRiD_55"].lesion_masks, "missing lesion folder = not annotated"  # type: ignore[operator]
    assert all(s.dr_grade is None and s.patient_id is None for s in samples)
    assert [s.id for s in load_dataset("idrid-segmentation", tmp_path, split="test")] == ["IDRiD_55"]
    with pytest.raises(DatasetError, match="no split 'val' here; splits found: train, test"):
        load_dataset("idrid-segmentation", tmp_path, split="val")
    with pytest.raises(DatasetError, match="A. Segmentation"):
        load_dataset("idrid-segmentation", tmp_path / "IDRiD" / "A. Segmentation" / "1. Original Images")


#: The real IDRiD grading CSV quirks: CRLF, trailing empty columns, a whitespace-only trailing cell.
IDRID_TRAIN_CSV = (
    "Image name,Retinopathy grade,Risk of macular edema ,,,,\n"
    "IDRiD_001,3,2,,,,\n"
    "\n"
    "IDRiD_002,0,0,,,, \n"
    ",,,,,,\n"
    "IDRiD_003,4,1,,,,\n"
)


def _idrid_grading(root: Path, jpeg: bytes, *, train_csv: str = IDRID_TRAIN_CSV) -> Path:
    part = root / "B. Disease Grading"
    for name in ("IDRiD_001", "IDRiD_002", "IDRiD_003"):
        _touch(part / "1. Original Images" / "a. Training Set" / f"{name}.jpg", jpeg)
    _touch(part / "1. Original Images" / "b. Testing Set" / "IDRiD_001.jpg", jpeg)
    truths = part / "2. Groundtruths"
    _write(truths / "a. IDRiD_Disease Grading_Training Labels.csv", train_csv, crlf=True)
    _write(truths / "b. IDRiD_Disease Grading_Testing Labels.csv",
           "Image name,Retinopathy grade,Risk of macular edema\nIDRiD_001,2,\n", crlf=True, bom=True)
    return part


def test_idrid_grading_csv_quirks(tmp_path: Path, tiny_jpeg: bytes) -> None:
    _idrid_grading(tmp_path, tiny_jpeg)
    samples = load_dataset("idrid-grading", tmp_path)
    assert [(s.id, s.split, s.dr_grade, s.dme_grade) for s in samples] == [
        ("train/IDRiD_001", "train", 3, 2), ("train/IDRiD_002", "train", 0, 0), ("train/IDRiD_003", "train", 4, 1),
        ("test/IDRiD_001", "test", 2, None),  # the test set numbers its images from 001 again
    ]
    assert samples[0].image_path.name == "IDRiD_001.jpg" and samples[0].lesion_masks is None


def test_idrid_grading_missing_images_and_bad_grades(tmp_path: Path, tiny_jpeg: bytes) -> None:
    _idrid_grading(tmp_path, tiny_jpeg, train_csv=IDRID_TRAIN_CSV + "IDRiD_404,1,0,,,,\n")
    with pytest.raises(DatasetError, match=r"1 of 4 images .* \(e.g. IDRiD_404\); pass skip_missing=True"):
        load_dataset("idrid-grading", tmp_path, split="train")
    with pytest.warns(UserWarning, match="1 of 4 images"):
        assert len(load_dataset("idrid-grading", tmp_path, split="train", skip_missing=True)) == 3

    _idrid_grading(tmp_path / "bad", tiny_jpeg, train_csv=IDRID_TRAIN_CSV + "IDRiD_003,7,0,,,,\n")
    with pytest.raises(DatasetError, match=r"Training Labels.csv, line 7: invalid DR grade '7'"):
        load_dataset("idrid-grading", tmp_path / "bad", split="train")
    _idrid_grading(tmp_path / "cols", tiny_jpeg, train_csv="Image,Grade\nIDRiD_001,1\n")
    with pytest.raises(DatasetError, match="lacks column"):
        load_dataset("idrid-grading", tmp_path / "cols", split="train")


def test_idrid_seg_subset(tmp_path: Path, tiny_jpeg: bytes) -> None:
    for number in ("03", "04"):
        _touch(tmp_path / "images" / f"IDRiD_{number}.jpg", tiny_jpeg)
        _touch(tmp_path / "masks" / f"IDRiD_{number}_OD.png")
    _touch(tmp_path / "masks" / "IDRiD_03_LESION.png")
    samples = load_dataset("idrid-seg-subset", tmp_path)
    assert [s.id for s in samples] == ["IDRiD_03", "IDRiD_04"]
    assert samples[0].lesion_masks == {
        LESION_UNION: tmp_path / "masks/IDRiD_03_LESION.png", "OD": tmp_path / "masks/IDRiD_03_OD.png"
    }
    assert samples[1].lesion_masks[LESION_UNION] is None  # type: ignore[index]


def test_read_seg_subset_reads_images_and_union_masks(tmp_path: Path) -> None:
    """Image and union mask at full size; a photograph without a union mask gets an empty one."""
    for number in ("03", "04"):
        (tmp_path / "images").mkdir(exist_ok=True)
        Image.new("RGB", (160, 128), (90, 30, 10)).save(tmp_path / "images" / f"IDRiD_{number}.jpg")
    lesion = np.zeros((128, 160), np.uint8)
    lesion[10:20, 30:50] = 255
    (tmp_path / "masks").mkdir()
    Image.fromarray(lesion).save(tmp_path / "masks" / "IDRiD_03_LESION.png")
    read = list(read_seg_subset(tmp_path))
    assert [sample.id for sample, _, _ in read] == ["IDRiD_03", "IDRiD_04"]
    for _, image, union in read:
        assert image.shape == (128, 160, 3) and image.dtype == np.uint8
        assert union.shape == (128, 160) and union.dtype == bool
    assert np.array_equal(read[0][2], lesion > 0)
    assert not read[1][2].any()


# ---------------------------------------------------------------------------------------------
# Kaggle: APTOS, EyePACS


def test_aptos_kaggle_and_derivative_layouts(tmp_path: Path, tiny_jpeg: bytes) -> None:
    kaggle = tmp_path / "kaggle"
    _write(kaggle / "train.csv", "id_code,diagnosis\n000c1434d8d7,2\n001639a390f0,\n")
    _write(kaggle / "test.csv", "id_code\n0005cfc8afb6\n")
    for name in ("000c1434d8d7", "001639a390f0"):
        _touch(kaggle / "train_images" / f"{name}.png")
    _touch(kaggle / "test_images" / "0005cfc8afb6.png")
    samples = load_dataset("aptos2019", kaggle)
    assert [(s.id, s.split, s.dr_grade) for s in samples] == [
        ("000c1434d8d7", "train", 2), ("001639a390f0", "train", None), ("0005cfc8afb6", "test", None)
    ]
    assert samples[0].image_path == kaggle / "train_images" / "000c1434d8d7.png"

    derivative = tmp_path / "aptos2019-224"
    _write(derivative / "train.csv", "id_code,diagnosis\na1,0\na2,4\n", crlf=True)
    _write(derivative / "val.csv", "id_code,diagnosis\nb1,1\n", crlf=True)
    for name in ("a1", "a2", "b1"):
        _touch(derivative / "images" / f"{name}.jpg", tiny_jpeg)
    assert [s.id for s in load_dataset("aptos2019", derivative, split="val")] == ["b1"]
    assert Counter(s.split for s in load_dataset("aptos2019", derivative)) == {"train": 2, "val": 1}
    with pytest.raises(DatasetError, match="no split 'test' here; splits found: train, val"):
        load_dataset("aptos2019", derivative, split="test")


def test_eyepacs_layouts_patient_and_eye(tmp_path: Path, tiny_jpeg: bytes) -> None:
    official = tmp_path / "official"
    _write(official / "trainLabels.csv", "image,level\n10_left,0\n10_right,3\n13_left,1\n")
    for name in ("10_left", "10_right", "13_left"):
        _touch(official / "train" / f"{name}.jpeg", tiny_jpeg)
    samples = load_dataset("eyepacs", official)
    assert [(s.id, s.patient_id, s.eye, s.dr_grade, s.split) for s in samples] == [
        ("10_left", "10", "left", 0, "train"), ("10_right", "10", "right", 3, "train"),
        ("13_left", "13", "left", 1, "train"),
    ]
    derivative = tmp_path / "eyepacs-256"
    _write(derivative / "trainLabels.csv", "image,level\n10_left,0\n", crlf=True)
    _touch(derivative / "images" / "10_left.jpeg", tiny_jpeg)
    assert load_dataset("eyepacs", derivative)[0].image_path == derivative / "images" / "10_left.jpeg"

    beside = tmp_path / "fullres"
    _write(beside / "labels.csv", "image,level\n315_left,\n315_right,2\n", crlf=True)
    _touch(beside / "315_left.jpeg", tiny_jpeg)
    _touch(beside / "315_right.jpeg", tiny_jpeg)
    samples = load_dataset("eyepacs", beside, labels_csv="labels.csv")
    assert [(s.dr_grade, s.eye, s.split) for s in samples] == [(None, "left", None), (2, "right", None)]


# ---------------------------------------------------------------------------------------------
# Messidor-2, DDR, DeepDRiD


def test_messidor2_pairs_gradability_and_dme(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write(tmp_path / "messidor_data.csv",
           "image_id,adjudicated_dr_grade,adjudicated_dme,adjudicated_gradable\n"
           "20051020_43808_0100_PP.png,0,0,1\n20051020_43832_0100_PP.png,2,1,1\n"
           "IM002385.jpg,,,0\nIM002386.jpg,1,0,1\n")
    for name in ("20051020_43808_0100_PP.png", "20051020_43832_0100_PP.png", "IM002385.JPG", "IM002386.JPG"):
        _touch(tmp_path / "IMAGES" / name)
    with caplog.at_level(logging.INFO, logger="drscreen.data"):
        unpaired = load_dataset("messidor2", tmp_path)
    assert "each image is its own patient" in caplog.text and "excluded 1 image" in caplog.text
    assert [(s.id, s.dr_grade, s.dme_grade, s.patient_id) for s in unpaired] == [
        ("20051020_43808_0100_PP.png", 0, None, None),
        ("20051020_43832_0100_PP.png", 2, 2, None),
        ("IM002386.jpg", 1, None, None),
    ]
    assert unpaired[2].image_path.name == "IM002386.JPG", "names match whatever their case"

    _write(tmp_path / "messidor-2.csv",
           "left;right\n20051020_43808_0100_PP.png;20051020_43832_0100_PP.png\nIM002385.JPG;IM002386.JPG\n",
           crlf=True)
    paired = load_dataset("messidor2", tmp_path)
    assert [(s.eye, s.patient_id) for s in paired] == [
        ("left", "20051020_43808_0100_PP"), ("right", "20051020_43808_0100_PP"), ("right", "IM002385")
    ]


def test_ddr_grading(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    grading = tmp_path / "DDR-dataset" / "DR_grading"
    _write(grading / "train.txt", "007-0004-000.jpg 0\n007-0005-000.jpg 5\n20170323093305605.jpg 4\n\n")
    _write(grading / "valid.txt", "007-0007-000.jpg 2\n", crlf=True)
    _write(grading / "test.txt", "007-0008-000.jpg 1\n")
    for split, name in [("train", "007-0004-000"), ("train", "007-0005-000"), ("train", "20170323093305605"),
                        ("valid", "007-0007-000"), ("test", "007-0008-000")]:
        _touch(grading / split / f"{name}.jpg")
    with caplog.at_level(logging.INFO, logger="drscreen.data"):
        samples = load_dataset("ddr", tmp_path)
    assert "excluded 1 image(s): grade 5 (ungradable) in train.txt" in caplog.text
    assert [(s.id, s.dr_grade, s.split) for s in samples] == [
        ("007-0004-000", 0, "train"), ("20170323093305605", 4, "train"),
        ("007-0007-000", 2, "val"), ("007-0008-000", 1, "test"),
    ]
    assert [s.id for s in load_dataset("ddr", grading, split="val")] == ["007-0007-000"]
    _write(grading / "test.txt", "007-0008-000.jpg\n")
    with pytest.raises(DatasetError, match="line 1: expected '<file name> <grade>'"):
        load_dataset("ddr", tmp_path, split="test")


def test_deepdrid_regular_fundus(tmp_path: Path) -> None:
    training = tmp_path / "regular_fundus_images" / "regular-fundus-training"
    _write(training / "regular-fundus-training.csv",
           "patient_id,image_id,image_path,left_eye_DR_Level,right_eye_DR_Level,patient_DR_Level,Overall quality\n"
           "1,1_l1,\\regular_fundus_images\\regular-fundus-training\\Images\\1\\1_l1.jpg,0,3,3,1\n"
           "1,1_r2,\\regular_fundus_images\\regular-fundus-training\\Images\\1\\1_r2.jpg,0,3,3,0\n"
           "2,2_l1,\\regular_fundus_images\\regular-fundus-training\\Images\\2\\2_l1.jpg,5,1,1,0\n")
    for patient, image in [("1", "1_l1"), ("1", "1_r2"), ("2", "2_l1")]:
        _touch(training / "Images" / patient / f"{image}.jpg")
    samples = load_dataset("deepdrid", tmp_path)
    assert [(s.id, s.eye, s.dr_grade, s.patient_id, s.split) for s in samples] == [
        ("1_l1", "left", 0, "1", "train"), ("1_r2", "right", 3, "1", "train")
    ]
    with pytest.raises(DatasetError, match="no split 'val' here; splits found: train"):
        load_dataset("deepdrid", tmp_path / "regular_fundus_images", split="val")


# ---------------------------------------------------------------------------------------------
# generic


def test_generic_csv_and_folder(tmp_path: Path) -> None:
    _write(tmp_path / "study" / "labels.csv",
           "file,dr,dme,pid,side,part\na.png,2,1,p1,OS,train\nb.png,,0,p1,OD,test\n", bom=True)
    for name in ("a.png", "b.png"):
        _touch(tmp_path / "study" / "photos" / name)
    samples = load_dataset(
        "csv", tmp_path / "study", images="photos", image_column="file", grade_column="dr", dme_column="dme",
        patient_column="pid", eye_column="side", split_column="part", dataset_name="study",
    )
    assert [(s.id, s.dr_grade, s.dme_grade, s.patient_id, s.eye, s.split, s.dataset) for s in samples] == [
        ("a", 2, 1, "p1", "left", "train", "study"), ("b", None, 0, "p1", "right", "test", "study")
    ]
    only_test = load_dataset("csv", tmp_path / "study", split="test", images="photos", image_column="file",
                             grade_column="dr", split_column="part")
    assert [s.id for s in only_test] == ["b"]

    for grade, name in [(0, "x"), (4, "y"), (4, "z")]:
        _touch(tmp_path / "graded" / "train" / str(grade) / f"{name}.jpg")
    _touch(tmp_path / "graded" / "train" / "ungradable" / "w.jpg")
    samples = load_dataset("folder", tmp_path / "graded", split="train")
    assert [(s.id, s.dr_grade, s.split) for s in samples] == [("x", 0, "train"), ("y", 4, "train"), ("z", 4, "train")]
    _touch(tmp_path / "graded" / "train" / "1" / "x.jpg")
    with pytest.raises(DatasetError, match="duplicated sample ids"):
        load_dataset("folder", tmp_path / "graded", split="train")


# ---------------------------------------------------------------------------------------------
# splits


def _cohort(patients: int = 600, seed: int = 0) -> list[Sample]:
    """Two eyes per patient (eyes within one grade of each other), skewed grades, some lone images."""
    rng = np.random.default_rng(seed)
    samples = []
    for number in range(patients):
        grade = int(rng.choice(5, p=[0.5, 0.1, 0.25, 0.08, 0.07]))
        for eye in ("left", "right"):
            eye_grade = int(max(0, grade - rng.integers(0, 2)))
            samples.append(Sample(id=f"{number}_{eye}", image_path=Path(f"{number}_{eye}.jpg"), dr_grade=eye_grade,
                                  eye=eye, patient_id=str(number), dataset="cohort"))
    samples += [Sample(id=f"lone{n}", image_path=Path(f"lone{n}.jpg"), dataset="cohort") for n in range(20)]
    return samples


def test_split_by_patient_properties() -> None:
    samples = _cohort()
    splits = split_by_patient(samples, (0.8, 0.1, 0.1), seed=3)
    assert list(splits) == ["train", "val", "test"]
    assert sorted(s.id for part in splits.values() for s in part) == sorted(s.id for s in samples)
    owners = {}
    for name, part in splits.items():
        for sample in part:
            assert owners.setdefault(patient_key(sample), name) == name, "a patient in two splits"
    patients = {name: {patient_key(s) for s in part} for name, part in splits.items()}
    total = sum(len(p) for p in patients.values())
    assert abs(len(patients["train"]) / total - 0.8) < 0.01 and abs(len(patients["test"]) / total - 0.1) < 0.01

    def worst_grades(part: list[Sample]) -> Counter[int]:
        worst: dict[tuple[str, str, str], int] = {}
        for s in part:
            worst[patient_key(s)] = max(worst.get(patient_key(s), -1), -1 if s.dr_grade is None else s.dr_grade)
        return Counter(worst.values())

    overall = worst_grades(samples)
    for name, fraction in [("train", 0.8), ("val", 0.1), ("test", 0.1)]:
        counts = worst_grades(splits[name])
        for grade, n in overall.items():
            assert abs(counts[grade] - n * fraction) <= 1.5, (name, grade, counts[grade], n * fraction)

    again = split_by_patient(list(reversed(samples)), (0.8, 0.1, 0.1), seed=3)
    assert {k: {s.id for s in v} for k, v in again.items()} == {k: {s.id for s in v} for k, v in splits.items()}
    other = split_by_patient(samples, (0.8, 0.1, 0.1), seed=4)
    assert {s.id for s in other["test"]} != {s.id for s in splits["test"]}
    assert [s.id for s in splits["val"]] == [s.id for s in samples if s in set(splits["val"])], "input order kept"


def test_split_fraction_forms_and_errors() -> None:
    samples = _cohort(50)
    assert list(split_by_patient(samples, (0.7, 0.3))) == ["train", "val"]
    named = split_by_patient(samples, {"dev": 0.5, "holdout": 0.5}, stratify=False)
    assert list(named) == ["dev", "holdout"]
    assert len({patient_key(s) for s in named["dev"]}) == len({patient_key(s) for s in named["holdout"]}) == 35
    with pytest.raises(ValueError, match="sum to 1"):
        split_by_patient(samples, (0.8, 0.3))
    with pytest.raises(ValueError, match="2 or 3 fractions"):
        split_by_patient(samples, (1.0,))


def test_patient_kfold_and_split_file_roundtrip(tmp_path: Path) -> None:
    samples = _cohort(200)
    folds = patient_kfold(samples, k=5, seed=1)
    assert len(folds) == 5
    validation_owner: dict[tuple[str, str, str], int] = {}
    for number, (train, validation) in enumerate(folds):
        assert {patient_key(s) for s in train}.isdisjoint({patient_key(s) for s in validation})
        assert len(train) + len(validation) == len(samples)
        for s in validation:
            assert validation_owner.setdefault(patient_key(s), number) == number
    assert len(validation_owner) == len({patient_key(s) for s in samples})
    assert [len(v) for _, v in patient_kfold(samples, k=5, seed=1)] == [len(v) for _, v in folds]
    assert len(patient_kfold(samples, k=4, stratify=False)) == 4

    splits = split_by_patient(samples, seed=0)
    write_splits(splits, tmp_path / "splits.csv")
    assert read_splits(tmp_path / "splits.csv", samples) == splits
    with pytest.raises(DatasetError, match="not in split file"):
        read_splits(tmp_path / "splits.csv", [*samples, Sample(id="new", image_path=Path("n.jpg"), dataset="cohort")])


# ---------------------------------------------------------------------------------------------
# CLI


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="drscreen")
    data_command.add_parser(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_summary_and_split(tmp_path: Path, tiny_jpeg: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "trainLabels.csv", "image,level\n1_left,0\n1_right,2\n2_left,4\n2_right,\n")
    for name in ("1_left", "1_right", "2_left", "2_right"):
        _touch(tmp_path / "train" / f"{name}.jpeg", tiny_jpeg)
    assert _run_cli(["data", "summary", "--dataset", "eyepacs", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "4 images, 2 patients" in out and "eye: left 2, right 2" in out
    assert out.splitlines()[3].split() == ["train", "1", "0", "1", "0", "1", "1", "4"]

    assert _run_cli(["data", "summary", "--dataset", "eyepacs", "--root", str(tmp_path), "--check-images"]) == 1
    assert "too_small: 4" in capsys.readouterr().out  # 8x8 thumbnails are below the 128 px minimum

    out_csv = tmp_path / "splits.csv"
    code = _run_cli(["data", "split", "--dataset", "eyepacs", "--root", str(tmp_path),
                     "--fractions", "0.5", "0.5", "--out", str(out_csv)])
    assert code == 0 and len(out_csv.read_text().splitlines()) == 5
    assert _run_cli(["data", "list"]) == 0 and "idrid-segmentation" in capsys.readouterr().out
    assert _run_cli(["data", "summary", "--dataset", "eyepacs", "--root", str(tmp_path), "-o", "nope=1"]) == 2
    assert "accepts labels_csv, skip_missing" in capsys.readouterr().err
