"""The Preprocessor: config round trip, prepared image contract, masks in the same geometry."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
import torch
from preprocess_fixtures import fundus_photo, iou

from drscreen.preprocess import (
    ENHANCEMENTS,
    HALF,
    IMAGENET,
    CropGeometry,
    PreprocessConfig,
    Preprocessor,
    QualityIssue,
    resample,
)
from drscreen.preprocess.resample import crop_resized


@pytest.fixture(scope="module")
def photo() -> tuple[np.ndarray, np.ndarray]:
    return fundus_photo(height=300, width=480, radius=200.0)  # disc cut at top and bottom


def test_config_round_trips_through_json() -> None:
    config = PreprocessConfig(size=256, enhancement="clahe", normalization=HALF, fov_margin=0.05)
    data = json.loads(json.dumps(config.to_dict()))
    assert PreprocessConfig.from_dict(data) == config
    assert PreprocessConfig.from_dict({}) == PreprocessConfig()
    named = PreprocessConfig.from_dict({"normalization": "imagenet", "quality_thresholds": {"min_brightness": 10}})
    assert named.normalization == IMAGENET and named.quality_thresholds.min_brightness == 10


def test_the_model_normalisation_applies_unless_the_settings_name_one() -> None:
    assert PreprocessConfig.for_model({"size": 96}, HALF) == PreprocessConfig(size=96, normalization=HALF)
    assert PreprocessConfig.for_model({"normalization": "imagenet"}, HALF).normalization == IMAGENET


@pytest.mark.parametrize(
    "bad",
    [
        {"sise": 256},
        {"enhancement": "gamma"},
        {"size": 4},
        {"normalization": "vgg"},
        {"normalization": {"mean": [0.5], "std": [1]}},
    ],
)
def test_config_rejects_mistakes(bad: dict) -> None:
    with pytest.raises(ValueError):
        PreprocessConfig.from_dict(bad)


@pytest.mark.parametrize("enhancement", ENHANCEMENTS)
def test_prepare_contract(photo, enhancement: str) -> None:
    image, truth = photo
    prepared = Preprocessor(PreprocessConfig(size=128, enhancement=enhancement)).prepare(image)
    assert prepared.tensor.shape == (3, 128, 128) and prepared.tensor.dtype == torch.float32
    assert prepared.display.shape == (128, 128, 3) and prepared.display.dtype == np.uint8
    expected = IMAGENET(torch.from_numpy(prepared.display).permute(2, 0, 1).float() / 255)
    torch.testing.assert_close(prepared.tensor, expected)
    assert prepared.fov.found and prepared.fov_mask.shape == (128, 128)
    assert prepared.quality is not None and prepared.usable
    background = 128 if enhancement.startswith("ben_graham") else 0
    assert (prepared.display[~prepared.fov_mask] == background).all()
    # the FOV mask in the crop maps back onto the detected FOV
    back = prepared.geometry.to_original(prepared.fov_mask)
    assert iou(back, prepared.fov.mask) > 0.98 and iou(back, truth) > 0.97


def test_masks_follow_the_image_geometry(photo) -> None:
    image, _ = photo
    preprocessor = Preprocessor(PreprocessConfig(size=200))
    prepared = preprocessor.prepare(image)
    lesion = np.zeros(image.shape[:2], bool)
    lesion[140:160, 300:330] = True
    crop = preprocessor.prepare_mask(lesion, prepared.geometry)
    assert crop.shape == (200, 200) and crop.dtype == bool
    ys, xs = np.nonzero(crop)
    centre = prepared.geometry.points_to_original([[xs.mean(), ys.mean()]])[0]
    np.testing.assert_allclose(centre, [314.5, 149.5], atol=1.0)
    soft = preprocessor.prepare_mask(lesion, prepared.geometry, threshold=None)
    assert soft.dtype == np.float32 and soft.max() <= 1
    assert soft.sum() == pytest.approx(lesion.sum() * prepared.geometry.scale**2, rel=0.02)  # area is preserved
    nearest = preprocessor.prepare_mask(lesion, prepared.geometry, interpolation="nearest")
    assert nearest.dtype == bool and abs(int(nearest.sum()) - int(crop.sum())) <= 0.2 * crop.sum()
    with pytest.raises(ValueError, match="mask"):
        preprocessor.prepare_mask(lesion[:10], prepared.geometry)


def test_crop_off_and_gate_off(photo) -> None:
    image, _ = photo
    prepared = Preprocessor(PreprocessConfig(size=96, crop_to_fov=False, quality_gate=False)).prepare(image)
    geometry = prepared.geometry
    assert (geometry.x0, geometry.y0, geometry.side) == (0, -90, 480)  # whole image, padded square
    assert prepared.quality is None and prepared.usable


def test_unusable_images_are_prepared_and_flagged() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    prepared = Preprocessor(PreprocessConfig(size=64)).prepare(noise)
    assert not prepared.usable and prepared.quality.reasons == (QualityIssue.NOISE,)
    assert prepared.tensor.shape == (3, 64, 64)  # never dropped: the caller decides


def test_rejects_non_rgb_uint8() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        Preprocessor().prepare(np.zeros((10, 10), np.uint8))


def test_memory_stays_bounded_for_a_long_thin_image() -> None:
    """A 128 x 20,000 px image (7.7 MB): padding it to a 20,000 px square at full resolution would
    allocate 1.2 GB for the pixels alone; prepare must stay within a small multiple of the image."""
    strip = np.zeros((128, 20_000, 3), np.uint8)
    strip[:, ::50] = (180, 90, 40)
    tracemalloc.start()
    try:
        prepared = Preprocessor(PreprocessConfig(size=64, crop_to_fov=False)).prepare(strip)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert prepared.tensor.shape == (3, 64, 64) and not prepared.usable
    assert peak < 20 * strip.nbytes, f"peak {peak / 1e6:.0f} MB"


def test_bounded_crop_matches_the_full_resolution_crop(monkeypatch: pytest.MonkeyPatch, photo) -> None:
    image, _ = photo
    geometry = CropGeometry.whole_image(*image.shape[:2], output_size=96)
    exact = geometry.apply(image, "area")
    assert np.array_equal(crop_resized(geometry, image, "area"), exact)
    monkeypatch.setattr(resample, "MAX_BOX_PIXELS", 0)
    resized_first = crop_resized(geometry, image, "area")
    assert resized_first.shape == exact.shape
    assert np.abs(resized_first.astype(int) - exact.astype(int)).mean() < 2.0
    mask = crop_resized(geometry, np.ones(image.shape[:2], bool), "linear")
    assert abs(int(mask.sum()) - int(geometry.apply(np.ones(image.shape[:2], bool), "linear").sum())) <= 2 * 96


def test_a_field_of_view_found_by_another_preparation_gives_the_same_input(photo) -> None:
    image, _ = photo
    first = Preprocessor(PreprocessConfig(size=96, crop_to_fov=True)).prepare(image)
    other = Preprocessor(PreprocessConfig(size=64, crop_to_fov=True, enhancement="clahe"))
    reused, detected = other.prepare(image, first.fov), other.prepare(image)
    assert reused.geometry == detected.geometry and reused.fov is first.fov
    assert torch.equal(reused.tensor, detected.tensor) and np.array_equal(reused.fov_mask, detected.fov_mask)
    with pytest.raises(ValueError, match="field of view"):
        other.prepare(image[:, :400], first.fov)
