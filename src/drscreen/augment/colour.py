"""Colour transfer between fundus photographs in Reinhard's lαβ space.

Reinhard, Ashikhmin, Gooch and Shirley ("Color transfer between images", IEEE CG&A 2001) move
colours into a space whose three axes are nearly decorrelated for natural images, so that each
axis can be adjusted on its own: RGB -> LMS cone responses (their linear matrix), a base-10
logarithm, then an orthonormal rotation into an achromatic axis ``l`` and two opponent axes
``α`` (yellow-blue) and ``β`` (red-green). Giving one image the per-axis mean and standard
deviation of another in that space gives it the other's overall tone. ELLG (Lin et al.) uses it
so that a lesion cut from a dark photograph does not look like a haemorrhage on a light one.

scikit-image offers CIELAB, not this space, hence the conversions below. RGB values are scaled
to [0, 1] before the LMS matrix. The LMS -> RGB step uses the exact inverse of the published
RGB -> LMS matrix (the paper prints a rounded inverse), so an 8-bit colour survives the round
trip to within rounding.
"""

from __future__ import annotations

import numpy as np

#: Reinhard et al.'s RGB -> LMS matrix (rows: L, M, S).
RGB_TO_LMS = np.array(
    [
        [0.3811, 0.5783, 0.0402],
        [0.1967, 0.7244, 0.0782],
        [0.0241, 0.1288, 0.8444],
    ]
)
#: log10(LMS) -> lαβ: the sum and two opponent differences of the axes, each scaled to unit norm.
LOG_LMS_TO_LAB = np.diag([1 / np.sqrt(3), 1 / np.sqrt(6), 1 / np.sqrt(2)]) @ np.array(
    [[1.0, 1.0, 1.0], [1.0, 1.0, -2.0], [1.0, -1.0, 0.0]]
)
LMS_TO_RGB = np.linalg.inv(RGB_TO_LMS)
LAB_TO_LOG_LMS = np.linalg.inv(LOG_LMS_TO_LAB)
#: Floor on LMS before the logarithm: black has LMS 0. Every other 8-bit colour has all three
#: responses above 9e-5, so only black and the very darkest colours are touched (by < 0.01 level).
LMS_FLOOR = 1e-4
#: Standard deviations below this (lαβ units; 8-bit steps are ~1e-3) count as zero: a flat channel
#: is only shifted, not stretched from rounding noise.
STD_FLOOR = 1e-9


def rgb_to_lalphabeta(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> float64 lαβ (..., 3)."""
    if image.dtype != np.uint8 or image.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB (..., 3), got {image.dtype} {image.shape}")
    lms = (image.astype(np.float64) / 255.0) @ RGB_TO_LMS.T
    return np.log10(np.maximum(lms, LMS_FLOOR)) @ LOG_LMS_TO_LAB.T


def lalphabeta_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float lαβ (..., 3) -> uint8 RGB (..., 3), rounded and clipped to [0, 255]."""
    rgb = (10.0 ** (np.asarray(lab, dtype=np.float64) @ LAB_TO_LOG_LMS.T)) @ LMS_TO_RGB.T
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _mean_std(lab: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (3,) of lαβ (H, W, 3) over ``mask`` (or all)."""
    pixels = lab.reshape(-1, 3) if mask is None else lab[_check_mask(mask, lab.shape[:2])]
    if len(pixels) == 0:
        raise ValueError("the colour-transfer mask selects no pixel")
    return pixels.mean(axis=0), pixels.std(axis=0)


def _check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"mask of shape {mask.shape} does not match the image {shape}")
    return mask


def reinhard_transfer(
    source: np.ndarray,
    target: np.ndarray,
    source_mask: np.ndarray | None = None,
    target_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Give ``source`` the tone of ``target``: Reinhard et al.'s per-axis lαβ statistics match.

    Args:
        source: uint8 (H, W, 3) RGB image to recolour.
        target: uint8 (H', W', 3) RGB image whose tone is copied (any size).
        source_mask: bool (H, W): pixels of ``source`` whose statistics are measured and which
            are recoloured (e.g. the field of view); ``None``: all. Pixels outside keep their
            colour.
        target_mask: bool (H', W'): pixels of ``target`` whose statistics are copied; ``None``: all.

    Returns:
        uint8 (H, W, 3): inside ``source_mask``, each lαβ channel ``c`` becomes
        ``(c - mean_s) * std_t / std_s + mean_t`` (a channel with ``std_s`` ~ 0 is only
        shifted). Clipping to the 8-bit range may move the statistics of saturated pixels.
    """
    source_lab = rgb_to_lalphabeta(source)
    target_lab = rgb_to_lalphabeta(target)
    mean_s, std_s = _mean_std(source_lab, source_mask)
    mean_t, std_t = _mean_std(target_lab, target_mask)
    spread = std_s > STD_FLOOR
    scale = np.where(spread, std_t / np.where(spread, std_s, 1.0), 1.0)
    recoloured = lalphabeta_to_rgb((source_lab - mean_s) * scale + mean_t)
    if source_mask is None:
        return recoloured
    out = source.copy()
    inside = _check_mask(source_mask, source.shape[:2])
    out[inside] = recoloured[inside]
    return out
