"""The model contract, checked on EVERY registered model built with its ``tiny`` config.

Shapes of ``ModelOutput`` at two input sizes, gradients reaching every parameter, saliency
hooks, ``torch.export``, checkpoints; plus checks of the default model (``drscreen_effnet``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drscreen.grading import NUM_DME_GRADES, NUM_DR_GRADES, SEGMENTATION_CLASSES
from drscreen.models import DRModel, ModelOutput, create_model, list_models
from drscreen.models.encoders.efficientnet_lite import efficientnet_lite_classifier
from drscreen.models.registry import MODELS
from drscreen.preprocess.normalization import Normalization
from drscreen.synth import generate_fundus

BATCH = 2
MODEL_NAMES = list_models()
#: Models built on a registered encoder chosen by name.
ENCODER_MODELS = [
    name
    for name in MODEL_NAMES
    if "encoder" in inspect.signature(MODELS.get(name).factory).parameters
]




def metadata(name: str) -> dict[str, Any]:
    return MODELS.get(name).metadata


def build_tiny(name: str, **overrides: Any) -> DRModel:
    return create_model(name, **{**metadata(name)["tiny"], **overrides})


def input_sizes(name: str) -> list[tuple[int, int]]:
    """Two (H, W), a square and a non-square one: the smallest multiples of the model's
    ``input_multiple`` (default 32) that are >= 64 and >= its ``min_input_size``."""
    meta = metadata(name)
    multiple = meta.get("input_multiple", 32)
    side = max(64, meta.get("min_input_size", 0))
    side = -(-side // multiple) * multiple
    return [(side, side), (side + multiple, side)]


def output_tensors(output: ModelOutput) -> list[Tensor]:
    """Every tensor of ``output``, side outputs included."""
    tensors = [t for t in (output.dr_logits, output.dr_score, output.dme_logits) if t is not None]
    tensors += [t for t in (output.lesion_logits, output.embedding) if t is not None]
    return tensors + list(output.side_outputs or ())


def saliency_target(output: ModelOutput) -> Tensor:
    """The first output a saliency method would explain."""
    for tensor in (output.dr_logits, output.dr_score, output.dme_logits, output.lesion_logits):
        if tensor is not None:
            return tensor
    raise AssertionError("the model outputs nothing to explain")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_registration_metadata(name: str) -> None:
    meta = metadata(name)
    assert "paper" in meta and (meta["paper"] is None or isinstance(meta["paper"], str))
    assert isinstance(meta.get("description"), str) and meta["description"]
    assert isinstance(meta.get("tiny"), dict), "register the model with tiny={...} kwargs"
    assert not meta["tiny"].get("pretrained", False)
    parameters = inspect.signature(MODELS.get(name).factory).parameters
    assert "pretrained" in parameters and parameters["pretrained"].default is False


@pytest.mark.parametrize("name", [name for name in MODEL_NAMES if name != "drscreen_effnet"])
def test_pretrained_without_offline_weights_is_a_clear_error(name: str) -> None:
    """Only EfficientNet-Lite weights ship offline; elsewhere ``pretrained=True`` says what to do."""
    with pytest.raises(ValueError, match="checkpoint="):
        build_tiny(name, pretrained=True)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_shapes(name: str) -> None:
    model = build_tiny(name).eval()
    assert isinstance(model, DRModel)
    assert isinstance(model.normalization, Normalization)
    assert model.lesion_activation in ("sigmoid", "softmax")
    channels = len(model.lesion_classes) + (model.lesion_activation == "softmax")
    reduction = metadata(name).get("lesion_reduction", 1)
    for height, width in input_sizes(name):
        with torch.no_grad():
            output = model(torch.randn(BATCH, 3, height, width))
        assert isinstance(output, ModelOutput)
        assert output_tensors(output), "every field is None"
        if output.dr_logits is not None:
            assert output.dr_logits.shape == (BATCH, NUM_DR_GRADES)
        if output.dr_score is not None:
            assert output.dr_score.shape == (BATCH,)
        if output.dme_logits is not None:
            assert output.dme_logits.shape == (BATCH, NUM_DME_GRADES)
        assert (output.lesion_logits is None) == (not model.lesion_classes)
        if output.lesion_logits is not None:
            lesion_size = (height // reduction, width // reduction)
            assert output.lesion_logits.shape == (BATCH, channels, *lesion_size)
        for side in output.side_outputs or ():
            assert side.ndim == 4 and side.shape[:2] == (BATCH, channels)
        if output.embedding is not None:
            assert output.embedding.ndim == 2 and output.embedding.shape[0] == BATCH
        for tensor in output_tensors(output):
            assert torch.isfinite(tensor).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_parameter_gets_a_gradient(name: str) -> None:
    model = build_tiny(name).train()
    height, width = input_sizes(name)[0]
    output = model(torch.randn(BATCH, 3, height, width))
    torch.stack([t.float().sum() for t in output_tensors(output)]).sum().backward()
    exempt = tuple(metadata(name).get("no_grad_params", ()))
    missing, non_finite = [], []
    for param_name, param in model.named_parameters():
        if not param.requires_grad or param_name.startswith(exempt):
            continue
        if param.grad is None:
            missing.append(param_name)
        elif not torch.isfinite(param.grad).all():
            non_finite.append(param_name)
    assert not missing, f"no gradient: {missing[:10]}"
    assert not non_finite, f"non-finite gradient: {non_finite[:10]}"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_explain_layers_hook_spatial_maps(name: str) -> None:
    model = build_tiny(name).eval()
    activations: dict[str, Tensor] = {}
    for role in ("low", "high"):
        module = model.get_submodule(getattr(model.explain_layers, role))
        module.register_forward_hook(lambda _m, _i, out, key=role: activations.setdefault(key, out))
    height, width = input_sizes(name)[0]
    output = model(torch.randn(BATCH, 3, height, width))
    for role in ("low", "high"):
        activation = activations[role]
        assert isinstance(activation, Tensor) and activation.ndim == 4, role
        assert activation.shape[0] == BATCH, role
    assert activations["low"].shape[-1] >= activations["high"].shape[-1]
    score = saliency_target(output).reshape(BATCH, -1)[:, 0].sum()
    gradient = torch.autograd.grad(score, activations["high"])[0]
    assert gradient.shape == activations["high"].shape


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_torch_export(name: str) -> None:
    model = build_tiny(name).eval()
    height, width = input_sizes(name)[0]
    images = torch.randn(1, 3, height, width)
    program = torch.export.export(model, (images,))
    with torch.no_grad():
        expected = output_tensors(model(images))
        exported = output_tensors(program.module()(images))
    assert len(exported) == len(expected)
    for actual, reference in zip(exported, expected):
        torch.testing.assert_close(actual, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    model = build_tiny(name)
    path = tmp_path / f"{name}.pth"
    torch.save({"model": model.state_dict()}, path)
    torch.manual_seed(1)
    loaded = create_model(name, checkpoint=path, **metadata(name)["tiny"])
    for (key, expected), actual in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(expected, actual), key


@pytest.mark.parametrize("name", ENCODER_MODELS)
def test_encoder_kwargs_reach_the_encoder(name: str) -> None:
    """``encoder_kwargs`` is passed to ``create_encoder`` (here: ``simple_cnn``'s widths)."""
    widths = (3, 5, 7, 9, 11)
    model = create_model(name, encoder="simple_cnn", encoder_kwargs={"widths": widths}).eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [conv.out_channels for conv in convs[: 2 * len(widths) : 2]] == list(widths)
    with torch.no_grad():
        assert output_tensors(model(torch.randn(1, 3, 64, 64)))


def test_default_model_heads_switch_off() -> None:
    model = build_tiny("drscreen_effnet", dme=False, lesions=False)
    output = model(torch.randn(1, 3, 64, 64))
    assert output.dme_logits is None and output.lesion_logits is None
    assert model.lesion_classes == ()
    assert output.dr_logits is not None and output.embedding is not None


def test_default_model_reuses_the_imagenet_features() -> None:
    """With pretrained weights the embedding is the ImageNet classifier's pooled features."""
    model = create_model("drscreen_effnet", pretrained=True).eval()
    classifier = efficientnet_lite_classifier(0, pretrained=True).eval()
    images = model.normalization(torch.rand(1, 3, 96, 96))
    with torch.no_grad():
        expected = classifier.forward_head(classifier.forward_features(images), pre_logits=True)
        torch.testing.assert_close(model(images).embedding, expected)


def synthetic_fundus_batch(count: int, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``count`` synthetic fundus images (B, 3, size, size) in [0, 1], their DR and DME grades
    and (B, 5, size, size) lesion masks, rendered at 128 px and reduced to ``size``."""
    samples = [
        generate_fundus(seed, 128, target_dr=seed % 5, target_dme=0 if seed % 5 < 2 else seed % 3)
        for seed in range(count)
    ]
    images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2) / 255
    masks = torch.from_numpy(
        np.stack([np.stack([s.masks[code] for code in SEGMENTATION_CLASSES]) for s in samples])
    ).float()
    dr = torch.tensor([s.dr_grade for s in samples])
    dme = torch.tensor([s.dme_grade for s in samples])
    images = F.interpolate(images.float(), size=size, mode="area")
    return images, dr, dme, F.adaptive_max_pool2d(masks, size)


def test_default_model_overfits_a_few_images() -> None:
    """20 Adam steps on 8 synthetic fundus images: the total loss falls 10x, the lesion loss too."""
    model = build_tiny("drscreen_effnet", dropout=0.0).train()
    images, dr, dme, masks = synthetic_fundus_batch(8, 64)
    images = model.normalization(images)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def losses() -> tuple[Tensor, Tensor]:
        output = model(images)
        grading = F.cross_entropy(output.dr_logits, dr) + F.cross_entropy(output.dme_logits, dme)
        return grading, F.binary_cross_entropy_with_logits(output.lesion_logits, masks)

    first_grading, first_lesion = (loss.item() for loss in losses())
    for _ in range(20):
        optimizer.zero_grad()
        grading, lesion = losses()
        (grading + lesion).backward()
        optimizer.step()
    grading, lesion = (loss.item() for loss in losses())
    assert grading + lesion < (first_grading + first_lesion) / 10
    assert lesion < 0.75 * first_lesion
