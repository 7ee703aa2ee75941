"""CLAHE and Ben Graham enhancement."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from preprocess_fixtures import fundus_photo

from drscreen.preprocess import ben_graham, clahe


def test_clahe_raises_local_contrast_and_keeps_the_background_black() -> None:
    image, truth = fundus_photo(gain=0.5)
    out = clahe(image, mask=truth)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not out[~truth].any()
    lightness = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)[..., 0][truth].std()
    assert cv2.cvtColor(out, cv2.COLOR_RGB2LAB)[..., 0][truth].std() > 1.3 * lightness


def test_clahe_keeps_hue() -> None:
    image, truth = fundus_photo()
    hue_in = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 0][truth].astype(int)
    hue_out = cv2.cvtColor(clahe(image), cv2.COLOR_RGB2HSV)[..., 0][truth].astype(int)
    assert np.median(np.abs(hue_out - hue_in)) <= 2  # OpenCV hue units: 2 degrees


def test_ben_graham_removes_slow_illumination_and_blanks_the_rim() -> None:
    yy, xx = np.mgrid[0:200, 0:200]
    ramp = np.repeat((60 + 0.5 * xx + 0.2 * yy)[..., None], 3, axis=2).astype(np.uint8)
    flat = ben_graham(ramp)  # a linear ramp is its own Gaussian blur (away from the border)
    assert np.abs(flat[30:170, 30:170].astype(int) - 128).max() <= 4
    distance = np.hypot(xx - 99.5, yy - 99.5)
    out = ben_graham(ramp, mask=distance <= 80, radius=80)
    assert (out[distance > 73] == 128).all()  # outside the disc and the outer tenth of its radius
    assert np.abs(out[distance < 70].astype(int) - 128).max() <= 4


def test_ben_graham_keeps_fine_detail() -> None:
    image, truth = fundus_photo()
    out = ben_graham(image, mask=truth, radius=170)
    assert out.dtype == np.uint8 and out.shape == image.shape
    inner = cv2.erode(truth.astype(np.uint8), np.ones((41, 41), np.uint8)).astype(bool)
    assert out[..., 1][inner].std() > image[..., 1][inner].std()  # gain 4 on detail, slow shading removed


@pytest.mark.parametrize("function", [clahe, ben_graham])
def test_rejects_non_rgb_uint8(function) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        function(np.zeros((8, 8), np.uint8))
