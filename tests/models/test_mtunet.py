"""MTUnet (Foo et al.): softmax lesion output, VGG-mirrored decoder, where variants A/B/C grade."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from drscreen.grading import SEGMENTATION_CLASSES
from drscreen.models import create_encoder, create_model
from drscreen.models.architectures.mtunet import MTUnet
from drscreen.models.encoders.simple_cnn import TINY_WIDTHS
from drscreen.models.encoders.vgg import VGG16_BLOCKS, VGG16Encoder

WIDTH = 0.125
SIZE = 64
#: Parameters of the paper's MTUnet (variant C, VGG-16, 5 IDRiD classes + background).
MTUNET_PARAMS = 39_295_243


def tiny_mtunet(**config: Any) -> MTUnet:
    model = create_model("mtunet", **{"width": WIDTH, **config})
    assert isinstance(model, MTUnet)
    return model


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def convs(module: nn.Module, kind: type[nn.Module] = nn.Conv2d) -> list[nn.Module]:
    return [m for m in module.modules() if type(m) is kind]


@pytest.mark.parametrize("variant", ["A", "B", "C"])
def test_softmax_lesion_output_at_input_resolution(variant: str) -> None:
    model = tiny_mtunet(variant=variant)
    assert model.lesion_activation == "softmax" and model.lesion_classes == SEGMENTATION_CLASSES
    for size in ((SIZE, SIZE), (67, 75)):
        output = model(torch.randn(2, 3, *size))
        assert output.lesion_logits is not None
        assert output.lesion_logits.shape == (2, len(SEGMENTATION_CLASSES) + 1, *size)
        assert output.dr_logits is not None and output.dr_logits.shape == (2, 5)
        assert output.embedding is not None and output.embedding.shape[0] == 2
        assert output.dme_logits is None


def test_lesion_classes_are_configurable() -> None:
    model = tiny_mtunet(lesion_classes=("EX", "SE"))
    output = model(torch.randn(1, 3, SIZE, SIZE))
    assert output.lesion_logits is not None and output.lesion_logits.shape[1] == 3


def test_decoder_mirrors_vgg16() -> None:
    with torch.device("meta"):  # the paper's full-width network; structure only
        model = create_model("mtunet")
    assert isinstance(model.encoder, VGG16Encoder)
    pools = [m for m in model.encoder.modules() if isinstance(m, nn.MaxPool2d)]
    # one transposed conv per VGG-16 max-pool (4 in the encoder + the dropped fifth)
    assert len(convs(model.decoder, nn.ConvTranspose2d)) == len(pools) + 1 == 5
    assert len(convs(model.decoder)) == len(convs(model.encoder)) == 13
    stages = model.decoder.stages
    assert [len(stage.convs) for stage in stages] == [len(block) for block in VGG16_BLOCKS[::-1]]
    assert [stage.up.out_channels for stage in stages] == [512, 512, 256, 128, 64]
    assert [stage.convs[0][0].in_channels for stage in stages] == [1024, 1024, 512, 256, 128]
    assert model.segmentation_head.in_channels == 64


def test_slim_model_has_the_same_structure() -> None:
    model = tiny_mtunet()
    assert isinstance(model.encoder, VGG16Encoder)  # the registered encoder at width 1/8
    assert model.encoder.out_channels == (8, 16, 32, 64, 64)
    assert [stage.up.out_channels for stage in model.decoder.stages] == [64, 64, 32, 16, 8]
    assert len(convs(model.decoder)) == len(convs(model.encoder)) == 13


def test_parameter_count_at_default_width() -> None:
    with torch.device("meta"):
        model = create_model("mtunet")
        grader = create_encoder("vgg16", in_channels=3 + 6)
    assert count(model) == MTUNET_PARAMS
    assert count(model.encoder) == 14_714_688  # VGG-16's conv layers
    with torch.device("meta"):
        assert count(create_model("mtunet", variant="A")) == MTUNET_PARAMS - 512 * 5 + 64 * 5
        assert count(create_model("mtunet", variant="B")) == MTUNET_PARAMS + count(grader)


def grading_gradients(model: MTUnet) -> dict[str, bool]:
    """Which parts of ``model`` the DR grading loss reaches."""
    model.zero_grad()
    model(torch.randn(2, 3, SIZE, SIZE)).dr_logits.sum().backward()  # type: ignore[union-attr]
    parts: dict[str, nn.Module | None] = {
        "encoder": model.encoder,
        "decoder": model.decoder,
        "segmentation_head": model.segmentation_head,
        "grader": model.grader,
    }
    return {
        name: any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
        for name, part in parts.items()
        if part is not None
    }


def test_variant_a_grades_from_the_decoder_end() -> None:
    reached = grading_gradients(tiny_mtunet(variant="A"))
    assert reached == {"encoder": True, "decoder": True, "segmentation_head": False}


def test_variant_b_grades_in_a_second_step() -> None:
    model = tiny_mtunet(variant="B")
    assert isinstance(model.grader, VGG16Encoder)  # the registered encoder, same width
    assert model.grader.out_channels == model.encoder.out_channels
    first_conv = convs(model.grader)[0]
    assert isinstance(first_conv, nn.Conv2d) and first_conv.in_channels == 3 + 6
    assert model.explain_layers.high == "grader.features.29"
    reached = grading_gradients(model)
    unet = {"encoder": False, "decoder": False, "segmentation_head": False}
    assert reached == {**unet, "grader": True}


def test_batch_norm_reaches_the_layers_mtunet_builds() -> None:
    model = tiny_mtunet(variant="B", batch_norm=True)
    assert convs(model.decoder, nn.BatchNorm2d) and convs(model.grader, nn.BatchNorm2d)
    assert not convs(model.encoder, nn.BatchNorm2d)  # the encoder is the one named: vgg16
    output = model(torch.randn(2, 3, SIZE, SIZE))
    assert output.lesion_logits is not None and output.lesion_logits.shape[-2:] == (SIZE, SIZE)


def test_variant_c_grades_from_the_encoder_only() -> None:
    reached = grading_gradients(tiny_mtunet(variant="C"))
    assert reached == {"encoder": True, "decoder": False, "segmentation_head": False}


@pytest.mark.parametrize("variant", ["A", "B", "C"])
def test_explain_layers_feed_the_grade(variant: str) -> None:
    model = tiny_mtunet(variant=variant)
    maps: dict[str, Tensor] = {}
    for role in ("low", "high"):
        model.get_submodule(getattr(model.explain_layers, role)).register_forward_hook(
            lambda _m, _i, out, key=role: maps.setdefault(key, out)
        )
    dr_logits = model(torch.randn(1, 3, SIZE, SIZE)).dr_logits
    assert dr_logits is not None
    assert maps["low"].ndim == maps["high"].ndim == 4
    assert maps["low"].shape[-1] >= maps["high"].shape[-1]
    (gradient,) = torch.autograd.grad(dr_logits[:, 2].sum(), maps["high"])
    assert gradient.abs().sum() > 0


def test_other_encoder_decodes_to_input_resolution() -> None:
    model = create_model("mtunet", encoder="simple_cnn", encoder_kwargs={"widths": TINY_WIDTHS})
    assert model.encoder.out_channels == TINY_WIDTHS
    # stride-2 stem: one extra skip-less stage to reach full resolution
    assert len(convs(model.decoder, nn.ConvTranspose2d)) == 6
    for size in ((SIZE, SIZE), (70, 99)):
        output = model(torch.randn(1, 3, *size))
        assert output.lesion_logits is not None and output.lesion_logits.shape[-2:] == size


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"variant": "D"}, "variant"),
        ({"encoder": "resnet34", "width": 0.5}, "width"),
        ({"encoder": "vgg16", "encoder_kwargs": {"width": 0.5}}, "width"),
        ({"encoder": "vgg16", "width": 0.5, "pretrained": True}, "pretrained"),
    ],
)
def test_bad_configs(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_model("mtunet", **config)
