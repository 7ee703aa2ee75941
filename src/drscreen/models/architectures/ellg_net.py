"""The DR detection network of the ELLG paper: team o_O's Kaggle 2015 regression CNN.

References:
    Chenhao Lin, Jiongli Zhu, Chao Shen, Pengwei Hu and Qian Wang, "ELLG: explainable lesion
    learning and generation for diabetic retinopathy detection" -- uses this network as its
    "DR detection net" and baseline, and computes GMSM saliency on two of its conv blocks.
    Mathis Antony and Stephan Brüggemann, "Team o_O solution for the Kaggle diabetic
    retinopathy detection challenge" (Kaggle, 2015 competition) -- the network itself (their
    5x5-kernel, 512-pixel configuration).

A plain VGG-like stack with leaky ReLUs (slope 0.01) and 3x3 / stride-2 max-pools, read as
the three blocks Lin et al. describe:

=========  =========================================================  ========  =========
module     layers                                                     channels  448 input
=========  =========================================================  ========  =========
``block1`` 5x5/2 conv, 3x3 conv, pool, 5x5/2 conv, 2 x 3x3 conv,        4w       27 x 27
           pool, 3 x 3x3 conv
``block2`` pool, 3 x 3x3 conv                                           8w       13 x 13
``block3`` pool, 2 x 3x3 conv                                           16w      6 x 6
``head``   RMS pooling to 2 x 2, dropout, dense 1024 + maxout 2,       1
           dropout, dense 1024 + maxout 2, dense 1 (the severity score)
=========  =========================================================  ========  =========

with ``w = 32``. Lin et al. state 512 x 512 inputs because the o_O pipeline stores images at
512 pixels; the network itself sees 448 x 448 crops, and only there are the block outputs 27,
13 and 6 wide (512 inputs give 31, 15 and 7). Deviations from the o_O network, all so that
any input size from ``MIN_INPUT_SIZE`` up works: biases are shared over positions (o_O had
one bias per position), the final 3x3 / stride-3 RMS pooling is adaptive to a 2 x 2 grid
(identical at 448), and max-pools round up (identical at 448 and 512).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drscreen.models.base import DRModel, ExplainLayers
from drscreen.models.encoders.common import require_no_pretrained
from drscreen.models.output import ModelOutput
from drscreen.models.registry import register_model

_LIN = (
    "Lin, Zhu, Shen, Hu, Wang: ELLG: explainable lesion learning and generation for diabetic "
    "retinopathy detection"
)
#: Slope of the leaky ReLUs throughout the o_O network.
LEAKY_SLOPE = 0.01
#: Smallest input side the five stride-2 stages leave a non-empty map for.
MIN_INPUT_SIZE = 69


def _conv(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1
) -> nn.Sequential:
    """Conv padded by 1 (o_O's released code pads every conv so, 5x5 ones too) + leaky ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=1),
        nn.LeakyReLU(LEAKY_SLOPE),
    )


def _pool() -> nn.MaxPool2d:
    """3x3 / stride-2 max-pool rounding up: as o_O's on odd sizes (all of them at 448 and 512)."""
    return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)


class RMSPool(nn.Module):
    """Root-mean-square pooling to a fixed grid: (B, C, h, w) -> (B, C, *size)."""

    def __init__(self, size: tuple[int, int], eps: float = 1e-12) -> None:
        super().__init__()
        self.size = size
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return torch.sqrt(F.adaptive_avg_pool2d(x * x, self.size) + self.eps)


class Maxout(nn.Module):
    """Max over consecutive groups of ``pool`` features: (B, D) -> (B, D / pool)."""

    def __init__(self, pool: int = 2) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        return x.unflatten(1, (-1, self.pool)).amax(dim=2)


@register_model(
    "o_o_net",
    paper=_LIN,
    description="Team o_O's Kaggle 2015 DR regression CNN (5x5 / 512-pixel configuration; "
    "native input 448 x 448), the DR detection net and baseline of ELLG; outputs dr_score",
    tiny={"width": 4, "dense_units": 16},
    min_input_size=MIN_INPUT_SIZE,
)
class OONet(DRModel):
    """Team o_O's DR regression network (see the module docstring for the layer table).

    Defaults are the published widths.

    Args:
        width: channels of the first conv; the blocks have 4, 8 and 16 times as many (o_O: 32).
        dense_units: units of each dense layer before its maxout (o_O: 1024).
        dropout: dropout probability before each dense layer (o_O: 0.5).
        pretrained: must be ``False`` (no offline weights; load a checkpoint instead).

    ``forward`` returns ``dr_score`` (B,): the continuous severity, trained with a regression
    loss and rounded / thresholded to a grade. GMSM hooks ``block1`` (27 x 27 at 448) as the
    low layer and ``block3`` (6 x 6), the last map before the head, as the high layer.
    """

    def __init__(
        self,
        width: int = 32,
        dense_units: int = 1024,
        dropout: float = 0.5,
        *,
        pretrained: bool = False,
    ) -> None:
        super().__init__()
        require_no_pretrained("o_o_net", pretrained, kind="model")
        if dense_units % 2:
            raise ValueError(f"dense_units must be even (maxout pairs), got {dense_units}")
        w = width
        self.block1 = nn.Sequential(
            _conv(3, w, 5, stride=2),
            _conv(w, w),
            _pool(),
            _conv(w, 2 * w, 5, stride=2),
            _conv(2 * w, 2 * w),
            _conv(2 * w, 2 * w),
            _pool(),
            _conv(2 * w, 4 * w),
            _conv(4 * w, 4 * w),
            _conv(4 * w, 4 * w),
        )
        self.block2 = nn.Sequential(
            _pool(), _conv(4 * w, 8 * w), _conv(8 * w, 8 * w), _conv(8 * w, 8 * w)
        )
        self.block3 = nn.Sequential(_pool(), _conv(8 * w, 16 * w), _conv(16 * w, 16 * w))
        half = dense_units // 2
        self.head = nn.Sequential(
            RMSPool((2, 2)),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(16 * w * 4, dense_units),
            nn.LeakyReLU(LEAKY_SLOPE),
            Maxout(2),
            nn.Dropout(dropout),
            nn.Linear(half, dense_units),
            nn.LeakyReLU(LEAKY_SLOPE),
            Maxout(2),
            nn.Linear(half, 1),
        )
        self.explain_layers = ExplainLayers(low="block1", high="block3")
        self._init_weights()

    def _init_weights(self) -> None:
        """o_O's initialisation: orthogonal weights (gain 1), biases 0.05."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.orthogonal_(m.weight)
                nn.init.constant_(m.bias, 0.05)

    def forward(self, images: Tensor) -> ModelOutput:
        """(B, 3, H, W) -> ``ModelOutput(dr_score=(B,))``."""
        x = self.block3(self.block2(self.block1(images)))
        return ModelOutput(dr_score=self.head(x).squeeze(1))
