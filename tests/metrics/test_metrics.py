"""drscreen.metrics against scikit-learn and hand-computed values (fixed seeds, numpy only)."""

from __future__ import annotations

import math

import matplotlib.image
import numpy as np
import pytest
from sklearn.metrics import (
    auc,
    average_precision_score,
    cohen_kappa_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
)

from drscreen.grading import decode_grades
from drscreen.metrics import (
    MetricReport,
    bootstrap_auc,
    bootstrap_ci,
    bootstrap_indices,
    dice,
    format_metric,
    grading_metrics,
    joint_accuracy,
    lesion_class_metrics,
    lesion_metrics,
    plot_confusion_matrix,
    plot_curves,
    pooled_aupr,
    referable_metrics,
    sensitivity_specificity,
    threshold_for_sensitivity,
)


def _graded(n: int, k: int, seed: int, skill: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Random grades (N,) and probabilities (N, K) that lean towards the true grade."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += skill
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def _maps(n: int, size: int, seed: int, rate: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Random probability maps (N, H, W) and masks correlated with them."""
    rng = np.random.default_rng(seed)
    masks = rng.random((n, size, size)) < rate
    probs = np.clip(0.35 * masks + 0.65 * rng.random((n, size, size)), 0.0, 1.0)
    return probs, masks


# --- grading ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "seed"), [(5, 0), (5, 1), (3, 2)])
def test_grading_metrics_match_sklearn(k, seed):
    y, probs = _graded(400, k, seed)
    pred = probs.argmax(axis=1)
    m = grading_metrics(y, probs)
    assert m["n"] == 400
    assert m["accuracy"] == pytest.approx(np.mean(pred == y))
    assert m["qwk"] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))
    for grade in range(k):
        assert m["auc_per_grade"][grade] == pytest.approx(roc_auc_score(y == grade, probs[:, grade]))
    assert m["macro_auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"))
    assert m["confusion_matrix"] == confusion_matrix(y, pred).tolist()
    assert m["notes"] == []


@pytest.mark.parametrize("seed", [0, 1])
def test_grading_metrics_with_expected_grade_match_sklearn(seed):
    y, probs = _graded(400, 5, seed)
    pred = np.clip(np.rint(probs @ np.arange(5)), 0, 4).astype(int)
    m = grading_metrics(y, probs, decoding="expected")
    assert m["qwk"] == pytest.approx(cohen_kappa_score(y, pred, weights="quadratic"))
    assert m["accuracy"] == pytest.approx(np.mean(pred == y))
    assert m["confusion_matrix"] == confusion_matrix(y, pred, labels=range(5)).tolist()
    assert m["macro_auc"] == pytest.approx(grading_metrics(y, probs)["macro_auc"])  # AUCs ignore decoding
    assert not np.array_equal(pred, probs.argmax(axis=1))


def test_grading_intervals_are_the_stratified_bootstrap_of_accuracy_and_kappa():
    y, probs = _graded(300, 5, 4)
    m = grading_metrics(y, probs, decoding="expected", n_bootstrap=200, seed=3)
    pred = decode_grades(probs, "expected")
    kappa = bootstrap_ci(
        lambda t, p: cohen_kappa_score(t, p, labels=range(5), weights="quadratic"), y, pred, n=200, seed=3, strata=y
    )
    assert m["qwk_ci"] == pytest.approx(kappa)
    assert m["qwk_ci"][0] < m["qwk"] < m["qwk_ci"][1] and m["accuracy_ci"][0] < m["accuracy"] < m["accuracy_ci"][1]
    assert "qwk_ci" not in grading_metrics(y, probs)


def test_absent_grade_gives_nan_auc_with_note():
    y, probs = _graded(300, 5, 3)
    y[y == 4] = 3  # no proliferative case
    m = grading_metrics(y, probs)
    assert math.isnan(m["auc_per_grade"][4])
    assert any("class 4" in note for note in m["notes"])
    present = [m["auc_per_grade"][g] for g in range(4)]
    assert m["macro_auc"] == pytest.approx(np.mean(present))
    assert len(m["confusion_matrix"]) == 5 and sum(m["confusion_matrix"][4]) == 0
    assert m["qwk"] == pytest.approx(cohen_kappa_score(y, probs.argmax(1), labels=range(5), weights="quadratic"))


def test_grading_rejects_bad_input():
    with pytest.raises(ValueError):
        grading_metrics([0, 1, 5], np.full((3, 5), 0.2))  # grade out of range
    with pytest.raises(ValueError):
        grading_metrics([0, 1], np.full((3, 5), 0.2))  # length mismatch


def test_joint_accuracy_by_hand_and_random():
    dr_true, dr_pred = [0, 2, 4, 1, 3], [0, 2, 3, 1, 3]
    dme_true, dme_pred = [0, 1, 2, 0, 2], [0, 0, 2, 0, 2]
    # both right: cases 0, 3, 4 -> 3/5 (case 1: DME wrong, case 2: DR wrong)
    assert joint_accuracy(dr_true, dr_pred, dme_true, dme_pred) == pytest.approx(0.6)
    rng = np.random.default_rng(4)
    a, b, c, d = rng.integers(0, 3, (4, 500))
    assert joint_accuracy(a, b, c, d) == pytest.approx(np.mean((a == b) & (c == d)))
    with pytest.raises(ValueError):
        joint_accuracy([0, 1], [0], [0, 1], [0, 1])


# --- referable -------------------------------------------------------------------------------


def test_sensitivity_specificity_by_hand():
    y = [True, True, True, True, False, False, False]
    s = [0.9, 0.6, 0.5, 0.2, 0.7, 0.1, 0.3]
    # score >= 0.5: TP 3 of 4 positives, FP 1 of 3 negatives
    sens, spec = sensitivity_specificity(y, s, 0.5)
    assert sens == pytest.approx(3 / 4) and spec == pytest.approx(2 / 3)
    assert sensitivity_specificity(y, s, 0.95) == pytest.approx((0.0, 1.0))


def test_threshold_for_sensitivity():
    y = np.array([True, True, True, True, False, False, False])
    s = np.array([0.9, 0.6, 0.5, 0.2, 0.7, 0.1, 0.3])
    assert threshold_for_sensitivity(y, s, 0.75) == 0.5
    assert threshold_for_sensitivity(y, s, 0.76) == 0.2
    rng = np.random.default_rng(5)
    y = rng.random(1000) < 0.3
    s = rng.random(1000) + 0.4 * y
    for target in (0.8, 0.9, 0.95):
        t = threshold_for_sensitivity(y, s, target)
        assert sensitivity_specificity(y, s, t)[0] >= target
        assert sensitivity_specificity(y, s, np.nextafter(t, 2.0))[0] < target


def test_referable_metrics_point_estimates_match_sklearn():
    y_dr, p_dr = _graded(600, 5, 6)
    y_dme, p_dme = _graded(600, 3, 7)
    m = referable_metrics(y_dr, p_dr, y_dme, p_dme, threshold=0.6, n_bootstrap=200)
    truth = (y_dr >= 2) | (y_dme >= 1)
    score = 1 - p_dr[:, :2].sum(1) * p_dme[:, 0]
    assert m["n_referable"] == int(truth.sum())
    assert m["auc"] == pytest.approx(roc_auc_score(truth, score))
    assert m["sensitivity"] == pytest.approx(np.mean(score[truth] >= 0.6))
    assert m["specificity"] == pytest.approx(np.mean(score[~truth] < 0.6))
    for key in ("auc", "sensitivity", "specificity"):
        low, high = m[f"{key}_ci"]
        assert low <= m[key] <= high


def test_bootstrap_ci_is_seeded_and_narrows_with_more_cases():
    y, p = _graded(300, 5, 8)
    a = referable_metrics(y, p, n_bootstrap=500, seed=1)
    b = referable_metrics(y, p, n_bootstrap=500, seed=1)
    c = referable_metrics(y, p, n_bootstrap=500, seed=2)
    assert a["auc_ci"] == b["auc_ci"] and a["sensitivity_ci"] == b["sensitivity_ci"]
    assert a["auc_ci"] != c["auc_ci"]
    y_big, p_big = _graded(5000, 5, 8)
    big = referable_metrics(y_big, p_big, n_bootstrap=1000, seed=1)  # the realistic size, vectorised
    for key in ("auc", "sensitivity", "specificity"):
        assert np.diff(big[f"{key}_ci"])[0] < 0.5 * np.diff(a[f"{key}_ci"])[0]
        assert big[f"{key}_ci"][0] <= big[key] <= big[f"{key}_ci"][1]


def test_vectorised_bootstrap_auc_equals_sklearn_per_resample():
    rng = np.random.default_rng(9)
    y = rng.random(200) < 0.4
    s = np.round(rng.random(200) + 0.3 * y, 1)  # many ties
    for strata in (None, y):
        idx = bootstrap_indices(200, 25, seed=3, strata=strata)
        expected = [roc_auc_score(y[r], s[r]) for r in idx]
        np.testing.assert_allclose(bootstrap_auc(y, s, idx), expected, rtol=0, atol=1e-12)


def test_referable_intervals_equal_generic_bootstrap_ci():
    y_dr, p_dr = _graded(250, 5, 10)
    truth, score = y_dr >= 2, p_dr[:, 2:].sum(1)
    for stratified in (True, False):
        m = referable_metrics(y_dr, p_dr, n_bootstrap=100, seed=4, ci=0.9, stratified=stratified)
        strata = truth if stratified else None
        generic_auc = bootstrap_ci(roc_auc_score, truth, score, n=100, seed=4, ci=0.9, strata=strata)
        generic_sens = bootstrap_ci(
            lambda t, s: sensitivity_specificity(t, s, 0.5)[0], truth, score, n=100, seed=4, ci=0.9, strata=strata
        )
        np.testing.assert_allclose(m["auc_ci"], generic_auc, atol=1e-12)
        np.testing.assert_allclose(m["sensitivity_ci"], generic_sens, atol=1e-12)


def test_stratified_indices_keep_stratum_sizes():
    strata = np.array([0] * 7 + [1] * 3)
    idx = bootstrap_indices(10, 100, seed=0, strata=strata)
    assert idx.shape == (100, 10)
    assert (strata[idx].sum(axis=1) == 3).all()


def test_single_class_referable_gives_nan_auc_not_crash():
    y = np.zeros(20, dtype=int)
    probs = np.tile([0.3, 0.3, 0.2, 0.1, 0.1], (20, 1))  # P(DR >= 2) = 0.4: all called non-referable
    m = referable_metrics(y, probs, n_bootstrap=50)
    assert math.isnan(m["auc"]) and math.isnan(m["sensitivity"]) and m["specificity"] == 1.0
    assert all(math.isnan(v) for v in m["auc_ci"]) and m["notes"]


# --- segmentation ----------------------------------------------------------------------------


def test_dice_by_hand():
    pred = np.array([[1, 1, 0], [0, 1, 0]])
    target = np.array([[1, 0, 0], [0, 1, 1]])
    assert dice(pred, target) == pytest.approx(2 * 2 / (3 + 3))
    assert dice(pred, pred) == 1.0
    assert dice(pred, np.zeros_like(pred)) == 0.0
    assert math.isnan(dice(np.zeros((2, 2)), np.zeros((2, 2))))


def test_pooled_aupr_matches_sklearn():
    probs, masks = _maps(4, 32, 11)
    y, s = masks.ravel(), probs.ravel()
    precision, recall, _ = precision_recall_curve(y, s)
    assert pooled_aupr(probs, masks, method="trapezoid") == pytest.approx(auc(recall, precision))
    assert pooled_aupr(probs, masks) == pytest.approx(average_precision_score(y, s))


def test_default_aupr_of_a_constant_map_is_the_prevalence():
    """An uninformative map must not look good: the default scores it at the positive rate."""
    _, masks = _maps(3, 32, 5)
    constant = np.full(masks.shape, 0.5)
    assert pooled_aupr(constant, masks) == pytest.approx(masks.mean())
    assert pooled_aupr(constant, masks, method="trapezoid") == pytest.approx((1 + masks.mean()) / 2)


@pytest.mark.parametrize("method", ["trapezoid", "average_precision"])
def test_binned_aupr_is_exact_on_8bit_maps(method):
    probs, masks = _maps(3, 40, 12)
    probs = np.round(probs * 255) / 255
    exact = pooled_aupr(probs, masks, method=method)
    assert pooled_aupr(probs, masks, method=method, bins=256) == pytest.approx(exact, abs=1e-12)
    assert pooled_aupr(probs, masks, method=method, bins=64) == pytest.approx(exact, abs=0.02)


def test_lesion_class_metrics_pooled_and_per_image():
    probs, masks = _maps(3, 24, 13)
    masks[2] = False  # one lesion-free image
    m = lesion_class_metrics(list(probs), list(masks), threshold=0.5)
    called = probs >= 0.5
    assert m["dice"] == pytest.approx(2 * (called & masks).sum() / (called.sum() + masks.sum()))
    per_image = [dice(called[i], masks[i]) for i in range(3)]
    assert per_image[2] == 0.0  # false positives on the lesion-free image
    assert m["dice_per_image"] == pytest.approx(np.mean(per_image))
    assert m["n_images"] == 3 and m["n_images_with_lesion"] == 2
    assert m["aupr"] == pytest.approx(pooled_aupr(probs, masks))
    only = lesion_class_metrics(probs, masks, only_images_with_lesion=True)
    assert only["n_images"] == 2 and only["aupr"] == pytest.approx(pooled_aupr(probs[:2], masks[:2]))
    assert only["aupr"] > m["aupr"]


def test_lesion_absent_everywhere_gives_nan_not_crash():
    probs = np.full((2, 8, 8), 0.1)
    m = lesion_class_metrics(probs, np.zeros((2, 8, 8), bool))
    assert math.isnan(m["aupr"]) and math.isnan(m["dice"]) and math.isnan(m["dice_per_image"])
    assert len(m["notes"]) == 2


def test_lesion_metrics_per_class_and_mean_without_optic_disc():
    rng = np.random.default_rng(14)
    probs = rng.random((3, 5, 16, 16))
    masks = rng.random((3, 5, 16, 16)) < 0.1
    images_of_different_size = [probs[0], probs[1, :, :12, :10]], [masks[0], masks[1, :, :12, :10]]
    m = lesion_metrics(probs, masks)
    assert list(m) == ["MA", "HE", "EX", "SE", "OD", "mean"]
    for c, code in enumerate(["MA", "HE", "EX", "SE", "OD"]):
        assert m[code] == lesion_class_metrics(probs[:, c], masks[:, c])
    assert m["mean"]["aupr"] == pytest.approx(np.mean([m[c]["aupr"] for c in ("MA", "HE", "EX", "SE")]))
    assert set(lesion_metrics(*images_of_different_size)) == set(m)
    with pytest.raises(ValueError):
        lesion_metrics(probs[:, :3], masks[:, :3])  # 3 channels: names needed
    assert set(lesion_metrics(probs[:, :3], masks[:, :3], classes=["A", "B", "C"])) == {"A", "B", "C", "mean"}


# --- plot and report -------------------------------------------------------------------------


def test_confusion_matrix_png_is_a_valid_image(tmp_path):
    y, probs = _graded(200, 5, 15)
    y[y == 3] = 2  # an empty reference row
    cm = grading_metrics(y, probs)["confusion_matrix"]
    path = plot_confusion_matrix(cm, None, tmp_path / "sub" / "cm.png", title="DR", dpi=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
    plot_confusion_matrix(np.eye(3, dtype=int) * 4, ["a", "b", "c"], tmp_path / "dme.png", normalize=False, dpi=40)
    assert (tmp_path / "dme.png").stat().st_size > 0
    with pytest.raises(ValueError):
        plot_confusion_matrix(np.ones((2, 3)), None, tmp_path / "bad.png")


def test_curves_png_has_one_panel_per_metric(tmp_path):
    curves = {"val_dr_qwk": {"a": [0.5, 0.7, 0.8], "b": [0.6, float("nan")]}, "val_referable_auc": {"a": [0.9]}}
    one = matplotlib.image.imread(plot_curves({"val_dr_qwk": curves["val_dr_qwk"]}, tmp_path / "one.png", dpi=50))
    two = matplotlib.image.imread(plot_curves(curves, tmp_path / "two.png", title="t", dpi=50))
    assert one.shape[0] == two.shape[0] and two.shape[1] > 1.8 * one.shape[1]
    with pytest.raises(ValueError, match="no values"):
        plot_curves({"val_dr_qwk": {"a": []}}, tmp_path / "none.png")


def test_metric_report_row():
    metrics = {"auc": 0.91234, "auc_ci": (0.88, 0.93), "sensitivity": 0.875, "specificity": float("nan")}
    report = MetricReport({"auc": "AUC", "sensitivity": "Sens.", "specificity": "Spec.", "qwk": "QWK"})
    assert report.row("SUNet", metrics) == "| SUNet | 0.912 (0.880–0.930) | 0.875 | n/a | – |"
    assert report.table({"SUNet": metrics}).splitlines()[:2] == [
        "| model | AUC | Sens. | Spec. | QWK |",
        "|---|---|---|---|---|",
    ]
    assert format_metric(0.8756, (0.81, 0.9), digits=1, percent=True) == "87.6% (81.0–90.0)"
