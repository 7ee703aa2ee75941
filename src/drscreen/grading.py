"""Clinical scales used everywhere in drscreen: ICDR DR grades, IDRiD DME risk, lesion classes.

This is the one place that names grades, lesion classes and their display colours, states the
referable rule (on labels and on predicted probabilities, with its operating point) and reads a
grade from class probabilities. Everything else imports from here; the retinal geometry that
the rules use (quadrants, disc diameters, regions) is ``drscreen.retina``.

References: the International Clinical Diabetic Retinopathy (ICDR) severity scale; the IDRiD
challenge definition of the risk of diabetic macular edema (Porwal et al., 2018).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal

import numpy as np


class DRGrade(IntEnum):
    """ICDR diabetic-retinopathy severity, 0-4."""

    NONE = 0
    MILD = 1
    MODERATE = 2
    SEVERE = 3
    PROLIFERATIVE = 4

    @property
    def label(self) -> str:
        return DR_GRADE_NAMES[self]


class DMEGrade(IntEnum):
    """Risk of diabetic macular edema as IDRiD defines it, 0-2.

    0: no hard exudate; 1: hard exudates, none within one disc diameter of the fovea centre;
    2: at least one hard exudate within one disc diameter of the fovea centre.
    """

    NONE = 0
    OUTSIDE_MACULA = 1
    WITHIN_MACULA = 2

    @property
    def label(self) -> str:
        return DME_GRADE_NAMES[self]


DR_GRADE_NAMES: dict[int, str] = {
    0: "No DR",
    1: "Mild NPDR",
    2: "Moderate NPDR",
    3: "Severe NPDR",
    4: "Proliferative DR",
}
DME_GRADE_NAMES: dict[int, str] = {
    0: "No DME risk",
    1: "DME risk: exudates outside 1 DD of the fovea",
    2: "DME risk: exudates within 1 DD of the fovea",
}
NUM_DR_GRADES = len(DR_GRADE_NAMES)
NUM_DME_GRADES = len(DME_GRADE_NAMES)

#: DR grade from which a case is referable (moderate NPDR or worse).
REFERABLE_DR_MIN = int(DRGrade.MODERATE)
#: DME grade from which a case is referable (any exudate).
REFERABLE_DME_MIN = int(DMEGrade.OUTSIDE_MACULA)


@dataclass(frozen=True)
class LesionClass:
    """One segmentable structure: short code, full name, display colour (RGB, 0-255)."""

    code: str
    name: str
    color: tuple[int, int, int]
    is_lesion: bool = True


#: Every structure drscreen knows, in a fixed order. NV exists only in the synthetic generator.
LESION_CLASSES: tuple[LesionClass, ...] = (
    LesionClass("MA", "Microaneurysms", (255, 0, 0)),
    LesionClass("HE", "Haemorrhages", (0, 200, 0)),
    LesionClass("EX", "Hard exudates", (255, 255, 0)),
    LesionClass("SE", "Soft exudates", (0, 160, 255)),
    LesionClass("OD", "Optic disc", (255, 0, 255), is_lesion=False),
    LesionClass("NV", "Neovascularisation", (255, 128, 0)),
)
LESION_BY_CODE: dict[str, LesionClass] = {c.code: c for c in LESION_CLASSES}

#: The four lesion types the papers segment (IDRiD part A), in IDRiD's folder order.
SEGMENTATION_LESIONS: tuple[str, ...] = ("MA", "HE", "EX", "SE")
#: What drscreen's segmentation heads predict by default: the four lesions plus the optic disc.
SEGMENTATION_CLASSES: tuple[str, ...] = ("MA", "HE", "EX", "SE", "OD")
#: Red lesions and bright lesions, the two groups of the U²-Net paper's DT mode.
RED_LESIONS: tuple[str, ...] = ("MA", "HE")
BRIGHT_LESIONS: tuple[str, ...] = ("EX", "SE")


def lesion_color(code: str) -> tuple[int, int, int]:
    """Display colour (RGB 0-255) of a lesion class code such as ``"EX"``."""
    try:
        return LESION_BY_CODE[code].color
    except KeyError:
        raise KeyError(f"unknown lesion class {code!r}; known: {sorted(LESION_BY_CODE)}") from None


def validate_dr_grade(grade: int) -> int:
    """Return ``grade`` as int if it is a valid ICDR grade, else raise ``ValueError``."""
    g = int(grade)
    if g not in DR_GRADE_NAMES or g != grade:
        raise ValueError(f"DR grade must be an integer 0-4, got {grade!r}")
    return g


def validate_dme_grade(grade: int) -> int:
    """Return ``grade`` as int if it is a valid IDRiD DME grade, else raise ``ValueError``."""
    g = int(grade)
    if g not in DME_GRADE_NAMES or g != grade:
        raise ValueError(f"DME grade must be an integer 0-2, got {grade!r}")
    return g


def is_referable(dr_grade: int | None, dme_grade: int | None = None) -> bool:
    """Referable diabetic eye disease: DR >= 2 (moderate NPDR or worse) or DME >= 1.

    A missing grade (``None``) counts as not referable on that axis; both missing is an error.
    """
    if dr_grade is None and dme_grade is None:
        raise ValueError("is_referable needs at least one of dr_grade and dme_grade")
    dr_ref = dr_grade is not None and validate_dr_grade(dr_grade) >= REFERABLE_DR_MIN
    dme_ref = dme_grade is not None and validate_dme_grade(dme_grade) >= REFERABLE_DME_MIN
    return dr_ref or dme_ref


#: How a grade is read from (N, K) class probabilities: see ``decode_grades``.
GRADE_DECODINGS: tuple[str, ...] = ("argmax", "expected")


def decode_grades(probs: Any, decoding: str = "argmax") -> np.ndarray:
    """Predicted grades int (N,) from class probabilities float (N, K).

    ``"argmax"``: the most probable grade. ``"expected"``: the expected grade
    ``sum_k k * p_k`` rounded to the nearest grade; the unrounded expectation minimises the
    expected squared grade error, the cost that the quadratic weighted kappa charges, so it
    suits ordinal scales where the probability mass spreads over neighbouring grades (rows must
    be probabilities).
    """
    scores = np.asarray(probs, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"probs must have shape (N, K), got {scores.shape}")
    if decoding == "argmax":
        return scores.argmax(axis=1)
    if decoding == "expected":
        expected = scores @ np.arange(scores.shape[1])
        return np.clip(np.rint(expected), 0, scores.shape[1] - 1).astype(np.int64)
    raise ValueError(f"unknown grade decoding {decoding!r}; known: {', '.join(GRADE_DECODINGS)}")


Combine = Literal["independent", "max"]


def _probability_rows(probs: Any, name: str, num_classes: int, n: int | None) -> np.ndarray:
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != num_classes or (n is not None and arr.shape[0] != n):
        raise ValueError(f"{name} must have shape ({'N' if n is None else n}, {num_classes}), got {arr.shape}")
    if not np.isfinite(arr).all() or arr.min() < 0.0 or not np.allclose(arr.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError(f"{name} rows must be probabilities (finite, non-negative, summing to 1)")
    return arr


def referable_scores(dr_probs: Any, dme_probs: Any | None = None, combine: Combine = "independent") -> np.ndarray:
    """Probability of referable disease per case (the referable rule applied to probabilities).

    Args:
        dr_probs: (N, 5) DR grade probabilities; P(DR >= 2) is the sum of columns 2-4.
        dme_probs: optional (N, 3) DME probabilities; P(DME >= 1) is the sum of columns 1-2.
        combine: how the two are joined when both are given. ``"independent"``:
            1 - (1 - P(DR >= 2)) (1 - P(DME >= 1)), the probability that at least one axis is
            referable if the two heads' errors are independent; ``"max"``: the larger of the two,
            a lower bound that assumes nothing.

    Returns:
        float (N,) in [0, 1].
    """
    p_dr = _probability_rows(dr_probs, "dr_probs", NUM_DR_GRADES, None)[:, REFERABLE_DR_MIN:].sum(axis=1)
    if dme_probs is None:
        return np.clip(p_dr, 0.0, 1.0)
    dme = _probability_rows(dme_probs, "dme_probs", NUM_DME_GRADES, p_dr.size)
    p_dme = dme[:, REFERABLE_DME_MIN:].sum(axis=1)
    if combine == "independent":
        score = 1.0 - (1.0 - p_dr) * (1.0 - p_dme)
    elif combine == "max":
        score = np.maximum(p_dr, p_dme)
    else:
        raise ValueError(f"combine must be 'independent' or 'max', got {combine!r}")
    return np.clip(score, 0.0, 1.0)


def referable_labels(dr_grades: Any, dme_grades: Any | None = None) -> np.ndarray:
    """bool (N,): DR grade >= 2, or DME grade >= 1 when DME grades are given (int arrays (N,))."""
    dr = np.asarray(dr_grades, dtype=np.int64)
    referable = dr >= REFERABLE_DR_MIN
    if dme_grades is not None:
        dme = np.asarray(dme_grades, dtype=np.int64)
        if dme.shape != dr.shape:
            raise ValueError(f"dme grades have shape {dme.shape}, DR grades {dr.shape}")
        referable |= dme >= REFERABLE_DME_MIN
    return referable


@dataclass(frozen=True)
class OperatingPoint:
    """Where the referable score becomes a referral: ``score >= threshold``.

    Attributes:
        threshold: on the referable probability, in [0, 1].
        source: how it was chosen, for provenance (e.g. ``"default 0.5"``, ``"user threshold"``,
            ``"sensitivity 0.90 on the packed validation curve"``).
        sensitivity, specificity: the expected values at this threshold on the validation data
            it was chosen on (``None`` when unknown).
    """

    threshold: float = 0.5
    source: str = "default 0.5 (no validated operating point)"
    sensitivity: float | None = None
    specificity: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"operating-point threshold must lie in [0, 1], got {self.threshold}")

    def refer(self, scores: Any) -> np.ndarray:
        """bool array like ``scores``: True where the referable score reaches the threshold."""
        return np.asarray(scores, dtype=np.float64) >= self.threshold

    @classmethod
    def for_sensitivity(cls, curve: Mapping[str, Sequence[float]], target: float) -> OperatingPoint:
        """The highest threshold of a validation ``curve`` (``threshold``, ``sensitivity``,
        ``specificity`` lists, one entry per threshold) whose sensitivity reaches ``target``."""
        if not 0.0 < target <= 1.0:
            raise ValueError(f"target sensitivity must lie in (0, 1], got {target}")
        rows = sorted(zip(curve["threshold"], curve["sensitivity"], curve["specificity"]), reverse=True)
        for threshold, sensitivity, specificity in rows:
            if sensitivity >= target - 1e-12:
                return cls(float(threshold), f"sensitivity {target:.2f} on the packed validation curve",
                           float(sensitivity), float(specificity))  # fmt: skip
        raise ValueError(f"no threshold of the validation curve reaches sensitivity {target}")

    @classmethod
    def parse(cls, text: str, curve: Mapping[str, Sequence[float]] | None = None) -> OperatingPoint:
        """From a user's setting: ``"0.3"`` (a threshold) or ``"sensitivity=0.9"`` (needs ``curve``)."""
        key, sep, value = text.partition("=")
        try:
            if not sep:
                return cls(float(key), "user threshold")
            if key.strip() in ("sensitivity", "sens"):
                if curve is None:
                    raise ValueError("this model carries no validation curve to choose a sensitivity on")
                return cls.for_sensitivity(curve, float(value))
        except ValueError as error:
            raise ValueError(f"operating point {text!r}: {error}") from None
        raise ValueError(f"operating point {text!r}: give a threshold such as 0.4 or sensitivity=0.9")
