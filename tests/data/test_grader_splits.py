"""The multi-source grader's fixed split (``drscreen.data.grader_splits``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from drscreen.data import load_dataset
from drscreen.data.grader_splits import write_grader_splits


def fake_data_root(root: Path) -> Path:
    """APTOS-224 and EyePACS-256 layouts with tiny images: 40 + 10 APTOS, 30 EyePACS patients."""
    pixel = np.zeros((8, 8, 3), np.uint8)
    aptos = root / "aptos2019-224"
    (aptos / "images").mkdir(parents=True)
    for split, count in (("train", 40), ("val", 10)):
        rows = ["id_code,diagnosis"] + [f"{split}{i},{i % 5}" for i in range(count)]
        (aptos / f"{split}.csv").write_text("\n".join(rows) + "\n")
        for i in range(count):
            Image.fromarray(pixel).save(aptos / "images" / f"{split}{i}.jpg")
    eyepacs = root / "eyepacs-256"
    (eyepacs / "images").mkdir(parents=True)
    rows = ["image,level"]
    for patient in range(30):
        for eye in ("left", "right"):
            rows.append(f"{patient}_{eye},{patient % 5}")
            Image.fromarray(pixel).save(eyepacs / "images" / f"{patient}_{eye}.jpeg")
    (eyepacs / "trainLabels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_splits_keep_patients_together_and_make_aptos_val_the_test_part(tmp_path: Path) -> None:
    data = fake_data_root(tmp_path / "data")
    counts = write_grader_splits(data, tmp_path / "splits")
    assert counts["aptos2019-224"] == {"train": 34, "val": 6, "test": 10}
    assert sum(counts["eyepacs-256"].values()) == 60
    aptos_test = load_dataset("aptos2019", tmp_path / "splits" / "aptos2019-224", "test")
    assert sorted(s.id for s in aptos_test) == sorted(f"val{i}" for i in range(10))
    patients = {}
    for split in ("train", "val", "test"):
        samples = load_dataset("eyepacs", tmp_path / "splits" / "eyepacs-256", labels_csv=f"{split}.csv")
        assert samples and all(s.image_path.is_file() for s in samples)
        patients[split] = {s.patient_id for s in samples}
    assert not (patients["train"] & patients["val"]) and not (patients["train"] & patients["test"])
    assert not (patients["val"] & patients["test"])
    again = write_grader_splits(data, tmp_path / "splits")  # same seed: same split, links replaced
    assert again == counts
