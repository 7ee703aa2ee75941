"""Training-data augmentation from the model's own explanations: ELLG lesion generation.

``drscreen.augment.ellg`` holds the generator (patch extraction, colour transfer, random
shifting, mixup and the mixed label of Lin et al.'s ELLG), ``drscreen.augment.colour`` the
Reinhard lαβ colour transfer. The package knows nothing of training: the ``ellg`` round hook that
runs it between the rounds of the ``rounds`` schedule is ``drscreen.engine.schedules.ellg_round``.
See docs/explainability.md.
"""

from drscreen.augment.colour import lalphabeta_to_rgb, reinhard_transfer, rgb_to_lalphabeta
from drscreen.augment.ellg import (
    ELLGConfig,
    Fundus,
    FundusPool,
    GeneratedImage,
    LesionPatch,
    Placement,
    Placements,
    extract_lesion_patches,
    generate_lesion_images,
    generate_one,
    label_to_grade,
    mixed_label,
    mixup_blend,
    place_patches,
)

__all__ = [
    "ELLGConfig",
    "Fundus",
    "FundusPool",
    "GeneratedImage",
    "LesionPatch",
    "Placement",
    "Placements",
    "extract_lesion_patches",
    "generate_lesion_images",
    "generate_one",
    "label_to_grade",
    "lalphabeta_to_rgb",
    "mixed_label",
    "mixup_blend",
    "place_patches",
    "reinhard_transfer",
    "rgb_to_lalphabeta",
]
