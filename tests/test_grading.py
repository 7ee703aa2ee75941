import pytest

import numpy as np

from drscreen import grading
from drscreen.grading import OperatingPoint, decode_grades, referable_labels, referable_scores


@pytest.mark.parametrize(
    ("dr", "dme", "expected"),
    [(0, 0, False), (1, 0, False), (2, 0, True), (4, None, True), (1, 1, True), (None, 2, True), (None, 0, False)],
)
def test_referable_rule(dr, dme, expected):
    assert grading.is_referable(dr, dme) is expected


def test_referable_needs_a_grade():
    with pytest.raises(ValueError):
        grading.is_referable(None, None)


@pytest.mark.parametrize("bad", [-1, 5, 2.5])
def test_invalid_dr_grade_rejected(bad):
    with pytest.raises(ValueError):
        grading.validate_dr_grade(bad)


def test_scales_and_classes_are_consistent():
    assert grading.NUM_DR_GRADES == 5 and grading.NUM_DME_GRADES == 3
    assert [g.label for g in grading.DRGrade] == list(grading.DR_GRADE_NAMES.values())
    codes = [c.code for c in grading.LESION_CLASSES]
    assert len(set(codes)) == len(codes)
    assert set(grading.SEGMENTATION_CLASSES) <= set(codes)
    assert set(grading.RED_LESIONS) | set(grading.BRIGHT_LESIONS) == set(grading.SEGMENTATION_LESIONS)
    assert len({c.color for c in grading.LESION_CLASSES}) == len(codes)
    with pytest.raises(KeyError):
        grading.lesion_color("XX")


def test_expected_grade_decoding_by_hand():
    probs = np.array([[0.5, 0.0, 0.0, 0.0, 0.5], [0.1, 0.6, 0.3, 0.0, 0.0], [0.0, 0.0, 0.0, 0.4, 0.6]])
    assert decode_grades(probs, "argmax").tolist() == [0, 1, 4]
    assert decode_grades(probs, "expected").tolist() == [2, 1, 4]  # expectations 2.0, 1.2, 3.6
    with pytest.raises(ValueError, match="unknown grade decoding"):
        decode_grades(probs, "median")


def test_referable_labels_and_scores_by_hand():
    assert referable_labels([0, 1, 2, 4]).tolist() == [False, False, True, True]
    assert referable_labels([0, 1, 1, 3], [0, 1, 0, 0]).tolist() == [False, True, False, True]
    dr = np.array([[0.5, 0.2, 0.2, 0.05, 0.05], [0.1, 0.1, 0.1, 0.1, 0.6]])
    dme = np.array([[0.6, 0.3, 0.1], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(referable_scores(dr), [0.3, 0.8])
    np.testing.assert_allclose(referable_scores(dr, dme), [1 - 0.7 * 0.6, 0.8])
    np.testing.assert_allclose(referable_scores(dr, dme, combine="max"), [0.4, 0.8])
    with pytest.raises(ValueError):
        referable_scores(dr * 2)  # not probabilities


def test_operating_point_from_a_threshold_a_sensitivity_and_refusals():
    curve = {"threshold": [0.2, 0.5, 0.8], "sensitivity": [0.97, 0.91, 0.60], "specificity": [0.5, 0.8, 0.95]}
    point = OperatingPoint.parse("sensitivity=0.9", curve)
    assert (point.threshold, point.sensitivity, point.specificity) == (0.5, 0.91, 0.8)
    assert OperatingPoint.parse("sensitivity=0.95", curve).threshold == 0.2
    assert OperatingPoint.parse("0.3").threshold == 0.3
    assert OperatingPoint(0.5).refer([0.49, 0.5, 0.9]).tolist() == [False, True, True]
    with pytest.raises(ValueError, match="no validation curve"):
        OperatingPoint.parse("sensitivity=0.9")
    with pytest.raises(ValueError, match="reaches sensitivity"):
        OperatingPoint.parse("sensitivity=0.99", curve)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        OperatingPoint.parse("1.5")
    with pytest.raises(ValueError, match="give a threshold"):
        OperatingPoint.parse("specificity=0.9")
