"""``pooled_counts``: the binned counts that ``pooled_aupr(bins=...)`` integrates."""

from __future__ import annotations

import numpy as np
import pytest

from drscreen.metrics.segmentation import _area, pooled_aupr, pooled_counts


def reference_binned_aupr(probs: list[np.ndarray], masks: list[np.ndarray], method: str, bins: int) -> float:
    """``pooled_aupr(bins=...)`` as it was written before ``pooled_counts`` existed."""
    pos_hist = np.zeros(bins, dtype=np.int64)
    neg_hist = np.zeros(bins, dtype=np.int64)
    for p, m in zip(probs, masks, strict=True):
        idx = np.rint(p * (bins - 1)).astype(np.int64)
        pos_hist += np.bincount(idx[m], minlength=bins)
        neg_hist += np.bincount(idx[~m], minlength=bins)
    tp = np.cumsum(pos_hist[::-1])
    fp = np.cumsum(neg_hist[::-1])
    called = (tp + fp) > 0
    tp, fp = tp[called], fp[called]
    return _area(tp / tp[-1], tp / (tp + fp), method)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["average_precision", "trapezoid"])
@pytest.mark.parametrize("bins", [2, 256, 4097])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_the_binned_aupr_is_unchanged(method: str, bins: int, dtype: type) -> None:
    rng = np.random.default_rng(bins)
    masks = [rng.random((40, 50)) < 0.1, rng.random((30, 20)) < 0.3]
    probs = [np.clip(0.4 * m + 0.6 * rng.random(m.shape), 0, 1).astype(dtype) for m in masks]
    assert pooled_aupr(probs, masks, method=method, bins=bins) == reference_binned_aupr(probs, masks, method, bins)


def test_the_counts_are_the_pixels_of_each_bin_and_above() -> None:
    probs = [np.array([0.0, 0.2, 0.49, 0.51, 1.0]), np.array([0.74, 0.76])]
    masks = [np.array([False, True, False, True, True]), np.array([True, False])]
    tp, fp = pooled_counts(probs, masks, bins=5)  # bins at 0, 0.25, 0.5, 0.75, 1
    # bins of the pixels: 0, 1, 2, 2, 4 and 3, 3
    assert tp.tolist() == [4, 4, 3, 2, 1]
    assert fp.tolist() == [3, 2, 2, 1, 0]
    with pytest.raises(ValueError):
        pooled_counts(probs, masks, bins=1)
