"""drscreen's default multi-task screening model (``drscreen_effnet``).

One EfficientNet-Lite encoder (ImageNet weights available offline) shared by three heads:

* DR grade: the ImageNet classifier's feature head (1x1 conv to 1280 channels, BN, ReLU6) on
  the deepest map, global average pooling -> dropout -> linear, 5 logits;
* DME risk: the same pooled vector -> dropout -> linear, 3 logits;
* lesions: a light U-Net decoder (upsample, concatenate the skip, 3x3 conv-BN-ReLU, from the
  deepest map up to the shallowest) and a 1x1 classifier, one sigmoid logit map per class of
  ``SEGMENTATION_CLASSES`` (MA, HE, EX, SE, OD), resized to the input.

The pooled vector is also the ``embedding``. Saliency hooks the feature head (``high``, the
last map before the grading heads) and the encoder's second-deepest map (``low``, stride 16
for the stride-32 encoders). Other encoders (``encoder="resnet34"``, ...) have no feature head:
their deepest map is pooled and hooked directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from drscreen.grading import NUM_DME_GRADES, NUM_DR_GRADES, SEGMENTATION_CLASSES
from drscreen.models.base import DRModel, Encoder, ExplainLayers
from drscreen.models.encoders.efficientnet_lite import (
    EfficientNetLiteEncoder,
    efficientnet_lite_head,
)
from drscreen.models.layers import ConvBNReLU, resize, upsample_concat
from drscreen.models.output import ModelOutput
from drscreen.models.registry import create_encoder, register_model


class LesionDecoder(nn.Module):
    """U-Net style decoder over an encoder pyramid, ending in one logit map per class.

    Step ``i`` upsamples the running map to the size of the ``i``-th deepest skip,
    concatenates the skip and applies a 3x3 conv-BN-ReLU of width ``channels[i]``.

    Args:
        encoder_channels: channels of the pyramid, shallow to deep.
        channels: decoder widths, deep to shallow, one per skip (``len(encoder_channels) - 1``).
        num_classes: output channels.
        prior: initial foreground probability of every pixel (sets the classifier bias; lesions
            are rare, so a small prior keeps the first losses sane).
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        channels: Sequence[int],
        num_classes: int,
        prior: float = 0.01,
    ) -> None:
        super().__init__()
        skips = list(encoder_channels[-2::-1])
        if len(channels) != len(skips):
            raise ValueError(
                f"decoder_channels needs {len(skips)} widths (one per skip), got {len(channels)}"
            )
        in_channels = [encoder_channels[-1], *channels[:-1]]
        self.blocks = nn.ModuleList(
            ConvBNReLU(c_in + c_skip, c_out)
            for c_in, c_skip, c_out in zip(in_channels, skips, channels)
        )
        self.classifier = nn.Conv2d(channels[-1], num_classes, kernel_size=1)
        nn.init.constant_(self.classifier.bias, -math.log((1 - prior) / prior))

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Pyramid (shallow to deep) -> (B, num_classes, h_0, w_0) at the shallowest map's size."""
        x = features[-1]
        for block, skip in zip(self.blocks, features[-2::-1]):
            x = block(upsample_concat(x, skip))
        return self.classifier(x)


@register_model(
    "drscreen_effnet",
    paper=None,
    description=(
        "drscreen's default: EfficientNet-Lite encoder (offline ImageNet weights), DR and DME "
        "heads on the pooled features, light U-Net decoder for MA/HE/EX/SE/OD maps"
    ),
    tiny={"decoder_channels": (8, 8, 8, 8)},
)
class DRScreenNet(DRModel):
    """Encoder + DR head + optional DME head + optional lesion decoder (``drscreen_effnet``).

    Args:
        encoder: a registered encoder name (``list_encoders()``).
        encoder_kwargs: extra settings of that encoder (e.g. ``{"widths": ...}`` for
            ``simple_cnn``), passed to ``create_encoder``.
        pretrained: load the encoder's offline ImageNet weights (EfficientNet-Lite only).
        dme: build the DME head (else ``dme_logits`` is ``None``).
        lesions: build the lesion decoder (else ``lesion_logits`` is ``None``).
        decoder_channels: decoder widths, deep to shallow, one per encoder level but the last.
        dropout: dropout before the grading heads.

    ``forward``: normalised (B, 3, H, W) -> ``ModelOutput`` with ``dr_logits`` (B, 5),
    ``dme_logits`` (B, 3), ``lesion_logits`` (B, 5, H, W) and ``embedding`` (B, D): D = 1280
    for EfficientNet-Lite encoders, the deepest map's channels for the others.
    """

    lesion_activation = "sigmoid"

    def __init__(
        self,
        encoder: str = "efficientnet_lite0",
        *,
        encoder_kwargs: dict[str, Any] | None = None,
        pretrained: bool = False,
        dme: bool = True,
        lesions: bool = True,
        decoder_channels: Sequence[int] = (128, 64, 32, 16),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.encoder: Encoder = create_encoder(
            encoder, pretrained=pretrained, **(encoder_kwargs or {})
        )
        self.normalization = self.encoder.normalization
        if isinstance(self.encoder, EfficientNetLiteEncoder):
            head = efficientnet_lite_head(self.encoder.variant, pretrained=pretrained)
            embed_dim = head[0].out_channels
            self.feature_head: nn.Module = head
            high = "feature_head"
        else:
            self.feature_head = nn.Identity()
            embed_dim = self.encoder.out_channels[-1]
            high = f"encoder.{self.encoder.feature_modules[-1]}"
        self.dropout = nn.Dropout(dropout)
        self.dr_head = nn.Linear(embed_dim, NUM_DR_GRADES)
        self.dme_head = nn.Linear(embed_dim, NUM_DME_GRADES) if dme else None
        self.lesion_decoder = (
            LesionDecoder(self.encoder.out_channels, decoder_channels, len(SEGMENTATION_CLASSES))
            if lesions
            else None
        )
        self.lesion_classes = SEGMENTATION_CLASSES if lesions else ()
        low = f"encoder.{self.encoder.feature_modules[-2]}"
        self.explain_layers = ExplainLayers(low=low, high=high)

    def forward(self, images: Tensor) -> ModelOutput:
        """Normalised (B, 3, H, W) -> ``ModelOutput`` (see the class docstring for shapes)."""
        features = self.encoder(images)
        embedding = self.feature_head(features[-1]).mean(dim=(2, 3))
        pooled = self.dropout(embedding)
        lesion_logits = None
        if self.lesion_decoder is not None:
            lesion_logits = resize(self.lesion_decoder(features), images.shape[-2:])
        return ModelOutput(
            dr_logits=self.dr_head(pooled),
            dme_logits=self.dme_head(pooled) if self.dme_head is not None else None,
            lesion_logits=lesion_logits,
            embedding=embedding,
        )
