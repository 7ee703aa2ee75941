"""VGG-16 and VGG-16-BN conv layers as U-Net encoders; random init (no offline weights).

Only the convolutional ``features`` are built (torchvision's ``vgg16()`` also builds a
124 M-parameter classifier that an encoder would throw away). They keep torchvision's layer
indices, so a torchvision VGG-16 checkpoint loads once its ``classifier.*`` keys are removed.
"""

from __future__ import annotations

from torch import Tensor, nn

from drscreen.models.base import Encoder
from drscreen.models.encoders.common import require_no_pretrained
from drscreen.models.layers import scale_channels
from drscreen.models.registry import register_encoder

#: VGG-16's conv widths, one tuple per block; every block but the last ends in a 2x2 max-pool.
VGG16_BLOCKS: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256),
    (512, 512, 512),
    (512, 512, 512),
)


class VGG16Encoder(Encoder):
    """VGG-16 conv stages, each map taken right BEFORE its max-pool (the classic U-Net skips).

    ``features`` is torchvision's ``vgg16().features`` (or ``vgg16_bn``'s) without the fifth
    max-pool: 3x3 conv (bias) [-> BN] -> ReLU per conv, 2x2 max-pools between the blocks, same
    indices and state-dict keys. The maps are the last ReLU of each block (``feature_modules``:
    ``features.{3, 8, 15, 22, 29}``, or ``{5, 12, 22, 32, 42}`` with batch norm).

    Reductions (1, 2, 4, 8, 16); channels ``width`` x (64, 128, 256, 512, 512). The deepest map
    is at stride 16: a consumer that wants the pooled stride-32 map applies ``nn.MaxPool2d(2)``.

    Args:
        batch_norm: BN after every conv (the ``vgg16_bn`` flavour).
        pretrained: must be ``False`` (no offline weights; load a checkpoint instead).
        width: channel multiplier (rounded, at least 1 channel); 1 is VGG-16.
        in_channels: input channels (3 for images; more when extra maps are stacked on them).
    """

    reductions = (1, 2, 4, 8, 16)

    def __init__(
        self,
        batch_norm: bool = False,
        pretrained: bool = False,
        *,
        width: float = 1.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        name = "vgg16_bn" if batch_norm else "vgg16"
        require_no_pretrained(name, pretrained, "torchvision's weights without 'classifier.*'")
        layers: list[nn.Module] = []
        ends: list[int] = []
        for block, widths in enumerate(VGG16_BLOCKS):
            if block > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            for channels in widths:
                out_channels = scale_channels(channels, width)
                layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(out_channels))
                layers.append(nn.ReLU(inplace=True))
                in_channels = out_channels
            ends.append(len(layers) - 1)
        self.features = nn.Sequential(*layers)
        self.out_channels = tuple(scale_channels(widths[-1], width) for widths in VGG16_BLOCKS)
        self.feature_modules = tuple(f"features.{i}" for i in ends)
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's VGG initialisation: Kaiming-normal (fan-out) convs, zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, in_channels, H, W) -> 5 maps (B, out_channels[i], H / reductions[i], W / r_i)."""
        maps = []
        for layer in self.features:
            if isinstance(layer, nn.MaxPool2d):
                maps.append(x)
            x = layer(x)
        maps.append(x)
        return maps


@register_encoder("vgg16", pretrained_offline=False)
def vgg16(pretrained: bool = False, width: float = 1.0, in_channels: int = 3) -> VGG16Encoder:
    """VGG-16 encoder (no batch norm), random init; ``width`` 1 has 14.7 M parameters."""
    return VGG16Encoder(False, pretrained, width=width, in_channels=in_channels)


@register_encoder("vgg16_bn", pretrained_offline=False)
def vgg16_bn(pretrained: bool = False, width: float = 1.0, in_channels: int = 3) -> VGG16Encoder:
    """VGG-16 encoder with batch norm, random init."""
    return VGG16Encoder(True, pretrained, width=width, in_channels=in_channels)
