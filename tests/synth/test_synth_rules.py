"""The clinical rules of the synthetic generator, exactly (no rendering involved)."""

import numpy as np
import pytest

from drscreen.grading import DMEGrade, DRGrade
from drscreen.synth import rules
from drscreen.synth.rules import Quadrant

FOVEA = (100.0, 100.0)
DISC_RIGHT_EYE = (180.0, 95.0)  # disc on the image right: nasal = +x
DISC_LEFT_EYE = (20.0, 95.0)
DD = 40.0


def _dr(n_ma=0, he=(0, 0, 0, 0), n_ex=0, n_se=0, nv=False):
    return rules.dr_grade(n_ma=n_ma, he_per_quadrant=he, n_ex=n_ex, n_se=n_se, has_nv=nv)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, DRGrade.NONE),
        ({"n_ma": 1}, DRGrade.MILD),
        ({"n_ma": 50}, DRGrade.MILD),
        ({"n_ma": 3, "he": (1, 0, 0, 0)}, DRGrade.MODERATE),
        ({"n_ex": 1}, DRGrade.MODERATE),
        ({"n_se": 1}, DRGrade.MODERATE),
        ({"he": (20, 20, 20, 20)}, DRGrade.SEVERE),
        ({"he": (19, 20, 20, 20)}, DRGrade.MODERATE),
        ({"he": (20, 20, 19, 20)}, DRGrade.MODERATE),
        ({"he": (20, 20, 20, 19)}, DRGrade.MODERATE),
        ({"he": (0, 80, 80, 80)}, DRGrade.MODERATE),
        ({"he": (25, 21, 30, 20), "n_ma": 10, "n_ex": 5}, DRGrade.SEVERE),
        ({"nv": True}, DRGrade.PROLIFERATIVE),
        ({"nv": True, "he": (20, 20, 20, 20)}, DRGrade.PROLIFERATIVE),
        ({"nv": True, "n_ma": 2}, DRGrade.PROLIFERATIVE),
    ],
)
def test_dr_levels(kwargs, expected):
    assert _dr(**kwargs) == expected


def test_dr_rejects_bad_counts():
    with pytest.raises(ValueError):
        _dr(he=(1, 2, 3))
    with pytest.raises(ValueError):
        _dr(n_ma=-1)


@pytest.mark.parametrize(
    ("point", "right_eye", "left_eye"),
    [
        ((140, 60), Quadrant.SUPERO_NASAL, Quadrant.SUPERO_TEMPORAL),
        ((60, 60), Quadrant.SUPERO_TEMPORAL, Quadrant.SUPERO_NASAL),
        ((60, 140), Quadrant.INFERO_TEMPORAL, Quadrant.INFERO_NASAL),
        ((140, 140), Quadrant.INFERO_NASAL, Quadrant.INFERO_TEMPORAL),
    ],
)
def test_quadrants_follow_the_eye(point, right_eye, left_eye):
    assert rules.quadrants_of(np.array([point]), FOVEA, DISC_RIGHT_EYE)[0] == right_eye
    assert rules.quadrants_of(np.array([point]), FOVEA, DISC_LEFT_EYE)[0] == left_eye


def test_quadrant_axes_points_on_axes_go_nasal_and_superior():
    nasal, superior = rules.quadrant_axes((0, 0), (10, 0))
    assert np.allclose(nasal, [1, 0]) and np.allclose(superior, [0, -1])
    on_axes = np.array([[5.0, 0.0], [0.0, -5.0], [0.0, 0.0]])
    assert rules.quadrants_of(on_axes, (0, 0), (10, 0)).tolist() == [Quadrant.SUPERO_NASAL] * 3


def test_quadrants_rotate_with_the_disc_fovea_axis():
    # disc straight above the fovea: "nasal" is up, "superior" is the side pointing up-left of it
    nasal, superior = rules.quadrant_axes((0, 0), (0, -10))
    assert np.allclose(nasal, [0, -1]) and superior[1] <= 0


def _ring_of_points(count_per_quadrant, radius=60.0):
    """Points around the fovea, ``count_per_quadrant[q]`` of them inside quadrant q (right eye)."""
    nasal, superior = rules.quadrant_axes(FOVEA, DISC_RIGHT_EYE)
    points = []
    for quadrant, count in enumerate(count_per_quadrant):
        nasal_sign = 1 if quadrant in (1, 2) else -1
        superior_sign = 1 if quadrant in (0, 1) else -1
        for angle in np.linspace(0.1, np.pi / 2 - 0.1, count):
            direction = nasal_sign * np.cos(angle) * nasal + superior_sign * np.sin(angle) * superior
            points.append(np.asarray(FOVEA) + radius * direction)
    return np.array(points).reshape(-1, 2)


@pytest.mark.parametrize(("counts", "expected"), [((20, 20, 20, 20), 3), ((20, 19, 20, 20), 2), ((19, 19, 19, 19), 2)])
def test_severe_rule_from_haemorrhage_positions(counts, expected):
    per_quadrant = rules.haemorrhages_per_quadrant(_ring_of_points(counts), FOVEA, DISC_RIGHT_EYE)
    assert per_quadrant == counts
    assert _dr(he=per_quadrant) == expected


def _exudate_at(distance_dd):
    return np.array([[FOVEA[0] - distance_dd * DD, FOVEA[1]]])


@pytest.mark.parametrize(
    ("distance_dd", "expected"),
    [(0.0, DMEGrade.WITHIN_MACULA), (0.9, DMEGrade.WITHIN_MACULA), (1.0, DMEGrade.WITHIN_MACULA),
     (1.1, DMEGrade.OUTSIDE_MACULA), (3.0, DMEGrade.OUTSIDE_MACULA)],
)  # fmt: skip
def test_dme_from_nearest_exudate(distance_dd, expected):
    assert rules.dme_grade(_exudate_at(distance_dd), FOVEA, DD) == expected


def test_dme_none_without_exudate_and_nearest_pixel_counts():
    assert rules.dme_grade(np.zeros((0, 2)), FOVEA, DD) == DMEGrade.NONE
    far_and_near = np.vstack([_exudate_at(2.5), _exudate_at(0.95)])
    assert rules.dme_grade(far_and_near, FOVEA, DD) == DMEGrade.WITHIN_MACULA
    assert rules.nearest_exudate_distance_dd(far_and_near, FOVEA, DD) == pytest.approx(0.95)
    assert rules.nearest_exudate_distance_dd(np.zeros((0, 2)), FOVEA, DD) == float("inf")


def test_dme_from_mask_uses_pixel_centres():
    mask = np.zeros((200, 200), bool)
    mask[100, 100 - 44] = True  # 1.1 DD
    assert rules.dme_grade_from_mask(mask, FOVEA, DD) == DMEGrade.OUTSIDE_MACULA
    mask[100, 100 - 36] = True  # 0.9 DD
    assert rules.dme_grade_from_mask(mask, FOVEA, DD) == DMEGrade.WITHIN_MACULA
    assert rules.dme_grade_from_mask(np.zeros((200, 200), bool), FOVEA, DD) == DMEGrade.NONE


def test_dme_rejects_bad_disc_diameter():
    with pytest.raises(ValueError):
        rules.dme_grade(_exudate_at(1.0), FOVEA, 0.0)
