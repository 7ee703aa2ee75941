import pytest

from drscreen import grading


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
