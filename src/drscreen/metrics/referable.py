"""Referable diabetic eye disease (DR >= 2 or DME >= 1): AUC, sensitivity, specificity, bootstrap CIs.

The referable rule, on labels and on probabilities (``referable_labels``, ``referable_scores``),
is the one in ``drscreen.grading``; this module scores it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from drscreen.grading import NUM_DME_GRADES, NUM_DR_GRADES, Combine, referable_labels, referable_scores
from drscreen.metrics.bootstrap import bootstrap_indices, percentile_interval
from drscreen.metrics.grading import as_labels

#: Upper bound on the number of (resample, case) cells the vectorised bootstrap holds at once.
_CHUNK_CELLS = 2_000_000


def sensitivity_specificity(y_true: Any, scores: Any, threshold: float = 0.5) -> tuple[float, float]:
    """Sensitivity and specificity of the rule ``score >= threshold`` -> positive.

    Args:
        y_true: bool (N,) reference (True = referable).
        scores: float (N,).

    Returns:
        (sensitivity, specificity); each is NaN when its class is absent.
    """
    y = np.asarray(y_true, dtype=bool)
    positive = np.asarray(scores, dtype=np.float64) >= threshold
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    sens = float((positive & y).sum() / n_pos) if n_pos else float("nan")
    spec = float((~positive & ~y).sum() / n_neg) if n_neg else float("nan")
    return sens, spec


def threshold_for_sensitivity(y_true: Any, scores: Any, target: float = 0.9) -> float:
    """Highest threshold whose sensitivity (rule ``score >= threshold``) reaches ``target``.

    Pick it on a validation set, then pass it as ``threshold`` to ``referable_metrics`` on the test
    set. Among all thresholds meeting the target it gives the best specificity.

    Args:
        y_true: bool (N,) reference with at least one positive.
        scores: float (N,).
        target: required sensitivity in (0, 1].
    """
    y = np.asarray(y_true, dtype=bool)
    if not y.any():
        raise ValueError("threshold_for_sensitivity needs at least one positive case")
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target sensitivity must lie in (0, 1], got {target}")
    positive_scores = np.sort(np.asarray(scores, dtype=np.float64)[y])[::-1]
    # The m-th highest positive score keeps at least m positives at or above the threshold.
    m = int(np.ceil(target * positive_scores.size - 1e-9))
    return float(positive_scores[m - 1])


def bootstrap_auc(y_true: np.ndarray, scores: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """ROC AUC of every bootstrap resample at once (Mann-Whitney statistic, ties count one half).

    Args:
        y_true: bool (N,).
        scores: float (N,).
        indices: int (B, N) resampling indices (``bootstrap_indices``).

    Returns:
        float (B,); NaN for a resample without positives or without negatives.
    """
    n_resamples, n = indices.shape
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    tie_starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    positive = y_true[order]
    out = np.empty(n_resamples)
    step = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_resamples, step):
        block = indices[start : start + step]
        rows = block.shape[0]
        # Multiplicity of each original case in each resample, in ascending score order.
        counts = np.bincount((block + n * np.arange(rows)[:, None]).ravel(), minlength=rows * n)
        counts = counts.reshape(rows, n)[:, order]
        pos = np.add.reduceat(np.where(positive, counts, 0), tie_starts, axis=1)
        neg = np.add.reduceat(np.where(positive, 0, counts), tie_starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        wins = (pos * (below + 0.5 * neg)).sum(axis=1)
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + rows] = np.where(pairs > 0, wins / pairs, np.nan)
    return out


def referable_metrics(
    dr_true: Any,
    dr_probs: Any,
    dme_true: Any | None = None,
    dme_probs: Any | None = None,
    threshold: float = 0.5,
    combine: Combine = "independent",
    n_bootstrap: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    stratified: bool = True,
) -> dict[str, Any]:
    """Referable-disease AUC, sensitivity and specificity with percentile bootstrap intervals.

    Args:
        dr_true: int (N,) DR grades 0-4.
        dr_probs: float (N, 5) DR grade probabilities.
        dme_true, dme_probs: optional int (N,) DME grades 0-2 and (N, 3) probabilities, given
            together; then a case is referable if DR >= 2 or DME >= 1 (see ``referable_scores``).
        threshold: a case is called referable when its score is >= threshold.
        combine: ``"independent"`` or ``"max"`` (see ``referable_scores``).
        n_bootstrap: number of resamples (0 skips the intervals).
        seed: resampling seed.
        ci: confidence level of the intervals.
        stratified: resample referable and non-referable cases separately, keeping their counts.

    Returns:
        ``n``, ``n_referable``, ``threshold``, ``auc``, ``sensitivity``, ``specificity``, each
        metric's ``<name>_ci`` as ``(low, high)``, ``ci``, ``n_bootstrap``, ``stratified``, and
        ``notes`` (why any value is NaN).
    """
    if (dme_true is None) != (dme_probs is None):
        raise ValueError("give dme_true and dme_probs together, or neither")
    dme = None if dme_true is None else as_labels(dme_true, "dme_true", NUM_DME_GRADES)
    y = referable_labels(as_labels(dr_true, "dr_true", NUM_DR_GRADES), dme)
    if np.shape(dr_probs)[:1] != (y.size,):
        raise ValueError(f"dr_probs must have {y.size} rows, got shape {np.shape(dr_probs)}")
    scores = referable_scores(dr_probs, dme_probs, combine)
    return score_referable(y, scores, threshold, n_bootstrap=n_bootstrap, seed=seed, ci=ci, stratified=stratified)


def score_referable(
    y_true: Any,
    scores: Any,
    threshold: float = 0.5,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    stratified: bool = True,
) -> dict[str, Any]:
    """AUC, sensitivity and specificity of referable scores already computed, with intervals.

    Args:
        y_true: bool (N,) reference (True = referable).
        scores: float (N,) referable scores (e.g. stored screening results).
        threshold, n_bootstrap, seed, ci, stratified: as in ``referable_metrics``.

    Returns:
        The ``referable_metrics`` dictionary.
    """
    y = np.asarray(y_true, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != y.shape or y.ndim != 1:
        raise ValueError(f"y_true and scores must be (N,) of the same length, got {y.shape} and {scores.shape}")
    n_pos = int(y.sum())
    notes: list[str] = []
    if n_pos in (0, y.size):
        notes.append("only one class (referable or not) is present: AUC and one of sensitivity/specificity are NaN")
        auc = float("nan")
    else:
        auc = float(roc_auc_score(y, scores))
    sens, spec = sensitivity_specificity(y, scores, threshold)
    result: dict[str, Any] = {
        "n": int(y.size),
        "n_referable": n_pos,
        "threshold": float(threshold),
        "auc": auc,
        "sensitivity": sens,
        "specificity": spec,
        "ci": ci,
        "n_bootstrap": n_bootstrap,
        "stratified": stratified,
        "notes": notes,
    }
    if n_bootstrap > 0:
        indices = bootstrap_indices(y.size, n_bootstrap, seed, y if stratified else None)
        y_b = y[indices]
        called_b = scores[indices] >= threshold
        with np.errstate(invalid="ignore", divide="ignore"):
            sens_b = (called_b & y_b).sum(axis=1) / y_b.sum(axis=1)
            spec_b = (~called_b & ~y_b).sum(axis=1) / (~y_b).sum(axis=1)
        result["auc_ci"] = percentile_interval(bootstrap_auc(y, scores, indices), ci)
        result["sensitivity_ci"] = percentile_interval(sens_b, ci)
        result["specificity_ci"] = percentile_interval(spec_b, ci)
    return result
