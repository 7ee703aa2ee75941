"""Optic disc, fovea and laterality on synthetic fundus images (truth known), and eye names in files."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError

import cv2
import numpy as np
import pytest

from drscreen.preprocess import PreprocessConfig, Preprocessor
from drscreen.preprocess.geometry import CropGeometry
from drscreen.screening.landmarks import Landmarks, laterality_from_name, locate_landmarks
from drscreen.synth import generate_fundus

SIZE = 224


def prepared_fundus(seed: int, eye: str, enhancement: str = "ben_graham"):
    """A synthetic fundus through the photograph preprocessing, and its truth in crop pixels:
    (prepared, disc centre, fovea, disc diameter)."""
    fundus = generate_fundus(seed, 384, eye=eye)
    prepared = Preprocessor(PreprocessConfig(size=SIZE, enhancement=enhancement)).prepare(fundus.image)
    geometry = prepared.geometry
    disc, fovea = geometry.points_to_crop(np.array([fundus.geometry.disc_center, fundus.geometry.fovea]))
    return prepared, disc, fovea, fundus.geometry.disc_diameter * geometry.scale, fundus


def disc_map(center: np.ndarray, diameter: float) -> np.ndarray:
    """A model-like disc probability map: a soft disc of ``diameter`` px at ``center``."""
    ys, xs = np.indices((SIZE, SIZE), dtype=np.float32)
    distance = np.hypot(xs - center[0], ys - center[1])
    return np.clip(1.5 - 2.0 * distance / diameter, 0.0, 1.0).astype(np.float32)


@pytest.mark.parametrize(("seed", "eye", "expected"), [(0, "right", "R"), (1, "left", "L"), (2, "left", "L")])
def test_finds_disc_fovea_and_eye_from_the_image(seed: int, eye: str, expected: str) -> None:
    prepared, disc, fovea, diameter, _ = prepared_fundus(seed, eye)
    found = locate_landmarks(prepared.display, prepared.fov_mask, None)
    assert found.disc_source == "image"
    assert math.dist(found.disc_center, disc) < 0.5 * diameter
    assert math.dist(found.fovea_center, fovea) < 1.0 * diameter
    assert 0.7 < found.disc_diameter / diameter < 1.4
    assert found.fovea_confidence > 0.5
    assert found.laterality == expected
    assert 0.0 <= found.laterality_confidence <= 1.0


@pytest.mark.parametrize(("seed", "eye", "expected"), [(0, "right", "R"), (1, "left", "L"), (2, "left", "L")])
def test_unenhanced_image_finds_the_disc_and_never_the_wrong_eye(seed: int, eye: str, expected: str) -> None:
    """Without Ben Graham's filter the fovea stands out less (lower confidence, often no laterality)."""
    prepared, disc, _, diameter, _ = prepared_fundus(seed, eye, enhancement="none")
    found = locate_landmarks(prepared.display, prepared.fov_mask, None)
    assert math.dist(found.disc_center, disc) < 0.5 * diameter
    assert found.laterality in (expected, None)


def test_uses_the_model_disc_map_when_it_has_a_plausible_blob() -> None:
    prepared, disc, fovea, diameter, _ = prepared_fundus(3, "right")
    found = locate_landmarks(prepared.display, prepared.fov_mask, disc_map(disc, diameter))
    assert found.disc_source == "model"
    assert math.dist(found.disc_center, disc) < 0.1 * diameter
    assert found.disc_confidence == pytest.approx(1.0)
    assert math.dist(found.fovea_center, fovea) < 1.0 * diameter
    assert found.laterality == "R"


@pytest.mark.parametrize("probability", [None, "empty", "low", "huge"])
def test_falls_back_to_the_image_without_a_usable_disc_map(probability: str | None) -> None:
    prepared, disc, _, diameter, _ = prepared_fundus(1, "left")
    maps = {
        None: None,
        "empty": np.zeros((SIZE, SIZE), np.float32),
        "low": np.full((SIZE, SIZE), 0.3, np.float32),
        "huge": np.ones((SIZE, SIZE), np.float32),
    }
    found = locate_landmarks(prepared.display, prepared.fov_mask, maps[probability])
    assert found.disc_source == "image"
    assert math.dist(found.disc_center, disc) < 0.5 * diameter


def test_no_laterality_when_the_fovea_is_outside_the_field() -> None:
    prepared, disc, _, diameter, _ = prepared_fundus(0, "right")
    # Keep only the part of the field right of the disc (the nasal side of a right eye).
    fov = prepared.fov_mask & (np.arange(SIZE)[None, :] > disc[0] - diameter)
    image = prepared.display.copy()
    image[~fov] = 0
    found = locate_landmarks(image, fov, disc_map(disc, diameter))
    assert found.fovea_confidence < 0.3
    assert found.laterality is None


def test_nothing_is_confident_on_noise_or_a_blank_field() -> None:
    fov = np.hypot(*(np.indices((SIZE, SIZE)) - (SIZE - 1) / 2)) < 0.48 * SIZE
    noise = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
    blank = np.full((SIZE, SIZE, 3), 128, np.uint8)
    for image in (noise, blank):
        found = locate_landmarks(image, fov, None)
        assert found.disc_confidence < 0.3
        assert found.laterality is None


def test_mirrored_image_gives_the_other_eye() -> None:
    prepared, *_ = prepared_fundus(0, "right")
    found = locate_landmarks(prepared.display, prepared.fov_mask, None)
    mirrored = locate_landmarks(prepared.display[:, ::-1].copy(), prepared.fov_mask[:, ::-1].copy(), None)
    assert {found.laterality, mirrored.laterality} == {"R", "L"}
    assert mirrored.disc_center[0] == pytest.approx(SIZE - 1 - found.disc_center[0], abs=1.0)


def test_empty_fov_mask_means_the_whole_image() -> None:
    prepared, disc, _, diameter, _ = prepared_fundus(1, "left")
    found = locate_landmarks(prepared.display, np.zeros((SIZE, SIZE), bool), None)
    assert math.dist(found.disc_center, disc) < 0.5 * diameter


def test_rejects_mismatched_inputs() -> None:
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    with pytest.raises(ValueError, match="fov_mask"):
        locate_landmarks(image, np.ones((SIZE + 1, SIZE), bool), None)
    with pytest.raises(ValueError, match="disc_probability"):
        locate_landmarks(image, np.ones((SIZE, SIZE), bool), np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        locate_landmarks(image.astype(np.float32), np.ones((SIZE, SIZE), bool), None)


def test_to_original_maps_landmarks_onto_the_photograph() -> None:
    prepared, *_, fundus = prepared_fundus(2, "left")
    found = locate_landmarks(prepared.display, prepared.fov_mask, None)
    original = found.to_original(prepared.geometry)
    scale = prepared.geometry.scale
    assert math.dist(original.disc_center, fundus.geometry.disc_center) < 0.5 * fundus.geometry.disc_diameter
    assert math.dist(original.fovea_center, fundus.geometry.fovea) < 1.0 * fundus.geometry.disc_diameter
    assert original.disc_diameter == pytest.approx(found.disc_diameter / scale)
    assert original.disc_fovea_distance_dd == pytest.approx(found.disc_fovea_distance_dd)
    assert (original.laterality, original.fovea_confidence) == (found.laterality, found.fovea_confidence)


def test_to_original_is_exact_for_a_known_geometry() -> None:
    landmarks = Landmarks(
        disc_center=(10.0, 20.0),
        disc_diameter=5.0,
        disc_confidence=0.9,
        disc_source="model",
        fovea_center=(0.0, 0.0),
        fovea_confidence=0.8,
        laterality="L",
        laterality_confidence=0.7,
    )
    geometry = CropGeometry(original_size=(100, 100), x0=-10, y0=4, side=50, output_size=25)
    original = landmarks.to_original(geometry)
    assert original.disc_center == pytest.approx((10.5 * 2 - 0.5 - 10, 20.5 * 2 - 0.5 + 4))
    assert original.fovea_center == pytest.approx((0.5 * 2 - 0.5 - 10, 0.5 * 2 - 0.5 + 4))
    assert original.disc_diameter == pytest.approx(10.0)
    assert landmarks.to_dict()["disc_center"] == [10.0, 20.0]
    with pytest.raises(FrozenInstanceError):
        landmarks.disc_diameter = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("10_left.jpeg", "L"),
        ("10_right.jpeg", "R"),
        ("data/patient7/scan_LEFT.png", "L"),
        ("P01-R.png", "R"),
        ("P01_L_2019.jpg", "L"),
        ("img OD.tif", "R"),
        ("img_os.tif", "L"),
        ("subject3OD.jpg", "R"),
        ("patientRightEye.jpg", "R"),
        ("lefteye_001.png", "L"),
        ("IDRiD_03.jpg", None),
        ("ODIR_123.jpg", None),
        ("good_image.png", None),
        ("period_2.png", None),
        ("odd.png", None),
        ("DR2_grade.png", None),
        ("left_and_right.png", None),
        ("img_OD_left.png", None),
        ("brightness.png", None),
        ("20051019_38557_0100_PP.tif", None),
    ],
)
def test_laterality_from_name(name: str, expected: str | None) -> None:
    assert laterality_from_name(name) == expected


def test_fov_edge_band_is_not_a_fovea() -> None:
    """The grey band Ben Graham's filter leaves at the field's edge is flat and vessel-free, like a
    fovea; it must not attract the fovea search."""
    prepared, _, fovea, diameter, _ = prepared_fundus(5, "left")
    found = locate_landmarks(prepared.display, prepared.fov_mask, None)
    band = cv2.distanceTransform(np.pad(prepared.fov_mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    column, row = (int(round(v)) for v in found.fovea_center)
    assert band[row, column] > 0.5 * diameter
    assert math.dist(found.fovea_center, fovea) < 1.0 * diameter
