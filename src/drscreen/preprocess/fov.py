"""Field-of-view (FOV) detection: the bright, roughly circular retinal disc of a colour fundus photo.

Coordinates follow the pixel-centre convention used throughout :mod:`drscreen.preprocess`: the
pixel in row ``i``, column ``j`` has its centre at ``(x, y) = (j, i)``, so an image of width ``W``
covers ``x`` in ``[-0.5, W - 0.5]``.

The outline is modelled as an axis-aligned ellipse, a circle in the usual case. Cameras image a
circular field stop; it becomes a slightly wider-than-tall ellipse with non-square pixels (DRIVE:
about 1 px in 270), and a clearly stretched one when a photo was resized to a square without
keeping its aspect ratio (some APTOS files). The disc may be cut by the image border or by
straight edges of black padding (derivatives cropped to the fundus and padded to a square).

Algorithm (rationale and measured accuracy in ``docs/preprocessing.md``):

1. Work on a copy whose longer side is at most :data:`WORKING_SIZE` px, on the per-pixel maximum
   of R, G and B (the fundus is bright in at least one channel whatever its tint), lightly smoothed.
   Steps 2 and 4 only seed the refinement, so they run on a further halved copy (longer side at
   most :data:`COARSE_SIZE` px) and their outline is mapped back to the working size.
2. Coarse region: Otsu threshold of the strongly smoothed ``log(1 + brightness)``. In log space the
   split depends on intensity ratios, so it finds the disc in a well-exposed photo and in one five
   times darker alike. Then an opening and the largest component (its holes do not matter: only
   its outer outline is used). Images with three levels (black padding, grey speckled background,
   disc) get a second candidate threshold.
3. Content box, at the working size with the coarse threshold: rows/columns of black padding whose
   inner edge cuts straight through the disc are excluded; from here on the box plays the part of
   the image border.
4. Coarse outline: RANSAC fits of a circle and of an axis-aligned ellipse to the region's outline,
   without the outline points on the box border, so that cut edges, notches and dents are outliers.
   The ellipse is kept only if it explains clearly more points.
5. Refinement, twice: along radial profiles (one per 3-degree sector, each the mean of several
   rays) the edge is placed where the profile crosses :data:`EDGE_LEVEL` of the way from the local
   outside level to the local inside level. A crossing defined relative to local levels does not
   move with exposure, vignetting or the background level, which is what defeats a fixed
   threshold. The outline is re-fitted robustly to these sub-pixel edge points; when they surround
   the centre, a near-circular ellipse is fitted to the inliers.
6. The mask is the outline rasterised at the original resolution, limited to the content box.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

#: Longest side (px) of the copy the detector works on; larger photos are downscaled first.
WORKING_SIZE = 640
#: Longest side (px) of the copy on which the coarse region and outline are found (they only
#: seed the refinement, which runs at ``WORKING_SIZE``).
COARSE_SIZE = 320
#: Gaussian smoothing (px, at working size) of the brightness image, against noise and JPEG blocks.
SMOOTHING_SIGMA = 1.0
#: Gaussian smoothing for the coarse region, as a fraction of the coarse image's longer side:
#: averages out speckled backgrounds (contrast-enhanced JPEG noise) before thresholding.
COARSE_SMOOTHING = 0.01
#: No disc is looked for when the dark class's median exceeds this fraction of the bright class's.
MAX_BACKGROUND_RATIO = 0.5
#: Both classes of a threshold must cover at least this fraction of the image.
MIN_CLASS_FRACTION = 0.02
#: The second coarse threshold is used only if its outline's confidence is higher by this much.
SECOND_THRESHOLD_MARGIN = 0.15
#: A padding cut: the fraction of bright pixels per row (column) rises from at most
#: ``PADDING_FRACTION`` to at least ``CUT_FRACTION`` within ``CUT_ROWS`` rows. A disc's own top
#: rises far more gradually (its chord grows with the square root of the depth).
PADDING_FRACTION = 0.02
CUT_FRACTION = 0.3
CUT_ROWS = 3
#: Edge level on a radial profile, as a fraction of the way from the outside to the inside level.
#: 0.25 rather than 0.5: DRIVE's reference masks sit on the outer part of the blurred rim, and the
#: crossing moves less with a gamma change than the half-way point does (docs/preprocessing.md).
EDGE_LEVEL = 0.25
#: A profile is used only when its inside-outside step exceeds this many noise standard deviations.
MIN_EDGE_SNR = 4.0
#: Edge points farther than this (px, at working size) from the fitted outline are outliers.
INLIER_TOLERANCE = 1.5
#: Angular sectors; the mean radial profile of each gives at most one edge point.
NUM_SECTORS = 120
#: Rays averaged per sector (evenly spread over the sector).
RAYS_PER_SECTOR = 9
#: Largest ratio of the ellipse's axes accepted.
MAX_AXIS_RATIO = 1.5
#: Largest disc radius accepted, as a fraction of the image's longer side (a disc cut at the top
#: and bottom is wider than the image is tall, but not much wider than the image).
MAX_RADIUS_FRACTION = 0.75
#: Smallest disc radius accepted, as a fraction of the image's longer side (well above the optic
#: disc's, about 0.05, so that a bright optic disc is never taken for the field of view).
MIN_RADIUS_FRACTION = 0.15
#: Below this confidence no disc is reported (``FieldOfView.found`` is False).
MIN_CONFIDENCE = 0.25


@dataclass(frozen=True)
class Ellipse:
    """Axis-aligned ellipse in pixel coordinates: centre ``cx, cy`` and semi-axes ``rx, ry`` (px).

    A circle is the case ``rx == ry``.
    """

    cx: float
    cy: float
    rx: float
    ry: float

    @property
    def radius(self) -> float:
        """Half the side (px) of the smallest square centred on the ellipse that encloses it."""
        return max(self.rx, self.ry)

    @property
    def aspect_ratio(self) -> float:
        """``rx / ry``: 1 for a circle, above 1 for a disc wider than tall."""
        return self.rx / self.ry

    def rasterize(self, height: int, width: int) -> np.ndarray:
        """(height, width) bool mask of the pixels whose centre lies inside the ellipse."""
        mask = np.zeros((height, width), dtype=bool)
        rows = np.arange(height, dtype=np.float64)
        half = self.rx * np.sqrt(np.clip(1.0 - ((rows - self.cy) / self.ry) ** 2, 0.0, None))
        inside = np.abs(rows - self.cy) <= self.ry
        starts = np.clip(np.ceil(self.cx - half), 0, width).astype(int)
        stops = np.clip(np.floor(self.cx + half) + 1, 0, width).astype(int)
        for row in np.nonzero(inside)[0]:
            mask[row, starts[row] : stops[row]] = True
        return mask

    def boundary_radius(self, angles: np.ndarray) -> np.ndarray:
        """Distance (px) from the centre to the outline along rays at ``angles`` (radians, +x towards +y)."""
        return 1.0 / np.sqrt((np.cos(angles) / self.rx) ** 2 + (np.sin(angles) / self.ry) ** 2)

    def residuals(self, points: np.ndarray) -> np.ndarray:
        """Approximate signed distance (px, positive outside) of (N, 2) x, y points from the outline."""
        dx, dy = points[:, 0] - self.cx, points[:, 1] - self.cy
        value = (dx / self.rx) ** 2 + (dy / self.ry) ** 2 - 1.0
        gradient = 2.0 * np.hypot(dx / self.rx**2, dy / self.ry**2)
        return value / np.maximum(gradient, 1e-12)


@dataclass(frozen=True)
class ClippedSides:
    """Which sides of the FOV outline are cut, by the image border or by black padding."""

    top: bool = False
    bottom: bool = False
    left: bool = False
    right: bool = False

    @property
    def any(self) -> bool:
        return self.top or self.bottom or self.left or self.right


@dataclass(frozen=True, eq=False)
class FieldOfView:
    """The field of view of one image.

    Attributes:
        mask: (H, W) bool, True on the retina: ``outline`` rasterised, limited to the image and
            to the non-padded content.
        outline: the fitted disc outline in original pixel coordinates. When ``found`` is False,
            the circle centred on the image with radius ``max(H, W) / 2``, so that the square crop
            around it is the whole image padded to a square.
        clipped: which sides of the outline are cut off.
        found: False when no disc with a visible dark border was found; the mask is then the whole
            image, and callers should treat the image as already cropped or as not a fundus photo.
        confidence: fraction (0-1) of the outline's measurable sectors (inside the content, edge
            not cut off) where a measured edge agrees with the outline.
    """

    mask: np.ndarray
    outline: Ellipse
    clipped: ClippedSides
    found: bool
    confidence: float

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the image the FOV belongs to."""
        return self.mask.shape[0], self.mask.shape[1]

    @property
    def center(self) -> tuple[float, float]:
        """(x, y) of the disc centre in px."""
        return self.outline.cx, self.outline.cy

    @property
    def radius(self) -> float:
        """Disc radius in px (the larger semi-axis when the outline is not a circle)."""
        return self.outline.radius

    @property
    def area_fraction(self) -> float:
        """Fraction (0-1) of the image's pixels inside the FOV."""
        return float(self.mask.mean())


@dataclass(frozen=True)
class _Box:
    """Inclusive pixel bounds of the image content (the image minus black padding), working size."""

    x0: int
    y0: int
    x1: int
    y1: int

    def contains(self, xs: np.ndarray, ys: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Which points lie at least ``margin`` px inside the box."""
        return (xs >= self.x0 + margin) & (xs <= self.x1 - margin) & (ys >= self.y0 + margin) & (ys <= self.y1 - margin)


def whole_image_fov(height: int, width: int) -> FieldOfView:
    """The FOV used when no disc is detected: every pixel of a ``height`` x ``width`` image."""
    radius = max(height, width) / 2
    return FieldOfView(
        mask=np.ones((height, width), dtype=bool),
        outline=Ellipse((width - 1) / 2, (height - 1) / 2, radius, radius),
        clipped=ClippedSides(),
        found=False,
        confidence=0.0,
    )


def detect_fov(image: np.ndarray) -> FieldOfView:
    """Detect the field of view of a fundus photo ``image`` (H, W, 3) uint8 RGB."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    raw = _downscaled(_channel_max(image), WORKING_SIZE)
    brightness = cv2.GaussianBlur(raw, (0, 0), SMOOTHING_SIGMA)

    coarse_raw = _downscaled(raw, COARSE_SIZE)
    coarse = _coarse_outline(cv2.GaussianBlur(coarse_raw, (0, 0), SMOOTHING_SIGMA), coarse_raw)
    if coarse is None:
        return whole_image_fov(height, width)
    seed, threshold, confidence = coarse
    # Coarse to working coordinates (pixel centres), and the content box at the working size.
    k = brightness.shape[1] / coarse_raw.shape[1], brightness.shape[0] / coarse_raw.shape[0]
    outline = Ellipse((seed.cx + 0.5) * k[0] - 0.5, (seed.cy + 0.5) * k[1] - 0.5, seed.rx * k[0], seed.ry * k[1])
    box = _content_box(raw > np.expm1(threshold))
    for window in (0.08, 0.04):
        refined = _refine(brightness, outline, box, half_width=max(6.0, window * outline.radius))
        if refined is None:
            break
        outline, confidence = refined
    if confidence < MIN_CONFIDENCE or not _dark_surround(brightness, outline, box):
        return whole_image_fov(height, width)

    # Working-size to original coordinates (pixel centres: x_orig + 0.5 = (x_small + 0.5) / sx).
    sx, sy = brightness.shape[1] / width, brightness.shape[0] / height
    outline = Ellipse((outline.cx + 0.5) / sx - 0.5, (outline.cy + 0.5) / sy - 0.5, outline.rx / sx, outline.ry / sy)
    left, top = round(box.x0 / sx), round(box.y0 / sy)
    right, bottom = round((box.x1 + 1) / sx) - 1, round((box.y1 + 1) / sy) - 1
    mask = outline.rasterize(height, width)
    mask[:top], mask[bottom + 1 :], mask[:, :left], mask[:, right + 1 :] = False, False, False, False
    clipped = ClippedSides(
        top=outline.cy - outline.ry < top - 0.5,
        bottom=outline.cy + outline.ry > bottom + 0.5,
        left=outline.cx - outline.rx < left - 0.5,
        right=outline.cx + outline.rx > right + 0.5,
    )
    return FieldOfView(mask=mask, outline=outline, clipped=clipped, found=True, confidence=float(confidence))


def _channel_max(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 per-pixel maximum of R, G and B of ``image`` (H, W, 3) uint8."""
    red, green, blue = cv2.split(image)
    return cv2.max(cv2.max(red, green), blue)


def _downscaled(plane: np.ndarray, longest: int) -> np.ndarray:
    """(h, w) float32 copy of the 2-D ``plane``, area-averaged so that its longer side is at most
    ``longest`` px (rounded like ``round(side * scale)``)."""
    height, width = plane.shape
    scale = min(1.0, longest / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        plane = cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
    return plane.astype(np.float32)


def _coarse_outline(brightness: np.ndarray, raw: np.ndarray) -> tuple[Ellipse, float, float] | None:
    """Coarse outline, the log-brightness threshold that found it and its confidence, from the
    better of up to two thresholds (coordinates of ``brightness``).

    ``brightness`` is the lightly smoothed coarse image, ``raw`` the unsmoothed one (for the
    position of padding edges).

    The first threshold is Otsu's on the smoothed log-brightness. Images with black padding and a
    grey speckled background have three levels, so a second one splits the brighter class again;
    it is used only when its outline is clearly better supported.
    """
    smooth = cv2.GaussianBlur(brightness, (0, 0), COARSE_SMOOTHING * max(brightness.shape))
    log_b = np.log1p(smooth)
    if float(np.ptp(log_b)) < 1e-3:
        return None
    thresholds = [threshold_otsu(log_b)]
    upper = log_b[log_b > thresholds[0]]
    if upper.size > MIN_CLASS_FRACTION * log_b.size and float(np.ptp(upper)) > 1e-3:
        thresholds.append(threshold_otsu(upper))
    tolerance = max(2.0, 0.01 * max(brightness.shape))
    best: tuple[Ellipse, float, float] | None = None
    for threshold in thresholds:
        bright = log_b > threshold
        region = _largest_region(smooth, bright)
        if region is None:
            continue
        box = _content_box(raw > np.expm1(threshold))
        points = _outline_points(region, box)
        outline = _robust_fit(points, tolerance, box, brightness.shape)
        if outline is None:
            continue
        inliers = points[np.abs(outline.residuals(points)) <= tolerance]
        supported, visible = _support(outline, inliers, box, margin=2.0)
        if visible and (best is None or supported / visible > best[2] + SECOND_THRESHOLD_MARGIN):
            best = (outline, float(threshold), supported / visible)
    return best


def _dark_surround(brightness: np.ndarray, outline: Ellipse, box: _Box) -> bool:
    """Whether the content outside the outline (beyond a 2 % margin) is dark compared with the disc,
    as around a fundus; a bright round object in an ordinary photo fails this."""
    h, w = brightness.shape
    inside = outline.rasterize(h, w)
    outside = np.zeros((h, w), dtype=bool)
    grown = Ellipse(outline.cx, outline.cy, 1.02 * outline.rx + 1, 1.02 * outline.ry + 1)
    outside[box.y0 : box.y1 + 1, box.x0 : box.x1 + 1] = True
    outside &= ~grown.rasterize(h, w)
    if outside.sum() < MIN_CLASS_FRACTION * h * w:
        return True
    return bool(np.median(brightness[outside]) <= MAX_BACKGROUND_RATIO * np.median(brightness[inside]))


def _largest_region(brightness: np.ndarray, bright: np.ndarray) -> np.ndarray | None:
    """The largest component of ``bright``, opened; None if the split has no dark border."""
    if not MIN_CLASS_FRACTION <= bright.mean() <= 1 - MIN_CLASS_FRACTION:
        return None
    if np.median(brightness[~bright]) > MAX_BACKGROUND_RATIO * np.median(brightness[bright]):
        return None
    radius = max(1, round(0.005 * max(bright.shape)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    opened = cv2.morphologyEx(bright.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == largest


def _content_box(bright: np.ndarray) -> _Box:
    """The image without black padding whose inner edge cuts straight through the disc."""
    h, w = bright.shape
    rows, cols = bright.mean(axis=1), bright.mean(axis=0)
    top, left = _padding_width(rows), _padding_width(cols)
    bottom, right = _padding_width(rows[::-1]), _padding_width(cols[::-1])
    if top + bottom >= h // 2 or left + right >= w // 2:
        return _Box(0, 0, w - 1, h - 1)
    return _Box(left, top, w - 1 - right, h - 1 - bottom)


def _padding_width(bright_fraction: np.ndarray) -> int:
    """Number of leading padding rows, given each row's fraction of bright pixels (0 if no cut)."""
    busy = np.nonzero(bright_fraction >= CUT_FRACTION)[0]
    if len(busy) == 0 or busy[0] == 0:
        return 0
    lit = np.nonzero(bright_fraction[: busy[0]] > PADDING_FRACTION)[0]
    start = int(lit[0]) if len(lit) else int(busy[0])
    return start if busy[0] - start <= CUT_ROWS else 0


def _outline_points(region: np.ndarray, box: _Box, max_points: int = 400) -> np.ndarray:
    """(N, 2) x, y of at most ``max_points`` evenly spaced points of the region's outer outline,
    without those on the content box's border."""
    contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    points = max(contours, key=len)[:, 0, :].astype(np.float64)
    points = points[box.contains(points[:, 0], points[:, 1], margin=2.0)]
    return points[:: max(1, -(-len(points) // max_points))]


def _fit(points: np.ndarray, weights: np.ndarray | None = None, circle: bool = True) -> Ellipse | None:
    """Weighted algebraic least-squares circle (or axis-aligned ellipse) through (N, 2) points.

    Solves ``x^2 + a y^2 + b x + c y + d = 0`` (``a = 1`` for a circle) on centred, scaled points.
    Returns None when the points do not determine an ellipse.
    """
    if len(points) < (3 if circle else 4):
        return None
    origin = points.mean(axis=0)
    unit = max(float(np.abs(points - origin).max()), 1e-9)
    x, y = ((points - origin) / unit).T
    root_w = np.ones(len(points)) if weights is None else np.sqrt(weights)
    if circle:
        design, target = np.stack([x, y, np.ones_like(x)], axis=1), -(x**2 + y**2)
    else:
        design, target = np.stack([y**2, x, y, np.ones_like(x)], axis=1), -(x**2)
    solution, *_ = np.linalg.lstsq(design * root_w[:, None], target * root_w, rcond=None)
    coefficients = np.concatenate([[1.0], solution]) if circle else solution
    cx, cy, rx, ry = _conic_axes(*(np.array([c]) for c in coefficients))
    if not np.isfinite(rx[0]):
        return None
    return Ellipse(
        float(origin[0] + cx[0] * unit), float(origin[1] + cy[0] * unit), float(rx[0] * unit), float(ry[0] * unit)
    )


def _conic_axes(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, ...]:
    """Centres and semi-axes of the conics ``x^2 + a y^2 + b x + c y + d = 0``; NaN axes where not an ellipse."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cx, cy = -b / 2, -c / (2 * a)
        rx2 = cx**2 + a * cy**2 - d
        valid = (a > 0) & (rx2 > 0) & np.isfinite(rx2)
        rx = np.where(valid, np.sqrt(np.where(valid, rx2, 1.0)), np.nan)
        ry = rx / np.sqrt(np.where(valid, a, 1.0))
    return cx, cy, rx, ry


def _plausible(
    cx: np.ndarray, cy: np.ndarray, rx: np.ndarray, ry: np.ndarray, box: _Box, shape: tuple[int, int]
) -> np.ndarray:
    """Which candidate outlines could be the FOV of an image of ``shape`` (H, W) with content
    ``box``: real ellipses, centred inside the content, of plausible size and axis ratio."""
    h, w = shape
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(rx)
            & box.contains(cx, cy)
            & (np.maximum(rx, ry) <= MAX_RADIUS_FRACTION * max(h, w))
            & (np.minimum(rx, ry) >= MIN_RADIUS_FRACTION * max(h, w))
            & (np.maximum(rx / ry, ry / rx) <= MAX_AXIS_RATIO)
        )


def _is_plausible(outline: Ellipse | None, box: _Box, shape: tuple[int, int]) -> bool:
    """:func:`_plausible` for one outline (False for None)."""
    if outline is None:
        return False
    values = (np.array([v]) for v in (outline.cx, outline.cy, outline.rx, outline.ry))
    return bool(_plausible(*values, box, shape)[0])


def _ransac(
    points: np.ndarray, tolerance: float, circle: bool, box: _Box, shape: tuple[int, int], trials: int = 300
) -> Ellipse | None:
    """The plausible shape with most points within ``tolerance`` px (seeded RANSAC), refitted to those points."""
    if len(points) < 10:
        return None
    rng = np.random.default_rng(0)
    origin = points.mean(axis=0)
    unit = max(float(np.abs(points - origin).max()), 1e-9)
    normalised = (points - origin) / unit
    samples = normalised[rng.integers(0, len(points), size=(trials, 3 if circle else 4))]
    x, y = samples[..., 0], samples[..., 1]
    ones = np.ones_like(x)
    if circle:
        design, target = np.stack([x, y, ones], axis=-1), -(x**2 + y**2)
    else:
        design, target = np.stack([y**2, x, y, ones], axis=-1), -(x**2)
    solvable = np.abs(np.linalg.det(design)) > 1e-12
    design[~solvable] = np.eye(design.shape[-1])
    solution = np.linalg.solve(design, target[..., None])[..., 0]
    solution[~solvable] = np.nan
    if circle:
        solution = np.concatenate([np.ones((trials, 1)), solution], axis=1)
    cx, cy, rx, ry = _conic_axes(*solution.T)
    keep = _plausible(origin[0] + cx * unit, origin[1] + cy * unit, rx * unit, ry * unit, box, shape)
    if not keep.any():
        return None
    cx, cy, rx, ry = cx[keep, None], cy[keep, None], rx[keep, None], ry[keep, None]
    # Sampson distance (px) of every point to every candidate.
    dx, dy = (normalised[None, :, 0] - cx) / rx, (normalised[None, :, 1] - cy) / ry
    gradient = 2 * np.hypot(dx / rx, dy / ry)
    distance = np.abs(dx**2 + dy**2 - 1) / np.maximum(gradient, 1e-12) * unit
    votes = (distance <= tolerance).sum(axis=1)
    fitted = _fit(points[distance[int(np.argmax(votes))] <= tolerance], circle=circle)
    return fitted if _is_plausible(fitted, box, shape) else None


def _robust_fit(points: np.ndarray, tolerance: float, box: _Box, shape: tuple[int, int]) -> Ellipse | None:
    """RANSAC circle, replaced by a RANSAC axis-aligned ellipse only if that explains clearly more points."""
    circle = _ransac(points, tolerance, circle=True, box=box, shape=shape)
    ellipse = _ransac(points, tolerance, circle=False, box=box, shape=shape)
    if circle is None or ellipse is None:
        return circle or ellipse

    def votes(outline: Ellipse) -> int:
        return int((np.abs(outline.residuals(points)) <= tolerance).sum())

    return ellipse if votes(ellipse) >= votes(circle) + max(5, 0.05 * len(points)) else circle


def _support(outline: Ellipse, edge_points: np.ndarray, box: _Box, margin: float) -> tuple[int, int]:
    """(supported, visible): how many of the outline's sectors lie at least ``margin`` px inside
    ``box`` (where an edge can be measured), and how many of those contain one of ``edge_points``."""
    angles = (np.arange(NUM_SECTORS) + 0.5) * (2 * np.pi / NUM_SECTORS)
    rho = outline.boundary_radius(angles)
    visible = box.contains(outline.cx + rho * np.cos(angles), outline.cy + rho * np.sin(angles), margin)
    point_angles = np.mod(np.arctan2(edge_points[:, 1] - outline.cy, edge_points[:, 0] - outline.cx), 2 * np.pi)
    supported = np.zeros(NUM_SECTORS, dtype=bool)
    supported[np.minimum((point_angles / (2 * np.pi / NUM_SECTORS)).astype(int), NUM_SECTORS - 1)] = True
    return int((supported & visible).sum()), int(visible.sum())


def _refine(brightness: np.ndarray, outline: Ellipse, box: _Box, half_width: float) -> tuple[Ellipse, float] | None:
    """Re-fit ``outline`` to the edge measured on radial profiles within ``half_width`` px of it.

    Returns the new outline and its confidence, or None when too few edges were measured.
    """
    step = 0.5
    offsets = np.arange(-half_width, half_width + step / 2, step)
    angles = (np.arange(NUM_SECTORS * RAYS_PER_SECTOR) + 0.5) * (2 * np.pi / (NUM_SECTORS * RAYS_PER_SECTOR))
    radii = outline.boundary_radius(angles)[:, None] + offsets[None, :]
    xs = outline.cx + np.cos(angles)[:, None] * radii
    ys = outline.cy + np.sin(angles)[:, None] * radii
    visible = box.contains(xs, ys).reshape(NUM_SECTORS, RAYS_PER_SECTOR, -1).all(axis=(1, 2))
    if visible.sum() < 10:
        return None
    samples = ndi.map_coordinates(brightness, [ys.ravel(), xs.ravel()], order=1, mode="nearest")
    profiles = samples.reshape(NUM_SECTORS, RAYS_PER_SECTOR, -1).mean(axis=1)[visible]
    sector_angles = angles.reshape(NUM_SECTORS, RAYS_PER_SECTOR).mean(axis=1)[visible]

    third = len(offsets) // 3
    inside = np.median(profiles[:, :third], axis=1)
    outside = np.median(profiles[:, -third:], axis=1)
    noise = 1.4826 * np.median(np.abs(profiles[:, -third:] - outside[:, None])) + 0.1
    level = outside + EDGE_LEVEL * (inside - outside)
    above = profiles >= level[:, None]
    # Outermost sample at or above the level; the edge lies between it and the next sample out.
    last = len(offsets) - 1 - np.argmax(above[:, ::-1], axis=1)
    usable = (inside - outside > MIN_EDGE_SNR * noise) & above.any(axis=1) & (last < len(offsets) - 1)
    rows = np.nonzero(usable)[0]
    if len(rows) < 10:
        return None
    j = last[rows]
    p0, p1 = profiles[rows, j], profiles[rows, j + 1]
    fraction = np.clip((p0 - level[rows]) / np.maximum(p0 - p1, 1e-6), 0.0, 1.0)
    theta = sector_angles[rows]
    edge_radius = outline.boundary_radius(theta) + offsets[j] + fraction * step
    points = np.stack([outline.cx + edge_radius * np.cos(theta), outline.cy + edge_radius * np.sin(theta)], axis=1)

    shape = brightness.shape
    fitted = _robust_fit(points, INLIER_TOLERANCE, box, shape)
    if fitted is None:
        return None
    circle = fitted.rx == fitted.ry
    for _ in range(3):  # Tukey-weighted re-fits settle the inlier set
        weights = np.clip(1 - (fitted.residuals(points) / (2 * INLIER_TOLERANCE)) ** 2, 0, None) ** 2
        refit = _fit(points, weights, circle=circle)
        if not _is_plausible(refit, box, shape):
            break
        fitted = refit
    inliers = points[np.abs(fitted.residuals(points)) <= INLIER_TOLERANCE]
    octants = np.mod(np.arctan2(inliers[:, 1] - fitted.cy, inliers[:, 0] - fitted.cx), 2 * np.pi) // (np.pi / 4)
    if circle and len(np.unique(octants)) == 8:
        # Edge seen all round: an ellipse is well determined and absorbs non-square pixels.
        ellipse = _fit(inliers, circle=False)
        if _is_plausible(ellipse, box, shape):
            fitted = ellipse
            inliers = points[np.abs(fitted.residuals(points)) <= INLIER_TOLERANCE]
    supported, visible = _support(fitted, inliers, box, margin=half_width)
    return fitted, supported / max(visible, 1)
