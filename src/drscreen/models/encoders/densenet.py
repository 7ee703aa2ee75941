"""DenseNet-169 (torchvision) as a 5-level encoder; random initialisation (no offline weights)."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import densenet169 as tv_densenet169

from drscreen.models.base import Encoder
from drscreen.models.encoders.common import require_no_pretrained
from drscreen.models.registry import register_encoder

#: ``features`` children whose output is a pyramid level (the last one goes through ``relu5``).
_LEVELS: tuple[str, ...] = ("relu0", "denseblock1", "denseblock2", "denseblock3", "norm5")


class DenseNet169Encoder(Encoder):
    """DenseNet-169 pyramid, one map per resolution (stride, channels):

    0. stem ``features.relu0``, before its max-pool (2, 64)
    1. ``features.denseblock1``, before transition1 (4, 256)
    2. ``features.denseblock2``, before transition2 (8, 512)
    3. ``features.denseblock3``, before transition3 (16, 1280)
    4. ``features.denseblock4`` -> ``features.norm5`` -> ``relu5`` (32, 1664)

    The dense-block outputs (not the transitions' halved outputs) carry every feature of the
    block. ``features`` keeps torchvision's names, so a torchvision DenseNet-169 state dict
    loads after removing its ``classifier.*`` keys.
    """

    out_channels = (64, 256, 512, 1280, 1664)
    reductions = (2, 4, 8, 16, 32)
    feature_modules = (
        "features.relu0",
        "features.denseblock1",
        "features.denseblock2",
        "features.denseblock3",
        "relu5",
    )

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        require_no_pretrained(
            "densenet169", pretrained, "torchvision's densenet169 weights without 'classifier.*'"
        )
        self.features = tv_densenet169().features
        self.relu5 = nn.ReLU()

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) -> 5 maps (B, out_channels[i], H / reductions[i], W / reductions[i])."""
        maps = []
        for name, layer in self.features.named_children():
            x = layer(x)
            if name in _LEVELS:
                maps.append(x)
        maps[-1] = self.relu5(maps[-1])
        return maps


@register_encoder("densenet169", pretrained_offline=False)
def densenet169(pretrained: bool = False) -> DenseNet169Encoder:
    """DenseNet-169 encoder, random init."""
    return DenseNet169Encoder(pretrained)
