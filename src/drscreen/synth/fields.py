"""Resolution-independent random fields and pixel grids used by the renderers.

A field is drawn on a coarse grid whose size depends only on the requested feature scale, then
resized to the image, so one seed gives the same texture at every output size.
"""

from __future__ import annotations

import cv2
import numpy as np


def value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in about [0, 1], shape (size, size) float32, with ``cells`` features per side."""
    grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
    interpolation = cv2.INTER_CUBIC if size >= cells else cv2.INTER_AREA
    return cv2.resize(grid, (size, size), interpolation=interpolation)


def fractal_noise(rng: np.random.Generator, size: int, cells: int, octaves: int, gain: float = 0.5) -> np.ndarray:
    """Sum of ``octaves`` value-noise layers (cells doubling each time), normalised to [0, 1]."""
    total = np.zeros((size, size), np.float32)
    amplitude, weight = 1.0, 0.0
    for octave in range(octaves):
        total += amplitude * value_noise(rng, size, cells * 2**octave)
        weight += amplitude
        amplitude *= gain
    total /= weight
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(x, y)``, each (size, size) float32 (x = column, y = row)."""
    axis = np.arange(size, dtype=np.float32)
    return np.meshgrid(axis, axis)


def gaussian(dist2: np.ndarray, sigma: float) -> np.ndarray:
    """exp(-d^2 / 2 sigma^2) for a squared-distance array, float32."""
    return np.exp(dist2 * np.float32(-0.5 / sigma**2)).astype(np.float32, copy=False)
