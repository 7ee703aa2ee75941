"""Fundus preprocessing: field of view, crop geometry, enhancement, quality gate, normalisation.

Everything that turns a photo into a network input lives here, and :class:`Preprocessor` is the
one path that training, evaluation, the CLI and the server all use.
"""

from drscreen.preprocess.enhance import ben_graham, ben_graham_normalised, clahe
from drscreen.preprocess.fov import ClippedSides, Ellipse, FieldOfView, detect_fov, whole_image_fov
from drscreen.preprocess.geometry import CropGeometry, Interpolation
from drscreen.preprocess.normalization import HALF, IMAGENET, NORMALIZATIONS, Normalization
from drscreen.preprocess.pipeline import ENHANCEMENTS, PreparedImage, PreprocessConfig, Preprocessor
from drscreen.preprocess.quality import (
    DEFAULT_THRESHOLDS,
    QualityIssue,
    QualityReport,
    QualityThresholds,
    assess_quality,
    measure_quality,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ENHANCEMENTS",
    "HALF",
    "IMAGENET",
    "NORMALIZATIONS",
    "ClippedSides",
    "CropGeometry",
    "Ellipse",
    "FieldOfView",
    "Interpolation",
    "Normalization",
    "PreparedImage",
    "PreprocessConfig",
    "Preprocessor",
    "QualityIssue",
    "QualityReport",
    "QualityThresholds",
    "assess_quality",
    "ben_graham",
    "ben_graham_normalised",
    "clahe",
    "detect_fov",
    "measure_quality",
    "whole_image_fov",
]
