"""drscreen.explain: saliency maths on hand-built models and tensors, targets, hooks, overlays."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from drscreen.explain import (
    CAM,
    GMSM,
    CAMNotApplicableError,
    DMETarget,
    DRGradeTarget,
    GradCAM,
    GradCAMPlusPlus,
    LesionTarget,
    ReferableTarget,
    RegressionTarget,
    SaliencyMethod,
    Target,
    TargetError,
    create_saliency,
    default_target,
    heatmap_overlay,
    list_saliency_methods,
    mask_overlay,
    saliency_grid,
    to_original_geometry,
)
from drscreen.explain.saliency import fuse_maps, gradcam_plus_plus_weights, weighted_sum
from drscreen.grading import lesion_color
from drscreen.models import DRModel, ExplainLayers, ModelOutput, create_model, list_models
from drscreen.models.registry import MODELS
from drscreen.preprocess.geometry import CropGeometry

METHODS = (CAM, GradCAM, GradCAMPlusPlus, GMSM)




class GAPNet(DRModel):
    """conv (stride 2) -> BN -> ReLU = ``features`` -> global average pool -> linear DR / DME heads.

    The setting where CAM is defined exactly; BN makes batch coupling visible in train mode.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True)
        )
        self.dr_head = nn.Linear(6, 5)
        self.dme_head = nn.Linear(6, 3)
        self.explain_layers = ExplainLayers(low="features.0", high="features")
        with torch.no_grad():
            self.features[1].running_mean.uniform_(-0.2, 0.2)
            self.features[1].running_var.uniform_(0.5, 2.0)

    def forward(self, images: Tensor) -> ModelOutput:
        pooled = self.features(images).mean(dim=(2, 3))
        return ModelOutput(dr_logits=self.dr_head(pooled), dme_logits=self.dme_head(pooled))


class MaxPoolNet(DRModel):
    """``features`` -> 3x3 conv -> global max pool -> linear: CAM does not apply."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(
            nn.Conv2d(4, 4, 3, padding=1), nn.AdaptiveMaxPool2d(1), nn.Flatten(1), nn.Linear(4, 5)
        )
        self.explain_layers = ExplainLayers(low="features.0", high="features")

    def forward(self, images: Tensor) -> ModelOutput:
        return ModelOutput(dr_logits=self.head(self.features(images)))


def minmax(maps: Tensor) -> Tensor:
    """Per-map min-max scaling of (B, H, W), written out independently of the library."""
    flat = maps.flatten(1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    return (maps - low[:, None, None]) / (high - low)[:, None, None]


def upsample(maps: Tensor, size: int) -> Tensor:
    resized = F.interpolate(maps[:, None], size=(size, size), mode="bilinear", align_corners=False)
    return resized[:, 0]


def hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())


# --------------------------------------------------------------------------- maths


def test_gradcam_and_cam_equal_closed_form_on_gap_linear_head() -> None:
    model = GAPNet()
    x = torch.randn(2, 3, 32, 32)
    grade = 3
    with torch.no_grad():
        features = model.eval().features(x)  # (2, 6, 16, 16)
        cam = torch.einsum("k,bkhw->bhw", model.dr_head.weight[grade], features)
    assert (cam < 0).any() and (cam > 0).any()  # so that the ReLU matters
    target = DRGradeTarget(grade)
    torch.testing.assert_close(CAM(model)(x, target), minmax(upsample(cam, 32)))
    torch.testing.assert_close(GradCAM(model)(x, target), minmax(upsample(cam.clamp_min(0), 32)))


def test_cam_of_referable_target_mixes_linear_weights_by_the_chain_rule() -> None:
    model = GAPNet()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        features = model.eval().features(x)
        p = model.dr_head(features.mean(dim=(2, 3))).softmax(dim=1)[0]
        referable = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0])
        dscore_dlogit = p * referable / (p * referable).sum() - p  # d log P(DR>=2) / d z_c
        weights = dscore_dlogit @ model.dr_head.weight
        cam = torch.einsum("k,bkhw->bhw", weights, features)
    torch.testing.assert_close(CAM(model)(x, ReferableTarget()), minmax(upsample(cam, 32)))


def test_layer_followed_by_an_in_place_op_is_recorded_before_it() -> None:
    model = GAPNet()  # features.1 (BN) feeds an in-place ReLU
    x = torch.randn(2, 3, 32, 32)
    grade = 1
    with torch.no_grad():
        bn = model.eval().features[:2](x)  # (2, 6, 16, 16), before the ReLU
        gradients = model.dr_head.weight[grade][None, :, None, None] * (bn > 0) / bn[0, 0].numel()
        expected = torch.einsum("bk,bkhw->bhw", gradients.mean(dim=(2, 3)), bn).clamp_min(0)
    maps = GradCAM(model, layers=["features.1"])(x, DRGradeTarget(grade))
    torch.testing.assert_close(maps, minmax(upsample(expected, 32)))


def test_cam_raises_where_the_head_is_not_gap_linear() -> None:
    with pytest.raises(CAMNotApplicableError, match="gradcam"):
        CAM(MaxPoolNet())(torch.randn(1, 3, 16, 16))


def test_gradcam_plus_plus_weights_on_a_hand_example() -> None:
    a = torch.tensor([[[[1.0, 0.0], [2.0, 1.0]], [[0.5, 0.5], [0.0, 1.0]]]])
    g = torch.tensor([[[[0.5, -1.0], [0.0, 2.0]], [[1.0, 0.25], [-0.5, 0.0]]]])
    expected = []
    for k in range(2):
        total = float(a[0, k].sum())
        w = 0.0
        for gij in g[0, k].flatten().tolist():
            if gij != 0:
                alpha = gij**2 / (2 * gij**2 + total * gij**3)
                w += alpha * max(gij, 0.0)
        expected.append(w)
    # channel 0, sum A = 4: 0.25 / 1 * 0.5 + 4 / 40 * 2 = 0.325
    # channel 1, sum A = 2: 1 / 4 * 1 + (1/16) / (1/8 + 2/64) * 0.25 = 0.35
    torch.testing.assert_close(gradcam_plus_plus_weights(a, g), torch.tensor([expected]))
    torch.testing.assert_close(torch.tensor(expected), torch.tensor([0.325, 0.35]))


def test_gmsm_gate_raises_values_below_t_then_normalises() -> None:
    a = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    g = torch.ones_like(a)
    # one channel, constant gradient 1, sum A = 7: alpha = 1 / 9 everywhere, w = 4 / 9
    raw = 4.0 / 9.0 * a[:, 0]
    t = 0.5
    gated = GMSM(GAPNet(), gate=t).layer_map(a, g)
    torch.testing.assert_close(gated, raw.clamp_min(t))
    assert (gated[raw < t] == t).all() and (raw < t).sum() == 2
    expected = (raw.clamp_min(t) - t) / (raw.max() - t)
    torch.testing.assert_close(fuse_maps([gated], (2, 2)), expected)
    assert fuse_maps([gated], (2, 2))[raw < t].eq(0).all()


def test_fusion_is_the_mean_of_normalised_maps() -> None:
    m1 = torch.tensor([[[0.0, 2.0], [4.0, 8.0]]])
    m2 = torch.tensor([[[-1.0, 1.0], [1.0, 3.0]]])
    expected = 0.5 * (m1 / 8.0 + (m2 + 1.0) / 4.0)
    torch.testing.assert_close(fuse_maps([m1, m2], (2, 2)), expected)
    coarse = torch.tensor([[[1.0, 3.0], [3.0, 5.0]]])
    torch.testing.assert_close(fuse_maps([coarse], (8, 8)), minmax(upsample(coarse, 8)))
    assert fuse_maps([torch.full((1, 3, 3), 7.0)], (3, 3)).eq(0).all()  # constant map -> zeros
    noisy = torch.full((1, 3, 3), 7.0)
    noisy[0, 1, 1] = torch.nextafter(torch.tensor(7.0), torch.tensor(8.0))  # one ulp of rounding
    assert fuse_maps([noisy], (3, 3)).eq(0).all()


def test_gmsm_on_a_model_averages_its_two_layer_maps() -> None:
    model = GAPNet()
    x = torch.randn(2, 3, 32, 32)
    low, high = model.explain_layers.low, model.explain_layers.high
    fused = GMSM(model, gate=0.0)(x)
    per_layer = [GMSM(model, layers=[name], gate=0.0)(x) for name in (low, high)]
    torch.testing.assert_close(fused, 0.5 * (per_layer[0] + per_layer[1]))
    # with t = 0 a single-layer GMSM is Grad-CAM++
    torch.testing.assert_close(per_layer[1], GradCAMPlusPlus(model)(x))


def test_weighted_sum_is_the_channel_contraction() -> None:
    w = torch.tensor([[2.0, -1.0]])
    a = torch.arange(8.0).view(1, 2, 2, 2)
    torch.testing.assert_close(weighted_sum(w, a), 2 * a[:, 0] - a[:, 1])


# --------------------------------------------------------------------------- method behaviour


@pytest.mark.parametrize("method", METHODS)
def test_maps_shape_range_batch_independence_and_cleanup(method: type[SaliencyMethod]) -> None:
    model = GAPNet().train()
    x = torch.randn(2, 3, 32, 32)
    maps = method(model)(x)
    assert maps.shape == (2, 32, 32) and maps.dtype == torch.float32
    assert maps.min() >= 0 and maps.max() <= 1 and torch.isfinite(maps).all()
    torch.testing.assert_close(maps[1:], method(model)(x[1:]))
    assert all(m.training for m in model.modules())  # mode restored
    assert hooks_left(model) == 0
    assert all(p.grad is None for p in model.parameters())


def test_cleanup_after_errors_and_no_grad_context() -> None:
    model = GAPNet().train()
    x = torch.randn(1, 3, 16, 16)
    with pytest.raises(TargetError, match="dr_score"):
        GradCAM(model)(x, RegressionTarget())
    with pytest.raises(TypeError, match="dr_head"):
        GradCAM(model, layers=["dr_head"])(x)
    assert hooks_left(model) == 0 and all(m.training for m in model.modules())
    with torch.no_grad():
        inside = GradCAM(model)(x)
    torch.testing.assert_close(inside, GradCAM(model)(x))


def test_unknown_layer_and_bad_input_are_rejected() -> None:
    with pytest.raises(ValueError, match="no layer"):
        GradCAM(GAPNet(), layers=["missing.layer"])
    with pytest.raises(ValueError, match="B, 3, H, W"):
        GradCAM(GAPNet())(torch.randn(3, 16, 16))


def test_target_choice_changes_the_map() -> None:
    model = GAPNet()
    x = torch.randn(1, 3, 32, 32)
    maps = [CAM(model)(x, DRGradeTarget(g)) for g in range(5)]
    assert not torch.allclose(maps[0], maps[4])
    dme = CAM(model)(x, DMETarget(1))
    with torch.no_grad():
        features = model.eval().features(x)
        expected = torch.einsum("k,bkhw->bhw", model.dme_head.weight[1], features)
    torch.testing.assert_close(dme, minmax(upsample(expected, 32)))


def test_registry_of_methods() -> None:
    assert list_saliency_methods() == ["cam", "gmsm", "gradcam", "gradcam++"]
    model = GAPNet()
    assert isinstance(create_saliency("gradcam++", model), GradCAMPlusPlus)
    gmsm = create_saliency("gmsm", model, gate=0.25)
    assert isinstance(gmsm, GMSM) and gmsm.gate == 0.25
    assert gmsm.layers == ("features.0", "features")
    assert create_saliency("cam", model).layers == ("features",)
    with pytest.raises(KeyError, match="gradcam"):
        create_saliency("gradcamm", model)


# --------------------------------------------------------------------------- targets


def test_targets_select_the_right_output() -> None:
    dr = torch.tensor([[0.0, 1.0, 3.0, 0.5, -1.0], [2.0, 0.0, 0.0, 0.0, 4.0]])
    dme = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 1.0]])
    out = ModelOutput(dr_logits=dr, dme_logits=dme, dr_score=torch.tensor([1.5, 3.2]))
    model: Any = SimpleNamespace(lesion_classes=(), lesion_activation="sigmoid")
    torch.testing.assert_close(DRGradeTarget(3)(out, model), dr[:, 3])
    torch.testing.assert_close(DRGradeTarget()(out, model), torch.tensor([3.0, 4.0]))
    torch.testing.assert_close(DMETarget(1)(out, model), dme[:, 1])
    torch.testing.assert_close(DMETarget()(out, model), torch.tensor([2.0, 3.0]))
    torch.testing.assert_close(ReferableTarget()(out, model), dr.softmax(1)[:, 2:].sum(1).log())
    torch.testing.assert_close(RegressionTarget()(out, model), torch.tensor([1.5, 3.2]))
    assert isinstance(default_target(out, model), DRGradeTarget)
    assert isinstance(default_target(ModelOutput(dr_score=out.dr_score), model), RegressionTarget)
    assert isinstance(default_target(ModelOutput(dme_logits=dme), model), DMETarget)


def test_lesion_target_is_mean_log_odds_for_sigmoid_and_softmax_heads() -> None:
    logits = torch.randn(2, 3, 4, 4)
    sigmoid: Any = SimpleNamespace(lesion_classes=("MA", "HE", "EX"), lesion_activation="sigmoid")
    out = ModelOutput(lesion_logits=logits)
    torch.testing.assert_close(LesionTarget("HE")(out, sigmoid), logits[:, 1].mean(dim=(1, 2)))
    softmax: Any = SimpleNamespace(lesion_classes=("HE", "EX"), lesion_activation="softmax")
    p = logits.softmax(dim=1)[:, 2]  # "EX" is channel 2 after the background
    torch.testing.assert_close(
        LesionTarget("EX")(out, softmax), (p / (1 - p)).log().mean(dim=(1, 2)), rtol=1e-4, atol=1e-5
    )
    target = default_target(out, sigmoid)
    assert target == LesionTarget("MA")
    with pytest.raises(TargetError, match="SE"):
        LesionTarget("SE")(out, sigmoid)


def test_targets_fail_clearly() -> None:
    model: Any = SimpleNamespace(lesion_classes=(), lesion_activation="sigmoid")
    empty = ModelOutput()
    targets: list[Target] = [DRGradeTarget(), DMETarget(), ReferableTarget(), RegressionTarget()]
    targets.append(LesionTarget("EX"))
    for target in targets:
        with pytest.raises(TargetError):
            target(empty, model)
    with pytest.raises(TargetError):
        default_target(empty, model)
    with pytest.raises(ValueError):
        DRGradeTarget(5)
    with pytest.raises(ValueError):
        DMETarget(3)


# --------------------------------------------------------------------------- every registered model


def _tiny_model_and_input(name: str) -> tuple[DRModel, Tensor]:
    """The registration's ``tiny`` instance and 2 random images.

    Images are 64 px, or twice the model's ``min_input_size`` so that its high layer is > 1 x 1.
    """
    entry = MODELS.get(name)
    size = max(64, 2 * entry.metadata.get("min_input_size", 0))
    return create_model(name, **entry.metadata.get("tiny", {})), torch.randn(2, 3, size, size)


def _check_maps(maps: Tensor, size: int) -> None:
    assert maps.shape == (2, size, size)
    assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_gets_finite_maps(name: str) -> None:
    model, x = _tiny_model_and_input(name)
    size = x.shape[-1]
    peaks = []
    for method in METHODS:  # default target: DR grade, else dr_score, DME, first lesion class
        try:
            maps = method(model)(x)
        except CAMNotApplicableError:
            assert method is CAM
            continue
        _check_maps(maps, size)
        peaks.append(float(maps.max()))
    assert max(peaks) == 1.0  # gradients reach the hooked layers (a random net may clip some to 0)
    with torch.no_grad():
        output = model.eval()(x)
    targets: list[Target] = []
    if output.dr_logits is not None:
        targets += [DRGradeTarget(4), ReferableTarget()]
    if output.dme_logits is not None:
        targets.append(DMETarget(2))
    for target in targets:
        try:
            _check_maps(GMSM(model)(x, target), size)
        except TargetError as error:  # a model may hook the DR branch only (multitask_split)
            assert isinstance(target, DMETarget) and "does not depend" in str(error)
    assert hooks_left(model) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list_models())
def test_registered_model_on_gpu_matches_cpu(name: str) -> None:
    model, x = _tiny_model_and_input(name)
    expected = GradCAMPlusPlus(model)(x)
    maps = GradCAMPlusPlus(model.cuda())(x)  # images stay on the CPU; maps come back there
    assert maps.device == x.device
    torch.testing.assert_close(maps, expected, atol=1e-2, rtol=0)


# --------------------------------------------------------------------------- geometry and overlays


def test_to_original_geometry_undoes_each_images_crop() -> None:
    maps = torch.rand(2, 4, 4)
    exact = CropGeometry(original_size=(6, 8), x0=2, y0=1, side=4, output_size=4)
    # a box twice the map's size, cut off on the left by the image border
    scaled = CropGeometry(original_size=(10, 9), x0=-2, y0=1, side=8, output_size=4)
    first, second = to_original_geometry(maps, [exact, scaled])
    assert first.shape == (6, 8) and second.shape == (10, 9) and first.dtype == np.float32
    np.testing.assert_array_equal(first[1:5, 2:6], maps[0].numpy())
    assert first.sum() == pytest.approx(float(maps[0].sum()), rel=1e-6)  # zeros outside the box
    assert second.min() >= 0 and second.max() <= 1
    assert not second[:, 6:].any() and not second[9:].any()  # outside the box
    with pytest.raises(ValueError, match="geometries"):
        to_original_geometry(maps, [exact])


def test_heatmap_overlay_blends_the_colormap() -> None:
    import matplotlib

    image = np.full((4, 5, 3), 100, np.uint8)
    saliency = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    np.testing.assert_array_equal(heatmap_overlay(image, saliency, alpha=0.0), image)
    full = heatmap_overlay(image, saliency, alpha=1.0, colormap="viridis")
    expected = np.rint(matplotlib.colormaps["viridis"](saliency)[..., :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(full, expected)
    half = heatmap_overlay(image, saliency, alpha=0.25, colormap="viridis").astype(float)
    np.testing.assert_allclose(half, 0.75 * 100 + 0.25 * full, atol=1.0)
    with pytest.raises(ValueError, match="original geometry"):
        heatmap_overlay(image, saliency[:3])


def test_mask_overlay_filled_and_contour() -> None:
    image = np.zeros((12, 12, 3), np.uint8)
    mask = np.zeros((12, 12), bool)
    mask[2:9, 3:10] = True
    filled = mask_overlay(image, {"EX": mask}, alpha=1.0)
    np.testing.assert_array_equal(filled[mask], np.tile(lesion_color("EX"), (mask.sum(), 1)))
    assert not filled[~mask].any()
    outline = mask_overlay(image, {"HE": mask}, alpha=1.0, style="contour", thickness=1)
    assert tuple(outline[2, 5]) == lesion_color("HE") and not outline[5, 6].any()
    with pytest.raises(ValueError):
        mask_overlay(image, {"EX": mask}, style="dotted")  # type: ignore[arg-type]


def test_saliency_grid_has_one_panel_per_method() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    maps = {"gradcam": np.random.rand(8, 8), "gmsm": np.random.rand(8, 8)}
    figure = saliency_grid(image, maps)
    assert isinstance(figure, Figure)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[:3] == ["image", "gradcam", "gmsm"] and len(figure.axes) == 4  # + colour bar
