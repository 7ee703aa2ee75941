"""Crop geometry: crop/pad/resize and the way back onto the original image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from preprocess_fixtures import fundus_photo

from drscreen.preprocess import CropGeometry, Ellipse, detect_fov
from drscreen.preprocess.fov import ClippedSides, FieldOfView


def _blob_mask(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, irregular (height, width) bool shape: a few overlapping ellipses."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    for _ in range(5):
        center = (int(rng.integers(width // 4, 3 * width // 4)), int(rng.integers(height // 4, 3 * height // 4)))
        axes = (int(rng.integers(10, width // 5)), int(rng.integers(10, height // 5)))
        cv2.ellipse(mask, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask.astype(bool)


def _boundary_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest distance (px) from a pixel where the masks differ to the boundary of ``a``."""
    differ = a ^ b
    if not differ.any():
        return 0.0
    to_outside, to_inside = ndi.distance_transform_edt(a), ndi.distance_transform_edt(~a)
    return float(np.maximum(to_outside, to_inside)[differ].max())


def test_round_trip_without_resampling_is_exact() -> None:
    geometry = CropGeometry(original_size=(300, 400), x0=60, y0=-20, side=260, output_size=260)
    mask = np.zeros((300, 400), bool)
    mask[20:200, 80:300] = _blob_mask(180, 220)
    heat = np.random.default_rng(1).random((300, 400)).astype(np.float32)
    heat[240:] = heat[:, :60] = heat[:, 320:] = 0  # the box covers rows -20 to 239, columns 60 to 319
    for array, interpolation in ((mask, "nearest"), (mask, "linear"), (heat, "linear"), (heat, "area")):
        crop = geometry.apply(array, interpolation)
        assert crop.shape == (260, 260) and crop.dtype == array.dtype
        assert not crop[:20].any()  # padding above the image
        np.testing.assert_array_equal(geometry.to_original(crop, interpolation), array)


@pytest.mark.parametrize("output_size", [128, 256, 512])
def test_round_trip_with_resampling_moves_the_boundary_by_at_most_one_pixel(output_size: int) -> None:
    geometry = CropGeometry(original_size=(500, 640), x0=50, y0=-40, side=560, output_size=output_size)
    mask = np.zeros((500, 640), bool)
    mask[60:460, 100:560] = _blob_mask(400, 460, seed=2)
    back = geometry.to_original(geometry.apply(mask, "area"), "linear")
    # one pixel of the coarser grid: an output pixel when downscaling, an original one when upscaling
    assert _boundary_distance(mask, back) <= max(1.0, 1 / geometry.scale)


def test_layouts_dtypes_and_torch_tensors() -> None:
    geometry = CropGeometry(original_size=(40, 50), x0=-5, y0=3, side=32, output_size=16)
    maps = np.random.default_rng(0).random((16, 16, 5)).astype(np.float32)
    last = geometry.to_original(maps)
    first = geometry.to_original(np.moveaxis(maps, -1, 0))
    assert last.shape == (40, 50, 5) and first.shape == (5, 40, 50)
    np.testing.assert_allclose(np.moveaxis(first, 0, -1), last)
    assert not last[:3].any() and not last[:, 27:].any()  # outside the box
    tensor = geometry.to_original(torch.from_numpy(np.moveaxis(maps, -1, 0)))
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (5, 40, 50)
    np.testing.assert_allclose(tensor.numpy(), first)
    labels = geometry.to_original(np.arange(256, dtype=np.int64).reshape(16, 16), "nearest")
    assert labels.dtype == np.int64 and set(np.unique(labels)) <= set(range(256))
    half = geometry.to_original(maps[..., 0].astype(np.float16))
    assert half.dtype == np.float16
    many = geometry.to_original(np.zeros((300, 16, 16), np.float32))  # more channels than OpenCV resizes at once
    assert many.shape == (300, 40, 50)
    with pytest.raises(ValueError, match="nearest"):
        geometry.to_original(np.zeros((16, 16), np.int64), "linear")
    with pytest.raises(ValueError, match="expected"):
        geometry.to_original(np.zeros((15, 16), np.float32))


def test_points_map_both_ways() -> None:
    geometry = CropGeometry(original_size=(100, 120), x0=10, y0=-5, side=90, output_size=45)
    points = np.array([[10.0, -5.0], [54.5, 39.5], [99.0, 84.0]])
    np.testing.assert_allclose(geometry.points_to_original(geometry.points_to_crop(points)), points)
    # the box's centre maps to the crop's centre
    np.testing.assert_allclose(geometry.points_to_crop([[54.5, 39.5]]), [[22.0, 22.0]])


def test_crop_around_fov_encloses_and_centres_the_disc() -> None:
    image, _ = fundus_photo(height=300, width=480, radius=200.0)  # cut at top and bottom
    fov = detect_fov(image)
    geometry = CropGeometry.around_fov(fov, 256)
    assert geometry.side >= 2 * fov.radius and geometry.side <= 2 * fov.radius + 1
    assert geometry.y0 < 0 and geometry.y0 + geometry.side > 300  # padded above and below
    crop_mask = geometry.apply(fov.mask, "linear")
    ys, xs = np.nonzero(crop_mask)
    assert abs((xs.min() + xs.max()) / 2 - 127.5) <= 1 and abs((ys.min() + ys.max()) / 2 - 127.5) <= 1


def test_whole_image_pads_to_a_centred_square() -> None:
    geometry = CropGeometry.whole_image(100, 160, 64)
    assert (geometry.x0, geometry.y0, geometry.side) == (0, -30, 160)
    fov = FieldOfView(np.ones((100, 160), bool), Ellipse(79.5, 49.5, 80, 80), ClippedSides(), False, 0.0)
    assert CropGeometry.around_fov(fov, 64) == geometry


def test_serialisation_round_trip() -> None:
    geometry = CropGeometry(original_size=(584, 565), x0=8, y0=-30, side=539, output_size=512)
    assert CropGeometry.from_dict(geometry.to_dict()) == geometry
    with pytest.raises(ValueError):
        CropGeometry(original_size=(10, 10), x0=0, y0=0, side=0, output_size=4)
