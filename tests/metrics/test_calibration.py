"""Temperature scaling, calibration error and the referable curve (``drscreen.metrics.calibration``)."""

from __future__ import annotations

import numpy as np
import pytest

from drscreen.grading import OperatingPoint
from drscreen.metrics.calibration import (
    apply_temperature,
    binary_ece,
    calibration_summary,
    expected_calibration_error,
    fit_temperature,
    grade_ece,
    roc_curve_points,
)


def calibrated_draws(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities from random logits and labels drawn from exactly those probabilities."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, 5))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in probs])
    return probs, labels


def test_fit_temperature_undoes_overconfidence() -> None:
    probs, labels = calibrated_draws(4000, seed=0)
    overconfident = apply_temperature(probs, 1 / 2.5)  # logits multiplied by 2.5
    assert fit_temperature(overconfident, labels) == pytest.approx(2.5, rel=0.1)
    assert fit_temperature(probs, labels) == pytest.approx(1.0, rel=0.1)
    summary = calibration_summary(overconfident, labels, fit_temperature(overconfident, labels))
    assert summary["after"]["grade_ece"] < summary["before"]["grade_ece"] / 2
    assert summary["after"]["nll"] < summary["before"]["nll"]


def test_temperature_keeps_the_arg_max_and_one_is_identity() -> None:
    probs, _ = calibrated_draws(50, seed=1)
    assert np.allclose(apply_temperature(probs, 1.0), probs)
    assert (apply_temperature(probs, 3.0).argmax(1) == probs.argmax(1)).all()
    with pytest.raises(ValueError):
        apply_temperature(probs, 0.0)


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_not() -> None:
    confidence = np.full(10, 0.7)
    assert expected_calibration_error(confidence, np.arange(10) < 7) == pytest.approx(0.0)
    assert expected_calibration_error(np.full(10, 0.99), np.zeros(10, bool)) == pytest.approx(0.99)
    assert binary_ece(np.full(4, 0.5), np.array([1, 0, 1, 0], bool)) == pytest.approx(0.0)
    probs = np.eye(5)[[0, 1, 2, 3]]
    assert grade_ece(probs, np.array([0, 1, 2, 3])) == pytest.approx(0.0)


def test_roc_points_feed_the_operating_point_choice() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])
    positive = np.array([True, True, False, True, False, False])
    curve = roc_curve_points(scores, positive)
    assert curve["threshold"][0] == 0.9 and curve["threshold"][-1] == 0.1
    point = OperatingPoint.for_sensitivity(curve, 0.9)
    assert point.threshold == pytest.approx(0.4)
    assert point.sensitivity == pytest.approx(1.0) and point.specificity == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        roc_curve_points(scores, np.ones(6, bool))
