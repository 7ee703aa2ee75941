"""Losses: each checked against a hand computation or an independent (numpy / scikit-learn) one."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss
from torch import Tensor

from drscreen.losses import LOSSES, UNION_POSITIVE, MultiTaskLoss, TaskTargets, create_loss, list_losses
from drscreen.losses.classification import sord_targets
from drscreen.losses.segmentation import soft_dice_coefficient, u2net_class_weights
from drscreen.models.output import ModelOutput


def _np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- classification


def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    logits, target = torch.randn(8, 5), torch.randint(0, 5, (8,))
    focal = create_loss("focal", gamma=0.0)(logits, target)
    ce = create_loss("cross_entropy")(logits, target)
    reference = log_loss(target.numpy(), _np_softmax(logits.double().numpy()), labels=range(5))
    assert focal.item() == pytest.approx(ce.item(), rel=1e-6)
    assert ce.item() == pytest.approx(reference, rel=1e-5)


def test_focal_hand_computed_two_samples() -> None:
    # Sample 1: p = (0.25, 0.75), true class 1. Sample 2: p = (0.5, 0.5), true class 0.
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    target = torch.tensor([1, 0])
    expected = (0.25**2 * -math.log(0.75) + 0.5**2 * -math.log(0.5)) / 2
    assert create_loss("focal")(logits, target).item() == pytest.approx(expected, rel=1e-6)
    alpha = (0.2, 0.8)
    expected_alpha = (0.8 * 0.25**2 * -math.log(0.75) + 0.2 * 0.5**2 * -math.log(0.5)) / 2
    loss = create_loss("focal", alpha=alpha)(logits, target)
    assert loss.item() == pytest.approx(expected_alpha, rel=1e-6)


def test_cross_entropy_class_weights_and_smoothing_follow_torch() -> None:
    logits, target = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, 1, 0])
    loss = create_loss("cross_entropy", weight=[1.0, 2.0, 3.0], label_smoothing=0.1)(logits, target)
    weight = torch.tensor([1.0, 2.0, 3.0])
    expected = F.cross_entropy(logits, target, weight=weight, label_smoothing=0.1)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_sord_targets_sum_to_one_and_peak_at_true_grade() -> None:
    target = torch.arange(5)
    for distance in ("squared", "absolute"):
        soft = sord_targets(target, 5, scale=1.0, distance=distance)
        assert torch.allclose(soft.sum(1), torch.ones(5))
        assert torch.equal(soft.argmax(1), target)
    # Independent formula for grade 2, squared distance, scale 0.5.
    ranks = np.arange(5)
    expected = _np_softmax(-0.5 * (2 - ranks)[None].astype(float) ** 2)[0]
    got = sord_targets(torch.tensor([2]), 5, scale=0.5)[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got[1] == pytest.approx(got[3]) and got[1] > got[0]


def test_sord_one_hot_limit_is_cross_entropy_and_focal() -> None:
    logits, target = torch.randn(7, 5), torch.randint(0, 5, (7,))
    sord = create_loss("sord", scale=1e4)(logits, target)
    assert sord.item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-5)
    sord_focal = create_loss("sord", scale=1e4, gamma=2.0)(logits, target)
    assert sord_focal.item() == pytest.approx(create_loss("focal")(logits, target).item(), rel=1e-5)


def test_sord_matches_numpy_soft_cross_entropy() -> None:
    logits, target = torch.randn(4, 5), torch.tensor([0, 1, 3, 4])
    q = _np_softmax(-np.abs(target.numpy()[:, None] - np.arange(5)[None]).astype(float))
    expected = -(q * np.log(_np_softmax(logits.double().numpy()))).sum(1).mean()
    loss = create_loss("sord", distance="absolute")(logits, target)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_regression_mse_and_smooth_l1() -> None:
    score, target = torch.tensor([0.5, 2.0, 4.5]), torch.tensor([0, 2, 3])
    assert create_loss("regression")(score, target).item() == pytest.approx((0.25 + 0 + 2.25) / 3)
    # smooth-L1 (beta 1): 0.5 d^2 for |d| < 1, |d| - 0.5 otherwise.
    expected = (0.5 * 0.25 + 0 + 1.0) / 3
    smooth_l1 = create_loss("regression", kind="smooth_l1")
    assert smooth_l1(score, target).item() == pytest.approx(expected)


# ----------------------------------------------------------------------------- SoftTriple


def test_softtriple_single_centre_is_scaled_softmax_cross_entropy() -> None:
    loss_fn = create_loss(
        "softtriple", dim=6, num_classes=4, centers_per_class=1, lam=7.0, delta=0.0, tau=0.0
    )
    embedding, target = torch.randn(10, 6), torch.randint(0, 4, (10,))
    x = embedding.double().numpy()
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = loss_fn.centers.detach().double().numpy()[:, 0]
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    expected = log_loss(target.numpy(), _np_softmax(7.0 * x @ w.T), labels=range(4))
    assert loss_fn(embedding, target).item() == pytest.approx(expected, rel=1e-5)


def test_softtriple_matches_numpy_reference_with_margin_and_regulariser() -> None:
    lam, gamma, delta, tau, k = 20.0, 0.1, 0.01, 0.2, 3
    loss_fn = create_loss(
        "softtriple",
        dim=4,
        num_classes=3,
        centers_per_class=k,
        lam=lam,
        gamma=gamma,
        delta=delta,
        tau=tau,
    )
    embedding, target = torch.randn(5, 4), torch.tensor([0, 1, 2, 2, 0])
    x = embedding.double().numpy()
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = loss_fn.centers.detach().double().numpy()
    w /= np.linalg.norm(w, axis=2, keepdims=True)
    total = 0.0
    for i, y in enumerate(target.tolist()):
        s = np.empty(3)
        for c in range(3):
            sims = w[c] @ x[i]
            s[c] = (np.exp(sims / gamma) / np.exp(sims / gamma).sum() * sims).sum()
        logits = lam * (s - delta * (np.arange(3) == y))
        total += -np.log(_np_softmax(logits[None])[0, y])
    pairs = [(c, t, u) for c in range(3) for t in range(k) for u in range(t + 1, k)]
    reg = sum(math.sqrt(max(2 - 2 * w[c, t] @ w[c, u], 0.0)) for c, t, u in pairs)
    expected = total / 5 + tau * reg / (3 * k * (k - 1))
    assert loss_fn(embedding, target).item() == pytest.approx(expected, rel=1e-5)


def test_softtriple_gradients_reach_centres_and_embedding() -> None:
    loss_fn = create_loss("softtriple", dim=8, centers_per_class=2)
    embedding = torch.randn(4, 8, requires_grad=True)
    loss_fn(embedding, torch.tensor([0, 1, 2, 4])).backward()
    assert loss_fn.centers.grad is not None and loss_fn.centers.grad.abs().sum() > 0
    assert embedding.grad is not None and embedding.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- segmentation


def test_dice_of_binary_sets() -> None:
    a = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 1]], dtype=torch.float32).view(1, 1, 2, 4)
    b = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.float32).view(1, 1, 2, 4)
    expected = 2 * 3 / (4 + 5)  # |A n B| = 3, |A| = 4, |B| = 5
    assert soft_dice_coefficient(a, b, smooth=0.0).item() == pytest.approx(expected)
    logits = (a * 2 - 1) * 50.0  # saturated sigmoid: probabilities are exactly A
    dice_loss = create_loss("dice", smooth=0.0)(logits, b)
    assert dice_loss.item() == pytest.approx(1 - expected, rel=1e-6)


def _fbce_dice_by_hand(
    p: list[list[float]], y: list[list[float]], alpha: float, gamma: float
) -> float:
    """Eq. 1 of the U²-Net paper written out for channels given as flat pixel lists."""
    ratios = [sum(1 - v for v in yk) / (sum(yk) + 1) for yk in y]
    weights = [r ** (1 / 8) / sum(q ** (1 / 8) for q in ratios) for r in ratios]
    total = 0.0
    for pk, yk, wk in zip(p, y, weights):
        fbce = sum(
            -(t * (1 - q) ** gamma * math.log(q) + (1 - t) * q**gamma * math.log(1 - q))
            for q, t in zip(pk, yk)
        ) / len(pk)
        dice = (2 * sum(q * t for q, t in zip(pk, yk)) + 1) / (sum(pk) + sum(yk) + 1)
        total += (alpha * fbce + (1 - alpha) * (1 - dice)) * wk
    return total / len(p)


@pytest.mark.parametrize(
    ("probs", "masks"),
    [
        ([[0.9, 0.2, 0.6, 0.1]], [[1, 0, 1, 0]]),  # 1x1x2x2, w = 1
        ([[0.9, 0.2, 0.6, 0.1], [0.3, 0.4, 0.2, 0.7]], [[1, 0, 1, 0], [0, 0, 0, 1]]),  # 1x2x2x2
    ],
)
def test_focal_bce_dice_hand_example(probs: list[list[float]], masks: list[list[float]]) -> None:
    c = len(probs)
    p = torch.tensor(probs, dtype=torch.float64).view(1, c, 2, 2)
    logits = torch.log(p / (1 - p))
    y = torch.tensor(masks, dtype=torch.float64).view(1, c, 2, 2)
    loss = create_loss("focal_bce_dice")(logits, y)
    assert loss.item() == pytest.approx(_fbce_dice_by_hand(probs, masks, 0.75, 1.0), rel=1e-9)


def test_u2net_class_weights_favour_rare_classes_and_sum_to_one() -> None:
    masks = torch.zeros(2, 3, 4, 4)
    masks[:, 0, :2] = 1  # 16 of 32 pixels
    masks[0, 1, 0, 0] = 1  # 1 of 32 pixels; channel 2 empty
    w = u2net_class_weights(masks)
    ratios = torch.tensor([16 / 17, 31 / 2, 32 / 1]).pow(0.125)
    assert torch.allclose(w, ratios / ratios.sum())
    assert w.sum().item() == pytest.approx(1.0) and w[0] < w[1] < w[2]


def test_lesion_ce_sigmoid_is_mean_bce_with_logits() -> None:
    logits, masks = torch.randn(2, 3, 5, 5), (torch.rand(2, 3, 5, 5) > 0.7).float()
    expected = F.binary_cross_entropy_with_logits(logits, masks)
    loss = create_loss("lesion_ce")(logits, masks)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_lesion_ce_softmax_is_channelwise_bce_with_background() -> None:
    logits, masks = torch.randn(2, 4, 3, 3), (torch.rand(2, 3, 3, 3) > 0.6).float()
    channels_last = np.moveaxis(logits.double().numpy(), 1, -1).reshape(-1, 4)
    p = np.moveaxis(_np_softmax(channels_last).reshape(2, 3, 3, 4), -1, 1)
    y = masks.double().numpy()
    y = np.concatenate([1 - y.max(axis=1, keepdims=True), y], axis=1)
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    loss = create_loss("lesion_ce")(logits, masks, activation="softmax")
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    saturated = create_loss("lesion_ce")(logits * 1e3, masks, activation="softmax")
    assert torch.isfinite(saturated)


def test_lesion_logits_are_resized_to_the_masks() -> None:
    logits, masks = torch.randn(1, 2, 4, 4), (torch.rand(1, 2, 8, 8) > 0.5).float()
    up = F.interpolate(logits, size=(8, 8), mode="bilinear", align_corners=False)
    loss = create_loss("lesion_ce")
    assert loss(logits, masks).item() == pytest.approx(loss(up, masks).item(), rel=1e-6)
    with pytest.raises(ValueError, match="expected 3 channels"):
        loss(torch.randn(1, 2, 8, 8), masks, activation="softmax")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_deep_supervision_combines_outputs_with_equal_weights(reduction: str) -> None:
    masks = (torch.rand(2, 2, 8, 8) > 0.8).float()
    outputs = [torch.randn(2, 2, 8, 8), torch.randn(2, 2, 4, 4), torch.randn(2, 2, 2, 2)]
    base = create_loss("focal_bce_dice")
    per_output = torch.stack([base(o, masks) for o in outputs])
    expected = per_output.mean() if reduction == "mean" else per_output.sum()
    wrapped = create_loss("deep_supervision", base="focal_bce_dice", reduction=reduction)
    assert wrapped(outputs, masks).item() == pytest.approx(expected.item(), rel=1e-6)
    assert wrapped(outputs[0], masks).item() == pytest.approx(per_output[0].item(), rel=1e-6)


# ----------------------------------------------------------------------------- multi-task


def _output(batch: int = 4, lesions: int = 2, size: int = 8, side: bool = False) -> ModelOutput:
    half = size // 2
    return ModelOutput(
        dr_logits=torch.randn(batch, 5, requires_grad=True),
        dr_score=torch.randn(batch, requires_grad=True),
        dme_logits=torch.randn(batch, 3, requires_grad=True),
        lesion_logits=torch.randn(batch, lesions, size, size, requires_grad=True),
        side_outputs=(torch.randn(batch, lesions, half, half, requires_grad=True),) if side else (),
        embedding=torch.randn(batch, 16, requires_grad=True),
    )


def test_task_targets_from_samples_fills_missing() -> None:
    t = TaskTargets.from_samples(dr=[2, None, 0], lesion_masks=[None, torch.ones(2, 4, 4), None])
    assert t.dr.tolist() == [2, -1, 0] and t.dme.tolist() == [-1, -1, -1]
    assert t.has_lesion_masks is not None and t.has_lesion_masks.tolist() == [False, True, False]
    assert t.lesion_masks is not None and t.lesion_masks.shape == (3, 2, 4, 4)
    assert t.lesion_masks[0].sum() == 0
    assert t.dr_score.dtype == torch.float32 and t.batch_size == 3
    bare = TaskTargets(dr=torch.tensor([1]))
    assert bare.has_lesion_masks is not None and bare.has_lesion_masks.tolist() == [False]
    with pytest.raises(TypeError):
        TaskTargets(dr=torch.tensor([1.0]))


def test_sunet_total_is_weighted_sum_over_labelled_samples() -> None:
    out = _output()
    masks = (torch.rand(4, 2, 8, 8) > 0.8).float()
    targets = TaskTargets(
        dr=torch.tensor([0, -1, 3, 4]),
        dme=torch.tensor([-1, 2, 1, -1]),
        lesion_masks=masks,
        has_lesion_masks=torch.tensor([True, False, True, False]),
    )
    total, parts = create_loss("multitask")(out, targets)
    assert out.dr_logits is not None and out.dme_logits is not None
    assert out.lesion_logits is not None
    dr = F.cross_entropy(out.dr_logits[[0, 2, 3]], targets.dr[[0, 2, 3]])
    dme = F.cross_entropy(out.dme_logits[[1, 2]], targets.dme[[1, 2]])
    lesion = F.binary_cross_entropy_with_logits(out.lesion_logits[[0, 2]], masks[[0, 2]])
    assert parts["dr"].item() == pytest.approx(dr.item(), rel=1e-6)
    assert parts["dme"].item() == pytest.approx(dme.item(), rel=1e-6)
    assert parts["lesion"].item() == pytest.approx(lesion.item(), rel=1e-6)
    assert total.item() == pytest.approx((lesion + dr + 0.5 * dme).item(), rel=1e-6)
    assert parts["total"].item() == pytest.approx(total.item())


def test_multitask_all_missing_labels_give_zero_terms_and_backward_works() -> None:
    out = _output()
    targets = TaskTargets(dr=torch.full((4,), -1), dme=torch.tensor([0, 1, -1, -1]))
    total, parts = create_loss("multitask")(out, targets)
    assert parts["dr"].item() == 0.0 and parts["lesion"].item() == 0.0
    assert torch.isfinite(total) and total.item() == pytest.approx(0.5 * parts["dme"].item())
    total.backward()
    assert out.dr_logits is not None and out.dr_logits.grad is not None
    assert out.dr_logits.grad.abs().sum() == 0


def test_samples_without_masks_do_not_affect_the_lesion_term() -> None:
    out = _output()
    masks = (torch.rand(4, 2, 8, 8) > 0.8).float()
    has = torch.tensor([True, False, True, False])
    loss = create_loss("multitask", lesion_loss="focal_bce_dice")

    def lesion_term(m: Tensor) -> float:
        dr = torch.zeros(4, dtype=torch.long)
        targets = TaskTargets(dr=dr, lesion_masks=m, has_lesion_masks=has)
        return loss(out, targets)[1]["lesion"].item()

    changed = masks.clone()
    changed[[1, 3]] = 1 - changed[[1, 3]]
    assert lesion_term(changed) == lesion_term(masks)
    changed[0] = 1 - changed[0]
    assert lesion_term(changed) != lesion_term(masks)


def test_multitask_deep_supervision_uses_side_outputs() -> None:
    out = _output(side=True)
    masks = (torch.rand(4, 2, 8, 8) > 0.8).float()
    targets = TaskTargets(dr=torch.zeros(4, dtype=torch.long), lesion_masks=masks)
    _, parts = create_loss("multitask", preset="u2net")(out, targets)
    base = create_loss("focal_bce_dice")
    assert out.lesion_logits is not None and out.side_outputs is not None
    expected = (base(out.lesion_logits, masks) + base(out.side_outputs[0], masks)) / 2
    assert set(parts) == {"lesion", "total"}
    assert parts["lesion"].item() == pytest.approx(expected.item(), rel=1e-6)
    _, plain = create_loss("multitask", preset="u2net", deep_supervision=False)(out, targets)
    assert plain["lesion"].item() == pytest.approx(base(out.lesion_logits, masks).item(), rel=1e-6)


def test_multitask_softmax_lesion_activation() -> None:
    out = _output(lesions=3)  # background + 2 lesions
    masks = (torch.rand(4, 2, 8, 8) > 0.8).float()
    targets = TaskTargets(dr=torch.tensor([1, 2, 3, 0]), lesion_masks=masks)
    _, parts = create_loss("multitask", preset="mtunet")(out, targets, lesion_activation="softmax")
    assert out.lesion_logits is not None
    expected = create_loss("lesion_ce")(out.lesion_logits, masks, activation="softmax")
    assert parts["lesion"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_tian_and_ellg_presets() -> None:
    with pytest.raises(ValueError, match="dim"):
        create_loss("multitask", preset="tian")
    out = _output()
    targets = TaskTargets(dr=torch.tensor([0, 4, -1, 2]))
    tian = create_loss("multitask", preset="tian", metric_config={"dim": 16})
    total, parts = tian(out, targets)
    assert set(parts) == {"dr", "metric", "total"}
    expected = 0.5 * parts["dr"] + 0.5 * parts["metric"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert tian.dr.gamma == 2.0  # the preset's dr_config survives the override merge
    total.backward()
    assert tian.metric.centers.grad is not None
    _, ellg = create_loss("multitask", preset="ellg")(out, targets)
    assert out.dr_score is not None
    expected = F.mse_loss(out.dr_score[[0, 1, 3]], torch.tensor([0.0, 4.0, 2.0]))
    assert ellg["dr"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_multitask_rejects_missing_outputs_and_unknown_presets() -> None:
    with pytest.raises(ValueError, match="dme_logits"):
        no_dme = ModelOutput(dr_logits=torch.randn(2, 5))
        create_loss("multitask")(no_dme, TaskTargets(dr=torch.tensor([0, 1])))
    with pytest.raises(KeyError, match="sunet"):
        create_loss("multitask", preset="nope")


# ----------------------------------------------------------------------------- all registered


def _random_case(name: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Inputs of each registered loss's documented shapes (gradients required on predictions)."""
    logits = torch.randn(4, 5, requires_grad=True)
    grades = torch.tensor([0, 2, 4, 1])
    masks = (torch.rand(2, 3, 8, 8) > 0.8).float()
    lesion = torch.randn(2, 3, 8, 8, requires_grad=True)
    cases: dict[str, Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]] = {
        "cross_entropy": lambda: ((logits, grades), {}),
        "focal": lambda: ((logits, grades), {}),
        "sord": lambda: ((logits, grades), {}),
        "regression": lambda: ((torch.randn(4, requires_grad=True), grades.float()), {}),
        "softtriple": lambda: ((torch.randn(4, 16, requires_grad=True), grades), {"dim": 16}),
        "lesion_ce": lambda: ((lesion, masks), {}),
        "dice": lambda: ((lesion, masks), {}),
        "focal_bce_dice": lambda: ((lesion, masks), {}),
        "deep_supervision": lambda: (([lesion, lesion[..., ::2, ::2]], masks), {}),
        "lesion_union": lambda: ((lesion, torch.cat([masks[:1], masks[1:] * UNION_POSITIVE])), {}),
        "multitask": lambda: (
            (_output(batch=2, lesions=3), TaskTargets(dr=grades[:2], lesion_masks=masks)),
            {},
        ),
    }
    return cases[name]()


def test_every_registered_loss_is_documented_and_runs_backward() -> None:
    assert set(list_losses()) == {
        "cross_entropy", "focal", "sord", "regression", "softtriple",
        "lesion_ce", "dice", "focal_bce_dice", "deep_supervision", "lesion_union", "multitask",
    }  # fmt: skip
    for name in list_losses():
        entry = LOSSES.get(name)
        assert entry.metadata.get("paper") and entry.metadata.get("description"), name
        assert "Shapes" in (entry.factory.__doc__ or ""), f"{name} does not document its shapes"
        args, config = _random_case(name)
        loss = create_loss(name, **config)
        value = loss(*args)
        value = value[0] if isinstance(value, tuple) else value
        assert value.dim() == 0 and torch.isfinite(value), name
        value.backward()
        leaves = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
        assert all(a.grad is not None for a in leaves), name


@pytest.mark.parametrize("name", ["lesion_ce", "dice", "focal_bce_dice"])
def test_lesion_losses_run_on_softmax_maps(name: str) -> None:
    logits = torch.randn(2, 4, 8, 8, requires_grad=True)
    masks = (torch.rand(2, 3, 8, 8) > 0.8).float()
    value = create_loss(name)(logits, masks, activation="softmax")
    value.backward()
    assert torch.isfinite(value) and logits.grad is not None and torch.isfinite(logits.grad).all()


def test_multitask_is_the_registered_class() -> None:
    assert isinstance(create_loss("multitask"), MultiTaskLoss)


def test_softtriple_runs_in_float32_under_cpu_bf16_autocast() -> None:
    loss_fn = create_loss("softtriple", dim=8, num_classes=5)
    embedding = torch.randn(4, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = loss_fn(torch.nn.functional.linear(embedding, torch.eye(8)), torch.tensor([0, 1, 2, 4]))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert embedding.grad is not None and loss_fn.centers.grad is not None
