"""A plain 5-stage CNN encoder with configurable widths: tiny models for tests and smoke runs."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from drscreen.models.base import Encoder
from drscreen.models.encoders.common import require_no_pretrained
from drscreen.models.layers import ConvBNReLU
from drscreen.models.registry import register_encoder

#: Widths of the smallest useful instance (about 10 k parameters), for the models' ``tiny``
#: configs: ``encoder="simple_cnn", encoder_kwargs={"widths": TINY_WIDTHS}``.
TINY_WIDTHS: tuple[int, ...] = (4, 8, 8, 16, 16)


class SimpleCNNEncoder(Encoder):
    """Stage ``i`` = stride-2 3x3 conv-BN-ReLU + 3x3 conv-BN-ReLU of width ``widths[i]``.

    Reductions (2, 4, 8, 16, 32) for 5 widths (one more stride-2 stage per extra width), channels
    ``widths``; ``feature_modules`` are ``stages.{i}``. Random init; ``TINY_WIDTHS`` has about
    10 k parameters.
    """

    def __init__(
        self, widths: Sequence[int] = (16, 32, 64, 128, 256), pretrained: bool = False
    ) -> None:
        super().__init__()
        require_no_pretrained("simple_cnn", pretrained, "it is meant to be trained from scratch")
        in_channels = [3, *widths[:-1]]
        self.stages = nn.ModuleList(
            nn.Sequential(ConvBNReLU(c_in, c_out, stride=2), ConvBNReLU(c_out, c_out))
            for c_in, c_out in zip(in_channels, widths)
        )
        self.out_channels = tuple(widths)
        self.reductions = tuple(2 ** (i + 1) for i in range(len(widths)))
        self.feature_modules = tuple(f"stages.{i}" for i in range(len(widths)))

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) -> maps (B, out_channels[i], H / reductions[i], W / reductions[i])."""
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps


@register_encoder("simple_cnn", pretrained_offline=False)
def simple_cnn(
    widths: Sequence[int] = (16, 32, 64, 128, 256), pretrained: bool = False
) -> SimpleCNNEncoder:
    """Plain CNN encoder, random init (default widths: 1.2 M parameters)."""
    return SimpleCNNEncoder(widths, pretrained)
