"""VGG-16 and VGG-16-BN (torchvision) as U-Net encoders; random init (no offline weights)."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import vgg16 as tv_vgg16
from torchvision.models import vgg16_bn as tv_vgg16_bn

from drscreen.models.base import Encoder
from drscreen.models.encoders.common import require_no_pretrained
from drscreen.models.registry import register_encoder


class VGG16Encoder(Encoder):
    """VGG-16 conv stages, each map taken right BEFORE its max-pool (the classic U-Net skips).

    Reductions (1, 2, 4, 8, 16), channels (64, 128, 256, 512, 512). The deepest map is at
    stride 16: the fifth max-pool is dropped, and a consumer that wants the pooled stride-32 map
    applies ``nn.MaxPool2d(2)`` to it. ``features`` keeps torchvision's indices, so a torchvision
    VGG state dict loads after removing its ``classifier.*`` keys.
    """

    out_channels = (64, 128, 256, 512, 512)
    reductions = (1, 2, 4, 8, 16)

    def __init__(self, batch_norm: bool = False, pretrained: bool = False) -> None:
        super().__init__()
        name = "vgg16_bn" if batch_norm else "vgg16"
        require_no_pretrained(name, pretrained, "torchvision's weights without 'classifier.*'")
        net = tv_vgg16_bn() if batch_norm else tv_vgg16()
        self.features = net.features[:-1]  # without the last max-pool
        pools = [i for i, layer in enumerate(self.features) if isinstance(layer, nn.MaxPool2d)]
        ends = [i - 1 for i in pools] + [len(self.features) - 1]
        self.feature_modules = tuple(f"features.{i}" for i in ends)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) -> 5 maps (B, out_channels[i], H / reductions[i], W / reductions[i])."""
        maps = []
        for layer in self.features:
            if isinstance(layer, nn.MaxPool2d):
                maps.append(x)
            x = layer(x)
        maps.append(x)
        return maps


@register_encoder("vgg16", pretrained_offline=False)
def vgg16(pretrained: bool = False) -> VGG16Encoder:
    """VGG-16 encoder (no batch norm), random init."""
    return VGG16Encoder(batch_norm=False, pretrained=pretrained)


@register_encoder("vgg16_bn", pretrained_offline=False)
def vgg16_bn(pretrained: bool = False) -> VGG16Encoder:
    """VGG-16 encoder with batch norm, random init."""
    return VGG16Encoder(batch_norm=True, pretrained=pretrained)
