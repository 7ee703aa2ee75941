"""Evaluation metrics: grading, referable disease with bootstrap intervals, lesion segmentation.

Numpy arrays in, plain floats, tuples and dicts out. See docs/metrics.md.
"""

from drscreen.metrics.bootstrap import bootstrap_ci, bootstrap_indices, percentile_interval
from drscreen.metrics.grading import (
    grading_metrics,
    joint_accuracy,
    one_vs_rest_auc,
)
from drscreen.metrics.plots import default_grade_labels, plot_confusion_matrix, plot_curves
from drscreen.metrics.referable import (
    bootstrap_auc,
    referable_metrics,
    score_referable,
    sensitivity_specificity,
    threshold_for_sensitivity,
)
from drscreen.metrics.report import MetricReport, format_metric
from drscreen.metrics.segmentation import dice, lesion_class_metrics, lesion_metrics, pooled_aupr

__all__ = [
    "MetricReport",
    "bootstrap_auc",
    "bootstrap_ci",
    "bootstrap_indices",
    "default_grade_labels",
    "dice",
    "format_metric",
    "grading_metrics",
    "joint_accuracy",
    "lesion_class_metrics",
    "lesion_metrics",
    "one_vs_rest_auc",
    "percentile_interval",
    "plot_confusion_matrix",
    "plot_curves",
    "pooled_aupr",
    "referable_metrics",
    "score_referable",
    "sensitivity_specificity",
    "threshold_for_sensitivity",
]
