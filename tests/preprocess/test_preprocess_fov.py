"""Field-of-view detection on synthetic discs (and, when present, on DRIVE's ground-truth masks)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from preprocess_fixtures import fundus_photo, iou

from drscreen.preprocess import Ellipse, detect_fov
from drscreen.preprocess.fov import WORKING_SIZE

# The detector places the edge a quarter of the way up the rim (fov.EDGE_LEVEL), about 1 px
# outside the synthetic disc's half-way radius; centres are unbiased.
RADIUS_BIAS_TOLERANCE = 2.0


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="plain"),
        pytest.param({"notch": True}, id="notch"),
        pytest.param({"gain": 0.12, "noise": 2.0}, id="dark-noisy"),
        pytest.param({"gain": 0.3, "vignette": 0.8, "noise": 2.0}, id="vignetted"),
        pytest.param({"center": (200.0, 180.0), "radius": 150.0}, id="off-centre"),
    ],
)
def test_disc_is_found_precisely(options: dict) -> None:
    image, truth = fundus_photo(**options)
    fov = detect_fov(image)
    cx, cy = options.get("center", ((480 - 1) / 2, (400 - 1) / 2))
    radius = options.get("radius", 170.0)
    assert fov.found and fov.confidence > 0.8
    assert fov.center == pytest.approx((cx, cy), abs=0.5)
    assert fov.radius == pytest.approx(radius, abs=RADIUS_BIAS_TOLERANCE)
    assert iou(fov.mask, truth) > 0.98
    assert not fov.clipped.any


def test_disc_cut_at_top_and_bottom_keeps_its_full_circle() -> None:
    image, truth = fundus_photo(height=300, width=480, radius=200.0)
    fov = detect_fov(image)
    assert fov.found and fov.clipped.top and fov.clipped.bottom and not fov.clipped.left
    assert fov.radius == pytest.approx(200.0, abs=RADIUS_BIAS_TOLERANCE)
    assert fov.center == pytest.approx((239.5, 149.5), abs=0.5)
    assert iou(fov.mask, truth) > 0.98


def test_stretched_disc_is_fitted_as_an_ellipse() -> None:
    image, truth = fundus_photo(radius=150.0, stretch_y=1.2)
    fov = detect_fov(image)
    assert fov.outline.rx == pytest.approx(150.0, abs=RADIUS_BIAS_TOLERANCE)
    assert fov.outline.ry == pytest.approx(180.0, abs=RADIUS_BIAS_TOLERANCE)
    assert iou(fov.mask, truth) > 0.98


def test_black_padding_that_cuts_the_disc_is_excluded() -> None:
    """A derivative cropped to the fundus and padded to a square: bars above and below."""
    image, truth = fundus_photo(height=480, width=480, radius=200.0)
    image[:100] = 0
    image[380:] = 0
    truth[:100] = truth[380:] = False
    fov = detect_fov(image)
    assert fov.clipped.top and fov.clipped.bottom
    assert not fov.mask[:100].any() and not fov.mask[380:].any()
    assert iou(fov.mask, truth) > 0.98


def test_large_photo_is_detected_at_working_size_and_mapped_back() -> None:
    scale = 2
    image, truth = fundus_photo(height=400 * scale, width=480 * scale, radius=170.0 * scale)
    assert max(image.shape) > WORKING_SIZE
    fov = detect_fov(image)
    assert fov.mask.shape == truth.shape
    assert fov.center == pytest.approx(((480 * scale - 1) / 2, (400 * scale - 1) / 2), abs=0.5 * scale)
    assert iou(fov.mask, truth) > 0.98


def test_real_fundus_shipped_with_scikit_image() -> None:
    image = skdata.retina()  # 1411 x 1411, the disc touching all four sides
    fov = detect_fov(image)
    assert fov.found and fov.confidence > 0.5
    assert fov.radius == pytest.approx(image.shape[0] / 2, rel=0.03)
    assert 0.7 < fov.area_fraction < 0.8  # pi / 4 for a disc inscribed in the square


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(np.full((300, 400, 3), 120, np.uint8), id="uniform"),
        pytest.param(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8), id="noise"),
        pytest.param(skdata.astronaut(), id="astronaut"),
        pytest.param(np.zeros((64, 64, 3), np.uint8), id="black"),
    ],
)
def test_no_disc_gives_the_whole_image(image: np.ndarray) -> None:
    fov = detect_fov(image)
    assert not fov.found and fov.confidence == 0.0
    assert fov.mask.all() and fov.mask.shape == image.shape[:2]
    assert fov.radius == max(image.shape[:2]) / 2


@pytest.mark.parametrize(
    "bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8)]
)
def test_rejects_non_rgb_uint8(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        detect_fov(bad)


def test_ellipse_rasterisation_matches_the_implicit_equation() -> None:
    ellipse = Ellipse(cx=10.3, cy=-5.2, rx=20.1, ry=30.7)
    yy, xx = np.mgrid[0:40, 0:50]
    expected = ((xx - ellipse.cx) / ellipse.rx) ** 2 + ((yy - ellipse.cy) / ellipse.ry) ** 2 <= 1
    np.testing.assert_array_equal(ellipse.rasterize(40, 50), expected)


@pytest.mark.realdata
def test_drive_ground_truth_masks(shared_data) -> None:
    """The benchmark's first half (originals), as a regression check: python benchmarks/fov_drive.py."""
    root = shared_data / "drive" / "training"
    scores = []
    for path in sorted((root / "images").iterdir()):
        image = np.asarray(Image.open(path).convert("RGB"))
        truth = np.asarray(Image.open(next((root / "mask").glob(f"{path.stem}_mask.*"))).convert("L")) > 127
        scores.append(iou(detect_fov(image).mask, truth))
    assert len(scores) == 20
    assert np.mean(scores) >= 0.99 and min(scores) >= 0.98
