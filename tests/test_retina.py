"""The clinical geometry and grading rules of drscreen.retina, exactly (no rendering involved)."""

import numpy as np
import pytest

from drscreen import retina
from drscreen.grading import DMEGrade, DRGrade
from drscreen.retina import Quadrant

FOVEA = (100.0, 100.0)
DISC_RIGHT_EYE = (180.0, 95.0)  # disc on the image right: nasal = +x
DISC_LEFT_EYE = (20.0, 95.0)
DD = 40.0


def _dr(n_ma=0, he=(0, 0, 0, 0), n_ex=0, n_se=0, nv=False):
    return retina.dr_grade(n_ma=n_ma, he_per_quadrant=he, n_ex=n_ex, n_se=n_se, has_nv=nv)


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
    assert retina.quadrants_of(np.array([point]), FOVEA, DISC_RIGHT_EYE)[0] == right_eye
    assert retina.quadrants_of(np.array([point]), FOVEA, DISC_LEFT_EYE)[0] == left_eye


def test_quadrant_axes_points_on_axes_go_nasal_and_superior():
    nasal, superior = retina.quadrant_axes((0, 0), (10, 0))
    assert np.allclose(nasal, [1, 0]) and np.allclose(superior, [0, -1])
    on_axes = np.array([[5.0, 0.0], [0.0, -5.0], [0.0, 0.0]])
    assert retina.quadrants_of(on_axes, (0, 0), (10, 0)).tolist() == [Quadrant.SUPERO_NASAL] * 3


def test_quadrants_rotate_with_the_disc_fovea_axis():
    # disc straight above the fovea: "nasal" is up, "superior" is the side pointing up-left of it
    nasal, superior = retina.quadrant_axes((0, 0), (0, -10))
    assert np.allclose(nasal, [0, -1]) and superior[1] <= 0


def _ring_of_points(count_per_quadrant, radius=60.0):
    """Points around the fovea, ``count_per_quadrant[q]`` of them inside quadrant q (right eye)."""
    nasal, superior = retina.quadrant_axes(FOVEA, DISC_RIGHT_EYE)
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
    per_quadrant = retina.haemorrhages_per_quadrant(_ring_of_points(counts), FOVEA, DISC_RIGHT_EYE)
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
    assert retina.dme_grade(_exudate_at(distance_dd), FOVEA, DD) == expected


def test_dme_none_without_exudate_and_nearest_pixel_counts():
    assert retina.dme_grade(np.zeros((0, 2)), FOVEA, DD) == DMEGrade.NONE
    far_and_near = np.vstack([_exudate_at(2.5), _exudate_at(0.95)])
    assert retina.dme_grade(far_and_near, FOVEA, DD) == DMEGrade.WITHIN_MACULA
    assert retina.nearest_exudate_distance_dd(far_and_near, FOVEA, DD) == pytest.approx(0.95)
    assert retina.nearest_exudate_distance_dd(np.zeros((0, 2)), FOVEA, DD) == float("inf")


def test_dme_from_mask_uses_pixel_centres():
    mask = np.zeros((200, 200), bool)
    mask[100, 100 - 44] = True  # 1.1 DD
    assert retina.dme_grade_from_mask(mask, FOVEA, DD) == DMEGrade.OUTSIDE_MACULA
    mask[100, 100 - 36] = True  # 0.9 DD
    assert retina.dme_grade_from_mask(mask, FOVEA, DD) == DMEGrade.WITHIN_MACULA
    assert retina.dme_grade_from_mask(np.zeros((200, 200), bool), FOVEA, DD) == DMEGrade.NONE


def test_dme_rejects_bad_disc_diameter():
    with pytest.raises(ValueError):
        retina.dme_grade(_exudate_at(1.0), FOVEA, 0.0)


def test_distance_in_disc_diameters_per_point():
    points = np.array([FOVEA, (FOVEA[0] + 3 * DD, FOVEA[1]), (FOVEA[0], FOVEA[1] - 0.5 * DD)])
    assert retina.distance_in_disc_diameters(points, FOVEA, DD) == pytest.approx([0.0, 3.0, 0.5])
    assert retina.distance_in_disc_diameters(np.zeros((0, 2)), FOVEA, DD).shape == (0,)
    with pytest.raises(ValueError):
        retina.distance_in_disc_diameters(points, FOVEA, -1.0)


def test_region_map_disc_macula_rest_and_outside_the_field():
    shape = (200, 240)
    fov = np.zeros(shape, bool)
    fov[:, :230] = True
    regions = retina.region_map(shape, DISC_RIGHT_EYE, DD, FOVEA, fov_mask=fov)
    assert regions.shape == shape and regions.dtype == np.uint8
    disc_x, disc_y = int(DISC_RIGHT_EYE[0]), int(DISC_RIGHT_EYE[1])
    assert regions[disc_y, disc_x] == retina.Region.OPTIC_DISC
    assert regions[disc_y, disc_x + 20] == retina.Region.OPTIC_DISC  # exactly DD / 2: inclusive
    assert regions[disc_y, disc_x + 21] == retina.Region.REST
    assert regions[100, 100] == retina.Region.MACULA
    assert regions[100, 60] == retina.Region.MACULA  # exactly 1 DD: inclusive
    assert regions[100, 59] == retina.Region.REST
    assert regions[100, 235] == 0  # outside the field of view
    disc_area = (regions == retina.Region.OPTIC_DISC).sum()
    assert disc_area == pytest.approx(np.pi * (DD / 2) ** 2, rel=0.05)


def test_region_map_disc_wins_where_it_overlaps_the_macula():
    regions = retina.region_map((200, 200), (140.0, 100.0), DD, FOVEA)  # disc 1 DD from the fovea
    assert regions[100, 125] == retina.Region.OPTIC_DISC  # 0.375 DD from the disc, 0.625 DD from the fovea
    assert regions[100, 110] == retina.Region.MACULA


def test_region_map_without_fov_covers_the_image_and_checks_shapes():
    regions = retina.region_map((50, 60), (500.0, 500.0), 10.0, (25.0, 25.0))
    assert set(np.unique(regions).tolist()) == {retina.Region.MACULA, retina.Region.REST}
    with pytest.raises(ValueError):
        retina.region_map((50, 60), (10.0, 10.0), 10.0, (25.0, 25.0), fov_mask=np.ones((60, 50), bool))
