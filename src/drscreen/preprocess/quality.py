"""Image quality gate: is a photo a gradable fundus image, and if not, why.

:func:`assess_quality` measures a few properties inside the field of view, on the FOV crop
resampled to :data:`ASSESSMENT_SIZE` px so that the numbers do not depend on the camera's
resolution, and compares them with :class:`QualityThresholds`. The default thresholds and the
values measured on real images that justify them are in ``docs/preprocessing.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np

from drscreen.preprocess.fov import FieldOfView
from drscreen.preprocess.geometry import CropGeometry

#: Side (px) of the FOV crop on which brightness, exposure and sharpness are measured.
ASSESSMENT_SIZE = 512
#: Fraction of the FOV radius trimmed at its edge before measuring (the rim is dark and blurred).
EDGE_TRIM = 0.1
#: A channel value at or above this counts as saturated (for ``overexposed_fraction``).
SATURATION_LEVEL = 250


class QualityIssue(StrEnum):
    """Reason codes of the quality gate (the string values are stable: reports store them)."""

    NOT_FUNDUS = "not_fundus"
    TOO_DARK = "too_dark"
    OVEREXPOSED = "overexposed"
    TOO_BLURRY = "too_blurry"
    FOV_TOO_SMALL = "fov_too_small"


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the quality gate. Units: 0-255 intensities, fractions in 0-1, px in the original.

    Attributes:
        min_fov_confidence: NOT_FUNDUS when no circular field of view with a dark surround is
            found, or its outline is confirmed by edges on less than this fraction of its length.
        min_brightness: TOO_DARK when the median, over the FOV, of the brightest channel is lower.
        max_overexposed_fraction: OVEREXPOSED when more of the FOV than this is washed out (at
            least two channels >= :data:`SATURATION_LEVEL`).
        min_sharpness: TOO_BLURRY when the fine-detail contrast of the green channel is lower
            (95th percentile of the absolute difference of Gaussians, sigma 1 and 4 px at
            ``ASSESSMENT_SIZE``, of the log green channel; vessels dominate it).
        min_fov_diameter_px: FOV_TOO_SMALL when the disc is narrower than this in the original.
        min_fov_area_fraction: FOV_TOO_SMALL when the disc covers less of the image than this.
    """

    min_fov_confidence: float = 0.4
    min_brightness: float = 40.0
    max_overexposed_fraction: float = 0.10
    min_sharpness: float = 0.03
    min_fov_diameter_px: float = 150.0
    min_fov_area_fraction: float = 0.15


DEFAULT_THRESHOLDS = QualityThresholds()


@dataclass(frozen=True)
class QualityReport:
    """Outcome of the quality gate.

    Attributes:
        usable: True when no issue was found.
        reasons: the issues found, in :class:`QualityIssue` order.
        measurements: the measured values by name (see :func:`measure_quality`).
    """

    usable: bool
    reasons: tuple[QualityIssue, ...]
    measurements: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-serialisable form."""
        reasons = [reason.value for reason in self.reasons]
        return {"usable": self.usable, "reasons": reasons, "measurements": dict(self.measurements)}


def measure_quality(image: np.ndarray, fov: FieldOfView) -> dict[str, float]:
    """Quality measurements of ``image`` (H, W, 3) uint8 RGB inside ``fov``.

    Keys: ``fov_found`` (0/1), ``fov_confidence``, ``fov_diameter_px``, ``fov_area_fraction``,
    ``brightness`` (0-255), ``overexposed_fraction`` (0-1), ``sharpness`` (dimensionless).
    """
    geometry = CropGeometry.around_fov(fov, ASSESSMENT_SIZE)
    crop = geometry.apply(image, "area")
    mask = geometry.apply(fov.mask, "linear")
    trim = max(1, round(EDGE_TRIM * fov.radius * geometry.scale))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * trim + 1, 2 * trim + 1))
    inner = cv2.erode(mask.astype(np.uint8), kernel).astype(bool)
    measurements = {
        "fov_found": float(fov.found),
        "fov_confidence": round(float(fov.confidence), 4),
        "fov_diameter_px": round(2.0 * fov.radius, 1),
        "fov_area_fraction": round(fov.area_fraction, 4),
    }
    if inner.sum() < 100:
        return {**measurements, "brightness": 0.0, "overexposed_fraction": 0.0, "sharpness": 0.0}
    pixels = crop[inner]
    saturated = (pixels >= SATURATION_LEVEL).sum(axis=1) >= 2
    green = np.log1p(crop[..., 1].astype(np.float32))
    detail = cv2.GaussianBlur(green, (0, 0), 1.0) - cv2.GaussianBlur(green, (0, 0), 4.0)
    return {
        **measurements,
        "brightness": float(np.median(pixels.max(axis=1))),
        "overexposed_fraction": round(float(saturated.mean()), 4),
        "sharpness": round(float(np.percentile(np.abs(detail[inner]), 95)), 4),
    }


def assess_quality(
    image: np.ndarray, fov: FieldOfView, thresholds: QualityThresholds = DEFAULT_THRESHOLDS
) -> QualityReport:
    """Quality gate for ``image`` (H, W, 3) uint8 RGB with its detected ``fov``."""
    m = measure_quality(image, fov)
    found = fov.found and m["fov_confidence"] >= thresholds.min_fov_confidence
    too_small = (
        m["fov_diameter_px"] < thresholds.min_fov_diameter_px
        or m["fov_area_fraction"] < thresholds.min_fov_area_fraction
    )
    checks = {
        QualityIssue.NOT_FUNDUS: not found,
        QualityIssue.TOO_DARK: m["brightness"] < thresholds.min_brightness,
        QualityIssue.OVEREXPOSED: m["overexposed_fraction"] > thresholds.max_overexposed_fraction,
        QualityIssue.TOO_BLURRY: m["sharpness"] < thresholds.min_sharpness,
        QualityIssue.FOV_TOO_SMALL: found and too_small,
    }
    reasons = tuple(issue for issue, failed in checks.items() if failed)
    return QualityReport(usable=not reasons, reasons=reasons, measurements=m)
