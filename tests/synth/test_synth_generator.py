"""generate_fundus: determinism, grades from drawn lesions, mask/image alignment, sizes (synthetic data)."""

import math

import cv2
import numpy as np
import pytest

from drscreen.synth import Lesion, SynthConfig, fundus_geometry, generate_fundus
from drscreen.synth.generator import MASK_CODES

CLEAN_CAMERA = SynthConfig(jpeg_prob=0.0, blur_prob=0.0, haze_prob=0.0)
VALID_TARGETS = [(0, 0), (1, 0), (2, 0), (2, 1), (2, 2), (3, 0), (3, 1), (3, 2), (4, 0), (4, 1), (4, 2)]


def test_same_seed_same_bytes_and_different_seed_differs():
    first = generate_fundus(11, 256, target_dr=3, target_dme=2)
    second = generate_fundus(11, 256, target_dr=3, target_dme=2)
    assert first.image.tobytes() == second.image.tobytes()
    for code in MASK_CODES:
        assert np.array_equal(first.masks[code], second.masks[code])
    assert first.lesions == second.lesions
    other = generate_fundus(12, 256, target_dr=3, target_dme=2)
    assert other.image.tobytes() != first.image.tobytes()


def test_outputs_have_the_documented_types():
    fundus = generate_fundus(3, 256)
    assert fundus.image.shape == (256, 256, 3) and fundus.image.dtype == np.uint8
    assert set(fundus.masks) == set(MASK_CODES)
    fov = fundus.geometry.fov_bool()
    for mask in fundus.masks.values():
        assert mask.shape == (256, 256) and mask.dtype == bool
        assert not (mask & ~fov).any()
    assert fundus.eye in ("left", "right")
    assert fundus.masks["OD"].any()
    assert fundus.image[0, 0].tolist() == [0, 0, 0]


@pytest.mark.parametrize(("target_dr", "target_dme"), VALID_TARGETS)
def test_requested_grades_are_met_and_recomputed(target_dr, target_dme):
    fundus = generate_fundus(40 + 3 * target_dr + target_dme, 256, target_dr=target_dr, target_dme=target_dme)
    assert (fundus.dr_grade, fundus.dme_grade) == (target_dr, target_dme)
    counts = fundus.lesion_counts()
    assert (counts["NV"] > 0) == (target_dr == 4) == fundus.masks["NV"].any()
    assert (counts["EX"] > 0) == (target_dme > 0) == fundus.masks["EX"].any()
    if target_dr == 3:
        assert min(fundus.he_per_quadrant) >= 20
    if target_dr == 1:
        assert set(k for k, v in counts.items() if v) == {"MA"}
    if target_dme == 2:
        assert fundus.exudate_distance_dd <= 1.0
    if target_dme == 1:
        assert fundus.exudate_distance_dd > 1.0
    for lesion in fundus.lesions:
        assert lesion.pixels > 0


def test_inconsistent_or_invalid_requests_are_refused():
    with pytest.raises(ValueError):
        generate_fundus(0, 256, target_dr=1, target_dme=2)
    with pytest.raises(ValueError):
        generate_fundus(0, 64)
    with pytest.raises(ValueError):
        generate_fundus(-1, 256)
    with pytest.raises(ValueError):
        generate_fundus(0, 256, eye="both")


def test_unspecified_dr_with_dme_is_consistent():
    fundus = generate_fundus(5, 256, target_dme=2, config=SynthConfig(grade_distribution=(1, 1, 0, 0, 0)))
    assert fundus.dme_grade == 2 and fundus.dr_grade >= 2


def _exudate_image(distance_dd: float):
    geometry = fundus_geometry(21, 512, eye="right")
    fovea = np.array(geometry.fovea)
    away_from_disc = fovea - np.array(geometry.disc_center)
    away_from_disc /= np.linalg.norm(away_from_disc)
    center = fovea + distance_dd * geometry.disc_diameter * away_from_disc
    exudate = Lesion("EX", "plaque", (float(center[0]), float(center[1])), radius=2.0, seed=1)
    return generate_fundus(21, 512, eye="right", lesions=[exudate])


@pytest.mark.parametrize(("distance_dd", "expected_dme"), [(0.9, 2), (1.1, 1)])
def test_rendered_exudate_distance_sets_dme(distance_dd, expected_dme):
    fundus = _exudate_image(distance_dd)
    assert fundus.dme_grade == expected_dme
    assert fundus.dr_grade == 2  # an exudate is "more than microaneurysms only"
    assert fundus.masks["EX"].sum() >= 1


def _luminance(image):
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def test_masks_align_with_what_changed_in_the_image():
    sick = generate_fundus(7, 384, target_dr=4, target_dme=2, config=CLEAN_CAMERA)
    healthy = generate_fundus(7, 384, target_dr=4, target_dme=2, config=SynthConfig(
        jpeg_prob=0.0, blur_prob=0.0, haze_prob=0.0, render_lesions=False))  # fmt: skip
    with_lesions = sick.image.astype(np.float64)
    without = healthy.image.astype(np.float64)
    darker = _luminance(sick.image) < _luminance(healthy.image)
    redder = with_lesions[..., 0] / (with_lesions[..., 1] + 1) > without[..., 0] / (without[..., 1] + 1)
    yellow_gain = (with_lesions[..., 0] + with_lesions[..., 1]) / 2 - with_lesions[..., 2]
    yellow_gain -= (without[..., 0] + without[..., 1]) / 2 - without[..., 2]
    brighter = _luminance(sick.image) > _luminance(healthy.image)
    for code in ("MA", "HE", "NV"):
        mask = sick.masks[code]
        assert mask.any(), code
        assert darker[mask].mean() > 0.9, code
        assert redder[mask].mean() > 0.8, code
    mask = sick.masks["EX"]
    assert brighter[mask].mean() > 0.95 and (yellow_gain[mask] > 0).mean() > 0.95
    mask = sick.masks["SE"]
    if mask.any():
        assert brighter[mask].mean() > 0.95
    untouched = ~cv2.dilate(np.any([sick.masks[c] for c in ("MA", "HE", "EX", "SE", "NV")], axis=0).astype(np.uint8),
                            np.ones((41, 41), np.uint8)).astype(bool)  # fmt: skip
    assert np.array_equal(sick.image[untouched], healthy.image[untouched])
    assert np.array_equal(sick.masks["OD"], healthy.masks["OD"])


def test_lesion_sizes_scale_with_the_image():
    small = generate_fundus(9, 256, target_dr=1)
    large = generate_fundus(9, 512, target_dr=1)
    assert small.lesion_counts() == large.lesion_counts()
    ratio = large.geometry.disc_diameter / small.geometry.disc_diameter
    assert ratio == pytest.approx(2.0)
    for lesion in large.lesions:
        assert lesion.kind == "MA"
        assert 1 <= lesion.pixels <= 20  # an MA is a few pixels across at 512 px
        assert 0.5 <= 2 * lesion.radius <= 5.0


def test_anatomy_is_independent_of_size_and_grade():
    a = fundus_geometry(15, 256)
    b = fundus_geometry(15, 1024)
    assert a.eye == b.eye
    assert a.fovea_canonical == b.fovea_canonical and a.disc_canonical == b.disc_canonical
    disc_fovea_dd = math.dist(b.fovea, b.disc_center) / b.disc_diameter
    assert 2.2 <= disc_fovea_dd <= 2.8
    right = fundus_geometry(15, 512, eye="right")
    left = fundus_geometry(15, 512, eye="left")
    assert right.disc_center[0] > right.fovea[0] and left.disc_center[0] < left.fovea[0]


def test_label_noise_is_recorded():
    clean = generate_fundus(4, 256, target_dr=2, target_dme=1)
    assert (clean.dr_label, clean.dme_label) == (clean.dr_grade, clean.dme_grade) and not clean.label_noisy
    noisy = generate_fundus(4, 256, target_dr=2, target_dme=1, config=SynthConfig(label_noise=1.0))
    assert (noisy.dr_grade, noisy.dme_grade) == (2, 1)
    assert abs(noisy.dr_label - 2) == 1 and abs(noisy.dme_label - 1) == 1 and noisy.label_noisy
    assert np.array_equal(noisy.image, clean.image)


def test_ben_graham_look_changes_only_the_image():
    plain = generate_fundus(6, 256, target_dr=2)
    enhanced = generate_fundus(6, 256, target_dr=2, config=SynthConfig(ben_graham=True))
    assert enhanced.image[0, 0].tolist() == [128, 128, 128]
    assert all(np.array_equal(plain.masks[c], enhanced.masks[c]) for c in MASK_CODES)


@pytest.mark.slow
def test_2048_px_image():
    fundus = generate_fundus(2, 2048, target_dr=3, target_dme=2)
    assert fundus.image.shape == (2048, 2048, 3)
    assert (fundus.dr_grade, fundus.dme_grade) == (3, 2)
    assert all(mask.shape == (2048, 2048) for mask in fundus.masks.values())
