"""drscreen.explain.faithfulness: the three metrics on hand-made maps, and the per-method table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from drscreen.explain import (
    POINTING_TOLERANCE,
    DRGradeTarget,
    faithfulness_table,
    pointing_game,
    saliency_aupr,
    saliency_maps,
    saliency_mass_inside,
    score_maps,
)
from drscreen.metrics import pooled_aupr
from drscreen.models import DRModel, ExplainLayers, ModelOutput


def square_mask(size: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[top : top + side, left : left + side] = True
    return mask


# ------------------------------------------------------------------------------ pointing
def test_pointing_game_hits_within_the_tolerance_radius() -> None:
    mask = square_mask(100, 40, 40, 5)  # rows and columns 40-44
    assert POINTING_TOLERANCE * 512 == 8
    for column, hit in ((42, True), (49, True), (50, False)):  # tolerance 0.05 x 100 = 5 px
        saliency = np.zeros((100, 100))
        saliency[42, column] = 1.0
        assert pointing_game(saliency, mask, tolerance=0.05) is hit, column
    diagonal = np.zeros((100, 100))
    diagonal[48, 48] = 1.0  # (4, 4) px from the corner (44, 44): 5.66 px away
    assert not pointing_game(diagonal, mask, tolerance=0.05)
    assert pointing_game(diagonal, mask, tolerance=0.06)


def test_pointing_game_needs_every_maximal_pixel_inside() -> None:
    mask = square_mask(64, 10, 10, 8)
    ties = np.zeros((64, 64))
    ties[12, 12] = ties[50, 50] = 1.0
    assert not pointing_game(ties, mask)
    ties[50, 50] = 0.99
    assert pointing_game(ties, mask)
    assert not pointing_game(np.zeros((64, 64)), mask), "a constant map points nowhere"
    assert pointing_game(np.full((8, 8), 0.3), np.ones((8, 8), bool))


def test_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        pointing_game(np.ones((4, 4)), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        saliency_mass_inside(np.full((4, 4), 2.0), np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="shapes"):
        saliency_aupr(np.ones((4, 4)), np.ones((4, 5), bool))


# --------------------------------------------------------------------------- mass and AUPR
def test_mass_inside_by_hand() -> None:
    mask = square_mask(10, 0, 0, 2)  # 4 pixels
    saliency = np.zeros((10, 10))
    saliency[:2, :2] = 1.0  # 4 inside
    saliency[5, 5:9] = 0.5  # 2 outside
    assert saliency_mass_inside(saliency, mask) == pytest.approx(4 / 6)
    assert saliency_mass_inside(np.zeros((10, 10)), mask) == pytest.approx(0.04), "zero map: area share"
    assert saliency_mass_inside(np.ones((10, 10)), mask) == pytest.approx(0.04)


def test_aupr_of_perfect_uniform_and_inverted_maps() -> None:
    mask = square_mask(20, 5, 5, 4)  # prevalence 16 / 400
    perfect = mask.astype(float)
    assert saliency_aupr(perfect, mask) == pytest.approx(1.0)
    assert saliency_aupr(np.ones((20, 20)), mask) == pytest.approx(0.04)
    inverted = 1.0 - perfect
    assert saliency_aupr(inverted, mask) == pytest.approx(pooled_aupr([inverted], [mask]))
    assert saliency_aupr(inverted, mask) <= 0.04


def test_score_maps_leaves_out_and_counts_lesion_free_images() -> None:
    masks = [square_mask(16, 2, 2, 3), np.zeros((16, 16), bool), square_mask(16, 9, 9, 4)]
    maps = [masks[0].astype(float), np.ones((16, 16)), np.zeros((16, 16))]
    row = score_maps(maps, masks)
    assert (row["n_images"], row["n_without_lesion"], row["n_constant"]) == (2, 1, 1)
    assert row["pointing"] == 0.5 and row["mass_inside"] == pytest.approx((1.0 + 16 / 256) / 2)
    assert row["aupr"] == pytest.approx((1.0 + 16 / 256) / 2)
    assert row["aupr_pooled"] == pytest.approx(pooled_aupr([maps[0], maps[2]], [masks[0], masks[2]]))
    empty = score_maps([np.ones((4, 4))], [np.zeros((4, 4), bool)])
    assert empty["n_images"] == 0 and np.isnan(empty["pointing"]) and np.isnan(empty["aupr_pooled"])


# --------------------------------------------------------------------------------- table
class RedNet(DRModel):
    """1x1 conv keeping the red channel (ReLU), pooled, linear: DR logit 3 reads red only."""

    def __init__(self, pool: str = "avg") -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU())
        self.pool = pool
        self.head = nn.Linear(2, 5)
        self.explain_layers = ExplainLayers(low="features.0", high="features")
        with torch.no_grad():
            self.features[0].weight.zero_()
            self.features[0].bias.zero_()
            self.features[0].weight[0, 0] = 1.0  # red
            self.features[0].weight[1, 1] = 1.0  # green
            self.head.weight.zero_()
            self.head.bias.zero_()
            self.head.weight[3, 0] = 1.0

    def forward(self, images: Tensor) -> ModelOutput:
        features = self.features(images)
        pooled = features.mean(dim=(2, 3)) if self.pool == "avg" else features.amax(dim=(2, 3))
        return ModelOutput(dr_logits=self.head(pooled))


def red_squares() -> tuple[Tensor, list[np.ndarray]]:
    """Four 32 px images: green everywhere, a red 5 x 5 square in three of them."""
    images = torch.zeros(4, 3, 32, 32)
    images[:, 1] = 0.5
    masks = []
    for i, corner in enumerate([(3, 4), (20, 9), None, (12, 25)]):
        mask = np.zeros((32, 32), bool)
        if corner is not None:
            mask = square_mask(32, *corner, 5)
            images[i, 0][torch.from_numpy(mask)] = 1.0
        masks.append(mask)
    return images, masks


def test_table_scores_a_model_that_sees_the_lesions_perfectly() -> None:
    images, masks = red_squares()
    table = faithfulness_table(
        RedNet(), images, masks, target=DRGradeTarget(3), method_kwargs={"gmsm": {"gate": 0.0}}
    )
    assert list(table) == ["cam", "gradcam", "gradcam++", "gmsm", "random", "uniform"]
    for name in ("cam", "gradcam", "gradcam++", "gmsm"):
        row = table[name]
        assert (row["pointing"], row["n_images"], row["n_without_lesion"]) == (1.0, 3, 1), name
        assert row["mass_inside"] == pytest.approx(1.0) and row["aupr"] == pytest.approx(1.0), name
    uniform = table["uniform"]
    assert uniform["pointing"] == 0.0 and uniform["n_constant"] == 3
    assert uniform["mass_inside"] == pytest.approx(25 / 1024) and uniform["aupr"] == pytest.approx(25 / 1024)
    assert table["random"]["aupr"] < 0.2


def test_table_reports_where_cam_does_not_apply_and_gate_matters() -> None:
    images, masks = red_squares()
    table = faithfulness_table(RedNet(pool="max"), images, masks, ["cam", "gmsm"], DRGradeTarget(3))
    assert set(table["cam"]) == {"error"} and "'gradcam'" in table["cam"]["error"]
    # Grad-CAM++ weights here are ~0.49, so no weighted activation exceeds the paper's gate t = 1:
    # everything is gated and the maps are flat.
    assert table["gmsm"]["n_constant"] == 3 and table["gmsm"]["pointing"] == 0.0
    lesion_free = faithfulness_table(RedNet(), images[2:3], masks[2:3], ["gradcam"])["gradcam"]
    assert (lesion_free["n_images"], lesion_free["n_without_lesion"]) == (0, 1) and np.isnan(lesion_free["aupr"])


def test_saliency_maps_baselines_are_seeded_and_need_no_model() -> None:
    images = torch.zeros(2, 3, 8, 8)
    a, b = saliency_maps(None, images, "random", seed=3), saliency_maps(None, images, "random", seed=3)
    assert a.shape == (2, 8, 8) and np.array_equal(a, b) and 0 <= a.min() and a.max() <= 1
    assert (saliency_maps(None, images, "uniform") == 1).all()
    with pytest.raises(ValueError, match="needs a model"):
        saliency_maps(None, images, "gradcam")
