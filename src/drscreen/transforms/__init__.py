"""Training-time augmentation applied jointly to a fundus image and its lesion masks."""

from drscreen.transforms.augment import (
    PRESETS,
    AugmentationConfig,
    ChannelShift,
    JointAugmentation,
    build_augmentation,
)

__all__ = ["PRESETS", "AugmentationConfig", "ChannelShift", "JointAugmentation", "build_augmentation"]
