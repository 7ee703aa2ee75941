"""Small building blocks shared by the architectures."""

from __future__ import annotations

from torch import nn


class ConvBNReLU(nn.Sequential):
    """``Conv2d -> BatchNorm2d -> ReLU``, "same" padding: (B, C_in, H, W) -> (B, C_out, H/s, W/s).

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
