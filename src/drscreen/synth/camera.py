"""Camera and acquisition effects applied to a rendered fundus (they never move a pixel).

Order: white balance and gamma -> stray-light haze -> defocus blur -> sensor noise -> 8-bit
quantisation -> optional JPEG round trip -> optional Ben Graham look (the preprocessing filter,
drscreen.preprocess.ben_graham). Masks are untouched, so
image and masks stay aligned.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from drscreen.preprocess.enhance import ben_graham
from drscreen.synth.anatomy import FundusGeometry
from drscreen.synth.config import SynthConfig
from drscreen.synth.fields import pixel_grid


def apply_camera(
    image: np.ndarray, fov: np.ndarray, geometry: FundusGeometry, rng: np.random.Generator, config: SynthConfig
) -> np.ndarray:
    """Camera pipeline: linear RGB (H, W, 3) float32 in [0, 1] and FOV weight (H, W) -> uint8 RGB."""
    size = geometry.size
    gains = rng.uniform(0.92, 1.08, 3)
    gamma = float(rng.uniform(0.85, 1.15))
    out = image
    if rng.random() < config.haze_prob:
        out = _haze(out, geometry, rng)
    blur = rng.random() < config.blur_prob
    blur_sigma = float(rng.uniform(*config.blur_sigma_512)) * size / 512
    if blur and blur_sigma > 0.2:
        out = cv2.GaussianBlur(out, (0, 0), blur_sigma)
    noise_sigma = float(rng.uniform(*config.noise_sigma)) / 255.0
    out = out + rng.standard_normal(out.shape, dtype=np.float32) * np.float32(noise_sigma)
    out *= fov[..., None] * np.float32(255.0)
    result = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    levels = np.arange(256, dtype=np.float64)[:, None] / 255.0
    lut = np.clip(255.0 * np.clip(levels * gains, 0.0, 1.0) ** gamma + 0.5, 0, 255).astype(np.uint8)
    result = cv2.LUT(result, lut.reshape(256, 1, 3))
    quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    if rng.random() < config.jpeg_prob:
        result = jpeg_round_trip(result, quality)
    if config.ben_graham:
        result = ben_graham(result, fov >= 0.5, radius=geometry.fov_radius)
    return result


def _haze(image: np.ndarray, geometry: FundusGeometry, rng: np.random.Generator) -> np.ndarray:
    """Whitish-blue stray light entering from one side of the field, strongest at the rim."""
    res = min(geometry.size, 128)
    scale = geometry.size / res
    xs, ys = pixel_grid(res)
    angle = rng.uniform(0, 2 * np.pi)
    cx, cy = geometry.fov_center
    along = (((xs + 0.5) * scale - 0.5 - cx) * math.cos(angle) + ((ys + 0.5) * scale - 0.5 - cy) * math.sin(angle))
    along /= geometry.fov_radius
    weight = np.clip(along - rng.uniform(0.1, 0.5), 0.0, None) ** 1.5 * rng.uniform(0.3, 0.7)
    weight = cv2.resize(np.clip(weight, 0.0, 0.8).astype(np.float32), (geometry.size, geometry.size))
    color = np.array([0.75, 0.9, 0.95], np.float32)
    return image + weight[..., None] * (color - image)


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encodes an RGB uint8 image (H, W, 3) as JPEG at ``quality`` and decodes it back."""
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buffer, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
