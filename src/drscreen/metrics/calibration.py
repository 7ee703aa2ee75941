"""Calibration of grade probabilities: expected calibration error, temperature scaling, and the
referable ROC curve that a packed model carries for choosing its operating point.

Temperature scaling (Guo et al., 2017) divides the logits by one scalar ``T`` fitted by
negative log-likelihood on validation data; it changes no arg-max, only how sure the model is.
Softmax probabilities determine the logits up to a per-row constant, so ``T`` is fitted and
applied on ``log p`` directly (``apply_temperature``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

#: Equal-width confidence bins of the expected calibration error.
ECE_BINS = 15
#: Search range of ``log T``.
LOG_TEMPERATURE_RANGE = (-3.0, 3.0)


def _log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """(N, K) probabilities -> (N, K) float64 ``softmax(log(probs) / temperature)``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    scaled = _log_probs(probs) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log p[label]`` of (N, K) probabilities and (N,) int labels, nats."""
    labels = np.asarray(labels, dtype=np.int64)
    return float(-_log_probs(probs)[np.arange(labels.size), labels].mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature ``T`` minimising the negative log-likelihood of ``apply_temperature(probs, T)``
    on (N, K) probabilities and (N,) int labels (bounded search over ``LOG_TEMPERATURE_RANGE``)."""
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(apply_temperature(probs, float(np.exp(log_t))), labels),
        bounds=LOG_TEMPERATURE_RANGE,
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the mean over equal-width confidence bins of |accuracy - mean confidence|, weighted by
    the bin's share of the N cases. ``confidence`` (N,) in [0, 1]; ``correct`` (N,) bool or 0/1."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidence.shape != correct.shape or confidence.ndim != 1:
        raise ValueError(f"confidence and correct must be (N,) alike, got {confidence.shape} and {correct.shape}")
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def grade_ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE of (N, K) grade probabilities against (N,) int labels."""
    probs = np.asarray(probs, dtype=np.float64)
    return expected_calibration_error(probs.max(axis=1), probs.argmax(axis=1) == np.asarray(labels), bins)


def binary_ece(scores: np.ndarray, positive: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of a probability of the positive class: (N,) scores, (N,) bool truth; binned by score,
    comparing the mean score with the share of positives in each bin."""
    return expected_calibration_error(scores, positive, bins)


def roc_curve_points(scores: np.ndarray, positive: np.ndarray) -> dict[str, list[float]]:
    """Sensitivity and specificity at every distinct score used as threshold (``score >= t`` is
    positive), thresholds descending: ``{"threshold", "sensitivity", "specificity"}`` lists, the
    form ``OperatingPoint.for_sensitivity`` and packed models' ``referable_curve`` use."""
    from sklearn.metrics import roc_curve

    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        raise ValueError("the curve needs both positive and negative cases")
    false_positive_rate, sensitivity, thresholds = roc_curve(
        positive, np.asarray(scores, dtype=np.float64), drop_intermediate=False
    )
    keep = np.isfinite(thresholds)  # sklearn's first point: a threshold above every score
    return {
        "threshold": [float(t) for t in thresholds[keep]],
        "sensitivity": [float(s) for s in sensitivity[keep]],
        "specificity": [float(1.0 - f) for f in false_positive_rate[keep]],
    }


def calibration_summary(probs: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, Any]:
    """NLL and ECE (grade top-label and referable P(DR >= 2)) of (N, 5) DR probabilities before and
    after ``temperature``, for (N,) int grades."""
    labels = np.asarray(labels, dtype=np.int64)
    referable = labels >= 2
    summary: dict[str, Any] = {"temperature": temperature, "n": int(labels.size)}
    for name, values in (
        ("before", np.asarray(probs, dtype=np.float64)),
        ("after", apply_temperature(probs, temperature)),
    ):
        summary[name] = {
            "nll": negative_log_likelihood(values, labels),
            "grade_ece": grade_ece(values, labels),
            "referable_ece": binary_ece(values[:, 2:].sum(axis=1), referable),
        }
    return summary
