"""The green optic-disc contour of the shared IDRiD subset is found and inpainted away."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from drscreen.data import load_dataset
from drscreen.data.contour import CONTOUR_GROW, contour_mask, remove_disc_contour, write_contour_free_subset
from drscreen.io import read_image
from drscreen.synth import generate_fundus


def _with_dotted_contour(
    image: np.ndarray, centre: tuple[int, int], axes: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with a dotted saturated-green ellipse like the subset's, and the dots' mask."""
    ink = np.zeros(image.shape[:2], np.uint8)
    for angle in np.arange(0, 360, 6):
        x = round(centre[0] + axes[0] * np.cos(np.radians(angle)))
        y = round(centre[1] + axes[1] * np.sin(np.radians(angle)))
        cv2.circle(ink, (x, y), 2, 1, -1)
    marked = image.copy()
    marked[ink > 0] = (40, 235, 20)
    return marked, ink > 0


def test_the_dots_are_found_and_inpainted_and_a_clean_fundus_is_untouched() -> None:
    fundus = generate_fundus(seed=5, size=512, target_dr=3).image
    marked, dots = _with_dotted_contour(fundus, (180, 250), (40, 45))
    found = contour_mask(marked)
    assert found[dots].all()
    near = cv2.dilate(dots.astype(np.uint8), np.ones((2 * CONTOUR_GROW + 3,) * 2, np.uint8)) > 0
    assert not (found & ~near).any(), "nothing but the dots and their halo is taken"
    clean, count = remove_disc_contour(marked)
    assert count == int(found.sum())
    assert not contour_mask(clean, grow=0).any()
    # The fill is close to what was under the dots (a smooth background).
    error = np.abs(clean[dots].astype(int) - fundus[dots].astype(int)).mean()
    assert error < 20, error
    assert np.array_equal(clean[~found], marked[~found])
    untouched, none = remove_disc_contour(fundus)
    assert none == 0 and np.array_equal(untouched, fundus)


def test_the_cleaned_copy_keeps_the_layout_and_the_masks(tmp_path: Path) -> None:
    root = tmp_path / "idrid-seg-subset"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    fundus = generate_fundus(seed=1, size=256).image
    marked, _ = _with_dotted_contour(fundus, (90, 128), (20, 22))
    Image.fromarray(marked).save(root / "images" / "IDRiD_07.jpg", quality=95)
    for code in ("LESION", "OD"):
        Image.fromarray(np.zeros((256, 256), np.uint8)).save(root / "masks" / f"IDRiD_07_{code}.png")
    filled = write_contour_free_subset(root, tmp_path / "clean")
    assert filled["IDRiD_07"] > 0
    samples = load_dataset("idrid-seg-subset", tmp_path / "clean")
    assert [s.id for s in samples] == ["IDRiD_07"] and samples[0].image_path.suffix == ".png"
    assert not contour_mask(read_image(samples[0].image_path), grow=0).any()
    assert samples[0].lesion_masks is not None and set(samples[0].lesion_masks) == {"LESION", "OD"}
