"""Synthetic colour fundus photographs with per-class lesion masks and rule-based DR/DME grades.

The generator is the project's only source of per-class lesion truth (MA, HE, EX, SE, NV) and of
DME labels. Everything is seeded: the same seed and size give byte-identical images and masks.
See ``docs/synthetic.md`` for what is rendered; the grading rules are :mod:`drscreen.retina`.
"""

from drscreen.synth.config import SynthConfig
from drscreen.synth.generator import MASK_CODES, SynthFundus, fundus_geometry, generate_fundus
from drscreen.synth.lesions import Lesion
from drscreen.synth.writers import LAYOUTS, allocate_grades, write_dataset

__all__ = [
    "LAYOUTS",
    "MASK_CODES",
    "Lesion",
    "SynthConfig",
    "SynthFundus",
    "allocate_grades",
    "fundus_geometry",
    "generate_fundus",
    "write_dataset",
]
