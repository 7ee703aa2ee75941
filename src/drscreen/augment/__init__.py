"""Training-data augmentation from the model's own explanations: ELLG lesion generation.

``drscreen.augment.ellg`` holds the generator (patch extraction, colour transfer, random
shifting, mixup and the mixed label of Lin et al.'s ELLG), ``drscreen.augment.colour`` the
Reinhard lαβ colour transfer, and ``drscreen.augment.hook`` the ``ellg`` round hook of the
engine's ``rounds`` schedule (importing this package registers it). See docs/explainability.md.
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
from drscreen.augment.hook import correctly_classified, ellg_hook

__all__ = [
    "ELLGConfig",
    "Fundus",
    "FundusPool",
    "GeneratedImage",
    "LesionPatch",
    "Placement",
    "Placements",
    "correctly_classified",
    "ellg_hook",
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
