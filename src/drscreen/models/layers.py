"""Small building blocks shared by the encoders and the architectures."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvBNReLU(nn.Sequential):
    """``Conv2d -> BatchNorm2d -> ReLU``, "same" padding: (B, C_in, H, W) -> (B, C_out, H/s, W/s).

    The convolution has no bias (the batch norm's shift replaces it).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size.
        stride: convolution stride.
        dilation: convolution dilation (padding grows with it to keep the size).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=dilation * (kernel_size // 2),
                dilation=dilation,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def resize(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize (``align_corners=False``): (B, C, h, w) -> (B, C, *size)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def upsample_concat(x: Tensor, skip: Tensor) -> Tensor:
    """The U-Net merge: ``x`` resized to ``skip``'s size, then ``[x; skip]`` along channels.

    (B, C_x, h, w) and (B, C_s, H, W) -> (B, C_x + C_s, H, W).
    """
    return torch.cat([resize(x, skip.shape[-2:]), skip], dim=1)


def ceil_size(size: Sequence[int], stride: int) -> tuple[int, int]:
    """(H, W) of a map at ``stride`` relative to an (H, W) input, rounding up (odd sizes too)."""
    return -(-size[-2] // stride), -(-size[-1] // stride)


def scale_channels(channels: int, multiplier: float) -> int:
    """``channels`` times a width ``multiplier``, rounded, at least 1."""
    return max(1, round(channels * multiplier))
