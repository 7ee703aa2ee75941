"""Lesion segmentation metrics in the style of the IDRiD challenge: pooled AUPR and Dice.

AUPR (area under the precision-recall curve) is what Siebert & Rostalski report per lesion for the
U²-Net (*Multi-task lesion segmentation with a lightweight U²-Net*), following the IDRiD
segmentation challenge (Porwal et al.); Dice is what Foo et al. report for MTUnet. See
docs/metrics.md for the choices (pooling, interpolation, lesion-free images).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve

from drscreen.grading import LESION_BY_CODE, SEGMENTATION_CLASSES, SEGMENTATION_LESIONS

AuprMethod = Literal["trapezoid", "average_precision"]
#: Probability maps of several images: one (N, ...) array, or a sequence of per-image arrays.
Maps = np.ndarray | Sequence[np.ndarray]


def dice(pred: Any, target: Any) -> float:
    """Dice coefficient 2 |P ∩ T| / (|P| + |T|) of two binary masks of the same shape.

    Non-zero counts as foreground. Returns NaN when both masks are empty (undefined).
    """
    p, t = np.asarray(pred).astype(bool), np.asarray(target).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and target {t.shape} differ in shape")
    total = int(p.sum()) + int(t.sum())
    return 2.0 * int((p & t).sum()) / total if total else float("nan")


def _pairs(probs: Maps, masks: Maps) -> list[tuple[np.ndarray, np.ndarray]]:
    if len(probs) != len(masks):
        raise ValueError(f"{len(probs)} probability maps but {len(masks)} masks")
    if len(probs) == 0:
        raise ValueError("no images given")
    pairs = []
    for i, (p, m) in enumerate(zip(probs, masks, strict=True)):
        p = np.asarray(p)  # no copy: full-resolution maps are large
        if p.dtype.kind != "f":
            p = p.astype(np.float64)
        m = np.asarray(m)
        m = m if m.dtype == bool else m != 0
        if p.shape != m.shape:
            raise ValueError(f"image {i}: probability map {p.shape} and mask {m.shape} differ in shape")
        if not (np.isfinite(p).all() and p.min() >= 0.0 and p.max() <= 1.0):
            raise ValueError(f"image {i}: probabilities must lie in [0, 1]")
        pairs.append((p, m))
    return pairs


def _area(recall: np.ndarray, precision: np.ndarray, method: AuprMethod) -> float:
    """Area of a PR curve given by points in order of increasing recall, starting after recall 0."""
    if method == "average_precision":
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return float(auc(np.r_[0.0, recall], np.r_[1.0, precision]))


def pooled_aupr(probs: Maps, masks: Maps, method: AuprMethod = "average_precision", bins: int | None = None) -> float:
    """Area under the precision-recall curve of all pixels of all images pooled together.

    Args:
        probs: (N, H, W) float probabilities in [0, 1], or a sequence of (H, W) maps.
        masks: the matching boolean ground truth.
        method: ``"average_precision"`` (default): the step-wise sum of sklearn's
            ``average_precision_score`` (a constant map scores the prevalence);
            ``"trapezoid"``: the PR curve through every distinct threshold, starting at
            (recall 0, precision 1), integrated with the trapezoidal rule, i.e. sklearn's
            ``auc(recall, precision)`` over ``precision_recall_curve`` (a constant map scores
            (1 + prevalence) / 2, so it flatters uninformative maps).
        bins: ``None`` (exact: every distinct probability is a threshold). An integer uses
            ``bins`` equal-width thresholds on [0, 1] from per-image histograms, so memory does not
            grow with the number of pixels; it is exact when every probability is a multiple of
            1/(bins - 1), e.g. 8-bit maps with ``bins=256``.

    Returns:
        The area, or NaN when no pixel is positive.
    """
    return _aupr(_pairs(probs, masks), method, bins)


def _aupr(pairs: list[tuple[np.ndarray, np.ndarray]], method: AuprMethod, bins: int | None) -> float:
    if method not in ("trapezoid", "average_precision"):
        raise ValueError(f"method must be 'trapezoid' or 'average_precision', got {method!r}")
    if not any(m.any() for _, m in pairs):
        return float("nan")
    if bins is None:
        scores = np.concatenate([p.ravel() for p, _ in pairs])
        truth = np.concatenate([m.ravel() for _, m in pairs])
        if method == "average_precision":
            return float(average_precision_score(truth, scores))
        precision, recall, _ = precision_recall_curve(truth, scores)
        return float(auc(recall, precision))
    tp, fp = _counts(pairs, bins)
    tp, fp = tp[::-1], fp[::-1]  # from the highest threshold down
    called = (tp + fp) > 0
    tp, fp = tp[called], fp[called]
    return _area(tp / tp[-1], tp / (tp + fp), method)


def pooled_counts(probs: Maps, masks: Maps, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """True and false positive pixel counts of all images pooled, at ``bins`` equal-width
    thresholds on [0, 1]: the binning of ``pooled_aupr(bins=...)``.

    A probability ``p`` falls in bin ``rint(p * (bins - 1))`` (it rounds to ``k / (bins - 1)``);
    at threshold ``k`` a pixel is positive when its bin is ``k`` or above.

    Returns:
        ``(tp, fp)``, two int64 arrays of length ``bins``: ``tp[k]`` and ``fp[k]`` count the
        positive and negative pixels whose bin is ``k`` or above.
    """
    return _counts(_pairs(probs, masks), bins)


def _counts(pairs: list[tuple[np.ndarray, np.ndarray]], bins: int) -> tuple[np.ndarray, np.ndarray]:
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    pos_hist = np.zeros(bins, dtype=np.int64)
    neg_hist = np.zeros(bins, dtype=np.int64)
    for p, m in pairs:
        idx = np.rint(p * (bins - 1)).astype(np.int64)
        pos_hist += np.bincount(idx[m], minlength=bins)
        neg_hist += np.bincount(idx[~m], minlength=bins)
    return np.cumsum(pos_hist[::-1])[::-1], np.cumsum(neg_hist[::-1])[::-1]


def lesion_class_metrics(
    probs: Maps,
    masks: Maps,
    threshold: float = 0.5,
    method: AuprMethod = "average_precision",
    bins: int | None = None,
    only_images_with_lesion: bool = False,
) -> dict[str, Any]:
    """AUPR and Dice of one lesion class over a set of images.

    Args:
        probs: (N, H, W) float probabilities in [0, 1], or a sequence of (H, W) maps (sizes may
            differ between images).
        masks: the matching boolean ground truth.
        threshold: a pixel is predicted as lesion when its probability is >= threshold (Dice).
        method, bins: how the AUPR is computed (see ``pooled_aupr``).
        only_images_with_lesion: score only the images whose mask contains the lesion (as if
            lesion-free images had no ground-truth file); by default every image counts, and
            false positives on lesion-free images lower both metrics.

    Returns:
        ``aupr`` (pooled), ``dice`` (pooled: 2 ΣTP / (Σpredicted + Σtrue) over all images),
        ``dice_per_image`` (mean of per-image Dice over images where prediction or truth is
        non-empty), ``n_images``, ``n_images_with_lesion`` and ``notes`` (why a value is NaN).
    """
    pairs = _pairs(probs, masks)
    if only_images_with_lesion:
        pairs = [(p, m) for p, m in pairs if m.any()]
    notes: list[str] = []
    n_with_lesion = sum(bool(m.any()) for _, m in pairs)
    if n_with_lesion == 0:
        notes.append("no ground-truth lesion pixel: AUPR is undefined (NaN)")

    intersection = predicted = true = 0
    per_image = []
    for p, m in pairs:
        called = p >= threshold
        intersection += int((called & m).sum())
        predicted += int(called.sum())
        true += int(m.sum())
        per_image.append(dice(called, m))
    defined = [d for d in per_image if not np.isnan(d)]
    if predicted + true == 0:
        notes.append("neither prediction nor ground truth has a lesion pixel: Dice is undefined (NaN)")
    return {
        "aupr": _aupr(pairs, method, bins),
        "dice": 2.0 * intersection / (predicted + true) if predicted + true else float("nan"),
        "dice_per_image": float(np.mean(defined)) if defined else float("nan"),
        "n_images": len(pairs),
        "n_images_with_lesion": n_with_lesion,
        "notes": notes,
    }


def lesion_metrics(
    probs: Maps,
    masks: Maps,
    classes: Sequence[str] | None = None,
    threshold: float = 0.5,
    method: AuprMethod = "average_precision",
    bins: int | None = None,
    only_images_with_lesion: bool = False,
) -> dict[str, dict[str, Any]]:
    """Per-class AUPR and Dice of multi-channel lesion maps, plus their mean over lesion classes.

    Args:
        probs: (N, C, H, W) float probabilities in [0, 1], or a sequence of (C, H, W) arrays.
        masks: the matching boolean ground truth.
        classes: C lesion codes in channel order; by default ``SEGMENTATION_LESIONS`` (C = 4) or
            ``SEGMENTATION_CLASSES`` (C = 5) from ``drscreen.grading``.
        threshold, method, bins, only_images_with_lesion: as in ``lesion_class_metrics``.

    Returns:
        ``{code: lesion_class_metrics(...)}`` for every class, and ``"mean"``: the mean ``aupr``,
        ``dice`` and ``dice_per_image`` over the true lesion classes (the optic disc is left out),
        ignoring NaN.
    """
    if len(probs) == 0:
        raise ValueError("no images given")
    num_channels = np.shape(probs[0])[0] if np.ndim(probs[0]) == 3 else -1
    if classes is None:
        defaults = {len(SEGMENTATION_LESIONS): SEGMENTATION_LESIONS, len(SEGMENTATION_CLASSES): SEGMENTATION_CLASSES}
        if num_channels not in defaults:
            raise ValueError(f"cannot name {num_channels} channels; pass classes=")
        classes = defaults[num_channels]
    if len(probs) != len(masks):
        raise ValueError(f"{len(probs)} probability maps but {len(masks)} masks")
    for i, (p, m) in enumerate(zip(probs, masks, strict=True)):
        if np.ndim(p) != 3 or np.shape(p)[0] != len(classes) or np.shape(m)[0] != len(classes):
            raise ValueError(
                f"image {i}: expected ({len(classes)}, H, W) maps and masks, got {np.shape(p)}, {np.shape(m)}"
            )

    result: dict[str, dict[str, Any]] = {}
    for c, code in enumerate(classes):
        result[code] = lesion_class_metrics(
            [p[c] for p in probs], [m[c] for m in masks], threshold, method, bins, only_images_with_lesion
        )
    lesions = [code for code in classes if code not in LESION_BY_CODE or LESION_BY_CODE[code].is_lesion]
    mean: dict[str, Any] = {}
    for key in ("aupr", "dice", "dice_per_image"):
        values = [result[code][key] for code in lesions if not np.isnan(result[code][key])]
        mean[key] = float(np.mean(values)) if values else float("nan")
    result["mean"] = mean
    return result
