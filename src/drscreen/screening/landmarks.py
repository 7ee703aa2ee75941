"""Optic disc, fovea and the eye they imply, located on a prepared fundus image.

Inputs are in the network-crop geometry of a :class:`~drscreen.preprocess.PreparedImage`: its
``display`` (what the network saw, possibly Ben-Graham filtered), its ``fov_mask`` and the model's
optic-disc probability map. Points are ``(x, y)`` in crop pixels (pixel-centre convention of
:mod:`drscreen.preprocess.geometry`); :meth:`Landmarks.to_original` maps them onto the photograph.

Method (no learning beyond the model's disc map):

* Optic disc: the largest confident blob of the model's map (``disc_source = "model"``); when the
  map is missing, empty or implausible, the brightest high-contrast blob in the field of view
  (``"image"``), whose diameter is then the anatomical prior :data:`DISC_DIAMETER_PRIOR`.
* Fovea: the darkest, most vessel-free spot :data:`FOVEA_DISTANCE_DD` disc diameters from the
  disc, within :data:`FOVEA_MAX_ANGLE_DEG` of the horizontal line through the disc, on either side.
  Its confidence says how clearly that spot stands out from its surroundings and whether it lies
  inside the field of view.
* Laterality: in a photograph of a right eye the disc lies to the right of the fovea in the image
  (nasal side), of a left eye to the left. The side is chosen by comparing the best fovea
  candidates on both sides, helped by where the disc sits in the field (off-centre towards the
  nasal side in macula-centred photographs).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any, Literal

import cv2
import numpy as np

from drscreen.preprocess.geometry import CropGeometry

Laterality = Literal["R", "L"]
DiscSource = Literal["model", "image"]

#: Disc diameter as a fraction of the field-of-view radius (synthetic eyes: 0.24-0.31; IDRiD
#: optic-disc masks: about 0.3). The model's disc blob can only enlarge it: on real photographs the
#: model under-segments the disc (median 0.64 of the mask's diameter on IDRiD at probability 0.5).
DISC_DIAMETER_PRIOR = 0.28
#: The model's disc blob: connected pixels at or above this probability ...
DISC_BLOB_THRESHOLD = 0.25
#: ... whose peak probability reaches this value.
DISC_MIN_PEAK = 0.5
#: Plausible equivalent diameter of the model's disc blob, as fractions of the FOV radius.
DISC_DIAMETER_RANGE = (0.08, 0.5)
#: Fovea search band: distance from the disc centre, disc diameters.
FOVEA_DISTANCE_DD = (1.9, 3.1)
#: Fovea search band: largest angle between the disc-fovea line and the image horizontal, degrees.
FOVEA_MAX_ANGLE_DEG = 25.0
#: The fovea candidate's centre must lie this many disc diameters inside the field of view.
FOVEA_FOV_MARGIN_DD = 0.5
#: Laterality is reported only when its confidence reaches this value.
LATERALITY_MIN_CONFIDENCE = 0.3

#: Image disc finder: z-score of the blob score that maps to confidence 0 and to confidence 1 ...
_IMAGE_DISC_Z_RANGE = (2.0, 6.0)
#: ... times its margin (z units) over the best blob more than 1.5 disc diameters away, mapped
#: from 0 to 1 over this range: two similar blobs (a disc and a large exudate) leave it unsure.
_IMAGE_DISC_MARGIN = 3.0
#: Fovea: contrast of the fovea score against its ring (z units) mapping to confidence 0 and 1.
_FOVEA_CONTRAST_RANGE = (1.5, 3.5)
#: Laterality: side evidence (fovea score difference plus disc-position term) mapping to 1.
_SIDE_EVIDENCE_SCALE = 1.5
#: Weight of the disc's horizontal offset from the FOV centre (per FOV radius) in the side evidence.
_DISC_OFFSET_WEIGHT = 2.0


@dataclass(frozen=True)
class Landmarks:
    """Optic disc, fovea and laterality of one image.

    Attributes:
        disc_center: (x, y) of the optic-disc centre, px.
        disc_diameter: disc diameter (DD), px: the unit of clinical distances.
        disc_confidence: in [0, 1].
        disc_source: ``"model"`` (the model's disc map) or ``"image"`` (image-based fallback).
        fovea_center: (x, y) of the fovea, px (the best candidate, even when not confident).
        fovea_confidence: in [0, 1]; low when no dark, vessel-free spot stands out where the
            fovea should be, or when that place is outside the field of view.
        laterality: ``"R"`` (disc right of the fovea in the image), ``"L"``, or None when the disc
            or the fovea is not confidently found.
        laterality_confidence: in [0, 1].
    """

    disc_center: tuple[float, float]
    disc_diameter: float
    disc_confidence: float
    disc_source: DiscSource
    fovea_center: tuple[float, float]
    fovea_confidence: float
    laterality: Laterality | None
    laterality_confidence: float

    @property
    def disc_fovea_distance_dd(self) -> float:
        """Distance between disc centre and fovea, disc diameters."""
        return math.dist(self.disc_center, self.fovea_center) / self.disc_diameter

    def to_original(self, geometry: CropGeometry) -> Landmarks:
        """The same landmarks in the original photograph's pixels (``geometry`` made the crop)."""
        disc, fovea = geometry.points_to_original(np.array([self.disc_center, self.fovea_center]))
        return replace(
            self,
            disc_center=(float(disc[0]), float(disc[1])),
            fovea_center=(float(fovea[0]), float(fovea[1])),
            disc_diameter=self.disc_diameter / geometry.scale,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form."""
        return {
            "disc_center": list(self.disc_center),
            "disc_diameter": self.disc_diameter,
            "disc_confidence": self.disc_confidence,
            "disc_source": self.disc_source,
            "fovea_center": list(self.fovea_center),
            "fovea_confidence": self.fovea_confidence,
            "laterality": self.laterality,
            "laterality_confidence": self.laterality_confidence,
        }


@dataclass(frozen=True)
class _Disc:
    center: tuple[float, float]
    diameter: float
    confidence: float
    source: DiscSource


@dataclass(frozen=True)
class _FoveaCandidate:
    center: tuple[float, float]
    score: float
    confidence: float


def locate_landmarks(
    image: np.ndarray, fov_mask: np.ndarray, disc_probability: np.ndarray | None = None
) -> Landmarks:
    """Find the optic disc, the fovea and the laterality on a prepared fundus image.

    Args:
        image: (S, S, 3) uint8 RGB, the network's view before normalisation (``PreparedImage.display``).
        fov_mask: (S, S) bool field of view (``PreparedImage.fov_mask``); an empty mask means the
            whole image.
        disc_probability: (S, S) float in [0, 1], the model's optic-disc map, or None.

    Returns:
        :class:`Landmarks` in crop pixels.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (S, S, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    if fov_mask.shape != image.shape[:2]:
        raise ValueError(f"fov_mask is {fov_mask.shape}, image is {image.shape[:2]}")
    if disc_probability is not None and disc_probability.shape != image.shape[:2]:
        raise ValueError(f"disc_probability is {disc_probability.shape}, image is {image.shape[:2]}")
    fov = fov_mask.astype(bool) if fov_mask.any() else np.ones(image.shape[:2], bool)
    fov_center, fov_radius = _fov_circle(fov)
    fov = _textured_part(image, fov, fov_radius)
    gray = _gray_filled(image, fov)
    disc = _disc_from_model(disc_probability, fov_radius) if disc_probability is not None else None
    if disc is None:
        disc = _disc_from_image(gray, fov, fov_radius)
    score = _fovea_score(gray, fov, disc.diameter)
    left, right = (_fovea_candidate(score, fov, disc, side) for side in (-1, 1))
    # Evidence for a right eye: a fovea candidate left of the disc beats the one on its right, and
    # the disc sits right of the FOV centre.
    offset = float(np.clip((disc.center[0] - fov_center[0]) / fov_radius, -0.5, 0.5))
    evidence = _score_difference(left, right) + _DISC_OFFSET_WEIGHT * offset
    fovea = left if evidence >= 0 else right
    if fovea is None:
        fovea = _FoveaCandidate(center=disc.center, score=-math.inf, confidence=0.0)
    side_confidence = math.tanh(abs(evidence) / _SIDE_EVIDENCE_SCALE)
    laterality_confidence = min(disc.confidence, fovea.confidence, side_confidence)
    laterality: Laterality | None = None
    if laterality_confidence >= LATERALITY_MIN_CONFIDENCE:
        laterality = "R" if evidence >= 0 else "L"
    return Landmarks(
        disc_center=disc.center,
        disc_diameter=disc.diameter,
        disc_confidence=disc.confidence,
        disc_source=disc.source,
        fovea_center=fovea.center,
        fovea_confidence=fovea.confidence,
        laterality=laterality,
        laterality_confidence=float(laterality_confidence),
    )


def _fov_circle(fov: np.ndarray) -> tuple[tuple[float, float], float]:
    """Centre (x, y) and radius (px) of the field of view: half its larger extent, so that a field
    clipped at the top and bottom (or the sides) keeps its true radius."""
    rows, cols = np.nonzero(fov)
    width, height = cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
    center = (float(cols.min() + cols.max()) / 2, float(rows.min() + rows.max()) / 2)
    return center, float(max(width, height)) / 2


def _textured_part(image: np.ndarray, fov: np.ndarray, fov_radius: float) -> np.ndarray:
    """The FOV without its large constant areas (the band that Ben Graham's filter sets to grey at
    the FOV edge, saturated patches), which would look like a perfect vessel-free fovea; the whole
    FOV when most of it is constant."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    square = np.ones((3, 3), np.uint8)
    constant = (cv2.dilate(gray, square) == cv2.erode(gray, square)).astype(np.uint8)
    side = max(3, int(round(0.05 * fov_radius)) | 1)
    large = cv2.morphologyEx(constant, cv2.MORPH_OPEN, np.ones((side, side), np.uint8)).astype(bool)
    textured = fov & ~large
    return textured if textured.sum() >= 0.5 * fov.sum() else fov


def _gray_filled(image: np.ndarray, fov: np.ndarray) -> np.ndarray:
    """(S, S) float32 grey levels with everything outside the FOV set to the FOV's median, so that
    filters do not respond to the FOV edge."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gray[~fov] = float(np.median(gray[fov]))
    return gray


def _robust_z(values: np.ndarray, fov: np.ndarray) -> np.ndarray:
    """``values`` standardised by the median and MAD of its FOV pixels."""
    inside = values[fov]
    median = float(np.median(inside))
    spread = 1.4826 * float(np.median(np.abs(inside - median)))
    return (values - median) / max(spread, 1e-6)


def _blur(values: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(values, (0, 0), max(sigma, 0.5))


def _disc_from_model(probability: np.ndarray, fov_radius: float) -> _Disc | None:
    """The disc as the model's most confident blob, or None when there is no plausible one."""
    probability = np.nan_to_num(probability.astype(np.float32), nan=0.0).clip(0.0, 1.0)
    above = (probability >= DISC_BLOB_THRESHOLD).astype(np.uint8)
    count, labels = cv2.connectedComponents(above, connectivity=8)
    if count < 2:
        return None
    mass = np.bincount(labels.ravel(), weights=probability.ravel(), minlength=count)
    mass[0] = 0.0
    rows, cols = np.nonzero(labels == int(np.argmax(mass)))
    weights = probability[rows, cols]
    blob_diameter = 2.0 * math.sqrt(rows.size / math.pi)
    low, high = (fraction * fov_radius for fraction in DISC_DIAMETER_RANGE)
    peak = float(weights.max())
    if peak < DISC_MIN_PEAK or not low <= blob_diameter <= high:
        return None
    center = (float(np.average(cols, weights=weights)), float(np.average(rows, weights=weights)))
    diameter = max(blob_diameter, DISC_DIAMETER_PRIOR * fov_radius)
    return _Disc(center=center, diameter=diameter, confidence=peak, source="model")


def _disc_from_image(gray: np.ndarray, fov: np.ndarray, fov_radius: float) -> _Disc:
    """The disc as the brightest, most textured blob of disc size in the FOV."""
    diameter = DISC_DIAMETER_PRIOR * fov_radius
    fine = gray - _blur(gray, 0.03 * fov_radius)
    brightness = _robust_z(_blur(gray, 0.3 * diameter), fov)
    texture = _robust_z(_blur(np.abs(fine), 0.3 * diameter), fov)
    score = _blur(brightness + texture, 0.2 * diameter)
    score[~fov] = -np.inf
    row, col = np.unravel_index(int(np.argmax(score)), score.shape)
    z = _robust_z(score, fov)
    ys, xs = np.indices(score.shape)
    elsewhere = fov & (np.hypot(xs - col, ys - row) > 1.5 * diameter)
    margin = float(z[row, col] - z[elsewhere].max()) if elsewhere.any() else _IMAGE_DISC_MARGIN
    low, high = _IMAGE_DISC_Z_RANGE
    prominence = np.clip((float(z[row, col]) - low) / (high - low), 0.0, 1.0)
    confidence = float(prominence * np.clip(margin / _IMAGE_DISC_MARGIN, 0.0, 1.0))
    return _Disc(center=(float(col), float(row)), diameter=diameter, confidence=confidence, source="image")


def _fovea_score(gray: np.ndarray, fov: np.ndarray, diameter: float) -> np.ndarray:
    """(S, S) float32, high where the retina is dark and free of vessels (z units)."""
    kernel_side = max(3, int(round(0.35 * diameter)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_side, kernel_side))
    vessels = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel)
    vessel_density = _robust_z(_blur(vessels, 0.35 * diameter), fov)
    # Darkness relative to the surroundings two disc diameters wide, which removes vignetting.
    darkness = -_robust_z(_blur(gray, 0.3 * diameter) - _blur(gray, 1.5 * diameter), fov)
    return (darkness - vessel_density).astype(np.float32)


def _fovea_candidate(score: np.ndarray, fov: np.ndarray, disc: _Disc, side: int) -> _FoveaCandidate | None:
    """The best fovea candidate on one ``side`` of the disc (-1: left, +1: right in the image) by
    the (S, S) ``score`` of :func:`_fovea_score`, or None when the search band there lies outside
    the field of view."""
    diameter = disc.diameter
    ys, xs = np.indices(score.shape, dtype=np.float32)
    dx, dy = xs - disc.center[0], ys - disc.center[1]
    distance = np.hypot(dx, dy) / diameter
    angle = np.degrees(np.arctan2(np.abs(dy), np.abs(dx)))
    # Padded with background so that the image border counts as the edge of the field.
    padded = np.pad(fov.astype(np.uint8), 1)
    depth = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    band = (
        (np.sign(dx) == side)
        & (distance >= FOVEA_DISTANCE_DD[0])
        & (distance <= FOVEA_DISTANCE_DD[1])
        & (angle <= FOVEA_MAX_ANGLE_DEG)
        & (depth >= FOVEA_FOV_MARGIN_DD * diameter)
    )
    if not band.any():
        return None
    masked = np.where(band, score, -np.inf)
    row, col = np.unravel_index(int(np.argmax(masked)), masked.shape)
    peak = float(score[row, col])
    around = np.hypot(xs - col, ys - row) / diameter
    ring = (around >= 0.9) & (around <= 1.6) & fov
    contrast = peak - float(np.median(score[ring])) if ring.any() else 0.0
    coverage = float(fov[around <= 1.0].mean())
    low, high = _FOVEA_CONTRAST_RANGE
    confidence = float(np.clip((contrast - low) / (high - low), 0.0, 1.0)) * coverage
    return _FoveaCandidate(center=(float(col), float(row)), score=peak, confidence=confidence)


def _score_difference(left: _FoveaCandidate | None, right: _FoveaCandidate | None) -> float:
    """Fovea-score margin of the left candidate over the right one (bounded when one is missing)."""
    if left is None and right is None:
        return 0.0
    if right is None:
        return 2.0 * _SIDE_EVIDENCE_SCALE
    if left is None:
        return -2.0 * _SIDE_EVIDENCE_SCALE
    return left.score - right.score


_LATERALITY_TOKENS: dict[str, Laterality] = {
    "left": "L",
    "lefteye": "L",
    "l": "L",
    "os": "L",
    "right": "R",
    "righteye": "R",
    "r": "R",
    "od": "R",
}
#: Words of a file name: runs of capitals not followed by a lower-case letter (``OD``, ``IDR``),
#: capitalised or lower-case words (``Left``, ``right``), and digit runs.
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def laterality_from_name(name: str) -> Laterality | None:
    """The eye named in a file name or path, or None when none (or both) are named.

    Recognises whole words only: ``left`` / ``right`` (any case, also ``LeftEye``), ``OD`` (right)
    / ``OS`` (left), and single ``L`` / ``R``, separated by ``_``, ``-``, spaces, dots, digits or
    a change of case: ``10_left.jpeg``, ``P01-R.png``, ``img_OD.tif``, ``patientRight.jpg``.
    ``OD`` inside a word (``ODIR``, ``good``) does not count.
    """
    stem = PurePath(name).name
    stem = stem[: stem.rfind(".")] if "." in stem else stem
    found = set()
    for chunk in re.split(r"[^A-Za-z0-9]+", stem):
        whole = _LATERALITY_TOKENS.get(chunk.lower()) if not chunk.isdigit() else None
        words = [whole] if whole else [_LATERALITY_TOKENS.get(word.lower()) for word in _WORD.findall(chunk)]
        found.update(eye for eye in words if eye)
    return found.pop() if len(found) == 1 else None
