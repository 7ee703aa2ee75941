"""SUNet (Tu et al.): F-Block wiring, ablation variants, LR-Net output; split-backbone baselines."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from drscreen.grading import SEGMENTATION_LESIONS
from drscreen.models import ExplainLayers, create_encoder, create_model
from drscreen.models.architectures.sunet import SUNet
from drscreen.models.encoders.common import encoder_stages
from drscreen.models.encoders.simple_cnn import TINY_WIDTHS
from drscreen.preprocess.normalization import HALF, IMAGENET

#: Small widths on the cheapest encoder; the paper's ResNet-34 is checked separately.
TINY: dict[str, Any] = {
    "encoder": "simple_cnn",
    "encoder_kwargs": {"widths": TINY_WIDTHS},
    "blend_channels": 8,
    "head_channels": 8,
    "lr_channels": 8,
}
SIZE = 64
#: What each of ResNet-34's 5 encoder stages is named after (stage 0 is conv1-bn1-relu).
RESNET_STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")


def tiny_sunet(**config: Any) -> SUNet:
    model = create_model("sunet", **{**TINY, **config})
    assert isinstance(model, SUNet)
    return model


def count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("tasks", "lesion_regularizer"),
    [(("dr", "dme"), True), (("dr",), True), (("dme",), False), (("dr", "dme"), False)],
)
def test_variant_outputs(tasks: tuple[str, ...], lesion_regularizer: bool) -> None:
    model = tiny_sunet(tasks=tasks, lesion_regularizer=lesion_regularizer, num_blend_steps=2)
    output = model(torch.randn(2, 3, SIZE, SIZE))
    assert (output.dr_logits is None) == ("dr" not in tasks)
    assert (output.dme_logits is None) == ("dme" not in tasks)
    assert (model.dr_head is None) == ("dr" not in tasks)
    assert (model.dme_head is None) == ("dme" not in tasks)
    if output.dr_logits is not None:
        assert output.dr_logits.shape == (2, 5)
    if output.dme_logits is not None:
        assert output.dme_logits.shape == (2, 3)
    assert output.embedding is not None and output.embedding.shape == (2, TINY["blend_channels"])
    if lesion_regularizer:
        assert model.lesion_classes == SEGMENTATION_LESIONS and model.lesion_activation == "softmax"
        assert output.lesion_logits is not None
        assert output.lesion_logits.shape == (2, 1 + len(SEGMENTATION_LESIONS), SIZE, SIZE)
    else:
        assert output.lesion_logits is None and model.lesion_classes == ()
        assert model.lr_net is None and model.blend.fuse_l is None
        assert model.blend.steps[-1].lesion is None  # its map would have no consumer
    outputs = (output.dr_logits, output.dme_logits, output.lesion_logits, output.embedding)
    torch.stack([t.sum() for t in outputs if t is not None]).sum().backward()
    assert all(p.grad is not None for p in model.parameters()), "unused parameters"


def test_single_task_variants_drop_the_other_head() -> None:
    both, dr_only, dme_only = (
        count(tiny_sunet(tasks=tasks)) for tasks in (("dr", "dme"), ("dr",), "dme")
    )
    reference = tiny_sunet()
    assert both - dr_only == count(reference.dme_head)
    assert both - dme_only == count(reference.dr_head)


@pytest.mark.parametrize("tasks", [(), ("dr", "grading")])
def test_unknown_tasks_are_rejected(tasks: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="tasks"):
        tiny_sunet(tasks=tasks)


@pytest.mark.parametrize("num_steps", [1, 2, 3])
def test_blend_block_fuses_every_step(num_steps: int) -> None:
    model = tiny_sunet(num_blend_steps=num_steps).eval()
    blend, width = model.blend, TINY["blend_channels"]
    assert len(blend.steps) == num_steps
    assert [s.union is not None for s in blend.steps] == [True] * (num_steps - 1) + [False]
    assert blend.fuse_d is not None and blend.fuse_l is not None
    assert blend.fuse_d[0].in_channels == blend.fuse_l[0].in_channels == num_steps * width

    seen: dict[str, Tensor] = {}
    for j, step in enumerate(blend.steps):
        for part in ("lesion", "diagnosis", "union"):
            if getattr(step, part) is not None:
                getattr(step, part).register_forward_hook(
                    lambda _m, _i, out, key=f"{part}{j}": seen.setdefault(key, out)
                )
    images = torch.randn(1, 3, SIZE, SIZE)
    lesion, diagnosis = blend(model.encoder(images)[-1])
    assert lesion is not None
    for j in range(num_steps):
        # L and D read L_j and D_j of every step, the last one included
        for fused, part in ((lesion, "lesion"), (diagnosis, "diagnosis")):
            (gradient,) = torch.autograd.grad(fused.sum(), seen[f"{part}{j}"], retain_graph=True)
            assert gradient.abs().sum() > 0, (part, j)
    for j in range(num_steps - 1):
        # U blends the concatenation [L_j; D_j] into M_{j+1}, which both layers of S_{j+1} read
        union = blend.steps[j].union
        assert union is not None and union[0].in_channels == 2 * width
        expected = union(torch.cat([seen[f"lesion{j}"], seen[f"diagnosis{j}"]], dim=1))
        torch.testing.assert_close(seen[f"union{j}"], expected)
        next_diagnosis = blend.steps[j + 1].diagnosis(expected)
        torch.testing.assert_close(next_diagnosis, seen[f"diagnosis{j + 1}"])


def test_each_extra_step_adds_the_same_parameters() -> None:
    sizes = [count(tiny_sunet(num_blend_steps=n).blend) for n in (1, 2, 3, 4)]
    width = TINY["blend_channels"]
    conv_bn = 9 * width * width + 2 * width  # one 3x3 conv-BN-ReLU at this width
    # a step (SL, SD) + the union before it (3x3 over 2 * width) + two more fuse inputs
    per_step = 2 * conv_bn + (9 * 2 * width * width + 2 * width) + 2 * width * width
    assert sizes[2] - sizes[1] == sizes[3] - sizes[2] == per_step


@pytest.mark.parametrize(("stride", "size"), [(1, (64, 96)), (4, (16, 24)), (32, (2, 3))])
def test_lesion_stride(stride: int, size: tuple[int, int]) -> None:
    model = tiny_sunet(lesion_stride=stride, tasks="dr")
    output = model(torch.randn(1, 3, 64, 96))
    assert output.lesion_logits is not None and output.lesion_logits.shape[-2:] == size
    assert len(model.lr_net.stages) == {1: 5, 4: 3, 32: 0}[stride]  # type: ignore[union-attr]


def test_lesion_output_keeps_odd_input_sizes() -> None:
    output = tiny_sunet(num_blend_steps=1)(torch.randn(1, 3, 70, 90))
    assert output.lesion_logits is not None and output.lesion_logits.shape[-2:] == (70, 90)


@pytest.mark.parametrize("stride", [0, 3, 64])
def test_bad_lesion_stride(stride: int) -> None:
    with pytest.raises(ValueError, match="lesion_stride"):
        tiny_sunet(lesion_stride=stride)


def test_paper_backbone_by_default_and_any_encoder_by_name() -> None:
    paper = create_model("sunet", **{**TINY, "encoder": "resnet34", "encoder_kwargs": None})
    assert paper.normalization == IMAGENET and paper.blend.steps[0].diagnosis[0].in_channels == 512
    assert paper.explain_layers == ExplainLayers(low="encoder.layer3", high="blend.fuse_d")
    with torch.device("meta"):
        assert type(create_model("sunet").encoder).__name__ == "ResNet34Encoder"
    model = tiny_sunet(
        encoder="efficientnet_lite0", encoder_kwargs=None, lesion_classes=("EX", "HE", "OD")
    )
    assert model.normalization == HALF
    assert model.explain_layers.low == "encoder.backbone.blocks.4"
    output = model(torch.randn(2, 3, SIZE, SIZE))
    assert output.lesion_logits is not None and output.lesion_logits.shape == (2, 4, SIZE, SIZE)


# --- the early / middle / late split baselines -------------------------------------------------


@pytest.mark.parametrize(
    ("split", "shared_stages"),
    [
        ("early", ["conv1", "layer1"]),
        ("middle", ["conv1", "layer1", "layer2"]),
        ("late", ["conv1", "layer1", "layer2", "layer3"]),
    ],
)
def test_split_shares_exactly_the_leading_stages(split: str, shared_stages: list[str]) -> None:
    with torch.device("meta"):  # parameter bookkeeping only: no weights needed
        model = create_model("multitask_split", split=split)
        resnet = create_encoder("resnet34")
    stages = {name: count(stage) for name, stage in zip(RESNET_STAGES, encoder_stages(resnet))}
    shared = sum(stages[name] for name in shared_stages)
    branch = sum(stages.values()) - shared
    assert len(model.shared) == len(shared_stages) and count(model.shared) == shared
    assert count(model.dr_branch) == count(model.dme_branch) == branch
    heads = count(model.dr_head) + count(model.dme_head)
    assert count(model) == count(resnet) + branch + heads
    dr_ids = {id(p) for p in model.dr_branch.parameters()}
    assert dr_ids.isdisjoint(id(p) for p in model.dme_branch.parameters())


def test_split_branches_train_separately() -> None:
    model = create_model("multitask_split", split="late")
    trunk = model.shared(torch.randn(2, 3, 32, 32))
    assert trunk.shape[1:] == (256, 2, 2)  # shared up to layer3 (stride 16)
    output = model(torch.randn(2, 3, 32, 32))
    assert output.dr_logits is not None and output.dr_logits.shape == (2, 5)
    assert output.dme_logits is not None and output.dme_logits.shape == (2, 3)
    assert output.lesion_logits is None and output.embedding is not None
    assert output.embedding.shape == (2, 2 * 512)
    # the DME loss trains the shared trunk and its own branch, never the DR branch
    output.dme_logits.sum().backward()
    assert all(p.grad is not None for p in model.shared.parameters())
    assert all(p.grad is not None for p in model.dme_branch.parameters())
    assert all(p.grad is None for p in model.dr_branch.parameters())


def test_bad_split() -> None:
    with pytest.raises(ValueError, match="split"):
        create_model("multitask_split", split="halfway")
