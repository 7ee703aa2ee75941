"""drscreen.augment: Reinhard lαβ transfer and the ELLG generator's steps on hand-made images."""

from __future__ import annotations

import numpy as np
import pytest

from drscreen.augment import (
    ELLGConfig,
    Fundus,
    LesionPatch,
    Placement,
    extract_lesion_patches,
    generate_lesion_images,
    label_to_grade,
    lalphabeta_to_rgb,
    mixed_label,
    mixup_blend,
    place_patches,
    reinhard_transfer,
    rgb_to_lalphabeta,
)
from drscreen.augment.colour import LOG_LMS_TO_LAB, RGB_TO_LMS
from drscreen.augment.ellg import draw_tau


def smooth_image(seed: int, size: int, mean: tuple[float, float, float], spread: float) -> np.ndarray:
    """uint8 (size, size, 3): a colour gradient plus noise around ``mean``, away from 0 and 255."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(-1.0, 1.0, size)[None, :, None] * rng.uniform(0.3, 1.0, 3)
    noise = rng.normal(0.0, 0.3, (size, size, 3))
    return np.clip(np.asarray(mean) + spread * (ramp + noise), 1, 254).astype(np.uint8)


def lab_stats(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pixels = rgb_to_lalphabeta(image)[mask]
    return pixels.mean(axis=0), pixels.std(axis=0)


def disc(size: int, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - (size - 1) / 2) ** 2 + (xx - (size - 1) / 2) ** 2 <= radius**2


# ---------------------------------------------------------------------------------- colour
def test_lalphabeta_round_trip_is_identity_on_8_bit_colours() -> None:
    levels = np.arange(256, dtype=np.uint8)
    grid = np.stack(np.meshgrid(levels, levels[::3], levels[::5], indexing="ij"), axis=-1)
    back = lalphabeta_to_rgb(rgb_to_lalphabeta(grid))
    assert np.abs(back.astype(int) - grid).max() <= 1


def test_lalphabeta_of_grey_is_achromatic_and_matches_the_published_matrices() -> None:
    grey = np.full((1, 1, 3), 128, np.uint8)
    lab = rgb_to_lalphabeta(grey)[0, 0]
    # The three LMS responses of a grey differ slightly (the matrix rows do not sum to exactly 1).
    expected = LOG_LMS_TO_LAB @ np.log10(RGB_TO_LMS @ np.full(3, 128 / 255))
    np.testing.assert_allclose(lab, expected)
    assert abs(lab[1]) < 2e-3 and abs(lab[2]) < 2e-3
    assert lab[0] == pytest.approx(np.sqrt(3) * np.log10(128 / 255), abs=2e-3)


def test_reinhard_transfer_matches_target_lalphabeta_statistics() -> None:
    source = smooth_image(1, 96, (150, 60, 30), 25.0)
    target = smooth_image(2, 80, (110, 80, 60), 18.0)
    source_mask, target_mask = disc(96, 40), disc(80, 35)
    out = reinhard_transfer(source, target, source_mask, target_mask)
    mean_out, std_out = lab_stats(out, source_mask)
    mean_t, std_t = lab_stats(target, target_mask)
    np.testing.assert_allclose(mean_out, mean_t, atol=0.01)
    np.testing.assert_allclose(std_out, std_t, rtol=0.03, atol=0.002)
    assert np.array_equal(out[~source_mask], source[~source_mask]), "pixels outside the mask keep their colour"


def test_reinhard_transfer_to_itself_changes_nothing_and_whole_image_default() -> None:
    image = smooth_image(3, 64, (120, 70, 40), 20.0)
    assert np.abs(reinhard_transfer(image, image).astype(int) - image).max() <= 1
    flat = np.full((8, 8, 3), 90, np.uint8)
    shifted = reinhard_transfer(flat, image)  # no spread in the source: only shifted to the target mean
    assert len(np.unique(shifted.reshape(-1, 3), axis=0)) == 1
    target_mean = rgb_to_lalphabeta(image).reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(rgb_to_lalphabeta(shifted)[0, 0], target_mean, atol=0.01)


def test_reinhard_transfer_rejects_bad_masks() -> None:
    image = smooth_image(4, 16, (100, 100, 100), 10.0)
    with pytest.raises(ValueError, match="does not match"):
        reinhard_transfer(image, image, np.ones((8, 8), bool))
    with pytest.raises(ValueError, match="no pixel"):
        reinhard_transfer(image, image, None, np.zeros((16, 16), bool))


# ------------------------------------------------------------------------ patch extraction
def two_blob_map() -> np.ndarray:
    """A 40 x 40 map: a 5 x 6 block at 0.9 (rows 2-6, cols 3-8), a 4 x 4 block at 0.6, one 0.95 pixel."""
    saliency = np.zeros((40, 40), np.float32)
    saliency[2:7, 3:9] = 0.9
    saliency[20:24, 30:34] = 0.6
    saliency[35, 5] = 0.95
    saliency[0, 0] = 0.05  # min 0 stays 0, max 0.95 becomes 1 after normalisation
    return saliency


def test_patches_are_connected_components_above_tau() -> None:
    image = np.random.default_rng(0).integers(1, 255, (40, 40, 3), dtype=np.uint8)
    saliency = two_blob_map()
    # Normalised: 0.9 / 0.95 = 0.947, 0.6 / 0.95 = 0.632.
    high = extract_lesion_patches(image, saliency, 0.7, min_area=4)
    assert [(p.top, p.left, p.shape, p.area) for p in high] == [(2, 3, (5, 6), 30)]
    both = extract_lesion_patches(image, saliency, 0.5, min_area=1)
    assert [(p.top, p.left, p.area) for p in both] == [(35, 5, 1), (2, 3, 30), (20, 30, 16)]
    assert both[0].saliency == pytest.approx(1.0) and both[2].saliency == pytest.approx(0.6 / 0.95)
    patch = both[1]
    assert np.array_equal(patch.pixels, image[2:7, 3:9]) and patch.mask.all()
    # The threshold is strict (eq. 4: "larger than tau"), and the map is normalised first.
    steps = np.zeros((40, 40), np.float32)
    steps[2:7, 3:9], steps[20:24, 30:34] = 0.5, 0.25  # normalised: 1.0 and 0.5 exactly
    assert [p.area for p in extract_lesion_patches(image, steps, 0.5, min_area=1)] == [30]
    assert [p.area for p in extract_lesion_patches(image, steps, 0.49, min_area=1)] == [30, 16]
    assert extract_lesion_patches(image, np.full((40, 40), 0.7), 0.1) == []


def test_patch_pixels_outside_the_region_are_zero_and_fov_cuts_regions() -> None:
    image = np.full((20, 20, 3), 200, np.uint8)
    saliency = np.zeros((20, 20))
    saliency[5, 5:12] = 1.0  # a horizontal bar
    saliency[6:9, 5] = 1.0  # and a leg: an L shape, one component
    (patch,) = extract_lesion_patches(image, saliency, 0.5, min_area=1)
    assert patch.shape == (4, 7) and patch.area == 10
    assert (patch.pixels[~patch.mask] == 0).all() and (patch.pixels[patch.mask] == 200).all()
    fov = np.ones((20, 20), bool)
    fov[:, 8] = False  # cuts the bar in two
    parts = extract_lesion_patches(image, saliency, 0.5, min_area=1, fov_mask=fov)
    assert sorted(p.area for p in parts) == [3, 6]
    assert [p.area for p in extract_lesion_patches(image, saliency, 0.5, min_area=4, fov_mask=fov)] == [6]


def test_tau_is_drawn_in_the_papers_range_from_the_rng() -> None:
    draws = [draw_tau(np.random.default_rng(seed)) for seed in range(200)]
    assert 0.5 <= min(draws) and max(draws) <= 0.8 and max(draws) - min(draws) > 0.25
    image = np.zeros((10, 10, 3), np.uint8)
    ramp = np.tile(np.linspace(0, 1, 10), (10, 1))
    a = extract_lesion_patches(image, ramp, rng=np.random.default_rng(7), min_area=1)
    b = extract_lesion_patches(image, ramp, rng=np.random.default_rng(7), min_area=1)
    assert [p.area for p in a] == [p.area for p in b]


# ---------------------------------------------------------------------------- placement
def square_patch(side: int, value: int = 50) -> LesionPatch:
    return LesionPatch(0, 0, np.ones((side, side), bool), np.full((side, side, 3), value, np.uint8), 1.0)


def test_placed_patches_do_not_overlap_and_stay_in_the_fov() -> None:
    fov = disc(64, 28)
    ring = np.zeros((7, 7), bool)
    ring[[0, -1], :] = ring[:, [0, -1]] = True  # a hollow square: only its pixels count
    patches = [square_patch(6) for _ in range(12)] + [
        LesionPatch(0, 0, ring, np.where(ring[..., None], 80, 0).astype(np.uint8), 1.0)
    ]
    result = place_patches(patches, (64, 64), fov, np.random.default_rng(0))
    assert len(result.placed) + len(result.dropped) == len(patches) and len(result.placed) >= 10
    cover = np.zeros((64, 64), int)
    for placement in result.placed:
        patch = patches[placement.index]
        h, w = patch.shape
        cover[placement.top : placement.top + h, placement.left : placement.left + w] += patch.mask
    assert cover.max() == 1, "no pixel covered twice"
    assert not (cover.astype(bool) & ~fov).any(), "every patch pixel inside the FOV"
    again = place_patches(patches, (64, 64), fov, np.random.default_rng(0))
    assert again == result


def test_patches_that_find_no_place_are_dropped() -> None:
    patches = [square_patch(10), square_patch(10), square_patch(30)]
    result = place_patches(patches, (10, 10), None, np.random.default_rng(1), max_tries=100)
    assert result.placed == (Placement(0, 0, 0),) and result.dropped == (1, 2)
    outside = place_patches([square_patch(3)], (10, 10), np.zeros((10, 10), bool), np.random.default_rng(1))
    assert outside.placed == () and outside.dropped == (0,)


# ------------------------------------------------------------------------ mixup and label
def test_mixup_blend_is_eq5_under_the_patch_mask_only() -> None:
    target = np.full((6, 6, 3), 100, np.uint8)
    mask = np.array([[True, False], [True, True]])
    pixels = np.zeros((2, 2, 3), np.uint8)
    pixels[0, 0] = 200
    pixels[1, 1] = 20
    # pixels[1, 0] is black but inside the mask: still blended (the paper's "I_s != 0" test would skip it).
    patch = LesionPatch(0, 0, mask, pixels, 1.0)
    out = mixup_blend(target, patch, Placement(0, 3, 2), 0.25)
    expected = target.copy()
    expected[3, 2] = 0.25 * 200 + 0.75 * 100  # 125
    expected[4, 2] = 0.75 * 100  # 75
    expected[4, 3] = 0.25 * 20 + 0.75 * 100  # 80
    assert np.array_equal(out, expected) and (target == 100).all(), "the target is not modified"
    assert np.array_equal(mixup_blend(target, patch, Placement(0, 0, 0), 1.0)[:2, :2][mask], pixels[mask])
    with pytest.raises(ValueError, match="leaves"):
        mixup_blend(target, patch, Placement(0, 5, 5), 0.5)
    with pytest.raises(ValueError, match="ratio"):
        mixup_blend(target, patch, Placement(0, 0, 0), 1.5)


def test_mixed_label_and_grade_by_hand() -> None:
    assert mixed_label(0, 3, 0.6) == pytest.approx(1.8) and label_to_grade(1.8) == 2
    assert mixed_label(0, 2, 0.7) == pytest.approx(1.4) and label_to_grade(1.4) == 1
    assert mixed_label(1, 4, 0.5) == pytest.approx(2.5) and label_to_grade(2.5) == 3  # halves go up
    assert mixed_label(2, 4, 1.0) == 4.0 and mixed_label(2, 4, 0.0) == 2.0
    assert [label_to_grade(v) for v in (-0.3, 0.0, 0.49, 0.5, 3.49, 3.5, 4.0, 5.2)] == [0, 0, 0, 1, 3, 4, 4, 4]
    assert label_to_grade(1.2, thresholds=(0.3, 1.1, 2.0, 3.0)) == 2
    with pytest.raises(ValueError):
        mixed_label(0, 1, -0.1)


def test_config_checks_and_reads_yaml_lists() -> None:
    config = ELLGConfig(tau_range=[0.6, 0.7], ratio_range=[0.4, 0.9])  # type: ignore[arg-type]
    assert config.tau_range == (0.6, 0.7) and config.max_tries == 100
    for bad in ({"tau_range": (0.8, 0.5)}, {"ratio_range": (0.5, 1.2)}, {"min_area": 0}, {"grade_thresholds": (1, 2)}):
        with pytest.raises(ValueError):
            ELLGConfig(**bad)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- generation
def lesion_source(seed: int, label: float) -> Fundus:
    """A 64 px 'photograph' with three dark spots that its saliency map points at."""
    image = smooth_image(seed, 64, (160, 80, 40), 10.0)
    saliency = np.zeros((64, 64), np.float32)
    for y, x in ((20, 22), (40, 30), (28, 44)):
        image[y - 2 : y + 3, x - 2 : x + 3] = (60, 20, 10)
        saliency[y - 3 : y + 4, x - 3 : x + 4] = 1.0
    return Fundus(image, label, f"source{seed}", disc(64, 30), saliency)


def test_generated_images_mix_patches_labels_and_are_deterministic() -> None:
    sources = [lesion_source(1, 3), lesion_source(2, 2)]
    targets = [Fundus(smooth_image(s, 64, (120, 70, 50), 8.0), 0, f"target{s}", disc(64, 30)) for s in (3, 4)]
    first = generate_lesion_images(sources, targets, 5, np.random.default_rng(11))
    second = generate_lesion_images(sources, targets, 5, np.random.default_rng(11))
    assert len(first) == 5
    by_name = {f.name: f for f in [*sources, *targets]}
    for a, b in zip(first, second):
        assert np.array_equal(a.image, b.image) and a.provenance == b.provenance
        p = a.provenance
        assert 0.5 <= p["tau"] <= 0.8 and 0.5 <= p["ratio"] <= 1.0
        assert p["placed"] + p["dropped"] == p["patches"] == 3 and p["placed"] >= 1
        source, target = by_name[p["source"]], by_name[p["target"]]
        assert a.label == pytest.approx(p["ratio"] * source.label) and a.grade == label_to_grade(a.label)
        changed = (a.image != target.image).any(axis=2)
        assert changed.any() and not (changed & ~target.fov_mask).any()
        # Each placed patch is 7 x 7: at most 49 pixels per placed patch change.
        assert changed.sum() <= 49 * p["placed"]
    other = generate_lesion_images(sources, targets, 5, np.random.default_rng(12))
    assert any(not np.array_equal(a.image, b.image) for a, b in zip(first, other))


def test_generation_without_usable_patches_or_inputs() -> None:
    blank = Fundus(np.zeros((32, 32, 3), np.uint8), 2, "blank", None, np.zeros((32, 32), np.float32))
    target = Fundus(np.full((32, 32, 3), 90, np.uint8), 0, "t")
    assert generate_lesion_images([blank], [target], 3, np.random.default_rng(0)) == []
    with pytest.raises(ValueError, match="at least one"):
        generate_lesion_images([], [target], 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no saliency"):
        generate_lesion_images([target], [target], 1, np.random.default_rng(0))
    config = ELLGConfig(colour_transfer=False, ratio_range=(1.0, 1.0))
    (made,) = generate_lesion_images([lesion_source(5, 4)], [target], 1, np.random.default_rng(0), config)
    assert made.label == 4.0 and made.grade == 4
    assert {tuple(c) for c in made.image.reshape(-1, 3)} >= {(60, 20, 10)}, "without transfer, r = 1 pastes the pixels"
