"""The green optic-disc contour burnt into the shared IDRiD subset, and its removal.

The source of the ``idrid-seg-subset`` folder drew the optic-disc outline as saturated green
dots into every photograph. A network trained on those images learns the dots, and its optic
disc score on them is inflated. ``remove_disc_contour`` finds the dots (green above both red
and blue by more than ``margin`` grey levels, which no fundus colour reaches: the retina is red
to orange, vessels dark red, exudates yellow; at a margin of 20 no pixel of the 30 subset
images away from the disc is taken), widens them by ``grow`` pixels for the JPEG halo
and fills them by Telea inpainting. ``write_contour_free_subset`` writes a copy of the folder
with cleaned lossless images and the masks as they are; every use of the subset for training
or evaluation (``benchmarks/lesion_cv.py``, ``scripts/train_lesion_segmenter.sh``) reads that copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from drscreen.io import find_images, read_image

#: Defaults of the contour detector, for the half-resolution (about 1705 x 1424) subset.
CONTOUR_MARGIN = 20
CONTOUR_GROW = 4
INPAINT_RADIUS = 5


def contour_mask(image: np.ndarray, margin: int = CONTOUR_MARGIN, grow: int = CONTOUR_GROW) -> np.ndarray:
    """Pixels of the burnt-in green contour: RGB uint8 (H, W, 3) -> bool (H, W).

    A pixel is green ink when ``G - max(R, B) > margin``; the result is dilated by ``grow`` px.
    """
    rgb = image.astype(np.int16)
    ink = (rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])) > margin
    if grow > 0 and ink.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        ink = cv2.dilate(ink.astype(np.uint8), kernel) > 0
    return ink


def remove_disc_contour(
    image: np.ndarray, margin: int = CONTOUR_MARGIN, grow: int = CONTOUR_GROW, radius: int = INPAINT_RADIUS
) -> tuple[np.ndarray, int]:
    """RGB uint8 (H, W, 3) -> (the image with the contour inpainted, number of pixels filled)."""
    mask = contour_mask(image, margin, grow)
    count = int(mask.sum())
    if count == 0:
        return image.copy(), 0
    filled = cv2.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8), radius, cv2.INPAINT_TELEA)
    return filled, count


def write_contour_free_subset(root: str | Path, out: str | Path) -> dict[str, int]:
    """Copy the ``idrid-seg-subset`` folder ``root`` to ``out`` with every image cleaned.

    Writes ``out/images/<stem>.png`` (lossless) and copies ``root/masks`` unchanged; returns the
    number of inpainted pixels per image stem. An image whose copy is newer than it is not
    inpainted or written again (so that caches keyed by the copies' modification times stay valid).
    """
    root, out = Path(root), Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    shutil.copytree(root / "masks", out / "masks", dirs_exist_ok=True)
    filled: dict[str, int] = {}
    for path in find_images(root / "images"):
        target = out / "images" / f"{path.stem}.png"
        image = read_image(path)
        if target.is_file() and target.stat().st_mtime_ns > path.stat().st_mtime_ns:
            filled[path.stem] = int(contour_mask(image).sum())  # the count alone: no inpainting
            continue
        clean, filled[path.stem] = remove_disc_contour(image)
        partial = target.with_name(f"{target.stem}.partial.png")
        cv2.imwrite(str(partial), cv2.cvtColor(clean, cv2.COLOR_RGB2BGR))
        partial.replace(target)
    return filled
