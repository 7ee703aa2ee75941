"""Fine-grained DR grading with hierarchical bilinear pooling (HBP) over a feature pyramid.

References:
    Li Tian, Liyan Ma, Zhijie Wen, Shaorong Xie and Yupeng Xu, "Learning discriminative
    representations for fine-grained diabetic retinopathy grading" -- the grader
    (``finegrained_hbp``): a DSOD-style DenseNet-169 + FPN backbone, HBP over the pyramid
    levels F1, F3 and F5, a linear classifier; trained with SORD soft labels, focal loss and
    SoftTriple on the HBP vector (the losses live in ``drscreen.losses``).
    Chaojian Yu, Xinyi Zhao, Qi Zheng, Peng Zhang and Xinge You, "Hierarchical bilinear
    pooling for fine-grained visual recognition" (ECCV 2018) -- HBP itself and the VGG-16
    baseline of Tian et al.'s tables (``vgg16_hbp``, over relu5_1, relu5_2 and relu5_3).
    Tsung-Yi Lin, Piotr Dollár, Ross Girshick, Kaiming He, Bharath Hariharan and Serge
    Belongie, "Feature pyramid networks for object detection" (CVPR 2017) -- the pyramid.

HBP projects three feature maps to a common dimension d with 1x1 convolutions U, V, S, takes
the three pairwise element-wise products, sum-pools each over space, applies a signed square
root and L2-normalises each product vector separately (as Yu et al.'s reference network does),
then concatenates them into a 3d vector that the classifier P maps to grade logits.

Which levels are F1, F3, F5 and how they are aligned is not stated by Tian et al.; we read the
pyramid as the encoder's five levels, finest first (DenseNet-169: strides 2, 8 and 32 for F1,
F3, F5), and average-pool F1 and F3 onto F5's grid before projecting (the same as pooling the
projections, as a 1x1 projection commutes with averaging, and far cheaper). The
products are then formed at Yu et al.'s scale (16 x 16 positions for a 512 input, against
their 28 x 28); a finer common grid would need gigabytes of products per image at d = 8192.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drscreen.grading import NUM_DR_GRADES
from drscreen.models.base import DRModel, ExplainLayers
from drscreen.models.encoders.simple_cnn import TINY_WIDTHS
from drscreen.models.output import ModelOutput
from drscreen.models.registry import create_encoder, register_model

_TIAN = (
    "Tian, Ma, Wen, Xie, Xu: Learning discriminative representations for fine-grained "
    "diabetic retinopathy grading"
)
_YU = (
    "Yu, Zhao, Zheng, Zhang, You: Hierarchical bilinear pooling for fine-grained visual "
    "recognition (ECCV 2018)"
)

#: Pyramid levels HBP combines (0-based indices of F1, F3, F5 in a 5-level pyramid).
HBP_LEVELS: tuple[int, int, int] = (0, 2, 4)


def signed_sqrt_l2(x: Tensor, eps: float = 1e-10) -> Tensor:
    """``sign(x) * sqrt(|x|)`` then L2 normalisation over dim 1: (B, D) -> (B, D), unit rows.

    ``eps`` inside the root keeps the gradient finite at 0.
    """
    return F.normalize(torch.sign(x) * torch.sqrt(x.abs() + eps), dim=1)


def hierarchical_bilinear_pool(
    f1: Tensor,
    f3: Tensor,
    f5: Tensor,
    u: Callable[[Tensor], Tensor],
    v: Callable[[Tensor], Tensor],
    s: Callable[[Tensor], Tensor],
) -> Tensor:
    """HBP vector of three maps on one grid: (B, C_i, h, w) each -> (B, 3 d).

    ``u``, ``v``, ``s`` project (B, C_i, h, w) to (B, d, h, w) (1x1 convolutions). The result
    concatenates ``signed_sqrt_l2(sum_hw(U f1 * V f3))``, ``... (U f1 * S f5)`` and
    ``... (V f3 * S f5)``; each third has unit L2 norm.
    """
    if not f1.shape[-2:] == f3.shape[-2:] == f5.shape[-2:]:
        raise ValueError(
            f"HBP needs maps on one grid, got {tuple(f1.shape[-2:])}, {tuple(f3.shape[-2:])}, "
            f"{tuple(f5.shape[-2:])}"
        )
    pu, pv, ps = u(f1), v(f3), s(f5)
    terms = (pu * pv, pu * ps, pv * ps)
    return torch.cat([signed_sqrt_l2(t.sum(dim=(2, 3))) for t in terms], dim=1)


class HBPHead(nn.Module):
    """Projections U, V, S (1x1 convs with bias, to ``proj_dim``) and the classifier P.

    ``forward(f1, f3, f5)`` on one grid -> ``(logits (B, num_classes), hbp vector (B, 3 d))``.
    """

    def __init__(
        self, in_channels: Sequence[int], proj_dim: int, num_classes: int = NUM_DR_GRADES
    ) -> None:
        super().__init__()
        c1, c3, c5 = in_channels
        self.u = nn.Conv2d(c1, proj_dim, 1)
        self.v = nn.Conv2d(c3, proj_dim, 1)
        self.s = nn.Conv2d(c5, proj_dim, 1)
        self.classifier = nn.Linear(3 * proj_dim, num_classes)

    def forward(self, f1: Tensor, f3: Tensor, f5: Tensor) -> tuple[Tensor, Tensor]:
        z = hierarchical_bilinear_pool(f1, f3, f5, self.u, self.v, self.s)
        return self.classifier(z), z


class FPN(nn.Module):
    """Feature pyramid (Lin et al. 2017) over an encoder's maps, finest first.

    1x1 lateral convs bring every level to ``channels``; the top-down path adds each level to
    the nearest-upsampled coarser result; a 3x3 conv smooths each level listed in ``outputs``
    (only those are built and returned, as (B, channels, h_i, w_i)).
    """

    def __init__(self, in_channels: Sequence[int], channels: int, outputs: Sequence[int]) -> None:
        super().__init__()
        self.outputs = tuple(outputs)
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in outputs)

    def forward(self, maps: Sequence[Tensor]) -> list[Tensor]:
        p = self.lateral[-1](maps[-1])
        merged = [p]
        for lateral, m in zip(reversed(self.lateral[:-1]), reversed(maps[:-1])):
            p = lateral(m) + F.interpolate(p, size=m.shape[-2:], mode="nearest")
            merged.append(p)
        merged.reverse()
        return [smooth(merged[i]) for smooth, i in zip(self.smooth, self.outputs)]


@register_model(
    "finegrained_hbp",
    paper=_TIAN,
    description="DenseNet-169 + FPN (DSOD-style) -> hierarchical bilinear pooling of F1, F3, F5 "
    "-> DR logits; embedding = the normalised HBP vector (for SoftTriple). Any 5-level encoder",
    tiny={
        "encoder": "simple_cnn",
        "encoder_kwargs": {"widths": TINY_WIDTHS},
        "fpn_channels": 16,
        "proj_dim": 32,
    },
)
class FineGrainedHBP(DRModel):
    """Tian et al.'s grader: encoder + FPN -> HBP over F1, F3, F5 -> DR logits.

    Defaults: the paper's backbone and HBP's d = 8192.

    Args:
        encoder: registered encoder name with a 5-level pyramid (paper: ``densenet169``).
        encoder_kwargs: extra settings of that encoder, passed to ``create_encoder``.
        pretrained: load the encoder's offline weights (where it has them).
        fpn_channels: pyramid channels.
        proj_dim: HBP projection dimension d (Yu et al.: 8192).

    ``forward`` returns ``dr_logits`` (B, 5) and ``embedding`` (B, 3 d), the HBP vector the
    classifier reads (for SoftTriple). Explainers hook the smoothed F5 (``fpn.smooth.2``, the
    last map before the head) and F3 (``fpn.smooth.1``).
    """

    def __init__(
        self,
        encoder: str = "densenet169",
        *,
        encoder_kwargs: dict[str, Any] | None = None,
        pretrained: bool = False,
        fpn_channels: int = 256,
        proj_dim: int = 8192,
    ) -> None:
        super().__init__()
        self.encoder = create_encoder(encoder, pretrained=pretrained, **(encoder_kwargs or {}))
        if len(self.encoder.out_channels) != 5:
            raise ValueError(
                f"encoder {encoder!r} gives {len(self.encoder.out_channels)} levels; HBP over "
                "F1, F3, F5 needs a 5-level pyramid"
            )
        self.normalization = self.encoder.normalization
        self.fpn = FPN(self.encoder.out_channels, fpn_channels, HBP_LEVELS)
        self.hbp = HBPHead((fpn_channels,) * 3, proj_dim)
        self.explain_layers = ExplainLayers(low="fpn.smooth.1", high="fpn.smooth.2")

    def forward(self, images: Tensor) -> ModelOutput:
        """(B, 3, H, W) -> ``ModelOutput(dr_logits=(B, 5), embedding=(B, 3 d))``."""
        f1, f3, f5 = self.fpn(self.encoder(images))
        grid = f5.shape[-2:]
        logits, z = self.hbp(
            F.adaptive_avg_pool2d(f1, grid), F.adaptive_avg_pool2d(f3, grid), f5
        )
        return ModelOutput(dr_logits=logits, embedding=z)


@register_model(
    "vgg16_hbp",
    paper=_YU,
    description="HBP over VGG-16 relu5_1/5_2/5_3 -> DR logits: the HBP baseline of Tian et al.; "
    "embedding = the normalised HBP vector",
    tiny={"encoder_kwargs": {"width": 1 / 8}, "proj_dim": 32},
)
class VGG16HBP(DRModel):
    """Yu et al.'s HBP on VGG-16's relu5_1, relu5_2, relu5_3 (stride 16): Tian et al.'s baseline.

    The three taps, the last three ReLUs of the registered ``vgg16`` encoder's ``features``,
    are read while running those layers, so weights and checkpoints follow the encoder's
    conventions; the encoder's own forward returns one map per stage and would hide relu5_1
    and relu5_2. Defaults: VGG-16 and d = 8192, as Yu et al.

    Args:
        encoder_kwargs: settings of the ``vgg16`` encoder (e.g. ``{"width": 0.5}``).
        pretrained: load the encoder's offline weights (where it has them).
        proj_dim: HBP projection dimension d (Yu et al.: 8192).

    Outputs as ``FineGrainedHBP``; explainers hook the encoder's last two maps, relu5_3 (high)
    and relu4_3 (low, stride 8).
    """

    def __init__(
        self,
        *,
        encoder_kwargs: dict[str, Any] | None = None,
        pretrained: bool = False,
        proj_dim: int = 8192,
    ) -> None:
        super().__init__()
        self.encoder = create_encoder("vgg16", pretrained=pretrained, **(encoder_kwargs or {}))
        relus = [i for i, layer in enumerate(self.encoder.features) if isinstance(layer, nn.ReLU)]
        self.taps = tuple(relus[-3:])  # relu5_1, relu5_2, relu5_3
        self.normalization = self.encoder.normalization
        self.hbp = HBPHead((self.encoder.out_channels[-1],) * 3, proj_dim)
        low, high = self.encoder.feature_modules[-2:]
        self.explain_layers = ExplainLayers(low=f"encoder.{low}", high=f"encoder.{high}")

    def forward(self, images: Tensor) -> ModelOutput:
        """(B, 3, H, W) -> ``ModelOutput(dr_logits=(B, 5), embedding=(B, 3 d))``."""
        taps: list[Tensor] = []
        x = images
        for i, layer in enumerate(self.encoder.features[: self.taps[-1] + 1]):
            x = layer(x)
            if i in self.taps:
                taps.append(x)
        logits, z = self.hbp(*taps)
        return ModelOutput(dr_logits=logits, embedding=z)
