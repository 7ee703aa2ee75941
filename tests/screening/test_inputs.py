"""Collecting inputs: folders, manifests, DICOM tags, file-name laterality, arrays, unique ids."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from drscreen.screening import ManifestError, ScreeningInput, collect_inputs

#: SOP class of 8-bit ophthalmic photography.
OPHTHALMIC_PHOTOGRAPHY = "1.2.840.10008.5.1.4.1.1.77.1.5.1"


def write_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((32, 32, 3), 90, np.uint8))
    return path


def test_folders_are_searched_recursively_with_ids_from_relative_paths(tmp_path: Path) -> None:
    write_png(tmp_path / "site" / "a" / "img.png")
    write_png(tmp_path / "site" / "b" / "img.png")
    write_png(tmp_path / "site" / "p7_left.png")
    (tmp_path / "site" / "notes.txt").write_text("ignored")
    records = list(collect_inputs([tmp_path / "site"]))
    assert [r.id for r in records] == ["a__img", "b__img", "p7_left"]
    assert records[2].laterality == "L" and records[2].laterality_source == "file_name"
    assert records[0].laterality is None


def test_manifest_columns_and_relative_paths(tmp_path: Path) -> None:
    write_png(tmp_path / "imgs" / "x.png")
    write_png(tmp_path / "imgs" / "y_OD.png")
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,id,patient_id,laterality,visit,field\n"
        "imgs/x.png,first,P1,left,2026-01,macula\n"
        f"{tmp_path / 'imgs' / 'y_OD.png'},,P1,,2026-01,\n"
        "\n"
    )
    first, second = collect_inputs([manifest])
    assert (first.id, first.patient_id, first.laterality, first.laterality_source, first.visit, first.field) == (
        "first", "P1", "L", "manifest", "2026-01", "macula",
    )  # fmt: skip
    assert second.path == tmp_path / "imgs" / "y_OD.png" and second.laterality == "R"
    assert second.laterality_source == "file_name"


@pytest.mark.parametrize(
    ("text", "message"),
    [("file\nx.png\n", "'path' column"), ("path,laterality\nx.png,up\n", "laterality 'up'")],
)
def test_bad_manifests_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(text)
    with pytest.raises(ManifestError, match=message):
        list(collect_inputs([manifest]))


def test_dicom_tags_give_patient_and_laterality(tmp_path: Path) -> None:
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPClassUID = OPHTHALMIC_PHOTOGRAPHY
    dataset.SOPInstanceUID = generate_uid()
    dataset.Modality = "OP"
    dataset.PatientID = "PID-42"
    dataset.ImageLaterality = "R"
    dataset.StudyDate = "20261203"
    dataset.set_pixel_data(np.full((16, 16, 3), 80, np.uint8), photometric_interpretation="RGB", bits_stored=8)
    path = tmp_path / "scan_left.dcm"
    dataset.save_as(path, enforce_file_format=True)
    (record,) = collect_inputs([path])
    assert (record.patient_id, record.laterality, record.laterality_source, record.visit) == (
        "PID-42", "R", "dicom", "20261203",
    )  # fmt: skip


def test_arrays_pil_images_records_and_colliding_ids(tmp_path: Path) -> None:
    array = np.zeros((8, 8, 3), np.uint8)
    pil = Image.fromarray(np.full((8, 8), 7, np.uint8))
    record = ScreeningInput(id="dup", image=array)
    records = list(collect_inputs([array, pil, record, record]))
    assert [r.id for r in records] == ["array_00000", "image_00001", "dup", "dup-2"]
    assert records[1].image is not None and records[1].image.shape == (8, 8, 3)


def test_a_missing_file_is_still_a_record_to_report(tmp_path: Path) -> None:
    (record,) = collect_inputs([tmp_path / "nope.jpg"])
    assert record.path == tmp_path / "nope.jpg" and record.id == "nope"
