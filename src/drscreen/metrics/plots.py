"""Figures saved as PNG: confusion matrices and training curves (matplotlib's Agg canvas; no
pyplot, no global backend)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from drscreen.grading import DME_GRADE_NAMES, DR_GRADE_NAMES


def default_grade_labels(num_classes: int) -> list[str]:
    """``"k: name"`` labels from ``drscreen.grading``: DR names for 5 classes, DME names for 3."""
    names = {len(DR_GRADE_NAMES): DR_GRADE_NAMES, len(DME_GRADE_NAMES): DME_GRADE_NAMES}.get(num_classes)
    if names is None:
        return [str(k) for k in range(num_classes)]
    return [f"{k}: {names[k]}" for k in range(num_classes)]


def plot_confusion_matrix(
    cm: Any,
    labels: Sequence[str] | None,
    path: str | Path,
    normalize: bool = True,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Save a confusion matrix as a PNG; each cell shows its count and its share of the row.

    Args:
        cm: (K, K) counts, rows = reference grade, columns = predicted grade (as returned in
            ``grading_metrics(...)["confusion_matrix"]``).
        labels: K class names; ``None`` uses the grade names of ``drscreen.grading``.
        path: output file; parent folders are created.
        normalize: colour cells by row-normalised share (rare grades stay visible) rather than by
            raw count. The text always shows both.
        title: optional figure title.
        dpi: resolution.

    Returns:
        The path written.
    """
    counts = np.asarray(cm)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(f"cm must be a square (K, K) matrix, got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("cm must hold non-negative counts")
    k = counts.shape[0]
    labels = default_grade_labels(k) if labels is None else list(labels)
    if len(labels) != k:
        raise ValueError(f"{len(labels)} labels for a {k} x {k} matrix")
    row_totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(row_totals > 0, counts / row_totals, np.nan)
    colour_values = np.nan_to_num(shares) if normalize else counts.astype(np.float64)
    vmax = 1.0 if normalize else max(float(counts.max()), 1.0)

    side = 1.4 + 1.1 * k
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(colour_values, cmap="Blues", vmin=0.0, vmax=vmax)
    fig.colorbar(image, ax=ax, label="share of reference row" if normalize else "count")
    for i in range(k):
        for j in range(k):
            share = "–" if np.isnan(shares[i, j]) else f"{100.0 * shares[i, j]:.1f}%"
            dark = colour_values[i, j] > 0.6 * vmax
            ax.text(j, i, f"{counts[i, j]:g}\n{share}", ha="center", va="center", fontsize=9,
                    color="white" if dark else "black")
    wrapped = ["\n".join(textwrap.wrap(label, 18)) for label in labels]
    ax.set_xticks(range(k), wrapped, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), wrapped, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    if title:
        ax.set_title(title)
    return save_png(fig, path, dpi)


def plot_curves(
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | Path,
    xlabel: str = "validation",
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Save one panel per metric, one line per run, as a PNG.

    Args:
        curves: ``{metric name: {run label: values}}``; the k-th value is drawn at x = k + 1
            (validations of one run, in order). NaN values leave gaps.
        path: output file; parent folders are created.
        xlabel: what the x axis counts.
        title: optional figure title.
        dpi: resolution.

    Returns:
        The path written.
    """
    panels = {metric: runs for metric, runs in curves.items() if any(len(v) for v in runs.values())}
    if not panels:
        raise ValueError("no values to plot")
    fig = Figure(figsize=(6.0 * len(panels), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (metric, runs) in zip(axes, panels.items(), strict=True):
        for label, values in runs.items():
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        ax.set_title(metric)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title)
    return save_png(fig, path, dpi)


def save_png(fig: Figure, path: str | Path, dpi: int) -> Path:
    """Write ``fig`` to ``path`` as a PNG (parent folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi)
    return path
