"""Image quality gate: is a photo a gradable colour fundus image, and if not, why.

:func:`assess_quality` measures the image as it arrives (before any enhancement), on the FOV crop
resampled to :data:`ASSESSMENT_SIZE` px so that the numbers do not depend on the camera's
resolution, and compares the measurements with :class:`QualityThresholds`. It answers two
questions in turn:

1. Is it a colour fundus image at all? ``blank`` (one uniform colour), ``noise`` (no spatial
   structure), ``greyscale`` (no colour: a red-free or converted photo, a scan, a document) and
   ``not_fundus``. A photograph must show a round field of view on a dark surround whose content
   looks like a retina: warm in colour, of one hue family, smooth apart from thin vessels, without
   the flat colour areas, outlines and textures of scenes, screenshots and documents. An image
   without a dark surround is accepted only as a Ben Graham-filtered derivative (a retina on an
   even mid-grey level, as APTOS-224 is distributed). When one of these fires it is the only
   reason: the photographic checks below would measure nothing meaningful.
2. Is the fundus photograph gradable? ``too_dark``, ``overexposed``, ``channel_saturated``,
   ``too_blurry``, ``fov_too_small`` (any number of them).

The default thresholds and the values measured on real and generated images that justify them
are in ``docs/preprocessing.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np

from drscreen.preprocess.fov import FieldOfView
from drscreen.preprocess.geometry import CropGeometry
from drscreen.preprocess.resample import crop_resized

#: Side (px) of the FOV crop on which brightness, exposure and sharpness are measured.
ASSESSMENT_SIZE = 512
#: Side (px) of the copy on which the content (is it a fundus?) is measured; smaller when the
#: FOV (or image) is smaller, so that a small photo is not judged on its upsampled outlines.
CONTENT_SIZE = 256
#: Smallest side (px) of that copy.
MIN_CONTENT_SIZE = 64
#: Fraction of the FOV radius trimmed at its edge before measuring (the rim is dark and blurred).
EDGE_TRIM = 0.1
#: Without a detected FOV, the region measured is the disc inscribed in the image, this fraction
#: of its radius (a derivative cropped to the fundus fills the frame; its rim is left out).
INSCRIBED_FRACTION = 0.85
#: A channel value at or above this counts as saturated (for ``overexposed_fraction``).
SATURATION_LEVEL = 250
#: Mid-grey level around which Ben Graham's filter (``4 I - 4 blur(I) + 128``) centres an image.
BEN_GRAHAM_LEVEL = 128.0


class QualityIssue(StrEnum):
    """Reason codes of the quality gate (the string values are stable: reports store them)."""

    BLANK = "blank"
    NOISE = "noise"
    GREYSCALE = "greyscale"
    NOT_FUNDUS = "not_fundus"
    TOO_DARK = "too_dark"
    OVEREXPOSED = "overexposed"
    CHANNEL_SATURATED = "channel_saturated"
    TOO_BLURRY = "too_blurry"
    FOV_TOO_SMALL = "fov_too_small"


#: Issues that say the image is not a colour fundus image; the first one found is the only reason.
CONTENT_ISSUES: tuple[QualityIssue, ...] = (
    QualityIssue.BLANK,
    QualityIssue.NOISE,
    QualityIssue.GREYSCALE,
    QualityIssue.NOT_FUNDUS,
)


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the quality gate. Units: 0-255 intensities, fractions in 0-1, px in the original.

    Attributes:
        min_fov_confidence: NOT_FUNDUS when the FOV outline is confirmed by edges on less than
            this fraction of its length.
        min_brightness: TOO_DARK when the median, over the FOV, of the brightest channel is lower.
        max_overexposed_fraction: OVEREXPOSED when more of the FOV than this is washed out (at
            least two channels >= :data:`SATURATION_LEVEL`).
        min_sharpness: TOO_BLURRY when the fine-detail contrast of the green channel is lower
            (95th percentile of the absolute difference of Gaussians, sigma 1 and 4 px at
            ``ASSESSMENT_SIZE``, of the log green channel; vessels dominate it).
        min_fov_diameter_px: FOV_TOO_SMALL when the disc is narrower than this in the original.
        min_fov_area_fraction: FOV_TOO_SMALL when the disc covers less of the image than this.
        min_contrast: BLANK when the largest per-channel standard deviation over the image is lower.
        min_structure: NOISE when less of the FOV's intensity variance than this survives a
            Gaussian blur of 2 px at ``CONTENT_SIZE`` (white noise keeps about 3 %) and the fine
            detail of the colour channels is unrelated (``max_noise_channel_correlation``) or the
            image is grey. Ben Graham-filtered derivatives keep as little as 4 %, but their fine
            detail is the same in R, G and B (it shows the retina, not sensor noise).
        max_noise_channel_correlation: see ``min_structure``; mean correlation between the
            channels' fine detail (each channel minus its 1 px Gaussian blur).
        min_chroma: GREYSCALE when the mean of max(R, G, B) - min(R, G, B) over the FOV is lower.
        min_warmth: NOT_FUNDUS when the median over the FOV of (R - B) / max(R, G, B) is lower
            (a retina is red-orange; sky, water and blue scenes are not).
        max_hue_spread: NOT_FUNDUS when the standard deviations of the red and blue chromaticities
            r = R / (R + G + B), b = B / (R + G + B) over the FOV add up to more (many hues).
        max_flat_colour_fraction: NOT_FUNDUS when the 8 most frequent exact colours cover more of
            the FOV (flat fills of screenshots, logos, documents).
        max_edge_fraction: NOT_FUNDUS when more of the FOV than this lies on a step edge (gradient
            above 10 % of the FOV's intensity range; outlines of objects, text, UI elements).
        max_texture: NOT_FUNDUS when the median gradient, relative to the FOV's intensity range,
            is higher (fur, grass, fabric: texture everywhere; a retina is smooth between vessels).
        max_grey_level_deviation: without a dark surround, NOT_FUNDUS unless the image's low-pass
            level stays within this of mid-grey 128 (95th percentile): only a Ben Graham-filtered
            derivative is accepted as a fundus without a field-of-view border.
        max_channel_clip_level: CHANNEL_SATURATED when some channel's 2nd percentile over the FOV
            reaches this level (the channel is clipped almost everywhere and holds no detail).
    """

    min_fov_confidence: float = 0.4
    min_brightness: float = 40.0
    max_overexposed_fraction: float = 0.10
    min_sharpness: float = 0.03
    min_fov_diameter_px: float = 150.0
    min_fov_area_fraction: float = 0.15
    min_contrast: float = 3.0
    min_structure: float = 0.15
    max_noise_channel_correlation: float = 0.5
    min_chroma: float = 1.5
    min_warmth: float = -0.15
    max_hue_spread: float = 0.40
    max_flat_colour_fraction: float = 0.30
    max_edge_fraction: float = 0.032
    max_texture: float = 0.033
    max_grey_level_deviation: float = 24.0
    max_channel_clip_level: float = 250.0


DEFAULT_THRESHOLDS = QualityThresholds()


@dataclass(frozen=True)
class QualityReport:
    """Outcome of the quality gate.

    Attributes:
        usable: True when no issue was found.
        reasons: the issues found, in :class:`QualityIssue` order; a content issue (BLANK, NOISE,
            GREYSCALE, NOT_FUNDUS) is always alone.
        measurements: the measured values by name (see :func:`measure_quality`).
    """

    usable: bool
    reasons: tuple[QualityIssue, ...]
    measurements: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-serialisable form."""
        reasons = [reason.value for reason in self.reasons]
        return {"usable": self.usable, "reasons": reasons, "measurements": dict(self.measurements)}


def _region(image: np.ndarray, fov: FieldOfView) -> tuple[np.ndarray, np.ndarray, int]:
    """(S, S, 3) uint8 crop at ``ASSESSMENT_SIZE``, (S, S) bool measured region, and the side
    (px) at which to measure content: the FOV's (or image's) own size, within
    [:data:`MIN_CONTENT_SIZE`, :data:`CONTENT_SIZE`].

    With a FOV: the square around it, region = the FOV without its outer :data:`EDGE_TRIM`.
    Without: the whole image stretched to the square (as a fundus-filling derivative is), region =
    the inscribed disc trimmed to :data:`INSCRIBED_FRACTION` of its radius.
    """
    size = ASSESSMENT_SIZE
    if fov.found:
        geometry = CropGeometry.around_fov(fov, size)
        crop = crop_resized(geometry, image, "area")
        mask = crop_resized(geometry, fov.mask, "linear")
        trim = max(1, round(EDGE_TRIM * fov.radius * geometry.scale))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * trim + 1, 2 * trim + 1))
        inner = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        return crop, inner.astype(bool), _content_size(2.0 * fov.radius)
    crop = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:size, 0:size]
    centre = (size - 1) / 2
    inner = np.hypot(xx - centre, yy - centre) <= INSCRIBED_FRACTION * size / 2
    return crop, inner, _content_size(min(image.shape[:2]))


def _content_size(extent_px: float) -> int:
    return int(np.clip(round(extent_px), MIN_CONTENT_SIZE, CONTENT_SIZE))


def _whole_image_contrast(image: np.ndarray) -> float:
    """Largest per-channel standard deviation (0-255) of ``image`` on a copy of <= CONTENT_SIZE px."""
    height, width = image.shape[:2]
    step = max(1, max(height, width) // CONTENT_SIZE)
    return float(image[::step, ::step].reshape(-1, 3).std(axis=0).max())


def _content_measurements(crop: np.ndarray, inner: np.ndarray, size: int) -> dict[str, float]:
    """Content measurements of the (S, S, 3) uint8 ``crop`` over the (S, S) bool ``inner`` region,
    on a copy resized to ``size`` px (keys as in :func:`measure_quality`)."""
    small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    region = cv2.resize(inner.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
    # Per-channel planes: whole-number values, so sums and means are exact in any order.
    planes = cv2.split(small)
    red, green, blue = (plane[region] for plane in planes)
    brightest, darkest = np.maximum(np.maximum(red, green), blue), np.minimum(np.minimum(red, green), blue)
    total = red + green + blue + 1.0
    luminance = (planes[0] + planes[1] + planes[2]) / np.float32(3)
    values = luminance[region]
    blurred = cv2.GaussianBlur(luminance, (0, 0), 2.0)
    structure = float(blurred[region].var() / max(float(values.var()), 1e-6))
    intensity_range = float(np.percentile(values, 99) - np.percentile(values, 1)) + 1.0
    smooth = cv2.GaussianBlur(luminance, (0, 0), 1.5)
    gradient = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))[region] / 8.0
    packed = small.astype(np.uint8)[region].astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
    counts = np.unique(packed, return_counts=True)[1]
    low_pass = cv2.GaussianBlur(luminance, (0, 0), 0.08 * size)[region]
    fine = (small - cv2.GaussianBlur(small, (0, 0), 1.0))[region]
    with np.errstate(divide="ignore", invalid="ignore"):  # a constant channel has no correlation
        correlation = np.nan_to_num(np.corrcoef(fine.T), nan=1.0)
    return {
        "structure": round(structure, 4),
        "channel_correlation": round(float(correlation[np.triu_indices(3, 1)].mean()), 4),
        "chroma": round(float(np.mean(brightest - darkest)), 2),
        "warmth": round(float(np.median((red - blue) / (brightest + 1.0))), 4),
        "hue_spread": round(float(np.std(red / total) + np.std(blue / total)), 4),
        "flat_colour_fraction": round(float(np.sort(counts)[::-1][:8].sum() / counts.sum()), 4),
        "edge_fraction": round(float(np.mean(gradient > 0.1 * intensity_range)), 4),
        "texture": round(float(np.median(gradient) / intensity_range), 4),
        "grey_level_deviation": round(float(np.percentile(np.abs(low_pass - BEN_GRAHAM_LEVEL), 95)), 2),
    }


def measure_quality(image: np.ndarray, fov: FieldOfView) -> dict[str, float]:
    """Quality measurements of ``image`` (H, W, 3) uint8 RGB inside ``fov``.

    Keys: ``fov_found`` (0/1), ``fov_confidence``, ``fov_diameter_px``, ``fov_area_fraction``,
    ``contrast`` (0-255), ``brightness`` (0-255), ``overexposed_fraction`` (0-1),
    ``channel_clip_level`` (0-255), ``sharpness`` (dimensionless) and the content measurements
    ``structure``, ``channel_correlation``, ``chroma``, ``warmth``, ``hue_spread``, ``flat_colour_fraction``,
    ``edge_fraction``, ``texture``, ``grey_level_deviation`` (see :class:`QualityThresholds`).
    """
    crop, inner, content_size = _region(image, fov)
    measurements = {
        "fov_found": float(fov.found),
        "fov_confidence": round(float(fov.confidence), 4),
        "fov_diameter_px": round(2.0 * fov.radius, 1),
        "fov_area_fraction": round(fov.area_fraction, 4),
        "contrast": round(_whole_image_contrast(image), 2),
    }
    if inner.sum() < 100:
        empty = ("brightness", "overexposed_fraction", "channel_clip_level", "sharpness", "structure", "chroma")
        return {**measurements, **dict.fromkeys(empty, 0.0)}
    channels = cv2.split(crop)
    brightest = cv2.max(cv2.max(channels[0], channels[1]), channels[2])
    saturated = sum((channel >= SATURATION_LEVEL).view(np.uint8) for channel in channels) >= 2
    green = np.log1p(channels[1].astype(np.float32))
    detail = cv2.GaussianBlur(green, (0, 0), 1.0) - cv2.GaussianBlur(green, (0, 0), 4.0)
    return {
        **measurements,
        "brightness": _percentile_uint8(brightest[inner], 50),
        "overexposed_fraction": round(float(saturated[inner].mean()), 4),
        "channel_clip_level": max(_percentile_uint8(channel[inner], 2) for channel in channels),
        "sharpness": round(float(np.percentile(np.abs(detail[inner]), 95)), 4),
        **_content_measurements(crop, inner, content_size),
    }


def _percentile_uint8(values: np.ndarray, q: float) -> float:
    """``float(np.percentile(values, q))`` of (N,) uint8 ``values``, N >= 1, from their histogram
    (the same number: numpy's linear interpolation between the two order statistics)."""
    counts = np.cumsum(np.bincount(values, minlength=256))
    n = int(counts[-1])
    position = (n - 1) * np.true_divide(q, 100)
    low = int(np.floor(position))
    gamma = float(position - low)
    a, b = (float(v) for v in np.searchsorted(counts, [low + 1, min(low + 2, n)]))
    return b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma


def _content_issue(m: dict[str, float], fov: FieldOfView, t: QualityThresholds) -> QualityIssue | None:
    """The first content issue (see :data:`CONTENT_ISSUES`) of the measurements ``m``, or None."""
    if m["contrast"] < t.min_contrast:
        return QualityIssue.BLANK
    if "warmth" not in m:  # no measurable region: nothing that could be a retina
        return QualityIssue.NOT_FUNDUS
    unrelated_channels = m["channel_correlation"] < t.max_noise_channel_correlation or m["chroma"] < t.min_chroma
    if m["structure"] < t.min_structure and unrelated_channels:
        return QualityIssue.NOISE
    if m["chroma"] < t.min_chroma:
        return QualityIssue.GREYSCALE
    looks_like_retina = m["warmth"] >= t.min_warmth and m["hue_spread"] <= t.max_hue_spread
    if fov.found:
        # Clipped plateaus of a washed-out photo, and the few grey levels of a nearly black one,
        # make flat colours and sharp outlines of their own: such a photo is judged by colour
        # only, and rejected as OVEREXPOSED or TOO_DARK.
        badly_exposed = m["overexposed_fraction"] > t.max_overexposed_fraction or m["brightness"] < t.min_brightness
        scene_like = not badly_exposed and (
            m["edge_fraction"] > t.max_edge_fraction
            or m["texture"] > t.max_texture
            or m["flat_colour_fraction"] > t.max_flat_colour_fraction
        )
        fundus = m["fov_confidence"] >= t.min_fov_confidence and looks_like_retina and not scene_like
    else:
        fundus = (
            looks_like_retina
            and m["flat_colour_fraction"] <= t.max_flat_colour_fraction
            and m["grey_level_deviation"] <= t.max_grey_level_deviation
        )
    return None if fundus else QualityIssue.NOT_FUNDUS


def assess_quality(
    image: np.ndarray, fov: FieldOfView, thresholds: QualityThresholds = DEFAULT_THRESHOLDS
) -> QualityReport:
    """Quality gate for ``image`` (H, W, 3) uint8 RGB with its detected ``fov``."""
    m = measure_quality(image, fov)
    content = _content_issue(m, fov, thresholds)
    if content is not None:
        return QualityReport(usable=False, reasons=(content,), measurements=m)
    too_small = fov.found and (
        m["fov_diameter_px"] < thresholds.min_fov_diameter_px
        or m["fov_area_fraction"] < thresholds.min_fov_area_fraction
    )
    checks = {
        QualityIssue.TOO_DARK: m["brightness"] < thresholds.min_brightness,
        QualityIssue.OVEREXPOSED: m["overexposed_fraction"] > thresholds.max_overexposed_fraction,
        QualityIssue.CHANNEL_SATURATED: m["channel_clip_level"] >= thresholds.max_channel_clip_level,
        QualityIssue.TOO_BLURRY: m["sharpness"] < thresholds.min_sharpness,
        QualityIssue.FOV_TOO_SMALL: too_small,
    }
    reasons = tuple(issue for issue, failed in checks.items() if failed)
    return QualityReport(usable=not reasons, reasons=reasons, measurements=m)
