"""Synthetic fundus-like photos for the preprocessing tests (helpers, plus a check of the helper).

``fundus_photo`` draws an orange disc with vessels, an optic disc and a fovea on a dark
background, with a blurred rim like a camera's. Options cover what FOV detection must survive:
discs cut by the image border, a notch, underexposure, noise, vignetting and black padding.
"""

from __future__ import annotations

import cv2
import numpy as np


def fundus_photo(
    height: int = 400,
    width: int = 480,
    center: tuple[float, float] | None = None,
    radius: float = 170.0,
    *,
    stretch_y: float = 1.0,
    notch: bool = False,
    gain: float = 1.0,
    noise: float = 0.0,
    vignette: float = 0.0,
    background: float = 6.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """An (H, W, 3) uint8 RGB fundus-like photo and its (H, W) bool true field of view.

    ``center`` (x, y) defaults to the image centre; ``stretch_y`` scales the disc vertically;
    ``gain`` multiplies all intensities; ``noise`` is the Gaussian noise sigma (0-255 scale);
    ``vignette`` darkens towards the lower right by up to that fraction.
    """
    rng = np.random.default_rng(seed)
    cx, cy = center if center is not None else ((width - 1) / 2, (height - 1) / 2)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    dist = np.hypot((xx - cx) / radius, (yy - cy) / (radius * stretch_y))
    truth = dist <= 1.0
    if notch:  # a small tab outside the rim at the upper right, as many cameras have
        angle = -np.pi / 4
        nx, ny = cx + radius * np.cos(angle), cy + radius * stretch_y * np.sin(angle)
        tab = (np.abs(xx - nx) <= 0.04 * radius) & (np.abs(yy - ny) <= 0.04 * radius)
        truth = truth | tab

    shade = 1.0 - 0.35 * np.clip(dist, 0, 1) ** 2
    image = np.zeros((height, width, 3), np.float64)
    for channel, level in enumerate((210.0, 105.0, 45.0)):
        image[..., channel] = level * shade
    vessels = np.zeros((height, width), np.uint8)
    disc_x, disc_y = cx - 0.55 * radius, cy - 0.05 * radius
    for _ in range(14):
        angle = rng.uniform(0, 2 * np.pi)
        points = [(disc_x, disc_y)]
        for _ in range(6):
            angle += rng.normal(0, 0.35)
            step = rng.uniform(0.12, 0.25) * radius
            points.append((points[-1][0] + step * np.cos(angle), points[-1][1] + step * np.sin(angle)))
        pts = np.round(np.array(points)).astype(np.int32)
        cv2.polylines(vessels, [pts], False, 255, thickness=int(rng.integers(2, 6)), lineType=cv2.LINE_AA)
    vessel = cv2.GaussianBlur(vessels.astype(np.float64) / 255.0, (0, 0), 1.5)[..., None]
    image = image * (1.0 - 0.3 * vessel)  # vessels darken the retina by up to 30 %, as in photos
    optic = np.exp(-(((xx - disc_x) ** 2 + (yy - disc_y) ** 2) / (2 * (0.09 * radius) ** 2)))[..., None]
    image = image + optic * np.array([40.0, 110.0, 90.0])
    fovea = np.exp(-(((xx - cx - 0.2 * radius) ** 2 + (yy - cy) ** 2) / (2 * (0.12 * radius) ** 2)))[..., None]
    image = image * (1.0 - 0.35 * fovea)
    image = image + rng.normal(0, 3.0, image.shape)  # fine retinal texture

    rim = cv2.GaussianBlur(truth.astype(np.float64), (0, 0), 1.5)[..., None]
    image = image * rim + background * (1.0 - rim)
    if vignette:
        falloff = 1.0 - vignette * np.clip((xx + yy) / (width + height), 0, 1) ** 1.5
        image = image * falloff[..., None]
    image = image * gain + rng.normal(0, noise, image.shape) if noise else image * gain
    return np.clip(np.round(image), 0, 255).astype(np.uint8), truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks."""
    return float(np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1))


def test_fundus_photo_helper_is_deterministic_and_shaped() -> None:
    image, truth = fundus_photo(seed=3)
    again, _ = fundus_photo(seed=3)
    assert image.shape == (400, 480, 3) and image.dtype == np.uint8 and truth.shape == (400, 480)
    np.testing.assert_array_equal(image, again)
    assert image[truth].mean() > 5 * image[~truth].mean()
