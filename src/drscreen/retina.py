"""Clinical geometry of the fundus and the rules that turn lesions into DR and DME grades.

Pure functions on pixel coordinates, no rendering and no model: the synthetic generator's ground
truth of record (``docs/synthetic.md``) and the geometry screening reports in.

* Regions (:func:`region_map`): the **optic disc** is every pixel within half a disc diameter of
  the disc centre; the **macula** every other pixel within :data:`MACULA_RADIUS_DD` disc diameters
  of the fovea centre; the **rest** is what remains of the field of view (0 outside it).
* Quadrants are centred on the **fovea centre**. The horizontal axis runs from the fovea
  towards the optic-disc centre (the nasal direction, i.e. along the horizontal raphe); the
  vertical axis is perpendicular to it through the fovea. "Superior" is the side of the
  horizontal axis that points up in the image (smaller row index). A point exactly on an axis
  belongs to the nasal / superior side.
* DR (ICDR, simplified): 4 if any neovascularisation; else 3 if there are >= 20 haemorrhages
  in **each** of the four quadrants (a haemorrhage is placed by its centre); else 2 if there is
  any lesion other than microaneurysms (HE, EX or SE); else 1 if there is any microaneurysm;
  else 0.
* DME (IDRiD): 0 without hard exudate; 2 if the Euclidean distance from the fovea centre to the
  nearest exudate pixel centre is <= 1 disc diameter; else 1.

All coordinates are pixels as ``(x, y)`` = (column, row), pixel centres at integer positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

import numpy as np

from drscreen.grading import DMEGrade, DRGrade

#: Minimum number of haemorrhages in every quadrant for severe NPDR (simplified 4-2-1 rule).
SEVERE_HE_PER_QUADRANT = 20
#: The macula: within this many disc diameters of the fovea centre (inclusive); an exudate
#: inside it makes DME grade 2.
MACULA_RADIUS_DD = 1.0


class Region(IntEnum):
    """Value of a :func:`region_map` pixel; 0 is outside the field of view."""

    OPTIC_DISC = 1
    MACULA = 2
    REST = 3


class Quadrant(IntEnum):
    """Retinal quadrant around the fovea (see the module docstring for the axes)."""

    SUPERO_TEMPORAL = 0
    SUPERO_NASAL = 1
    INFERO_NASAL = 2
    INFERO_TEMPORAL = 3


def quadrant_axes(fovea: Sequence[float], disc_center: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors ``(nasal, superior)`` of the quadrant frame, each shape (2,) in (x, y) pixels."""
    nasal = np.asarray(disc_center, dtype=np.float64) - np.asarray(fovea, dtype=np.float64)
    norm = float(np.hypot(*nasal))
    if norm == 0.0:
        raise ValueError("fovea and disc centre coincide; the quadrant frame is undefined")
    nasal /= norm
    superior = np.array([nasal[1], -nasal[0]])
    if superior[1] > 0 or (superior[1] == 0 and superior[0] < 0):
        superior = -superior
    return nasal, superior


def quadrants_of(points: np.ndarray, fovea: Sequence[float], disc_center: Sequence[float]) -> np.ndarray:
    """Quadrant index (:class:`Quadrant` values) of each point; ``points`` (N, 2) -> (N,) int64."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    nasal, superior = quadrant_axes(fovea, disc_center)
    rel = pts - np.asarray(fovea, dtype=np.float64)
    is_nasal = rel @ nasal >= 0
    is_superior = rel @ superior >= 0
    return np.where(
        is_superior,
        np.where(is_nasal, Quadrant.SUPERO_NASAL, Quadrant.SUPERO_TEMPORAL),
        np.where(is_nasal, Quadrant.INFERO_NASAL, Quadrant.INFERO_TEMPORAL),
    ).astype(np.int64)


def haemorrhages_per_quadrant(
    he_centers: np.ndarray, fovea: Sequence[float], disc_center: Sequence[float]
) -> tuple[int, int, int, int]:
    """Haemorrhage counts per :class:`Quadrant` from their centres (N, 2) in pixels."""
    pts = np.asarray(he_centers, dtype=np.float64).reshape(-1, 2)
    counts = np.bincount(quadrants_of(pts, fovea, disc_center), minlength=4)
    return int(counts[0]), int(counts[1]), int(counts[2]), int(counts[3])


def dr_grade(
    *,
    n_ma: int,
    he_per_quadrant: Sequence[int],
    n_ex: int,
    n_se: int,
    has_nv: bool,
) -> DRGrade:
    """ICDR DR grade from lesion counts (see module docstring); ``he_per_quadrant`` has 4 counts."""
    if len(he_per_quadrant) != 4:
        raise ValueError(f"he_per_quadrant needs 4 counts, got {len(he_per_quadrant)}")
    if min(n_ma, n_ex, n_se, *he_per_quadrant) < 0:
        raise ValueError("lesion counts must be non-negative")
    if has_nv:
        return DRGrade.PROLIFERATIVE
    if all(count >= SEVERE_HE_PER_QUADRANT for count in he_per_quadrant):
        return DRGrade.SEVERE
    if sum(he_per_quadrant) + n_ex + n_se > 0:
        return DRGrade.MODERATE
    if n_ma > 0:
        return DRGrade.MILD
    return DRGrade.NONE


def distance_in_disc_diameters(points: np.ndarray, fovea: Sequence[float], disc_diameter: float) -> np.ndarray:
    """Euclidean distance of each point (N, 2) ``(x, y)`` px from the fovea centre, (N,) float64 in DD."""
    if disc_diameter <= 0:
        raise ValueError(f"disc_diameter must be positive, got {disc_diameter}")
    rel = np.asarray(points, dtype=np.float64).reshape(-1, 2) - np.asarray(fovea, dtype=np.float64)
    return np.hypot(rel[:, 0], rel[:, 1]) / disc_diameter


def nearest_exudate_distance_dd(
    exudate_pixels: np.ndarray, fovea: Sequence[float], disc_diameter: float
) -> float:
    """Distance from the fovea centre to the nearest exudate pixel (N, 2), in disc diameters.

    Returns ``inf`` when there is no exudate pixel.
    """
    distances = distance_in_disc_diameters(exudate_pixels, fovea, disc_diameter)
    return float(distances.min()) if len(distances) else float("inf")


def dme_grade(exudate_pixels: np.ndarray, fovea: Sequence[float], disc_diameter: float) -> DMEGrade:
    """IDRiD DME grade from exudate pixel centres (N, 2) ``(x, y)``, the fovea and the DD in px."""
    distance = nearest_exudate_distance_dd(exudate_pixels, fovea, disc_diameter)
    if distance == float("inf"):
        return DMEGrade.NONE
    if distance <= MACULA_RADIUS_DD:
        return DMEGrade.WITHIN_MACULA
    return DMEGrade.OUTSIDE_MACULA


def dme_grade_from_mask(exudate_mask: np.ndarray, fovea: Sequence[float], disc_diameter: float) -> DMEGrade:
    """IDRiD DME grade from a boolean exudate mask (H, W)."""
    rows, cols = np.nonzero(exudate_mask)
    return dme_grade(np.stack([cols, rows], axis=1), fovea, disc_diameter)


def region_map(
    shape: tuple[int, int],
    disc_center: Sequence[float],
    disc_diameter: float,
    fovea: Sequence[float],
    fov_mask: np.ndarray | None = None,
) -> np.ndarray:
    """(H, W) uint8 map of :class:`Region` values for an image of ``shape`` (H, W) px.

    ``disc_center`` and ``fovea`` are ``(x, y)`` px, ``disc_diameter`` px; ``fov_mask`` (H, W) bool
    marks the field of view (None: the whole image). The disc wins where it overlaps the macula.
    """
    if disc_diameter <= 0:
        raise ValueError(f"disc_diameter must be positive, got {disc_diameter}")
    height, width = shape
    if fov_mask is not None and fov_mask.shape != (height, width):
        raise ValueError(f"fov_mask has shape {fov_mask.shape}, expected {(height, width)}")
    rows, cols = np.ogrid[0:height, 0:width]
    from_disc_dd = np.hypot(cols - disc_center[0], rows - disc_center[1]) / disc_diameter
    from_fovea_dd = np.hypot(cols - fovea[0], rows - fovea[1]) / disc_diameter
    regions = np.full((height, width), Region.REST, dtype=np.uint8)
    regions[from_fovea_dd <= MACULA_RADIUS_DD] = Region.MACULA
    regions[from_disc_dd <= 0.5] = Region.OPTIC_DISC
    if fov_mask is not None:
        regions[~fov_mask.astype(bool)] = 0
    return regions
