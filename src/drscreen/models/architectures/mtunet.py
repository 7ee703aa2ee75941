"""MTUnet: a VGG-16 U-Net that segments lesions and grades DR, with the paper's variants A, B, C.

Reference: Alex Foo, Wynne Hsu, Mong Li Lee, Gilbert Lim and Tien Yin Wong, "Multi-task
learning for diabetic retinopathy grading and lesion segmentation" (AAAI 2020).

The encoder is VGG-16; the map in front of each of its max-pools is a skip connection. The
decoder mirrors VGG-16 (same number of conv layers per block, same widths, in reverse order),
climbs one level per max-pool with a stride-2 transposed convolution, and ends in a per-pixel
softmax over the lesion classes plus background. The paper compares three places for the DR
grading output:

* ``"A"``: on the last decoder map, so the grading loss trains decoder and encoder;
* ``"B"``: two steps, segmentation first, then a separate grading network that reads the image
  together with the predicted lesion probabilities;
* ``"C"`` (the proposed MTUnet): on the encoder's last block, so the grading loss reaches the
  encoder only while the segmentation loss trains both.

The grading head is global max pooling followed by one dense layer in every variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drscreen.grading import NUM_DR_GRADES, SEGMENTATION_CLASSES
from drscreen.models.base import DRModel, Encoder, ExplainLayers
from drscreen.models.encoders.vgg import VGG16_BLOCKS
from drscreen.models.layers import ConvBNReLU, ceil_size
from drscreen.models.output import ModelOutput
from drscreen.models.registry import create_encoder, register_model

VARIANTS: tuple[str, ...] = ("A", "B", "C")
#: The encoders MTUnet's ``width`` can scale.
VGG_ENCODERS: tuple[str, ...] = ("vgg16", "vgg16_bn")


def vgg_conv(in_channels: int, out_channels: int, batch_norm: bool) -> nn.Module:
    """A decoder conv: (B, C_in, H, W) -> (B, C_out, H, W).

    3x3 "same" conv (with bias) + ReLU as in VGG, or ``ConvBNReLU`` when ``batch_norm``.
    """
    if batch_norm:
        return ConvBNReLU(in_channels, out_channels)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True))


class DecoderStage(nn.Module):
    """x2 transposed conv, concatenation with the skip map (if any), then VGG-style convs.

    (B, in_channels, h, w) [+ skip (B, skip_channels, *size)] -> (B, out_channels, *size), where
    ``size`` is within one pixel of (2h, 2w): the upsampled map is zero-padded or cropped at the
    bottom/right to it, so inputs of any size decode back to their exact size.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        num_convs: int,
        batch_norm: bool,
    ) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        conv_inputs = [out_channels + skip_channels] + [out_channels] * (num_convs - 1)
        self.convs = nn.Sequential(*(vgg_conv(c, out_channels, batch_norm) for c in conv_inputs))

    def forward(self, x: Tensor, skip: Tensor | None, size: Sequence[int]) -> Tensor:
        """(B, C_in, h, w), optional skip (B, C_skip, *size) -> (B, out_channels, *size)."""
        x = self.up(x)
        x = F.pad(x, (0, size[-1] - x.shape[-1], 0, size[-2] - x.shape[-2]))
        return self.convs(x if skip is None else torch.cat([x, skip], dim=1))


class MirroredVGGDecoder(nn.Module):
    """U-Net decoder mirroring VGG-16 over a 5-level encoder pyramid.

    It starts from the deepest map max-pooled once more (VGG-16's fifth pool, which the
    encoders leave out), then stage ``k`` climbs to level ``4 - k``: transposed conv to that
    level's channels, concatenation with its map, and as many convs as VGG-16's block at that
    level (3, 3, 3, 2, 2). An encoder whose first level is not at full resolution (stride 2 for
    ResNet, DenseNet, EfficientNet) gets extra skip-less stages up to the input resolution.
    With VGG-16 there is one transposed conv per encoder max-pool (5) and as many decoder as
    encoder convs (13). Output: (B, out_channels[0], H, W).
    """

    def __init__(
        self, out_channels: Sequence[int], reductions: Sequence[int], *, batch_norm: bool = False
    ) -> None:
        super().__init__()
        levels = len(VGG16_BLOCKS)
        doubling = all(b == 2 * a for a, b in zip(reductions, reductions[1:]))
        if len(out_channels) != levels or not doubling or reductions[0] & (reductions[0] - 1):
            raise ValueError(
                f"MTUnet needs a {levels}-level encoder with strides doubling from a power of two, "
                f"got reductions {tuple(reductions)}"
            )
        self.pool = nn.MaxPool2d(2)
        stages = []
        in_channels = out_channels[-1]
        for level in reversed(range(levels)):
            channels, num_convs = out_channels[level], len(VGG16_BLOCKS[level])
            stages.append(DecoderStage(in_channels, channels, channels, num_convs, batch_norm))
            in_channels = channels
        self.num_skipless = reductions[0].bit_length() - 1
        stages += [
            DecoderStage(in_channels, 0, in_channels, len(VGG16_BLOCKS[0]), batch_norm)
            for _ in range(self.num_skipless)
        ]
        self.stages = nn.ModuleList(stages)
        self.out_channels = in_channels

    def forward(self, features: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        """Encoder maps (shallow to deep) and the input's (H, W) -> (B, out_channels, H, W)."""
        x = self.pool(features[-1])
        skips: list[Tensor | None] = [*reversed(features), *([None] * self.num_skipless)]
        sizes = [tuple(f.shape[-2:]) for f in reversed(features)]
        sizes += [ceil_size(size, 2**k) for k in reversed(range(self.num_skipless))]
        for stage, skip, target in zip(self.stages, skips, sizes):
            x = stage(x, skip, target)
        return x


@register_model(
    "mtunet",
    paper=(
        "Foo, Hsu, Lee, Lim, Wong: Multi-task learning for diabetic retinopathy grading and "
        "lesion segmentation (AAAI 2020)"
    ),
    description=(
        "VGG-16 U-Net with a VGG-mirrored transposed-conv decoder (softmax lesion + optic-disc "
        "masks) and a global-max-pool + dense DR head; variant='A' | 'B' | 'C' (default C: "
        "grading on the encoder)"
    ),
    tiny={"width": 0.125},
    min_input_size=32,
)
class MTUnet(DRModel):
    """MTUnet (Foo et al.) with the grading output placed as in variant A, B or C.

    Input (B, 3, H, W) -> ``lesion_logits`` (B, 1 + len(lesion_classes), H, W) (softmax,
    channel 0 background), ``dr_logits`` (B, 5), ``embedding`` = the max-pooled vector the
    dense layer reads (B, D). Any input of at least 32 x 32 (64 x 64 with stride-32 encoders)
    decodes back to exactly (H, W).

    Paper-faithfulness choices:
        * Classes: the paper's segmentation output has 5 channels and its figures show optic
          disc as well as red and yellow lesions, so the default classes are the 5 IDRiD
          structures (MA, HE, EX, SE, OD), plus the background channel our softmax contract
          needs. Grading uses the 5 ICDR grades, as in the paper.
        * Variant B: the grading network is a second VGG-16 (same width) reading the image
          concatenated with the predicted class probabilities. The probabilities are detached,
          so the grading loss never updates the U-Net: one joint training run behaves like the
          paper's two separate steps (segmentation, then grading).
        * The decoder has no batch norm by default (plain VGG-16, as the paper argues BN hurts
          red-lesion detection).

    Args:
        encoder: registered encoder name (paper: ``"vgg16"``); any 5-level encoder whose
            strides double works.
        encoder_kwargs: extra settings of that encoder, passed to ``create_encoder`` (the VGG
            width is ``width``, not an entry here).
        pretrained: passed to the encoder.
        variant: ``"A"``, ``"B"`` or ``"C"``.
        lesion_classes: lesion codes after the background channel.
        width: channel multiplier of the VGG-16s: the encoder's ``width`` (values other than 1
            need ``encoder`` ``"vgg16"`` or ``"vgg16_bn"``) and variant B's grader's. The
            decoder follows the encoder's channels.
        batch_norm: BN in the layers MTUnet builds itself (decoder; variant B's grader is then
            ``vgg16_bn``, else ``vgg16``).
    """

    lesion_activation = "softmax"

    def __init__(
        self,
        encoder: str = "vgg16",
        *,
        encoder_kwargs: dict[str, Any] | None = None,
        pretrained: bool = False,
        variant: Literal["A", "B", "C"] = "C",
        lesion_classes: Sequence[str] = SEGMENTATION_CLASSES,
        width: float = 1.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.variant = variant
        self.lesion_classes = tuple(lesion_classes)
        self.encoder = _build_encoder(encoder, encoder_kwargs, pretrained, width)
        self.normalization = self.encoder.normalization
        self.decoder = MirroredVGGDecoder(
            self.encoder.out_channels, self.encoder.reductions, batch_norm=batch_norm
        )
        num_outputs = len(self.lesion_classes) + 1
        self.segmentation_head = nn.Conv2d(self.decoder.out_channels, num_outputs, kernel_size=1)
        encoder_maps = self.encoder.feature_modules
        self.grader: Encoder | None = None
        if variant == "A":
            grading_channels = self.decoder.out_channels
            last_stage = len(self.decoder.stages) - 1
            self.explain_layers = ExplainLayers(
                low=f"encoder.{encoder_maps[0]}", high=f"decoder.stages.{last_stage}"
            )
        elif variant == "B":
            grader = "vgg16_bn" if batch_norm else "vgg16"
            self.grader = create_encoder(grader, width=width, in_channels=3 + num_outputs)
            grading_channels = self.grader.out_channels[-1]
            grader_maps = self.grader.feature_modules
            self.explain_layers = ExplainLayers(
                low=f"grader.{grader_maps[-2]}", high=f"grader.{grader_maps[-1]}"
            )
        else:
            grading_channels = self.encoder.out_channels[-1]
            self.explain_layers = ExplainLayers(
                low=f"encoder.{encoder_maps[-2]}", high=f"encoder.{encoder_maps[-1]}"
            )
        self.grading_head = nn.Linear(grading_channels, NUM_DR_GRADES)

    def forward(self, images: Tensor) -> ModelOutput:
        """(B, 3, H, W) normalised images -> ``ModelOutput`` (see the class docstring)."""
        features = self.encoder(images)
        decoded = self.decoder(features, images.shape[-2:])
        lesion_logits = self.segmentation_head(decoded)
        if self.grader is not None:
            masks = lesion_logits.softmax(dim=1).detach()
            grading_map = self.grader(torch.cat([images, masks], dim=1))[-1]
        elif self.variant == "A":
            grading_map = decoded
        else:
            grading_map = features[-1]
        embedding = grading_map.amax(dim=(2, 3))
        return ModelOutput(
            dr_logits=self.grading_head(embedding), lesion_logits=lesion_logits, embedding=embedding
        )


def _build_encoder(
    name: str, encoder_kwargs: dict[str, Any] | None, pretrained: bool, width: float
) -> Encoder:
    """The registered encoder ``name`` with ``encoder_kwargs``, VGG ones scaled by ``width``."""
    config = dict(encoder_kwargs or {})
    if "width" in config:
        raise ValueError("set MTUnet's width=, not encoder_kwargs['width'] (it sizes the grader)")
    if name in VGG_ENCODERS:
        config["width"] = width
    elif width != 1:
        raise ValueError(f"width != 1 needs encoder in {VGG_ENCODERS}, got {name!r}")
    return create_encoder(name, pretrained=pretrained, **config)
