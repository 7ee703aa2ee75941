"""drscreen.explain.default: the default explanation, its fallbacks and its record."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from drscreen.explain import ReferableLogOddsTarget, ReferableTarget
from drscreen.explain.default import (
    DEFAULT_EXPLANATION,
    EXPLANATION_TARGETS,
    FALLBACK_EXPLANATIONS,
    Explanation,
    ExplanationMethod,
    explain_default,
    is_degenerate,
)
from drscreen.models import DRModel, ExplainLayers, ModelOutput, create_model
from drscreen.models.registry import MODELS
from drscreen.preprocess import PreprocessConfig, Preprocessor
from drscreen.synth import generate_fundus

SIZE = 32


class BrightnessNet(DRModel):
    """``low`` = ReLU(red channel), ``high`` = 2 x 2 average pool of it; DR logits read the global
    mean of ``high``: ``z = slope * mean + bias``. Evidence for every grade >= 2 grows with
    brightness, so saliency must peak on the brightest spot."""

    def __init__(self, bias: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)) -> None:
        super().__init__()
        self.low = nn.ReLU()
        self.high = nn.AvgPool2d(2)
        self.register_buffer("slope", torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0]))
        self.register_buffer("bias", torch.tensor(bias))
        self.explain_layers = ExplainLayers(low="low", high="high")

    def forward(self, images: Tensor) -> ModelOutput:
        pooled = self.high(self.low(images[:, :1])).mean(dim=(1, 2, 3))
        return ModelOutput(dr_logits=pooled[:, None] * self.slope + self.bias)


def spot_image(row: int, column: int) -> Tensor:
    """(3, SIZE, SIZE): dim noise with one bright 4 x 4 spot whose corner is at (row, column)."""
    image = 0.1 * torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    image[:, row : row + 4, column : column + 4] = 1.0
    return image


def test_default_points_at_the_evidence_and_names_its_method() -> None:
    explanation = explain_default(BrightnessNet(), spot_image(20, 8))
    assert explanation.map.shape == (SIZE, SIZE) and explanation.map.dtype == np.float32
    assert 0.0 <= explanation.map.min() and explanation.map.max() <= 1.0
    assert not explanation.degenerate and not explanation.fallback and explanation.skipped == ()
    assert explanation.method == DEFAULT_EXPLANATION.label == "gmsm(gate=0)"
    assert explanation.target == DEFAULT_EXPLANATION.target
    assert explanation.settings == dict(DEFAULT_EXPLANATION.settings)
    row, column = explanation.peak
    assert explanation.map[row, column] == explanation.map.max()
    assert 18 <= row <= 25 and 6 <= column <= 13


def test_default_never_all_zero_on_synthetic_photographs() -> None:
    torch.manual_seed(0)
    model = create_model("drscreen_effnet", **MODELS.get("drscreen_effnet").metadata["tiny"]).eval()
    preprocessor = Preprocessor(PreprocessConfig(size=64, normalization=model.normalization, quality_gate=False))
    for seed in range(3):
        image = preprocessor.prepare(generate_fundus(seed, 128, target_dr=1 + seed).image).tensor
        explanation = explain_default(model, image)
        assert not explanation.degenerate
        assert explanation.map.max() > 0 and not is_degenerate(explanation.map)


def test_saturated_referable_score_falls_back_to_log_odds_and_says_so() -> None:
    # grades 0 and 1 are exp(-200) ~ 0 in float32: P(DR >= 2) == 1, log P has an all-zero gradient
    model = BrightnessNet(bias=(-200.0, -200.0, 0.0, 0.0, 0.0))
    explanation = explain_default(model, spot_image(4, 20))
    first, second = DEFAULT_EXPLANATION, FALLBACK_EXPLANATIONS[0]
    assert explanation.fallback and not explanation.degenerate
    assert (explanation.method, explanation.target) == (second.label, second.target)
    assert explanation.skipped == (f"{first.label} [{first.target}]: degenerate (constant map)",)
    row, column = explanation.peak
    assert 2 <= row <= 9 and 18 <= column <= 25


def test_custom_chain_falls_back_past_a_gate_above_every_activation() -> None:
    gated = ExplanationMethod("gmsm", "referable", (("gate", 1e6),))
    plain = ExplanationMethod("gradcam", "predicted-grade")
    explanation = explain_default(BrightnessNet(), spot_image(0, 0)[None], chain=(gated, plain))
    assert explanation.fallback and explanation.method == "gradcam" and explanation.target == "predicted-grade"
    assert explanation.skipped[0].startswith("gmsm(gate=1e+06) [referable]: degenerate")


def test_no_location_anywhere_is_reported_as_degenerate() -> None:
    explanation = explain_default(BrightnessNet(), torch.full((3, SIZE, SIZE), 0.5))
    assert explanation.degenerate and explanation.peak is None
    assert not explanation.map.any() and explanation.map.shape == (SIZE, SIZE)
    assert explanation.method == FALLBACK_EXPLANATIONS[-1].label
    assert len(explanation.skipped) == 1 + len(FALLBACK_EXPLANATIONS)


def test_methods_that_do_not_apply_are_skipped_with_the_reason() -> None:
    cam_on_referable = ExplanationMethod("cam", "referable")

    class ScoreOnly(BrightnessNet):
        def forward(self, images: Tensor) -> ModelOutput:
            return ModelOutput(dr_score=self.high(self.low(images[:, :1])).mean(dim=(1, 2, 3)))

    with pytest.raises(ValueError, match="not applicable"):
        explain_default(ScoreOnly(), spot_image(0, 0), chain=(cam_on_referable,))


def test_record_serialises_and_names_the_method() -> None:
    explanation = explain_default(BrightnessNet(), spot_image(10, 10))
    record = json.loads(json.dumps(explanation.to_dict()))
    assert record["method"] == explanation.method and record["target"] == explanation.target
    assert record["degenerate"] is False and record["peak"] == list(explanation.peak)
    assert isinstance(explanation, Explanation)


def test_is_degenerate() -> None:
    bump = np.zeros((8, 8), np.float32)
    bump[3, 4] = 0.7
    assert not is_degenerate(bump)
    assert is_degenerate(np.zeros((8, 8))) and is_degenerate(np.full((8, 8), 0.3))
    bump[0, 0] = np.nan
    assert is_degenerate(bump)


def test_explanation_method_validates_and_orders_settings() -> None:
    with pytest.raises(ValueError, match="unknown target"):
        ExplanationMethod("gmsm", "nonsense")
    method = ExplanationMethod("gmsm", "referable", (("layers", None), ("gate", 0.5)))
    assert method.settings == (("gate", 0.5), ("layers", None))
    assert method.label == "gmsm(gate=0.5, layers=None)"
    assert set(EXPLANATION_TARGETS) >= {DEFAULT_EXPLANATION.target, *(f.target for f in FALLBACK_EXPLANATIONS)}


def test_log_p_gradient_is_one_minus_p_times_the_log_odds_gradient() -> None:
    logits = torch.tensor([[0.3, -1.0, 2.0, 4.0, 1.5], [1.0, 2.0, -3.0, 0.0, 0.5]], requires_grad=True)
    output = ModelOutput(dr_logits=logits)
    log_p = ReferableTarget()(output, BrightnessNet())
    log_odds = ReferableLogOddsTarget()(output, BrightnessNet())
    p = log_p.exp()
    torch.testing.assert_close(log_odds, torch.log(p / (1 - p)))
    (grad_log_p,) = torch.autograd.grad(log_p.sum(), logits)
    (grad_log_odds,) = torch.autograd.grad(log_odds.sum(), logits)
    torch.testing.assert_close(grad_log_p, (1 - p.detach())[:, None] * grad_log_odds)
