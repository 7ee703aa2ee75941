"""Seeded percentile bootstrap: resampling indices, intervals, and a generic ``bootstrap_ci``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_indices(
    n_samples: int, n_resamples: int, seed: int = 0, strata: np.ndarray | None = None
) -> np.ndarray:
    """Draw resampling indices with replacement.

    Args:
        n_samples: number of cases N.
        n_resamples: number of bootstrap resamples B.
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same indices.
        strata: optional (N,) labels; when given, every resample draws each stratum from itself
            with its original size (stratified bootstrap), so no stratum can vanish.

    Returns:
        int64 (B, N): row b holds the case indices of resample b.
    """
    if n_samples < 1 or n_resamples < 1:
        raise ValueError(f"need n_samples >= 1 and n_resamples >= 1, got {n_samples}, {n_resamples}")
    rng = np.random.default_rng(seed)
    if strata is None:
        return rng.integers(0, n_samples, size=(n_resamples, n_samples))
    strata = np.asarray(strata)
    if strata.shape != (n_samples,):
        raise ValueError(f"strata must have shape ({n_samples},), got {strata.shape}")
    columns = []
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        columns.append(members[rng.integers(0, members.size, size=(n_resamples, members.size))])
    return np.concatenate(columns, axis=1)


def percentile_interval(values: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    """Central ``ci`` percentile interval of bootstrap values (B,), ignoring NaN resamples.

    Returns ``(nan, nan)`` when every resample is NaN.
    """
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must lie in (0, 1), got {ci}")
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - ci) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_ci(
    metric_fn: Callable[..., float],
    *arrays: np.ndarray,
    n: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    strata: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of any metric of paired per-case arrays.

    Args:
        metric_fn: called as ``metric_fn(*resampled_arrays)``, returns a float (NaN allowed).
        arrays: one or more arrays sharing their first dimension N (the cases).
        n: number of resamples.
        seed: seed of the resampling indices (see ``bootstrap_indices``).
        ci: confidence level, e.g. 0.95.
        strata: optional (N,) labels for stratified resampling.

    Returns:
        ``(low, high)``. Calls ``metric_fn`` ``n`` times; the referable metrics use a vectorised
        path that draws the same indices for the same seed and strata.
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array")
    arrays = tuple(np.asarray(a) for a in arrays)
    n_samples = arrays[0].shape[0]
    if any(a.shape[0] != n_samples for a in arrays):
        raise ValueError(f"arrays must share their first dimension, got {[a.shape for a in arrays]}")
    indices = bootstrap_indices(n_samples, n, seed, strata)
    values = np.array([metric_fn(*(a[rows] for a in arrays)) for rows in indices], dtype=np.float64)
    return percentile_interval(values, ci)
