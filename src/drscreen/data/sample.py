"""The one record every dataset adapter produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from drscreen.grading import LESION_BY_CODE, validate_dme_grade, validate_dr_grade

Eye = Literal["left", "right"]

#: ``lesion_masks`` key of a mask that merges all lesion classes (MA, HE, EX, SE) into one, for
#: sources that lost the class (the ``idrid-seg-subset`` folder).
LESION_UNION = "LESION"


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One fundus image and what is known about it. Unknown is ``None``, never 0.

    ``dr_grade``: ICDR 0-4. ``dme_grade``: IDRiD risk of macular edema 0-2.
    ``lesion_masks``: ``None`` when the image has no lesion annotation at all; otherwise each
    annotated structure code (``grading.LESION_BY_CODE`` or ``LESION_UNION``) maps to its mask file,
    or to ``None`` when that structure was annotated as absent from this image.
    ``patient_id``: ``None`` when the dataset does not say; the image is then its own patient.
    ``split``: the dataset's own split ("train", "val", "test"), ``None`` when it has none.
    """

    id: str
    image_path: Path
    dr_grade: int | None = None
    dme_grade: int | None = None
    lesion_masks: dict[str, Path | None] | None = field(default=None, hash=False)
    eye: Eye | None = None
    patient_id: str | None = None
    dataset: str
    split: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_path", Path(self.image_path))
        if self.dr_grade is not None:
            object.__setattr__(self, "dr_grade", validate_dr_grade(self.dr_grade))
        if self.dme_grade is not None:
            object.__setattr__(self, "dme_grade", validate_dme_grade(self.dme_grade))
        if self.eye not in (None, "left", "right"):
            raise ValueError(f"eye must be 'left', 'right' or None, got {self.eye!r}")
        if self.lesion_masks is not None:
            unknown = set(self.lesion_masks) - set(LESION_BY_CODE) - {LESION_UNION}
            if unknown:
                raise ValueError(f"unknown lesion codes {sorted(unknown)} in sample {self.id!r}")
            masks = {code: None if p is None else Path(p) for code, p in self.lesion_masks.items()}
            object.__setattr__(self, "lesion_masks", masks)
