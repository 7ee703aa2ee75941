"""Image-level grading metrics: accuracy, quadratic weighted kappa, one-vs-rest AUC, joint accuracy.

Accuracy and confusion matrix are the usual ones; the quadratic weighted kappa is the agreement
measure of Tian et al. (*Learning discriminative representations for fine-grained diabetic
retinopathy grading*); per-grade one-vs-rest ROC AUC is what Foo et al. report for MTUnet
(*Multi-task learning for diabetic retinopathy grading and lesion segmentation*); the joint DR+DME
accuracy is eq. 6 of Tu et al. (*SUNet*).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import cohen_kappa_score, confusion_matrix, roc_auc_score

from drscreen.grading import decode_grades
from drscreen.metrics.bootstrap import bootstrap_ci


def as_labels(y: Any, name: str, num_classes: int | None = None) -> np.ndarray:
    """Validate integer class labels (N,) in ``[0, num_classes)``; return them as int64."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    labels = arr.astype(np.int64)
    if not np.array_equal(labels, arr):
        raise ValueError(f"{name} must hold integer class labels")
    if labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    return labels


def as_scores(scores: Any, name: str, n: int) -> np.ndarray:
    """Validate a finite (N, K) float score matrix with K >= 2."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 2:
        raise ValueError(f"{name} must have shape ({n}, K) with K >= 2, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    return arr


def one_vs_rest_auc(y_true: np.ndarray, scores: np.ndarray) -> tuple[list[float], list[str]]:
    """ROC AUC of each class k, scoring ``scores[:, k]`` for ``y_true == k`` against the rest.

    Args:
        y_true: int (N,) labels in [0, K).
        scores: float (N, K) class probabilities or scores.

    Returns:
        (AUCs, notes): K floats, NaN where class k is absent (or is the only class present), and
        one note per NaN saying why.
    """
    aucs: list[float] = []
    notes: list[str] = []
    for k in range(scores.shape[1]):
        positives = y_true == k
        n_pos = int(positives.sum())
        if n_pos == 0 or n_pos == y_true.size:
            aucs.append(float("nan"))
            state = "absent from" if n_pos == 0 else "the only class in"
            notes.append(f"class {k} is {state} y_true: its one-vs-rest AUC is undefined (NaN)")
        else:
            aucs.append(float(roc_auc_score(positives, scores[:, k])))
    return aucs, notes


def grading_metrics(
    y_true: Any, probs: Any, decoding: str = "argmax", *, n_bootstrap: int = 0, seed: int = 0
) -> dict[str, Any]:
    """Metrics of one K-class grading task (DR: K = 5, DME: K = 3).

    Args:
        y_true: int (N,) reference grades in [0, K).
        probs: float (N, K) class probabilities (with ``decoding="argmax"`` any scores work).
        decoding: how the predicted grade is read from ``probs`` (``decode_grades``); the
            AUCs use ``probs`` directly.
        n_bootstrap: resamples of the 95 % percentile intervals ``accuracy_ci`` and ``qwk_ci``
            (``bootstrap_ci``, stratified by grade); 0 for none.
        seed: seed of the resampling.

    Returns:
        ``n``, ``accuracy``, ``qwk`` (quadratic weighted Cohen's kappa over all K grades),
        ``auc_per_grade`` ({grade: one-vs-rest AUC, NaN when undefined}), ``macro_auc`` (mean of
        the defined per-grade AUCs, NaN if none), ``confusion_matrix`` (K x K nested list, rows =
        reference, columns = prediction) and ``notes`` (why any value is NaN).
    """
    num_classes = np.shape(probs)[1] if np.ndim(probs) == 2 else None
    y = as_labels(y_true, "y_true", num_classes)
    scores = as_scores(probs, "probs", y.size)
    pred = decode_grades(scores, decoding)
    grades = list(range(num_classes))

    def accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
        return float(np.mean(truth == predicted))

    def kappa(truth: np.ndarray, predicted: np.ndarray) -> float:
        # An undefined kappa (one grade on both sides, as in some bootstrap resamples) is NaN and
        # reported in ``notes`` or left out of the interval; sklearn's warning adds nothing.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            return float(cohen_kappa_score(truth, predicted, labels=grades, weights="quadratic"))

    aucs, notes = one_vs_rest_auc(y, scores)
    defined = [a for a in aucs if not np.isnan(a)]
    qwk = kappa(y, pred)
    if np.isnan(qwk):
        notes.append("quadratic weighted kappa is undefined (NaN): no chance disagreement, e.g. one constant grade")
    intervals: dict[str, tuple[float, float]] = {}
    if n_bootstrap > 0:
        for name, metric in (("accuracy_ci", accuracy), ("qwk_ci", kappa)):
            intervals[name] = bootstrap_ci(metric, y, pred, n=n_bootstrap, seed=seed, strata=y)
    return {
        "n": int(y.size),
        "accuracy": accuracy(y, pred),
        "qwk": qwk,
        **intervals,
        "auc_per_grade": dict(zip(grades, aucs, strict=True)),
        "macro_auc": float(np.mean(defined)) if defined else float("nan"),
        "confusion_matrix": confusion_matrix(y, pred, labels=grades).tolist(),
        "notes": notes,
    }


def joint_accuracy(
    dr_true: Sequence[int] | np.ndarray,
    dr_pred: Sequence[int] | np.ndarray,
    dme_true: Sequence[int] | np.ndarray,
    dme_pred: Sequence[int] | np.ndarray,
) -> float:
    """Fraction of images whose DR grade *and* DME grade are both predicted correctly.

    Tu et al., *SUNet*, eq. 6 ("total accuracy"). All four arguments are int (N,) grades.
    """
    arrays = [as_labels(a, name) for a, name in
              ((dr_true, "dr_true"), (dr_pred, "dr_pred"), (dme_true, "dme_true"), (dme_pred, "dme_pred"))]
    if len({a.size for a in arrays}) != 1:
        raise ValueError(f"all four arrays must have the same length, got {[a.size for a in arrays]}")
    dr_t, dr_p, dme_t, dme_p = arrays
    return float(np.mean((dr_t == dr_p) & (dme_t == dme_p)))
