"""Diabetic-retinopathy lesions: their description, rendering and per-class masks.

Sizes are physical: one disc diameter (DD) is taken as 1800 um, so a lesion scales with the disc
and hence with the image (a microaneurysm of 30-110 um is 1-4 px across at 512 px).

Appearance model (reflectance in [0, 1] before illumination):

* MA, HE, NV absorb light (Beer-Lambert, stronger in green and blue): darker and redder.
* EX blends towards a waxy yellow with a sharp edge; SE towards a pale cream with a fuzzy edge.
* Each lesion's mask is where its shape weight is >= 0.5, so a mask pixel is always a pixel whose
  colour the lesion changed. Outlines are at least 0.75 px in radius, so a lesion covers a pixel;
  one that still covers none is dropped from the truth (and from grading).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

#: Lesion codes the generator draws (grading.py colours and names apply).
LESION_KINDS: tuple[str, ...] = ("MA", "HE", "EX", "SE", "NV")
#: Lesions lying under the retinal vessels (drawn before them); the rest are drawn on top.
DEEP_KINDS: frozenset[str] = frozenset({"MA", "EX"})
#: Micrometres per disc diameter, the physical scale of every lesion size.
UM_PER_DD = 1800.0
#: Smallest rendered radius, px: guarantees each lesion at least one mask pixel.
MIN_RADIUS_PX = 0.75

_ABSORBANCE = {
    "MA": np.array([0.45, 1.6, 1.5], np.float32),
    "HE": np.array([0.4, 1.4, 1.3], np.float32),
    "HE_flame": np.array([0.2, 1.1, 1.0], np.float32),
    "NV": np.array([0.15, 1.0, 0.9], np.float32),
}
_EXUDATE_RGB = np.array([0.98, 0.85, 0.36], np.float32)
_COTTON_WOOL_RGB = np.array([0.92, 0.85, 0.76], np.float32)


@dataclass(frozen=True)
class Lesion:
    """One lesion, in image pixels.

    ``shape``: MA ``dot``; HE ``dot`` | ``blot`` | ``flame``; EX ``plaque``; SE ``spot``;
    NV ``nvd`` (on the disc) | ``nve`` (elsewhere). ``radius`` is half the long axis (for NV
    the radius of the whole frond), ``aspect`` the short/long axis ratio, ``angle`` the long-axis
    direction (rad, image frame), ``intensity`` a colour-strength factor, ``seed`` drives the
    shape's irregularity. ``pixels`` is filled in by rendering (mask pixels this lesion drew).
    """

    kind: str
    shape: str
    center: tuple[float, float]
    radius: float
    aspect: float = 1.0
    angle: float = 0.0
    intensity: float = 1.0
    seed: int = 0
    line_width: float = 1.0
    pixels: int = 0

    @property
    def superficial(self) -> bool:
        """Drawn over the vessels (nerve-fibre-layer and pre-retinal lesions)."""
        return self.kind not in DEEP_KINDS and not (self.kind == "HE" and self.shape != "flame")


def _frame(lesion: Lesion, size: int, reach: float) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
    """Patch slices around the lesion and its coordinates along/across the long axis (px)."""
    cx, cy = lesion.center
    x0, x1 = max(0, int(math.floor(cx - reach))), min(size, int(math.ceil(cx + reach)) + 1)
    y0, y1 = max(0, int(math.floor(cy - reach))), min(size, int(math.ceil(cy + reach)) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32) - cx, np.arange(y0, y1, dtype=np.float32) - cy)
    cos_a, sin_a = math.cos(lesion.angle), math.sin(lesion.angle)
    along = cos_a * xs + sin_a * ys
    across = -sin_a * xs + cos_a * ys
    return slice(y0, y1), slice(x0, x1), along, across


def _irregular_radius(rng: np.random.Generator, theta: np.ndarray, roughness: float) -> np.ndarray:
    """Relative boundary radius r(theta) in [1 - roughness, 1] from a few random harmonics."""
    bumps = np.zeros_like(theta)
    for k in range(2, 6):
        bumps += rng.uniform(0.0, 1.0) / k * np.cos(k * theta + rng.uniform(0.0, 2 * np.pi))
    bumps -= bumps.min()
    return 1.0 - roughness * bumps / max(float(bumps.max()), 1e-6)


def _weight(lesion: Lesion, along: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Shape weight in [0, 1] on a patch: >= 0.5 inside the lesion's outline, float32."""
    rng = np.random.default_rng(lesion.seed)
    radius = max(lesion.radius, MIN_RADIUS_PX)
    minor = max(radius * lesion.aspect, MIN_RADIUS_PX)
    rho = np.sqrt((along / radius) ** 2 + (across / minor) ** 2)
    if lesion.shape == "dot":
        edge = max(0.6, 0.3 * radius) / radius
        return np.clip((1.0 - rho) / edge + 0.5, 0.0, 1.0)
    theta = np.arctan2(across / minor, along / radius)
    if lesion.shape in ("blot", "plaque", "spot"):
        roughness = {"blot": 0.35, "plaque": 0.4, "spot": 0.3}[lesion.shape]
        floor = MIN_RADIUS_PX / (1.0 - roughness)  # the outline's narrowest point stays >= MIN_RADIUS_PX
        rho = rho * min(1.0, radius / max(radius, floor), minor / max(minor, floor))
        outline = _irregular_radius(rng, theta, roughness)
        if lesion.shape == "spot":
            fluff = 1.0 + 0.25 * (cv2.resize(rng.random((6, 6), dtype=np.float32), rho.shape[::-1]) - 0.5)
            return np.clip(np.exp(-np.log(2.0) * (rho / outline) ** 2) * fluff, 0.0, 1.0).astype(np.float32)
        edge = max(0.5 / radius, 0.3 if lesion.shape == "blot" else 0.12)
        return np.clip((outline - rho) / edge + 0.5, 0.0, 1.0)
    if lesion.shape == "flame":
        taper = np.clip(1.0 - np.abs(along / radius) ** 2, 0.0, 1.0)
        half_width = np.maximum(taper, 1e-3) * (0.7 + 0.3 * np.sin(along / radius * rng.uniform(4.0, 7.0)))
        streaks = 0.8 + 0.2 * np.sin(across / minor * rng.uniform(5.0, 9.0) + rng.uniform(0.0, 6.3))
        return np.clip((half_width - np.abs(across) / minor) / 0.35 + 0.5, 0.0, 1.0) * streaks * (taper > 0)
    raise ValueError(f"unknown lesion shape {lesion.shape!r} for {lesion.kind}")


def _neovascular_weight(lesion: Lesion, rows: slice, cols: slice) -> np.ndarray:
    """A frond of fine tortuous vessel loops drawn anti-aliased on the patch, weight in [0, 1]."""
    rng = np.random.default_rng(lesion.seed)
    canvas = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.uint8)
    origin = np.array([lesion.center[0] - cols.start, lesion.center[1] - rows.start])
    thickness = max(1, int(round(lesion.line_width)))
    shift = 3
    theta = np.linspace(0.0, 2 * np.pi, 72)
    loops, feeders = [], []
    for _ in range(int(rng.integers(14, 28))):
        spot = rng.uniform(0, 2 * np.pi)
        offset = lesion.radius * 0.8 * math.sqrt(rng.random())
        loop_center = origin + offset * np.array([math.cos(spot), math.sin(spot)])
        loop_radius = lesion.radius * rng.uniform(0.08, 0.2)
        wobble = 0.6 + 0.5 * _irregular_radius(rng, theta, 1.0)
        wobble += 0.1 * np.sin(theta * int(rng.integers(6, 12)) + rng.uniform(0, 6.3))
        stretch = rng.uniform(0.5, 1.0)
        outline = np.stack([np.cos(theta) * wobble, np.sin(theta) * wobble * stretch], axis=1)
        loops.append(loop_center + loop_radius * outline)
    for _ in range(int(rng.integers(2, 5))):
        heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, 0.35, 24))
        steps = lesion.radius / 24 * np.stack([np.cos(heading), np.sin(heading)], 1)
        feeders.append(origin + np.cumsum(steps, axis=0))
    for curves, closed in ((loops, True), (feeders, False)):
        fixed = [np.round(curve * 2**shift).astype(np.int32) for curve in curves]
        cv2.polylines(canvas, fixed, closed, 255, thickness, cv2.LINE_AA, shift)
    return canvas.astype(np.float32) / 255.0


def _mottle(lesion: Lesion, shape: tuple[int, ...]) -> np.ndarray | float:
    """Colour-strength texture in [0.75, 1] over a blot, plaque or large dot (1 for small ones)."""
    if lesion.kind not in ("HE", "EX") or lesion.radius < 3.0:
        return 1.0
    grid = np.random.default_rng(lesion.seed + 1).random((5, 5), dtype=np.float32)
    return 0.75 + 0.25 * cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)


def render_lesions(
    image: np.ndarray,
    masks: dict[str, np.ndarray],
    lesions: list[Lesion],
    fov: np.ndarray,
    *,
    superficial: bool,
) -> list[Lesion]:
    """Draws the deep or superficial ``lesions`` into ``image`` and ``masks`` (both in place).

    ``image`` (H, W, 3) float32 reflectance; ``masks`` code -> (H, W) bool; ``fov`` (H, W) bool
    (mask pixels are kept inside it). Returns the drawn lesions with ``pixels`` filled in.
    """
    size = image.shape[0]
    drawn = []
    for lesion in lesions:
        if lesion.superficial != superficial:
            continue
        reach = lesion.radius * (1.6 if lesion.shape == "spot" else 1.25) + 2.0
        frame = _frame(lesion, size, reach)
        if frame is None:
            drawn.append(replace(lesion, pixels=0))
            continue
        rows, cols, along, across = frame
        if lesion.kind == "NV":
            weight = _neovascular_weight(lesion, rows, cols)
        else:
            weight = _weight(lesion, along, across)
        inside = (weight >= 0.5) & fov[rows, cols]
        patch = image[rows, cols]
        strength = (weight * lesion.intensity * _mottle(lesion, weight.shape))[..., None]
        if lesion.kind in ("EX", "SE"):
            target = _EXUDATE_RGB if lesion.kind == "EX" else _COTTON_WOOL_RGB
            patch += strength * (target - patch)
        else:
            key = "HE_flame" if lesion.shape == "flame" else lesion.kind
            patch *= np.exp(-strength * _ABSORBANCE[key])
        masks[lesion.kind][rows, cols] |= inside
        drawn.append(replace(lesion, pixels=int(np.count_nonzero(inside))))
    return drawn
