"""Lesion planner: chooses lesions so that the rendered image meets a requested DR/DME grade.

The planner only proposes; the generator renders the plan and recomputes both grades from what
was drawn with :mod:`drscreen.retina`. Clinical habits it follows: microaneurysms and
haemorrhages favour the posterior pole, flame haemorrhages follow the nerve fibres (radial from
the disc), cotton-wool spots lie near the disc and arcades, hard exudates come in clumps and
circinate rings (around the macula when DME is 2), new vessels sit on the disc (NVD) or along
the major vessels (NVE) and appear only for DR 4.
"""

from __future__ import annotations

import math

import numpy as np

from drscreen.retina import SEVERE_HE_PER_QUADRANT, quadrant_axes, quadrants_of
from drscreen.synth.anatomy import FundusGeometry
from drscreen.synth.lesions import UM_PER_DD, Lesion


class _Placer:
    """Draws lesion centres inside the visible field, away from the optic disc."""

    def __init__(self, geometry: FundusGeometry, rng: np.random.Generator) -> None:
        self.geometry = geometry
        self.rng = rng
        self.fovea = np.array(geometry.fovea)
        self.disc = np.array(geometry.disc_center)
        self.dd = geometry.disc_diameter
        self.um = self.dd / UM_PER_DD
        self.nasal, self.superior = quadrant_axes(geometry.fovea, geometry.disc_center)
        self.margin = max(3.0, 0.03 * geometry.fov_radius)

    def visible(self, point: np.ndarray, radius: float = 0.0) -> bool:
        """Whether a disc of ``radius`` px around ``point`` lies in the FOV, off the optic disc."""
        geometry = self.geometry
        dx, dy = point[0] - geometry.fov_center[0], point[1] - geometry.fov_center[1]
        if math.hypot(dx, dy) > geometry.fov_radius - self.margin - radius:
            return False
        if geometry.clip_half_height is not None and abs(dy) > geometry.clip_half_height - self.margin - radius:
            return False
        return math.hypot(point[0] - self.disc[0], point[1] - self.disc[1]) > 0.75 * self.dd + radius

    def point(self, spread_dd: float, quadrant: int | None = None, radius: float = 0.0) -> np.ndarray:
        """A visible point whose distance from the fovea is ~|N(0, spread_dd)| DD (or uniform
        over the field for ``spread_dd`` = inf), optionally in a given quadrant."""
        rng = self.rng
        reach = self.geometry.fov_radius + float(np.hypot(*(self.fovea - self.geometry.fov_center)))
        for _ in range(500):
            if math.isinf(spread_dd):
                distance = reach * math.sqrt(rng.random())
            else:
                distance = abs(rng.normal(0.0, spread_dd)) * self.dd
            if quadrant is None:
                angle = rng.uniform(0.0, 2 * np.pi)
                direction = np.array([math.cos(angle), math.sin(angle)])
            else:
                angle = rng.uniform(0.0, 0.5 * np.pi)
                nasal_sign = 1.0 if quadrant in (1, 2) else -1.0
                superior_sign = 1.0 if quadrant in (0, 1) else -1.0
                direction = nasal_sign * math.cos(angle) * self.nasal + superior_sign * math.sin(angle) * self.superior
            candidate = self.fovea + distance * direction
            if not self.visible(candidate, radius):
                continue
            if quadrant is not None and quadrants_of(candidate[None], self.fovea, self.disc)[0] != quadrant:
                continue
            return candidate
        raise RuntimeError("could not place a lesion inside the field of view")

    def fovea_distance_dd(self, point: np.ndarray) -> float:
        """Distance of ``point`` from the fovea centre, DD."""
        return float(np.hypot(*(point - self.fovea))) / self.dd

    def seed(self) -> int:
        """A fresh per-lesion shape seed."""
        return int(self.rng.integers(2**31))


def _haemorrhage(placer: _Placer, point: np.ndarray, small: bool) -> Lesion:
    """A dot, blot or flame haemorrhage at ``point`` (flames follow the nerve fibres)."""
    rng = placer.rng
    shape = rng.choice(["dot", "blot", "flame"], p=[0.45, 0.42, 0.13])
    if shape == "dot":
        radius_um, aspect = rng.uniform(55, 130), rng.uniform(0.85, 1.0)
    elif shape == "blot":
        radius_um, aspect = rng.uniform(100, 220 if small else 380), rng.uniform(0.6, 1.0)
    else:
        radius_um, aspect = rng.uniform(150, 300 if small else 450), rng.uniform(0.25, 0.42)
    radial = point - placer.disc
    angle = math.atan2(radial[1], radial[0]) if shape == "flame" else rng.uniform(0, np.pi)
    return Lesion(
        "HE", str(shape), (float(point[0]), float(point[1])), radius_um * placer.um, aspect, angle,
        float(rng.uniform(0.55, 0.95)), placer.seed(),
    )


def _microaneurysm(placer: _Placer) -> Lesion:
    """A microaneurysm near the posterior pole."""
    rng = placer.rng
    point = placer.point(2.2)
    return Lesion(
        "MA", "dot", (float(point[0]), float(point[1])), rng.uniform(15, 55) * placer.um, 1.0, 0.0,
        float(rng.uniform(0.7, 1.0)), placer.seed(),
    )


def _cotton_wool(placer: _Placer) -> Lesion:
    """A cotton-wool spot along the arcades / near the disc."""
    rng = placer.rng
    radius = rng.uniform(230, 480) * placer.um
    for _ in range(200):
        point = placer.disc + rng.normal(0.0, 1.8 * placer.dd, 2)
        if placer.visible(point, radius):
            break
    else:
        point = placer.point(2.5, radius=radius)
    radial = point - placer.disc
    return Lesion(
        "SE", "spot", (float(point[0]), float(point[1])), radius, rng.uniform(0.5, 0.9),
        math.atan2(radial[1], radial[0]) + math.pi / 2, float(rng.uniform(0.45, 0.75)), placer.seed(),
    )


def _plaque_radius_um(rng: np.random.Generator) -> float:
    """Hard-exudate plaque radius: mostly small dots, sometimes a confluent plaque."""
    if rng.random() < 0.08:
        return float(rng.uniform(170, 320))
    return float(math.exp(rng.uniform(math.log(18), math.log(140))))


def _exudate_cluster(placer: _Placer, center: np.ndarray, ring: bool) -> list[Lesion]:
    """A circinate ring (around a leak) or a clump of hard-exudate plaques around ``center``."""
    rng = placer.rng
    count = int(rng.integers(8, 30) if ring else rng.integers(3, 14))
    ring_radius = rng.uniform(0.35, 0.8) * placer.dd
    arc_start, arc_span = rng.uniform(0, 2 * np.pi), rng.uniform(1.2 * np.pi, 2 * np.pi)
    plaques = []
    for _ in range(count):
        if ring:
            theta = arc_start + rng.uniform(0, arc_span)
            offset = ring_radius * rng.normal(1.0, 0.12) * np.array([math.cos(theta), math.sin(theta)])
        else:
            offset = rng.normal(0.0, 0.22 * placer.dd, 2)
        point = center + offset
        radius = _plaque_radius_um(rng) * placer.um
        plaques.append(
            Lesion(
                "EX", "plaque", (float(point[0]), float(point[1])), radius, rng.uniform(0.55, 1.0),
                rng.uniform(0, np.pi), float(rng.uniform(0.75, 1.0)), placer.seed(),
            )
        )
    return plaques


def _exudates(placer: _Placer, target_dme: int) -> list[Lesion]:
    """Hard exudates for DME 1 (all beyond 1 DD of the fovea) or DME 2 (one within 0.85 DD)."""
    rng = placer.rng
    plaques: list[Lesion] = []
    if target_dme == 2:
        direction = rng.uniform(0, 2 * np.pi)
        center = placer.fovea + rng.uniform(0.0, 0.8) * placer.dd * np.array([math.cos(direction), math.sin(direction)])
        plaques += _exudate_cluster(placer, center, ring=bool(rng.random() < 0.6))
        unit = np.array([math.cos(direction), math.sin(direction)])
        anchor = placer.fovea + rng.uniform(0.25, 0.8) * placer.dd * unit
        plaques.append(
            Lesion("EX", "plaque", (float(anchor[0]), float(anchor[1])), _plaque_radius_um(rng) * placer.um,
                   rng.uniform(0.55, 1.0), rng.uniform(0, np.pi), float(rng.uniform(0.8, 1.0)), placer.seed())
        )
    extra_clusters = int(rng.integers(1, 4) if target_dme == 1 else rng.integers(0, 3))
    for _ in range(extra_clusters):
        center = placer.point(2.0)
        if target_dme == 1:
            while placer.fovea_distance_dd(center) < 1.4:
                center = placer.point(2.5)
        plaques += _exudate_cluster(placer, center, ring=bool(rng.random() < 0.4))
    keep = []
    for plaque in plaques:
        point = np.array(plaque.center)
        if not placer.visible(point, plaque.radius):
            continue
        if target_dme == 1:
            clearance_px = placer.fovea_distance_dd(point) * placer.dd - plaque.radius - 1.5
            if clearance_px <= 1.0 * placer.dd:
                continue
        keep.append(plaque)
    if target_dme == 1 and not keep:
        point = placer.point(3.0)
        while placer.fovea_distance_dd(point) < 1.5:
            point = placer.point(3.0)
        keep.append(
            Lesion("EX", "plaque", (float(point[0]), float(point[1])), 60 * placer.um, 0.8, 0.0, 1.0, placer.seed())
        )
    return keep


def _neovascularisation(placer: _Placer, vessel_points: np.ndarray) -> list[Lesion]:
    """One to three NV fronds: on the disc (NVD) or beside a major vessel (NVE)."""
    rng = placer.rng
    fronds = []
    line_width = max(1.0, 20.0 * placer.um)
    for index in range(int(rng.integers(1, 4))):
        if index == 0 and rng.random() < 0.5:
            point = placer.disc + rng.normal(0.0, 0.15 * placer.dd, 2)
            radius = rng.uniform(0.45, 0.8) * placer.dd
            shape = "nvd"
        else:
            radius = rng.uniform(0.3, 0.6) * placer.dd
            candidates = vessel_points[
                np.hypot(*(vessel_points - placer.disc).T) > 1.5 * placer.dd
            ]
            point = None
            for _ in range(100):
                candidate = candidates[int(rng.integers(len(candidates)))] if len(candidates) else placer.point(3.0)
                if placer.visible(candidate, radius):
                    point = candidate
                    break
            if point is None:
                point = placer.point(2.5, radius=radius)
            shape = "nve"
        fronds.append(
            Lesion("NV", shape, (float(point[0]), float(point[1])), radius, 1.0, 0.0,
                   float(rng.uniform(0.35, 0.6)), placer.seed(), line_width)
        )
    return fronds


def plan_lesions(
    rng: np.random.Generator,
    geometry: FundusGeometry,
    vessel_points: np.ndarray,
    target_dr: int,
    target_dme: int,
) -> list[Lesion]:
    """Lesions meant to give ``target_dr`` / ``target_dme``; ``vessel_points`` (N, 2) px on major vessels."""
    if target_dme > 0 and target_dr < 2:
        raise ValueError("DME >= 1 needs hard exudates, which make DR >= 2")
    if target_dr == 0:
        return []
    placer = _Placer(geometry, rng)
    lesions: list[Lesion] = []
    n_ma = {1: (1, 12), 2: (3, 30), 3: (10, 45), 4: (5, 35)}[target_dr]
    lesions += [_microaneurysm(placer) for _ in range(int(rng.integers(*n_ma)))]
    if target_dr == 1:
        return lesions
    if target_dr == 3:
        for quadrant in range(4):
            count = SEVERE_HE_PER_QUADRANT + int(rng.poisson(3.0))
            lesions += [_haemorrhage(placer, placer.point(3.5, quadrant), small=True) for _ in range(count)]
    else:
        count = int(rng.integers(1, 16) if target_dr == 2 else rng.integers(0, 30))
        lesions += [_haemorrhage(placer, placer.point(2.8), small=False) for _ in range(count)]
    se_chance, se_max = {2: (0.35, 4), 3: (0.6, 7), 4: (0.5, 6)}[target_dr]
    if rng.random() < se_chance:
        lesions += [_cotton_wool(placer) for _ in range(int(rng.integers(1, se_max)))]
    if target_dme > 0:
        lesions += _exudates(placer, target_dme)
    if target_dr == 4:
        lesions += _neovascularisation(placer, vessel_points)
    return lesions
