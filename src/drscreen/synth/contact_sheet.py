"""Contact sheet: a real fundus next to synthetic ones, with and without lesion-mask overlays.

``python -m drscreen.synth.contact_sheet [OUT.png]`` writes ``docs/images/synth_contact_sheet.png``
by default. The real reference is ``skimage.data.retina()`` (shipped with scikit-image).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from drscreen.explain.overlay import mask_overlay
from drscreen.grading import lesion_color
from drscreen.synth.generator import generate_fundus

#: (seed, DR, DME) of the examples: every DR grade and every DME grade at least once.
EXAMPLES: tuple[tuple[int, int, int], ...] = (
    (300, 0, 0), (304, 1, 0), (302, 2, 0), (310, 2, 1), (301, 2, 2), (303, 3, 2), (312, 4, 0), (313, 4, 1),
)  # fmt: skip
OVERLAY_CODES: tuple[str, ...] = ("MA", "HE", "EX", "SE", "NV", "OD")


def overlay_masks(image: np.ndarray, masks: dict[str, np.ndarray], codes: Sequence[str] = OVERLAY_CODES) -> np.ndarray:
    """RGB uint8 (H, W, 3) copy of ``image`` with each lesion tinted and every mask outlined in its colour."""
    present = {code: masks[code] for code in codes if code in masks and masks[code].any()}
    tinted = mask_overlay(image, {code: m for code, m in present.items() if code != "OD"}, alpha=0.65)
    return mask_overlay(tinted, present, alpha=1.0, style="contour", thickness=1)


_TEXT = {"fontFace": cv2.FONT_HERSHEY_SIMPLEX, "fontScale": 0.42, "color": (235, 235, 235), "lineType": cv2.LINE_AA}


def _label(tile: np.ndarray, lines: Sequence[str], height: int = 34) -> np.ndarray:
    """``tile`` with a dark caption bar of one or two lines underneath."""
    bar = np.full((height, tile.shape[1], 3), 24, np.uint8)
    for row, text in enumerate(lines):
        cv2.putText(bar, text, (6, 14 + 15 * row), **_TEXT)
    return np.vstack([tile, bar])


def _legend(size: int) -> np.ndarray:
    panel = np.full((size, size, 3), 24, np.uint8)
    cv2.putText(panel, "mask colours", (10, 24), **{**_TEXT, "fontScale": 0.5})
    names = {"MA": "microaneurysm", "HE": "haemorrhage", "EX": "hard exudate", "SE": "soft exudate",
             "NV": "new vessels", "OD": "optic disc (outline)"}  # fmt: skip
    for row, code in enumerate(OVERLAY_CODES):
        y = 48 + 24 * row
        cv2.rectangle(panel, (12, y - 11), (28, y + 3), tuple(int(c) for c in lesion_color(code)), -1)
        cv2.putText(panel, f"{code} {names[code]}", (36, y), **_TEXT)
    cv2.putText(panel, "rows 1, 3: images", (10, size - 34), **_TEXT)
    cv2.putText(panel, "rows 2, 4: + masks", (10, size - 14), **_TEXT)
    return panel


def _zoom(image: np.ndarray, center: tuple[float, float], half: int, tile: int) -> np.ndarray:
    """Square crop of ``image`` around ``center`` (half-side ``half`` px) resized to ``tile``."""
    x, y = int(center[0]), int(center[1])
    crop = image[max(0, y - half) : y + half, max(0, x - half) : x + half]
    return cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_AREA)


def make_contact_sheet(tile: int = 224, render_size: int = 512) -> np.ndarray:
    """The sheet as RGB uint8, 5 columns x 4 rows of captioned tiles.

    Column 1: the real retina, a legend, a real and a synthetic close-up of the macula. Then two
    blocks of four examples (rendered at ``render_size``): image row, then the same with masks.
    """
    from skimage import data

    retina = data.retina()
    real = cv2.resize(retina, (tile, tile), interpolation=cv2.INTER_AREA)
    real_zoom = _zoom(retina, (700, 700), 300, tile)
    severe = generate_fundus(303, 1024, target_dr=3, target_dme=2)
    synth_zoom = _zoom(severe.image, severe.geometry.fovea, int(1.6 * severe.geometry.disc_diameter), tile)
    first_column = [
        _label(real, ["REAL: scikit-image", "retina (reference)"]),
        _label(_legend(tile), ["SYNTHETIC images below", "and right: drscreen.synth"]),
        _label(real_zoom, ["REAL close-up", "(macula, retina)"]),
        _label(synth_zoom, ["SYNTHETIC close-up", "(DR 3 DME 2, 1024 px)"]),
    ]
    images, overlays = [], []
    for seed, dr, dme in EXAMPLES:
        fundus = generate_fundus(seed, render_size, target_dr=dr, target_dme=dme)
        image = cv2.resize(fundus.image, (tile, tile), interpolation=cv2.INTER_AREA)
        masks = {
            code: cv2.resize(mask.astype(np.uint8), (tile, tile), interpolation=cv2.INTER_AREA) > 0
            for code, mask in fundus.masks.items()
        }
        caption = [f"SYNTHETIC DR {fundus.dr_grade} DME {fundus.dme_grade}", f"seed {seed}, {fundus.eye} eye"]
        images.append(_label(image, caption))
        counts = fundus.lesion_counts()
        text = " ".join(f"{code}{counts[code]}" for code in ("MA", "HE", "EX", "SE", "NV") if counts[code])
        overlays.append(_label(overlay_masks(image, masks), ["masks", text or "no lesion"]))
    rows = [
        [first_column[0], *images[:4]],
        [first_column[1], *overlays[:4]],
        [first_column[2], *images[4:]],
        [first_column[3], *overlays[4:]],
    ]
    return np.vstack([np.hstack(row) for row in rows])


def write_contact_sheet(path: str | Path) -> Path:
    """Writes :func:`make_contact_sheet` as PNG to ``path``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet = cv2.cvtColor(make_contact_sheet(), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    out.write_bytes(buffer.tobytes())
    return out


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "docs/images/synth_contact_sheet.png"
    print(write_contact_sheet(target))
