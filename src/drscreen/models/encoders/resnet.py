"""ResNet-34 (torchvision) as a 5-level encoder; random initialisation (no offline weights)."""

from __future__ import annotations

from torch import Tensor
from torchvision.models import resnet34 as tv_resnet34

from drscreen.models.base import Encoder
from drscreen.models.encoders.common import require_no_pretrained
from drscreen.models.registry import register_encoder


class ResNet34Encoder(Encoder):
    """ResNet-34 pyramid: stem ReLU (s2, 64), layer1 (s4, 64), layer2 (s8, 128), layer3 (s16, 256),
    layer4 (s32, 512).

    Submodules keep torchvision's names (``conv1``, ``bn1``, ``layer1`` ... ``layer4``), so a
    torchvision ResNet-34 state dict loads once its ``fc.*`` keys are removed.
    """

    out_channels = (64, 64, 128, 256, 512)
    reductions = (2, 4, 8, 16, 32)
    feature_modules = ("relu", "layer1", "layer2", "layer3", "layer4")

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        require_no_pretrained("resnet34", pretrained, "torchvision's weights without 'fc.*'")
        net = tv_resnet34()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) -> 5 maps (B, out_channels[i], H / reductions[i], W / reductions[i])."""
        stem = self.relu(self.bn1(self.conv1(x)))
        c1 = self.layer1(self.maxpool(stem))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return [stem, c1, c2, c3, self.layer4(c3)]


@register_encoder("resnet34", pretrained_offline=False)
def resnet34(pretrained: bool = False) -> ResNet34Encoder:
    """ResNet-34 encoder, random init."""
    return ResNet34Encoder(pretrained)
