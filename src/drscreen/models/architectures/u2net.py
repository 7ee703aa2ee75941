"""The U²-Net family of lesion segmenters: full U²-Net, U²-Net-lite and U²-XS-Net.

References:
    Xuebin Qin, Zichen Zhang, Chenyang Huang, Masood Dehghan, Osmar R. Zaiane and Martin
    Jagersand, "U²-Net: Going deeper with nested U-structure for salient object detection"
    (Pattern Recognition, 2020) -- the architecture.
    Marlin Siebert and Philipp Rostalski, "Multi-task lesion segmentation with a lightweight
    U²-Net to enhance explainability of mobile screening systems for diabetic retinopathy"
    (MIDL 2021 submission) -- the narrowed U²-XS-Net and its ST / DT / MT lesion modes.

U²-Net is a U-Net whose every stage is itself a small U-Net, the *residual U-block* RSU-L: an
input conv, an inner encoder of L-1 convs (max-pooled between them), a dilated bottom conv, an
inner decoder that upsamples and concatenates back to full stage resolution, and a residual
sum with the input conv. RSU-4F replaces the inner pooling by growing dilation (1, 2, 4, 8) and
is used where maps are already small. The outer network has six encoder stages En1-En6
(RSU-7, 6, 5, 4, 4F, 4F, max-pooled between them) and five decoder stages De5-De1 that mirror
them; a 3x3 conv on De1-De5 and En6 gives six side outputs, and a 1x1 conv over their
concatenation gives the fused output. All resampling is "to the size of the map it meets", and
pooling rounds up, so any input size works.

The three configurations differ only in stage widths ``(mid, out)``, see ``U2NetWidths``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drscreen.grading import BRIGHT_LESIONS, LESION_BY_CODE, RED_LESIONS, SEGMENTATION_LESIONS
from drscreen.models.base import DRModel, ExplainLayers
from drscreen.models.encoders.common import require_no_pretrained
from drscreen.models.layers import ConvBNReLU, resize, scale_channels, upsample_concat
from drscreen.models.output import ModelOutput
from drscreen.models.registry import register_model

U2NetMode = Literal["ST", "DT", "MT"]

_QIN = (
    "Qin, Zhang, Huang, Dehghan, Zaiane, Jagersand: U²-Net: Going deeper with nested "
    "U-structure for salient object detection (Pattern Recognition 2020)"
)
_SIEBERT = (
    "Siebert, Rostalski: Multi-task lesion segmentation with a lightweight U²-Net to enhance "
    "explainability of mobile screening systems for diabetic retinopathy "
    "(MIDL 2021 submission)"
)

#: RSU height of En1-En6 (the last two are the dilated RSU-4F); De5-De1 mirror En5-En1.
_ENCODER_HEIGHTS: tuple[int, ...] = (7, 6, 5, 4, 4, 4)
_ENCODER_DILATED: tuple[bool, ...] = (False, False, False, False, True, True)


def _pool(x: Tensor) -> Tensor:
    """2x2 max-pool rounding up, so odd sizes lose no row or column."""
    return F.max_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)


class RSU(nn.Module):
    """Residual U-block RSU-L (RSU-LF when ``dilated``), L = ``height``: keeps (H, W).

    All convs are 3x3 conv-BN-ReLU. ``conv_in``: in -> out. Inner encoder ``down``:
    ``height - 1`` convs, out -> mid then mid -> mid, max-pooled between them (plain) or with
    dilations 1, 2, 4, ... and no pooling (dilated). ``bottom``: mid -> mid with dilation 2
    (plain) or ``2 ** (height - 1)`` (dilated). Inner decoder ``up``: one conv per encoder
    level, deepest first, on the concatenation of the deeper result (resized to the level) and
    the level's map, 2 mid -> mid, the last one 2 mid -> out. Output: ``up`` result + ``conv_in``
    result.
    """

    def __init__(
        self, height: int, in_channels: int, mid_channels: int, out_channels: int, dilated: bool
    ) -> None:
        super().__init__()
        if height < 2:
            raise ValueError(f"RSU height must be >= 2, got {height}")
        self.dilated = dilated
        dilations = [2**i if dilated else 1 for i in range(height - 1)]
        self.conv_in = ConvBNReLU(in_channels, out_channels)
        self.down = nn.ModuleList(
            ConvBNReLU(out_channels if i == 0 else mid_channels, mid_channels, dilation=d)
            for i, d in enumerate(dilations)
        )
        self.bottom = ConvBNReLU(
            mid_channels, mid_channels, dilation=2 ** (height - 1) if dilated else 2
        )
        self.up = nn.ModuleList(
            ConvBNReLU(2 * mid_channels, out_channels if i == 0 else mid_channels, dilation=d)
            for i, d in reversed(list(enumerate(dilations)))
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W)."""
        x_in = self.conv_in(x)
        skips: list[Tensor] = []
        h = x_in
        for i, conv in enumerate(self.down):
            h = conv(h if i == 0 or self.dilated else _pool(h))
            skips.append(h)
        h = self.bottom(h)
        for i, (conv, skip) in enumerate(zip(self.up, reversed(skips))):
            # The bottom shares the deepest level's size, and dilated blocks never shrink.
            if i > 0 and not self.dilated:
                h = resize(h, skip.shape[-2:])
            h = conv(torch.cat([h, skip], dim=1))
        return h + x_in


@dataclass(frozen=True)
class U2NetWidths:
    """``(mid, out)`` channels of each RSU stage: ``encoder`` En1-En6, ``decoder`` De5-De1."""

    encoder: tuple[tuple[int, int], ...]
    decoder: tuple[tuple[int, int], ...]

    @classmethod
    def uniform(cls, mid: int, out: int) -> U2NetWidths:
        """Every stage ``(mid, out)``, the pattern of U²-Net-lite and U²-XS-Net."""
        return cls(encoder=((mid, out),) * 6, decoder=((mid, out),) * 5)

    def scaled(self, multiplier: float) -> U2NetWidths:
        """Every width times ``multiplier`` (rounded, at least 1)."""

        def scale(pairs: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
            return tuple(
                (scale_channels(mid, multiplier), scale_channels(out, multiplier))
                for mid, out in pairs
            )

        return U2NetWidths(encoder=scale(self.encoder), decoder=scale(self.decoder))


#: Qin et al.'s full U²-Net: 43,995,469 parameters with one output channel (they quote 44.0 M).
U2NET_FULL = U2NetWidths(
    encoder=((32, 64), (32, 128), (64, 256), (128, 512), (256, 512), (256, 512)),
    decoder=((256, 512), (128, 256), (64, 128), (32, 64), (16, 64)),
)
#: Qin et al.'s small U²-Net ("U2NETP"): 1,128,333 parameters with one output (they: 1.13 M).
U2NET_LITE = U2NetWidths.uniform(mid=16, out=64)
#: U²-XS-Net: Siebert & Rostalski narrowed U²-Net-lite until it stopped learning and report
#: 0.29 M parameters without listing widths. Halving every lite width, (mid, out) = (8, 32),
#: gives 290,108 parameters in MT mode (4 output channels): 0.29 M to the thousand.
U2NET_XS = U2NetWidths.uniform(mid=8, out=32)


def u2net_mode_lesions(mode: U2NetMode) -> list[tuple[str, ...]]:
    """Lesion groups of Siebert & Rostalski's training modes, one tuple per model to build.

    ``"ST"``: one single-channel model per lesion; ``"DT"``: a red-lesion (MA, HE) and a
    bright-lesion (EX, SE) model; ``"MT"``: one model for all four lesions.
    """
    if mode == "ST":
        return [(code,) for code in SEGMENTATION_LESIONS]
    if mode == "DT":
        return [RED_LESIONS, BRIGHT_LESIONS]
    if mode == "MT":
        return [SEGMENTATION_LESIONS]
    raise ValueError(f"unknown U²-Net mode {mode!r}; expected 'ST', 'DT' or 'MT'")


class U2Net(DRModel):
    """U²-Net lesion segmenter with per-class sigmoid outputs.

    Args:
        widths: stage widths (``U2NET_FULL``, ``U2NET_LITE``, ``U2NET_XS`` or custom).
        lesions: lesion codes, one output channel each (see ``u2net_mode_lesions``).

    ``forward`` returns ``lesion_logits`` = the fused map (B, C, H, W) and ``side_outputs`` =
    the six side maps (from De1, De2, De3, De4, De5, En6, in that order), each resized to
    (B, C, H, W), all logits. Grades and ``embedding`` are ``None``: the network is trained
    with mask losses only, so a pooled code of its features would carry no trained meaning.
    Explainers hook En6 (``encoder.5``, stride 32) and En3 (``encoder.2``, stride 4).
    """

    lesion_activation = "sigmoid"

    def __init__(self, widths: U2NetWidths, lesions: Sequence[str] = SEGMENTATION_LESIONS) -> None:
        super().__init__()
        if not lesions:
            raise ValueError("U2Net needs at least one lesion class")
        unknown = sorted(set(lesions) - set(LESION_BY_CODE))
        if unknown:
            raise ValueError(f"unknown lesion codes {unknown}; known: {sorted(LESION_BY_CODE)}")
        if len(widths.encoder) != 6 or len(widths.decoder) != 5:
            raise ValueError("U2NetWidths needs 6 encoder and 5 decoder (mid, out) pairs")
        self.lesion_classes = tuple(lesions)
        num_classes = len(self.lesion_classes)

        enc_out = [out for _, out in widths.encoder]
        in_channels = [3, *enc_out[:-1]]
        self.encoder = nn.ModuleList(
            RSU(height, c_in, mid, out, dilated)
            for height, dilated, c_in, (mid, out) in zip(
                _ENCODER_HEIGHTS, _ENCODER_DILATED, in_channels, widths.encoder
            )
        )
        # De_k takes [deeper result, En_k]; the deeper result of De5 is En6.
        deeper = [enc_out[5], *(out for _, out in widths.decoder[:-1])]
        self.decoder = nn.ModuleList(
            RSU(height, c_deep + c_skip, mid, out, dilated)
            for height, dilated, c_deep, c_skip, (mid, out) in zip(
                _ENCODER_HEIGHTS[4::-1],
                _ENCODER_DILATED[4::-1],
                deeper,
                enc_out[4::-1],
                widths.decoder,
            )
        )
        side_in = [out for _, out in reversed(widths.decoder)] + [enc_out[5]]
        self.side = nn.ModuleList(nn.Conv2d(c, num_classes, 3, padding=1) for c in side_in)
        self.fuse = nn.Conv2d(6 * num_classes, num_classes, 1)
        self.explain_layers = ExplainLayers(low="encoder.2", high="encoder.5")

    def forward(self, images: Tensor) -> ModelOutput:
        """(B, 3, H, W) -> ``ModelOutput`` with ``lesion_logits`` and six ``side_outputs``."""
        size = images.shape[-2:]
        skips: list[Tensor] = []
        h = images
        for i, stage in enumerate(self.encoder):
            h = stage(h if i == 0 else _pool(h))
            skips.append(h)
        features = [h]  # En6, then De5 ... De1
        for stage, skip in zip(self.decoder, reversed(skips[:-1])):
            h = stage(upsample_concat(h, skip))
            features.append(h)
        # De1 is already at input size; the other side maps are resized up to it.
        sides = tuple(
            side(f) if i == 0 else resize(side(f), size)
            for i, (side, f) in enumerate(zip(self.side, reversed(features)))
        )
        return ModelOutput(lesion_logits=self.fuse(torch.cat(sides, dim=1)), side_outputs=sides)


def _u2net_factory(name: str, widths: U2NetWidths, what: str) -> Callable[..., U2Net]:
    """The registered factory of the configuration ``widths`` (one for each of the three)."""

    def factory(
        lesions: Sequence[str] = SEGMENTATION_LESIONS,
        width_multiplier: float = 1.0,
        pretrained: bool = False,
    ) -> U2Net:
        require_no_pretrained(name, pretrained, kind="model")
        return U2Net(widths.scaled(width_multiplier), lesions)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"{what}: one sigmoid channel per code of ``lesions``; ``width_multiplier`` scales every "
        "stage width (1.0: the published widths). No offline weights (``pretrained=False``)."
    )
    return factory


u2net = register_model(
    "u2net",
    paper=_QIN,
    description="Full U²-Net (RSU-7/6/5/4/4F/4F encoder, 5 RSU decoder stages, 6 side outputs "
    "+ fused), sigmoid lesion maps; the U²-Net (ST) baseline of Siebert & Rostalski",
    tiny={"width_multiplier": 1 / 16},
)(_u2net_factory("u2net", U2NET_FULL, "Full U²-Net"))

u2net_lite = register_model(
    "u2net_lite",
    paper=_QIN,
    description="U²-Net-lite (Qin et al.'s small 'U2NETP': every RSU stage 16 mid / 64 out "
    "channels), sigmoid lesion maps",
    tiny={"width_multiplier": 1 / 8},
)(_u2net_factory("u2net_lite", U2NET_LITE, "U²-Net-lite"))

u2net_xs = register_model(
    "u2net_xs",
    paper=_SIEBERT,
    description="U²-XS-Net (every RSU stage 8 mid / 32 out channels, 0.29 M parameters in MT "
    "mode), sigmoid lesion maps; ST / DT / MT via `lesions` and u2net_mode_lesions",
    tiny={"width_multiplier": 1 / 4},
)(_u2net_factory("u2net_xs", U2NET_XS, "U²-XS-Net"))
