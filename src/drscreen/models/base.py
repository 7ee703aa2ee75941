"""Base classes of the model contract: ``DRModel`` (whole networks) and ``Encoder`` (backbones)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from drscreen.models.output import ModelOutput
from drscreen.preprocess.normalization import IMAGENET, Normalization


@dataclass(frozen=True)
class ExplainLayers:
    """Dotted module names (``model.get_submodule(name)``) that saliency methods hook.

    ``high`` is the last spatial feature map before the grading head (CAM / Grad-CAM layer);
    ``low`` is an earlier, higher-resolution one, fused with ``high`` by GMSM (ELLG paper, eq. 3).
    """

    low: str
    high: str


class Encoder(nn.Module):
    """A backbone returning a pyramid of feature maps, shallow to deep.

    Subclasses set ``out_channels`` and ``reductions`` (stride of each map relative to the
    input, e.g. ``(2, 4, 8, 16, 32)``), ``feature_modules`` (dotted name, relative to the
    encoder, of the submodule whose output IS each map: a model holding the encoder as
    ``self.encoder`` names ``f"encoder.{feature_modules[i]}"`` in its ``ExplainLayers``) and the
    ``normalization`` their weights expect.
    ``forward(x)`` takes (B, 3, H, W) (more channels where the encoder was built for them) and
    returns a list of (B, out_channels[i], H/r_i, W/r_i).
    """

    out_channels: tuple[int, ...]
    reductions: tuple[int, ...]
    feature_modules: tuple[str, ...]
    normalization: Normalization = IMAGENET

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class DRModel(nn.Module):
    """Base class of every registered model.

    Subclasses set:
        lesion_classes: lesion codes of ``lesion_logits`` channels (from ``drscreen.grading``),
            empty when the model segments nothing.
        lesion_activation: ``"sigmoid"`` (independent per-class maps) or ``"softmax"``
            (mutually exclusive classes, channel 0 is background).
        explain_layers: the layers saliency methods hook.
        normalization: input normalisation the model expects (from its encoder).
    ``forward(images)`` takes normalised (B, 3, H, W) float images and returns ``ModelOutput``.
    """

    lesion_classes: tuple[str, ...] = ()
    lesion_activation: Literal["sigmoid", "softmax"] = "sigmoid"
    explain_layers: ExplainLayers
    normalization: Normalization = IMAGENET

    def forward(self, images: Tensor) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError
