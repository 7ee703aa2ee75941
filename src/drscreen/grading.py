"""Clinical scales used everywhere in drscreen: ICDR DR grades, IDRiD DME risk, lesion classes.

This is the one place that names grades, lesion classes and their display colours, and that
states the referable rule. Everything else imports from here.

References: the International Clinical Diabetic Retinopathy (ICDR) severity scale; the IDRiD
challenge definition of the risk of diabetic macular edema (Porwal et al., 2018).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


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
