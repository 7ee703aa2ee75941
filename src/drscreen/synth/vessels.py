"""Retinal vessel trees: growth in the canonical frame and rendering as absorbing layers.

Four artery/vein pairs leave the optic disc (supero- and infero-temporal arcades that curve
around the macula, and two thinner nasal trunks), plus small macular branches. Side branches
leave at 30-65 degrees, follow a smooth random walk that relaxes towards a flow direction
(away from the disc, or inwards to the fovea and the temporal raphe), split the parent's calibre
by Murray's law (r_p^3 = r_1^3 + r_2^3), taper, and stop at the FOV rim or the foveal avascular
zone. Arteries are about 25% thinner than veins and absorb less (lighter red).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from drscreen.synth.anatomy import FundusGeometry

#: Walk step along a vessel, canonical units (FOV radius = 1).
STEP = 0.008
#: Vessels thinner than this (canonical units) are not grown.
MIN_WIDTH = 0.0022
#: Upper bound on branches per eye, to bound rendering time.
MAX_BRANCHES = 1200
#: Points per rasterised piece (thickness and opacity are constant within a piece).
CHUNK = 10


@dataclass(frozen=True)
class Vessel:
    """One unbranched vessel piece: centre line (N, 2) and width (N,), canonical units."""

    points: np.ndarray
    widths: np.ndarray
    artery: bool


def _smooth_noise(rng: np.random.Generator, n: int, correlation: float) -> np.ndarray:
    """Unit-variance 1-D noise of length ``n`` smoothed over ``correlation`` samples."""
    half = max(1, int(3 * correlation))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / max(correlation, 1e-3)) ** 2)
    raw = rng.standard_normal(n + 2 * half)
    smooth = np.convolve(raw, kernel / np.sqrt(np.sum(kernel**2)), mode="valid")
    return smooth[:n]


def _catmull_rom(control: np.ndarray, step: float) -> np.ndarray:
    """Uniform Catmull-Rom curve through ``control`` (K, 2), resampled every ``step`` of arc length."""
    padded = np.vstack([2 * control[0] - control[1], control, 2 * control[-1] - control[-2]])
    t = np.linspace(0.0, 1.0, 24, endpoint=False)[:, None]
    pieces = []
    for i in range(len(control) - 1):
        p0, p1, p2, p3 = padded[i : i + 4]
        pieces.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    dense = np.vstack([*pieces, control[-1:]])
    return _resample(dense, step)


def _resample(path: np.ndarray, step: float) -> np.ndarray:
    """Points every ``step`` of arc length along the polyline ``path`` (N, 2)."""
    seg = np.hypot(*np.diff(path, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.arange(0.0, arc[-1], step)
    return np.stack([np.interp(targets, arc, path[:, 0]), np.interp(targets, arc, path[:, 1])], axis=1)


def _normals(points: np.ndarray) -> np.ndarray:
    """Unit normals (N, 2) of a polyline (left-hand side), N >= 2."""
    tangent = np.empty_like(points)
    tangent[1:-1] = points[2:] - points[:-2]
    tangent[0] = points[1] - points[0]
    tangent[-1] = points[-1] - points[-2]
    length = np.maximum(np.sqrt(tangent[:, 0] ** 2 + tangent[:, 1] ** 2), 1e-9)
    return np.stack([-tangent[:, 1] / length, tangent[:, 0] / length], axis=1)


def _wrap(angle: np.ndarray | float) -> np.ndarray | float:
    """Angle wrapped to (-pi, pi]."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


@dataclass
class _Sprout:
    """A side branch to grow: start point, initial and flow headings (rad), width, max length."""

    start: np.ndarray
    heading: float
    flow: float
    width: float
    length: float


class _TreeGrower:
    """Grows every vessel of one eye in the canonical frame, one branching generation at a time."""

    def __init__(self, geometry: FundusGeometry, rng: np.random.Generator) -> None:
        self.rng = rng
        self.fovea = np.array(geometry.fovea_canonical)
        self.disc = np.array(geometry.disc_canonical)
        self.dd = geometry.disc_diameter_canonical
        self.faz = self.dd * rng.uniform(0.3, 0.45)
        self.vessels: list[Vessel] = []

    def _stop_mask(self, points: np.ndarray, from_disc: bool) -> np.ndarray:
        """Where a path (..., 2) is outside the FOV, inside the foveal avascular zone or the disc."""
        stop = points[..., 0] ** 2 + points[..., 1] ** 2 > 1.01**2
        stop |= (points[..., 0] - self.fovea[0]) ** 2 + (points[..., 1] - self.fovea[1]) ** 2 < self.faz**2
        if not from_disc:
            near_disc = (points[..., 0] - self.disc[0]) ** 2 + (points[..., 1] - self.disc[1]) ** 2
            stop |= near_disc < (0.45 * self.dd) ** 2
        return stop

    def trunk_path(self, control: np.ndarray, width: float, wobble: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Centre line and widths of a main vessel through ``control`` (K, 2), cut at the FOV rim."""
        path = _catmull_rom(control, STEP)
        path += _normals(path) * (wobble * self.dd * _smooth_noise(self.rng, len(path), 14.0))[:, None]
        stop = self._stop_mask(path, from_disc=True)
        keep = int(np.argmax(stop)) if stop.any() else len(path)
        if keep < 3:
            return None
        return path[:keep], width * (1.0 - 0.15 * np.linspace(0.0, 1.0, keep))

    def grow(self, trunks: list[tuple[np.ndarray, np.ndarray, bool]]) -> list[Vessel]:
        """Every vessel descending from ``trunks`` (path, widths, is_artery), generation by generation."""
        generation = [(path, widths, artery, None) for path, widths, artery in trunks]
        depth = 0
        while generation and len(self.vessels) < MAX_BRANCHES:
            sprouts: list[_Sprout] = []
            kinds: list[bool] = []
            for path, widths, artery, flow in generation:
                for sprout in self._split(path, widths, flow, depth):
                    sprouts.append(sprout)
                    kinds.append(artery)
                self.vessels.append(Vessel(path, widths, artery))
            grown = self._grow_batch(sprouts)
            generation = [(p, w, a, s.flow) for (p, w), a, s in zip(grown, kinds, sprouts) if p is not None]
            depth += 1
        return self.vessels

    def _split(self, path: np.ndarray, widths: np.ndarray, flow: float | None, depth: int) -> list[_Sprout]:
        """Side branches along ``path``; thins ``widths`` downstream of each split (Murray's law).

        ``flow`` is the parent's own flow heading (None for trunks): children of trunks flow away
        from the disc, or inwards (towards the fovea, or the temporal raphe beyond it); deeper
        children inherit their parent's flow.
        """
        rng = self.rng
        arc_length = (len(path) - 1) * STEP
        if depth == 0:
            low, high, position = 0.25 * self.dd, 0.55 * self.dd, 0.5 * self.dd
        else:
            low, high, position = 5.0 * widths[0], 12.0 * widths[0], 0.0
        position += rng.uniform(low, high)
        sprouts = []
        while position < arc_length - 2 * STEP:
            index = int(position / STEP)
            ratio = rng.uniform(0.4, 0.75) if depth == 0 else rng.uniform(0.5, 0.85)
            width = float(widths[index]) * ratio
            position += rng.uniform(low, high)
            if width < MIN_WIDTH:
                continue
            start = path[index]
            tangent = path[min(index + 1, len(path) - 1)] - path[max(index - 1, 0)]
            heading = math.atan2(tangent[1], tangent[0])
            temporal = start[0] < self.fovea[0]
            target = np.array([start[0] - 0.5 * self.dd, self.fovea[1]]) if temporal else self.fovea
            to_target = target - start
            target_dist = math.hypot(to_target[0], to_target[1])
            near_macula = math.hypot(*(self.fovea - start)) < 3.5 * self.dd
            inward = flow is None and (near_macula or temporal) and rng.random() < 0.65
            if inward:
                child_flow = math.atan2(to_target[1], to_target[0])
            elif flow is None:
                child_flow = math.atan2(start[1] - self.disc[1], start[0] - self.disc[0])
            else:
                child_flow = flow + rng.normal(0.0, 0.35)
            side = 1.0 if float(_wrap(child_flow - heading)) > 0 else -1.0
            if rng.random() < 0.25:
                side = -side
            length = float(np.clip(width * rng.uniform(55.0, 110.0), 0.06, 2.0))
            if inward:
                length = min(length, target_dist)
            angle = side * math.radians(rng.uniform(30.0, 65.0))
            sprouts.append(_Sprout(start, heading + angle, child_flow, width, length))
            widths[index:] *= max(1.0 - ratio**3, 0.05) ** (1.0 / 3.0)
        return sprouts

    def _grow_batch(self, sprouts: list[_Sprout]) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
        """Paths of all ``sprouts`` at once: smooth random walks relaxing to each flow heading."""
        if not sprouts:
            return []
        rng = self.rng
        count = len(sprouts)
        lengths = np.array([s.length for s in sprouts])
        n_steps = np.maximum(3, (lengths / STEP).astype(int))
        steps = np.arange(int(n_steps.max()))[None, :] * STEP
        heading = np.array([s.heading for s in sprouts])[:, None]
        flow = np.array([s.flow for s in sprouts])[:, None]
        relax = np.exp(-steps / rng.uniform(0.08, 0.25, (count, 1)))
        noise = cv2.GaussianBlur(rng.standard_normal((count, steps.shape[1] + 48)), (49, 1), 8.0)[:, 24:-24]
        noise /= 0.188
        headings = flow + _wrap(heading - flow) * relax
        headings += rng.uniform(-0.6, 0.6, (count, 1)) * steps + 0.25 * noise * np.sqrt(steps / lengths[:, None])
        starts = np.array([s.start for s in sprouts])
        paths = np.empty((count, steps.shape[1] + 1, 2))
        paths[:, 0] = starts
        paths[:, 1:, 0] = starts[:, :1] + np.cumsum(STEP * np.cos(headings), axis=1)
        paths[:, 1:, 1] = starts[:, 1:] + np.cumsum(STEP * np.sin(headings), axis=1)
        stop = self._stop_mask(paths, from_disc=False)
        stop |= np.arange(paths.shape[1])[None, :] > n_steps[:, None]
        keep = np.where(stop.any(axis=1), np.argmax(stop, axis=1), paths.shape[1])
        out: list[tuple[np.ndarray | None, np.ndarray | None]] = []
        for i, sprout in enumerate(sprouts):
            if keep[i] < 3:
                out.append((None, None))
                continue
            taper = 1.0 - 0.55 * np.linspace(0.0, keep[i] / n_steps[i], keep[i])
            out.append((paths[i, : keep[i]], sprout.width * taper))
        return out


def _pull_inside(control: np.ndarray, keep_last: int, limit: float = 0.92) -> np.ndarray:
    """Moves control points (except the last ``keep_last``) radially inside ``limit`` x the FOV radius,
    so a trunk leaves the field only at its end."""
    out = control.copy()
    radius = np.hypot(out[:-keep_last, 0], out[:-keep_last, 1])
    out[:-keep_last] *= np.minimum(1.0, limit / np.maximum(radius, 1e-9))[:, None]
    return out


def grow_vessels(geometry: FundusGeometry, rng: np.random.Generator) -> list[Vessel]:
    """Every vessel of one eye in the canonical frame (trunks first, then each generation)."""
    grower = _TreeGrower(geometry, rng)
    dd, disc, fovea = grower.dd, grower.disc, grower.fovea
    vein_width = dd * rng.uniform(0.062, 0.078)
    artery_width = vein_width * rng.uniform(0.68, 0.8)
    trunks: list[tuple[np.ndarray, np.ndarray, bool]] = []

    def add(control: np.ndarray, width: float, artery: bool, wobble: float) -> None:
        trunk = grower.trunk_path(control, width, wobble)
        if trunk is not None:
            trunks.append((trunk[0], trunk[1], artery))

    origins = {
        artery: disc + rng.normal(0.0, 0.05 * dd, 2) + [0.05 * dd if artery else -0.08 * dd, 0.0]
        for artery in (False, True)
    }
    for vertical in (-1.0, 1.0):
        opening = rng.uniform(0.85, 1.2)
        temporal = [
            disc,
            disc + [-0.1 * dd, vertical * 0.9 * dd * opening],
            disc + [-0.6 * dd, vertical * 1.75 * dd * opening],
            fovea + [0.7 * dd, vertical * 2.2 * dd * opening],
            fovea + [-1.0 * dd, vertical * 2.4 * dd * opening],
            fovea + [-2.6 * dd, vertical * 2.6 * dd * opening],
            fovea + [-5.0 * dd, vertical * 3.0 * dd * opening],
        ]
        nasal = [
            disc,
            disc + [0.35 * dd, vertical * 0.85 * dd],
            disc + [1.1 * dd, vertical * 1.8 * dd],
            disc + [2.3 * dd, vertical * 2.8 * dd],
            disc + [4.0 * dd, vertical * 4.0 * dd],
        ]
        for artery, width in ((False, vein_width), (True, artery_width)):
            for control, scale in ((temporal, 1.0), (nasal, 0.75)):
                points = np.array(control, dtype=np.float64)
                points[1:] += rng.normal(0.0, 0.15 * dd, (len(points) - 1, 2))
                points[0] = origins[artery]
                if control is temporal:
                    points = _pull_inside(points, keep_last=1)
                add(points, width * scale * rng.uniform(0.9, 1.1), artery, wobble=0.03)
    for _ in range(int(rng.integers(3, 7))):
        vertical = rng.uniform(-0.7, 0.7)
        artery = bool(rng.random() < 0.5)
        control = np.array(
            [
                origins[artery],
                disc + [-0.9 * dd, vertical * 0.7 * dd],
                fovea + [0.8 * dd, vertical * 0.9 * dd],
                fovea + [0.0, vertical * 0.4 * dd],
            ]
        )
        control[1:] += rng.normal(0.0, 0.12 * dd, (3, 2))
        add(control, vein_width * rng.uniform(0.25, 0.4), artery, wobble=0.03)
    return grower.grow(trunks)


def rasterize_vessels(vessels: list[Vessel], geometry: FundusGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Artery, vein and artery-reflex layers in [0, 1], each (size, size) float32.

    A layer value is the vessel's optical thickness (thin vessels absorb less); edges are
    anti-aliased and slightly blurred.
    """
    size = geometry.size
    layers = {True: np.zeros((size, size), np.uint8), False: np.zeros((size, size), np.uint8)}
    reflex = np.zeros((size, size), np.uint8)
    scale = geometry.fov_radius
    shift = 4
    pieces = []
    all_points = geometry.to_px(np.concatenate([vessel.points for vessel in vessels]))
    offset = 0
    for vessel in vessels:
        points = all_points[offset : offset + len(vessel.points)]
        offset += len(vessel.points)
        widths = vessel.widths.tolist()
        for start in range(0, len(points) - 1, CHUNK):
            stop = min(start + CHUNK + 1, len(points))
            pieces.append((sum(widths[start:stop]) / (stop - start), points[start:stop], vessel.artery))
    pieces.sort(key=lambda piece: piece[0])
    for width, points, artery in pieces:
        width_px = width * scale
        thickness = min(1.0, (width / 0.012) ** 0.5)
        layer = layers[artery]
        fixed = np.round(points * 2**shift).astype(np.int32)
        if width_px < 1.5:
            value = int(round(255 * thickness * min(1.0, width_px)))
            cv2.polylines(layer, [fixed], False, value, 1, cv2.LINE_AA, shift)
            continue
        half_width = _normals(points) * (0.5 * width_px)
        polygon = np.vstack([points + half_width, (points - half_width)[::-1]])
        fixed_polygon = np.round(polygon * 2**shift).astype(np.int32)
        cv2.fillPoly(layer, [fixed_polygon], int(round(255 * thickness)), cv2.LINE_AA, shift)
        if artery and width_px >= 4.0:
            cv2.polylines(reflex, [fixed], False, 255, max(1, int(round(0.15 * width_px))), cv2.LINE_AA, shift)
    sigma = max(0.45, 0.0011 * size)
    arteries, veins, reflex_layer = (
        cv2.GaussianBlur(layer.astype(np.float32) / 255.0, (0, 0), sigma)
        for layer in (layers[True], layers[False], reflex)
    )
    return arteries, veins, reflex_layer


#: Per-channel absorbance (R, G, B) of a fully thick vessel.
ARTERY_ABSORBANCE = np.array([0.08, 0.6, 0.55], np.float32)
VEIN_ABSORBANCE = np.array([0.28, 1.1, 1.0], np.float32)


def composite_vessels(image: np.ndarray, arteries: np.ndarray, veins: np.ndarray, reflex: np.ndarray) -> None:
    """Darkens ``image`` (H, W, 3) float32 in place by the vessel layers (Beer-Lambert)."""
    rows, cols = np.nonzero((arteries + veins) > 1e-3)
    optical = arteries[rows, cols, None] * ARTERY_ABSORBANCE + veins[rows, cols, None] * VEIN_ABSORBANCE
    image[rows, cols] *= np.exp(-optical)
    rows, cols = np.nonzero(reflex > 1e-3)
    pixels = image[rows, cols]
    image[rows, cols] = pixels + (0.12 * reflex[rows, cols, None]) * (np.array([1.0, 0.8, 0.7], np.float32) - pixels)
