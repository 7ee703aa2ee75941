"""``generate_fundus``: one seeded synthetic fundus photograph with lesion masks and grades.

Random streams are independent per purpose (anatomy, target grades, lesions per planning
attempt, camera, label noise), each seeded by ``(seed, stream)``. Hence the same seed gives the
same eye with or without lesions, whatever grade is requested, and the same image and masks
byte for byte on every run and in every worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drscreen import retina
from drscreen.grading import validate_dme_grade, validate_dr_grade
from drscreen.synth.anatomy import FundusGeometry, illumination, render_reflectance, sample_appearance, sample_geometry
from drscreen.synth.camera import apply_camera
from drscreen.synth.config import SynthConfig
from drscreen.synth.lesions import LESION_KINDS, Lesion, render_lesions
from drscreen.synth.planner import plan_lesions
from drscreen.synth.vessels import composite_vessels, grow_vessels, rasterize_vessels

#: Supported output sizes, px (square images).
MIN_SIZE, MAX_SIZE = 128, 4096
#: Mask codes of a :class:`SynthFundus`, in grading.py order.
MASK_CODES: tuple[str, ...] = ("MA", "HE", "EX", "SE", "OD", "NV")

_STREAM_ANATOMY, _STREAM_TARGET, _STREAM_CAMERA, _STREAM_LABELS, _STREAM_LESIONS = range(5)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


@dataclass(frozen=True)
class SynthFundus:
    """A synthetic fundus photograph and its truth.

    ``image`` (H, W, 3) uint8 RGB; ``masks`` code -> (H, W) bool for MA, HE, EX, SE, OD, NV;
    ``dr_grade`` / ``dme_grade`` computed from the drawn lesions by :mod:`drscreen.retina`;
    ``dr_label`` / ``dme_label`` the recorded labels (differ from the grades only under label
    noise); ``lesions`` every drawn lesion (pixel coordinates); ``he_per_quadrant`` haemorrhage
    counts per :class:`~drscreen.retina.Quadrant`; ``exudate_distance_dd`` fovea to nearest
    exudate pixel (inf without exudate); ``target_dr`` / ``target_dme`` the grades the planner
    aimed at (None when an explicit lesion list was drawn).
    """

    seed: int
    image: np.ndarray
    masks: dict[str, np.ndarray]
    geometry: FundusGeometry
    dr_grade: int
    dme_grade: int
    dr_label: int
    dme_label: int
    lesions: tuple[Lesion, ...]
    he_per_quadrant: tuple[int, int, int, int]
    exudate_distance_dd: float
    target_dr: int | None
    target_dme: int | None
    metadata: dict[str, object] = field(default_factory=dict)

    @property
    def eye(self) -> str:
        """``"left"`` or ``"right"``."""
        return self.geometry.eye

    @property
    def label_noisy(self) -> bool:
        """Whether a recorded label differs from the computed grade."""
        return self.dr_label != self.dr_grade or self.dme_label != self.dme_grade

    def lesion_counts(self) -> dict[str, int]:
        """Number of drawn lesions per code (MA, HE, EX, SE, NV)."""
        return {kind: sum(lesion.kind == kind for lesion in self.lesions) for kind in LESION_KINDS}


def sample_targets(
    seed: int, config: SynthConfig, target_dr: int | None = None, target_dme: int | None = None
) -> tuple[int, int]:
    """(DR, DME) targets: given values are kept, missing ones drawn from ``config`` consistently
    (DME >= 1 forces DR >= 2)."""
    rng = _rng(seed, _STREAM_TARGET)
    dr_weights = np.asarray(config.grade_distribution, dtype=np.float64)
    if target_dme is not None and target_dme > 0:
        dr_weights = dr_weights * (np.arange(5) >= 2)
        if dr_weights.sum() == 0:
            dr_weights = (np.arange(5) >= 2).astype(np.float64)
    drawn_dr = int(rng.choice(5, p=dr_weights / dr_weights.sum()))
    dr = validate_dr_grade(drawn_dr if target_dr is None else target_dr)
    dme_weights = np.asarray(config.dme_given_dr[dr], dtype=np.float64)
    drawn_dme = int(rng.choice(3, p=dme_weights / dme_weights.sum()))
    dme = validate_dme_grade(drawn_dme if target_dme is None else target_dme)
    if dme > 0 and dr < 2:
        raise ValueError(f"DME {dme} needs hard exudates, which make DR >= 2 (asked DR {dr})")
    return dr, dme


def noisy_labels(seed: int, dr: int, dme: int, probability: float) -> tuple[int, int]:
    """Recorded labels: each axis moves one grade up or down (inside its scale) with ``probability``."""
    rng = _rng(seed, _STREAM_LABELS)
    flips = rng.random(2) < probability
    directions = rng.choice([-1, 1], size=2)
    out = []
    for grade, top, flip, direction in ((dr, 4, flips[0], directions[0]), (dme, 2, flips[1], directions[1])):
        if flip:
            moved = grade + int(direction)
            grade = moved if 0 <= moved <= top else grade - int(direction)
        out.append(int(grade))
    return out[0], out[1]


def grade_lesions(
    lesions: list[Lesion], exudate_mask: np.ndarray, geometry: FundusGeometry
) -> tuple[int, int, tuple[int, int, int, int], float]:
    """(DR, DME, HE per quadrant, exudate distance in DD) of drawn lesions by the clinical rules."""
    drawn = [lesion for lesion in lesions if lesion.pixels > 0]
    he_centers = np.array([lesion.center for lesion in drawn if lesion.kind == "HE"], dtype=np.float64)
    per_quadrant = retina.haemorrhages_per_quadrant(he_centers, geometry.fovea, geometry.disc_center)
    dr = retina.dr_grade(
        n_ma=sum(lesion.kind == "MA" for lesion in drawn),
        he_per_quadrant=per_quadrant,
        n_ex=sum(lesion.kind == "EX" for lesion in drawn),
        n_se=sum(lesion.kind == "SE" for lesion in drawn),
        has_nv=any(lesion.kind == "NV" for lesion in drawn),
    )
    rows, cols = np.nonzero(exudate_mask)
    exudate_pixels = np.stack([cols, rows], axis=1)
    dme = retina.dme_grade(exudate_pixels, geometry.fovea, geometry.disc_diameter)
    distance = retina.nearest_exudate_distance_dd(exudate_pixels, geometry.fovea, geometry.disc_diameter)
    return int(dr), int(dme), per_quadrant, distance


def generate_fundus(
    seed: int,
    size: int,
    *,
    target_dr: int | None = None,
    target_dme: int | None = None,
    eye: str | None = None,
    config: SynthConfig | None = None,
    lesions: list[Lesion] | None = None,
) -> SynthFundus:
    """Renders one synthetic fundus of ``size`` x ``size`` px for ``seed`` (an int >= 0).

    Targets left as None are drawn from ``config``; an explicit ``lesions`` list (pixel
    coordinates, e.g. built from :func:`fundus_geometry`) replaces the planner and the targets.
    Grades are always recomputed from what was drawn; the planner is retried (new lesion
    stream) up to ``config.max_plan_attempts`` times until they match the targets.
    """
    config = config or SynthConfig()
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE} px, got {size}")
    seed = int(seed)
    goal = None if lesions is not None else sample_targets(seed, config, target_dr, target_dme)

    anatomy_rng = _rng(seed, _STREAM_ANATOMY)
    geometry = sample_geometry(anatomy_rng, size, eye, config)
    appearance = sample_appearance(anatomy_rng)
    reflectance = render_reflectance(geometry, appearance, anatomy_rng)
    vessels = grow_vessels(geometry, anatomy_rng)
    arteries, veins, reflex = rasterize_vessels(vessels, geometry)
    light = illumination(geometry, appearance, anatomy_rng)
    fov_weight = geometry.fov_mask()
    fov = geometry.fov_bool()
    widest = max(float(vessel.widths[0]) for vessel in vessels)
    major = [vessel.points[::4] for vessel in vessels if float(vessel.widths[0]) >= 0.45 * widest]
    vessel_points = geometry.to_px(np.concatenate(major))

    attempts = 1 if goal is None or not config.render_lesions else config.max_plan_attempts
    for attempt in range(attempts):
        if not config.render_lesions:
            plan: list[Lesion] = []
        elif goal is None:
            plan = list(lesions or [])
        else:
            plan = plan_lesions(_rng(seed, _STREAM_LESIONS, attempt), geometry, vessel_points, *goal)
        image = reflectance.copy()
        masks = {code: np.zeros((size, size), bool) for code in MASK_CODES}
        drawn = render_lesions(image, masks, plan, fov, superficial=False)
        composite_vessels(image, arteries, veins, reflex)
        drawn += render_lesions(image, masks, plan, fov, superficial=True)
        dr, dme, per_quadrant, distance = grade_lesions(drawn, masks["EX"], geometry)
        if (dr, dme) == goal:
            break
    masks["OD"] = geometry.disc_mask() & fov
    image *= light[..., None]
    final = apply_camera(image, fov_weight, geometry, _rng(seed, _STREAM_CAMERA), config)
    dr_label, dme_label = noisy_labels(seed, dr, dme, config.label_noise)
    return SynthFundus(
        seed=seed,
        image=final,
        masks=masks,
        geometry=geometry,
        dr_grade=dr,
        dme_grade=dme,
        dr_label=dr_label,
        dme_label=dme_label,
        lesions=tuple(lesion for lesion in drawn if lesion.pixels > 0),
        he_per_quadrant=per_quadrant,
        exudate_distance_dd=distance,
        target_dr=None if goal is None else goal[0],
        target_dme=None if goal is None else goal[1],
        metadata={
            "eye": geometry.eye,
            "fovea": geometry.fovea,
            "disc_center": geometry.disc_center,
            "disc_diameter_px": geometry.disc_diameter,
            "fov_center": geometry.fov_center,
            "fov_radius": geometry.fov_radius,
            "fov_clip_half_height": geometry.clip_half_height,
            "plan_attempts": attempt + 1,
            "pigment": appearance.pigment,
        },
    )


def fundus_geometry(
    seed: int, size: int, *, eye: str | None = None, config: SynthConfig | None = None
) -> FundusGeometry:
    """The geometry :func:`generate_fundus` uses for ``seed`` and ``size`` (cheap: no rendering)."""
    return sample_geometry(_rng(int(seed), _STREAM_ANATOMY), size, eye, config or SynthConfig())
