"""Fundus geometry (field of view, optic disc, fovea) and the lesion-free background render.

Geometry is drawn in a *canonical frame* in units of the FOV radius: origin at the FOV centre,
``+x`` nasal (towards the optic disc), ``+y`` down. :meth:`FundusGeometry.to_px` maps canonical
points to image pixels ``(x, y)`` = (column, row): it mirrors ``x`` for a left eye (disc on the
image left), rotates by a small camera roll, scales by the FOV radius and shifts to the FOV centre.
All random draws are in canonical units, so one seed gives the same eye at every image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from drscreen.synth.config import SynthConfig
from drscreen.synth.fields import fractal_noise, gaussian, pixel_grid, value_noise

EYES: tuple[str, str] = ("left", "right")


@dataclass(frozen=True)
class FundusGeometry:
    """Where things are in one synthetic image. Pixel values are floats in image pixels."""

    size: int
    eye: str
    #: FOV circle centre ``(x, y)`` and radius, px.
    fov_center: tuple[float, float]
    fov_radius: float
    #: Rows farther than this from the FOV centre are outside the field (top/bottom clip), px.
    clip_half_height: float | None
    #: Orientation notch: canonical-frame angle (rad) of its centre on the FOV rim, or None.
    notch_angle: float | None
    #: Camera roll (rad) applied to the canonical frame.
    roll: float
    #: Canonical-frame positions (units of the FOV radius; +x nasal).
    fovea_canonical: tuple[float, float]
    disc_canonical: tuple[float, float]
    #: Disc diameter in units of the FOV radius (horizontal diameter of the disc ellipse).
    disc_diameter_canonical: float
    #: Disc ellipse vertical/horizontal axis ratio, and cup/disc diameter ratio.
    disc_aspect: float
    cup_ratio: float

    @property
    def mirror(self) -> float:
        """+1 for a right eye (disc on the image right), -1 for a left eye."""
        return 1.0 if self.eye == "right" else -1.0

    def to_px(self, points: np.ndarray) -> np.ndarray:
        """Canonical points (..., 2) -> pixel coordinates (..., 2) float64."""
        pts = np.asarray(points, dtype=np.float64)
        x = pts[..., 0] * self.mirror
        y = pts[..., 1]
        cos_r, sin_r = math.cos(self.roll), math.sin(self.roll)
        px = self.fov_center[0] + self.fov_radius * (cos_r * x - sin_r * y)
        py = self.fov_center[1] + self.fov_radius * (sin_r * x + cos_r * y)
        return np.stack([px, py], axis=-1)

    @property
    def fovea(self) -> tuple[float, float]:
        """Fovea centre ``(x, y)``, px."""
        x, y = self.to_px(np.array(self.fovea_canonical))
        return float(x), float(y)

    @property
    def disc_center(self) -> tuple[float, float]:
        """Optic-disc centre ``(x, y)``, px."""
        x, y = self.to_px(np.array(self.disc_canonical))
        return float(x), float(y)

    @property
    def disc_diameter(self) -> float:
        """Disc diameter (DD), px: the unit of every clinical distance."""
        return self.disc_diameter_canonical * self.fov_radius

    def fov_mask(self) -> np.ndarray:
        """Anti-aliased field-of-view weight in [0, 1], (size, size) float32 (notch included)."""
        xs, ys = pixel_grid(self.size)
        cx, cy = self.fov_center
        dist = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
        mask = np.clip(self.fov_radius + 0.5 - dist, 0.0, 1.0)
        if self.clip_half_height is not None:
            mask *= np.clip(self.clip_half_height + 0.5 - np.abs(ys - cy), 0.0, 1.0)
        if self.notch_angle is not None:
            half_w, depth = 0.045, 0.05
            corners = [
                (math.cos(self.notch_angle + da) * r, math.sin(self.notch_angle + da) * r)
                for da, r in ((-half_w, 0.95), (-half_w, 1.0 + depth), (half_w, 1.0 + depth), (half_w, 0.95))
            ]
            tab = np.zeros((self.size, self.size), np.uint8)
            cv2.fillPoly(tab, [np.round(self.to_px(np.array(corners)) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
            mask = np.maximum(mask, tab.astype(np.float32) / 255.0)
        return mask.astype(np.float32)

    def fov_bool(self) -> np.ndarray:
        """Pixels whose centre lies inside the FOV circle (and clip), (size, size) bool; notch excluded."""
        xs, ys = pixel_grid(self.size)
        cx, cy = self.fov_center
        inside = (xs - cx) ** 2 + (ys - cy) ** 2 <= self.fov_radius**2
        if self.clip_half_height is not None:
            inside &= np.abs(ys - cy) <= self.clip_half_height
        return inside

    def disc_mask(self) -> np.ndarray:
        """Optic-disc ellipse, (size, size) bool (the OD ground truth)."""
        mask = np.zeros((self.size, self.size), bool)
        half = 0.5 * self.disc_diameter * self.disc_aspect + 2
        cx, cy = self.disc_center
        x0, x1 = max(0, int(cx - half)), min(self.size, int(cx + half) + 2)
        y0, y1 = max(0, int(cy - half)), min(self.size, int(cy + half) + 2)
        xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        mask[y0:y1, x0:x1] = self.disc_weight(0.0, 1.0, xs, ys) >= 0.5
        return mask

    def disc_weight(
        self, soft: float, scale: float, xs: np.ndarray, ys: np.ndarray, offset: float = 0.0
    ) -> np.ndarray:
        """Weight in [0, 1] of the disc ellipse at pixel coordinates ``xs, ys`` (float32 arrays).

        ``soft`` is the edge width in DD (0 = hard edge), ``scale`` resizes the ellipse (the cup
        is ``cup_ratio``), ``offset`` moves its centre nasally by that many DD (negative = temporal).
        """
        dcx, dcy = self.to_px(np.array(self.disc_canonical) + [offset * self.disc_diameter_canonical, 0.0])
        radius_x = 0.5 * self.disc_diameter * scale
        radius_y = radius_x * self.disc_aspect
        cos_r, sin_r = math.cos(self.roll), math.sin(self.roll)
        dx, dy = xs - np.float32(dcx), ys - np.float32(dcy)
        u = (cos_r * dx + sin_r * dy) / radius_x
        v = (-sin_r * dx + cos_r * dy) / radius_y
        rho = np.sqrt(u * u + v * v)
        if soft <= 0:
            return (rho <= 1.0).astype(np.float32)
        edge = max(soft * self.disc_diameter / radius_x, 1e-3)
        return np.clip((1.0 - rho) / edge + 0.5, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Appearance:
    """Per-image colour and texture parameters of the healthy fundus."""

    #: 0 = pale orange, 1 = dark red-brown.
    pigment: float
    base_rgb: tuple[float, float, float]
    tigroid: float
    nerve_fibre_sheen: float
    macular_pigment: float
    foveal_reflex: bool
    vignetting: float
    light_offset: tuple[float, float]
    disc_pallor: float
    peripapillary_atrophy: float


def sample_geometry(rng: np.random.Generator, size: int, eye: str | None, config: SynthConfig) -> FundusGeometry:
    """Random anatomy layout for one image of ``size`` x ``size`` px; ``eye`` None = random."""
    if eye is None:
        eye = EYES[int(rng.integers(2))]
    elif eye not in EYES:
        raise ValueError(f"eye must be 'left' or 'right', got {eye!r}")
    centre = (size / 2 - 0.5 + rng.uniform(-0.01, 0.01) * size, size / 2 - 0.5 + rng.uniform(-0.01, 0.01) * size)
    radius = size * rng.uniform(0.445, 0.485)
    clip = radius * rng.uniform(0.80, 0.92) if rng.random() < config.clip_prob else None
    notch = rng.uniform(-2.6, -2.1) if rng.random() < config.notch_prob else None

    dd = rng.uniform(0.24, 0.31)
    fovea = np.array([rng.uniform(-0.12, 0.02), rng.uniform(-0.03, 0.07)])
    distance = dd * rng.uniform(2.3, 2.75)
    elevation = math.radians(rng.uniform(3.0, 12.0))
    disc = fovea + distance * np.array([math.cos(elevation), -math.sin(elevation)])
    overshoot = disc[0] + 0.5 * dd - 0.93
    if overshoot > 0:
        fovea[0] -= overshoot
        disc[0] -= overshoot
    return FundusGeometry(
        size=size,
        eye=eye,
        fov_center=(float(centre[0]), float(centre[1])),
        fov_radius=float(radius),
        clip_half_height=None if clip is None else float(clip),
        notch_angle=None if notch is None else float(notch),
        roll=math.radians(rng.uniform(-6.0, 6.0)),
        fovea_canonical=(float(fovea[0]), float(fovea[1])),
        disc_canonical=(float(disc[0]), float(disc[1])),
        disc_diameter_canonical=float(dd),
        disc_aspect=float(rng.uniform(1.0, 1.12)),
        cup_ratio=float(rng.uniform(0.2, 0.55)),
    )


#: Fundus base colours (RGB in [0, 1]) from pale orange through orange-red to dark red-brown.
_PIGMENT_ANCHORS = np.array([[0.95, 0.58, 0.33], [0.86, 0.40, 0.19], [0.56, 0.20, 0.09]], np.float32)
#: Resolution of the smooth (low-frequency) background fields, px per side at most.
_SMOOTH_RES = 160


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Random healthy-fundus appearance parameters."""
    pigment = float(rng.beta(1.6, 1.6))
    position = pigment * (len(_PIGMENT_ANCHORS) - 1)
    low = min(int(position), len(_PIGMENT_ANCHORS) - 2)
    base = _PIGMENT_ANCHORS[low] + (position - low) * (_PIGMENT_ANCHORS[low + 1] - _PIGMENT_ANCHORS[low])
    base = base * rng.uniform(0.93, 1.07, 3)
    return Appearance(
        pigment=pigment,
        base_rgb=tuple(float(c) for c in np.clip(base, 0.05, 1.0)),
        tigroid=float(rng.uniform(0.0, 1.0) ** 2 * (1.0 - 0.6 * pigment)),
        nerve_fibre_sheen=float(rng.uniform(0.0, 1.0)),
        macular_pigment=float(rng.uniform(0.25, 0.6)),
        foveal_reflex=bool(rng.random() < 0.5),
        vignetting=float(rng.uniform(0.15, 0.55)),
        light_offset=(float(rng.uniform(-0.25, 0.25)), float(rng.uniform(-0.25, 0.25))),
        disc_pallor=float(rng.uniform(0.0, 1.0)),
        peripapillary_atrophy=float(rng.uniform(0.0, 1.0) if rng.random() < 0.35 else 0.0),
    )


def render_reflectance(geometry: FundusGeometry, appearance: Appearance, rng: np.random.Generator) -> np.ndarray:
    """Lesion- and vessel-free retinal reflectance, (size, size, 3) float32 RGB in [0, 1].

    Background pigment with mottling and a choroidal (tigroid) pattern, darker macula and fovea,
    nerve-fibre striations radiating from the disc, and the optic disc with its cup.
    """
    size = geometry.size
    image = cv2.resize(_smooth_fields(geometry, appearance, rng), (size, size), interpolation=cv2.INTER_CUBIC)
    detail = 1.0 + 0.07 * (value_noise(rng, size, 160) - 0.5) + 0.05 * (value_noise(rng, size, 40) - 0.5)
    if appearance.tigroid > 0.05:
        image *= _choroid(geometry, appearance, rng)
    image *= detail[..., None]
    _add_nerve_fibres(image, geometry, appearance, rng)
    _add_fovea_and_disc(image, geometry, appearance, rng)
    return np.clip(image, 0.0, 1.0)


def _smooth_fields(geometry: FundusGeometry, appearance: Appearance, rng: np.random.Generator) -> np.ndarray:
    """Low-resolution background colour (L, L, 3) float32: pigment, mottling, macula, disc glow."""
    res = min(geometry.size, _SMOOTH_RES)
    to_low = res / geometry.size
    xs, ys = pixel_grid(res)
    xs = (xs + 0.5) / to_low - 0.5
    ys = (ys + 0.5) / to_low - 0.5
    dd = geometry.disc_diameter
    base = np.array(appearance.base_rgb, np.float32)
    mottling = fractal_noise(rng, res, 4, 3) - 0.5
    hue_shift = value_noise(rng, res, 3) - 0.5
    image = base * (1.0 + 0.16 * mottling[..., None] + np.array([-0.06, 0.0, 0.06], np.float32) * hue_shift[..., None])
    fx, fy = geometry.fovea
    dist2_fovea = (xs - fx) ** 2 + (ys - fy) ** 2
    macula = gaussian(dist2_fovea, 0.9 * dd) * appearance.macular_pigment
    image *= 1.0 - macula[..., None] * np.array([0.3, 0.5, 0.45], np.float32)
    image *= 1.0 - 0.3 * gaussian(dist2_fovea, 0.2 * dd)[..., None] * np.array([0.5, 1.0, 0.9], np.float32)
    dcx, dcy = geometry.disc_center
    glow = 0.1 * gaussian((xs - dcx) ** 2 + (ys - dcy) ** 2, 0.7 * dd)
    image += glow[..., None] * (np.array([1.0, 0.7, 0.45], np.float32) - image)
    return image.astype(np.float32)


def _choroid(geometry: FundusGeometry, appearance: Appearance, rng: np.random.Generator) -> np.ndarray:
    """Tigroid factor (size, size, 3) float32: dark-brown spaces between radiating choroidal vessels."""
    size = geometry.size
    res = min(size, 384)
    grid = cv2.resize(rng.random((24, 90), dtype=np.float32), (384, 48), interpolation=cv2.INTER_CUBIC)
    xs, ys = pixel_grid(res)
    to_full = size / res
    fx, fy = geometry.fovea
    dx = (xs + 0.5) * to_full - 0.5 - fx
    dy = (ys + 0.5) * to_full - 0.5 - fy
    angle = (np.arctan2(dy, dx) + np.pi) * (384 / (2 * np.pi))
    radius = np.sqrt(dx * dx + dy * dy) / geometry.fov_radius
    warp = value_noise(rng, res, 5) - 0.5
    rows = np.clip(radius * 26.0, 0, 47)
    noise = cv2.remap(grid, angle + 30.0 * warp, rows, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    interspace = np.clip((np.abs(2.0 * noise - 1.0) - 0.35) / 0.4, 0.0, 1.0)
    strength = appearance.tigroid * 0.2 * np.clip((radius - 0.15) / 0.5, 0.0, 1.0) * interspace
    factor = 1.0 - strength[..., None] * np.array([1.0, 0.85, 0.6], np.float32)
    if res != size:
        factor = cv2.resize(factor, (size, size), interpolation=cv2.INTER_LINEAR)
    return factor


def _add_nerve_fibres(
    image: np.ndarray, geometry: FundusGeometry, appearance: Appearance, rng: np.random.Generator
) -> None:
    """Faint bright striations radiating from the disc, strongest along the arcades (in place).

    Computed at half resolution above 384 px (the striations are a few pixels wide).
    """
    if appearance.nerve_fibre_sheen < 0.15:
        return
    size = geometry.size
    res = size // 2 if size > 384 else size
    scale = size / res
    xs, ys = pixel_grid(res)
    dd = geometry.disc_diameter
    dcx, dcy = geometry.disc_center
    dx = (xs + 0.5) * scale - 0.5 - dcx
    dy = (ys + 0.5) * scale - 0.5 - dcy
    samples = 720
    profile = cv2.GaussianBlur(rng.random((1, samples), dtype=np.float32), (5, 1), 0.8)
    angle = np.arctan2(dy, dx)
    index = (angle + np.pi) * (samples / (2 * np.pi))
    striations = cv2.remap(profile, index, np.zeros_like(index), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    distance = np.sqrt(dx * dx + dy * dy) / dd
    falloff = np.clip(distance - 0.5, 0.0, None) * np.exp(-distance / 1.4)
    vertical = np.sin(angle + geometry.roll) ** 2
    sheen = appearance.nerve_fibre_sheen * 0.12 * falloff * (0.3 + 0.7 * vertical) * (striations - 0.3)
    if res != size:
        sheen = cv2.resize(sheen, (size, size), interpolation=cv2.INTER_LINEAR)
    image += sheen[..., None] * np.array([0.6, 0.9, 1.0], np.float32)


def _add_fovea_and_disc(
    image: np.ndarray, geometry: FundusGeometry, appearance: Appearance, rng: np.random.Generator
) -> None:
    """Foveal reflex, optic disc rim and cup, peripapillary atrophy; drawn in local patches (in place)."""
    dd = geometry.disc_diameter
    if appearance.foveal_reflex:
        rows, cols, xs, ys = _patch(geometry, geometry.fovea, 0.15 * dd)
        reflex = gaussian((xs - geometry.fovea[0]) ** 2 + (ys - geometry.fovea[1]) ** 2, 0.025 * dd + 0.3)
        image[rows, cols] += 0.3 * reflex[..., None] * (1.0 - image[rows, cols])
    rows, cols, xs, ys = _patch(geometry, geometry.disc_center, 0.85 * dd)
    patch = image[rows, cols]
    if appearance.peripapillary_atrophy > 0:
        temporal = np.clip(-geometry.mirror * (xs - geometry.disc_center[0]) / (0.3 * dd), 0.0, 1.0)
        crescent = geometry.disc_weight(0.1, 1.22, xs, ys) * temporal * appearance.peripapillary_atrophy
        patch += (0.45 * crescent)[..., None] * (np.array([0.92, 0.75, 0.55], np.float32) - patch)
    pallor = appearance.disc_pallor
    texture = 1.0 + 0.12 * (rng.random((7, 7), dtype=np.float32) - 0.5)
    texture = cv2.resize(texture, (xs.shape[1], xs.shape[0]), interpolation=cv2.INTER_CUBIC)
    rim = geometry.disc_weight(0.04, 1.0, xs, ys)
    inner = geometry.disc_weight(0.5, 0.7, xs, ys)
    rim_rgb = np.array([1.0, 0.62 + 0.14 * pallor, 0.28 + 0.16 * pallor], np.float32)
    patch += (0.7 * rim * texture)[..., None] * (rim_rgb - patch)
    patch += (0.3 * inner)[..., None] * (np.array([1.0, 0.8, 0.5], np.float32) - patch)
    cup = geometry.disc_weight(0.1, geometry.cup_ratio, xs, ys, offset=-0.08)
    patch += (0.8 * cup)[..., None] * (np.array([1.0, 0.95, 0.75], np.float32) - patch)
    image[rows, cols] = patch


def _patch(
    geometry: FundusGeometry, center: tuple[float, float], half: float
) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """Row/column slices of a square patch around ``center`` and its pixel coordinates (float32)."""
    x0 = max(0, int(center[0] - half))
    x1 = min(geometry.size, int(center[0] + half) + 2)
    y0 = max(0, int(center[1] - half))
    y1 = min(geometry.size, int(center[1] + half) + 2)
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    return slice(y0, y1), slice(x0, x1), xs, ys


def illumination(geometry: FundusGeometry, appearance: Appearance, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative light field (size, size) float32: vignetting, off-centre light, slow ripple."""
    size = geometry.size
    res = min(size, _SMOOTH_RES)
    scale = size / res
    xs, ys = pixel_grid(res)
    cx = geometry.fov_center[0] + appearance.light_offset[0] * geometry.fov_radius
    cy = geometry.fov_center[1] + appearance.light_offset[1] * geometry.fov_radius
    radius2 = (((xs + 0.5) * scale - 0.5 - cx) ** 2 + ((ys + 0.5) * scale - 0.5 - cy) ** 2) / geometry.fov_radius**2
    light = 1.0 - appearance.vignetting * np.clip(radius2, 0, 4) ** 1.3 / 1.3
    light *= 1.0 + 0.16 * (value_noise(rng, res, 3) - 0.5)
    light = np.clip(light, 0.15, 1.3).astype(np.float32)
    return cv2.resize(light, (size, size), interpolation=cv2.INTER_CUBIC)
