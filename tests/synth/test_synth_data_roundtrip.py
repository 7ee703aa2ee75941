"""End to end: synthetic data sets written by drscreen.synth load through drscreen.data's adapters."""

import numpy as np
import pytest

from drscreen.synth import generate_fundus, write_dataset
from drscreen.synth.writers import read_truth

data = pytest.importorskip("drscreen.data")
io = pytest.importorskip("drscreen.io")

SIZE = 128


def _fundus(row):
    return generate_fundus(int(row["seed"]), SIZE, target_dr=int(row["target_dr"]), target_dme=int(row["target_dme"]))


@pytest.fixture(scope="module")
def idrid_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_idrid")
    write_dataset(root, 5, SIZE, 6, "idrid", grade_distribution=(0.2, 0.2, 0.2, 0.2, 0.2), label_noise=0.3,
                  workers=1, progress=False)  # fmt: skip
    return root


def test_idrid_segmentation_adapter_reads_images_and_masks(idrid_root):
    rows = read_truth(idrid_root)
    samples = data.load_dataset("idrid-segmentation", idrid_root)
    assert [s.id for s in samples] == [f"IDRiD_{i:02d}" for i in range(1, 6)]
    assert [s.split for s in samples] == [r["split"] for r in rows]
    for sample, row in zip(samples, rows):
        fundus = _fundus(row)
        assert io.read_image(sample.image_path).shape == (SIZE, SIZE, 3)
        assert set(sample.lesion_masks) == {"MA", "HE", "EX", "SE", "OD"}
        for code, path in sample.lesion_masks.items():
            assert (path is not None) == bool(fundus.masks[code].any()), (sample.id, code)
            if path is not None:
                assert np.array_equal(io.read_mask(path), fundus.masks[code])


def test_idrid_grading_adapter_reads_the_recorded_labels(idrid_root):
    rows = read_truth(idrid_root)
    samples = data.load_dataset("idrid-grading", idrid_root)
    assert [s.id for s in samples] == [f"{r['split']}/{r['name']}" for r in rows]
    assert [(s.dr_grade, s.dme_grade) for s in samples] == [(int(r["dr_label"]), int(r["dme_label"])) for r in rows]


def test_aptos_and_csv_adapters(tmp_path):
    aptos, folder = tmp_path / "aptos", tmp_path / "folder"
    write_dataset(aptos, 3, SIZE, 2, "aptos", workers=1, progress=False)
    write_dataset(folder, 3, SIZE, 2, "folder", workers=1, progress=False)
    rows = read_truth(aptos)
    samples = data.load_dataset("aptos2019", aptos)
    assert [(s.id, s.dr_grade) for s in samples] == [(r["name"], int(r["dr_label"])) for r in rows]
    samples = data.load_dataset("csv", folder, images="images", dme_column="dme", eye_column="eye")
    rows = read_truth(folder)
    assert [(s.id, s.dr_grade, s.dme_grade, s.eye) for s in samples] == [
        (r["name"], int(r["dr_label"]), int(r["dme_label"]), r["eye"]) for r in rows
    ]
    assert np.array_equal(io.read_image(samples[0].image_path), _fundus(rows[0]).image)
