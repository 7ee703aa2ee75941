"""Before/after figure of the optic-disc contour removal (``drscreen.data.contour``).

    python benchmarks/contour_figure.py --out docs/images/contour_removal.png
    python benchmarks/contour_figure.py --image ../shared/data/idrid-seg-subset/images/IDRiD_03.jpg --out runs/contour_IDRiD_03.png

Without ``--image`` the figure is drawn on a synthetic fundus with a dotted saturated-green disc
outline like the one the ``idrid-seg-subset`` source burnt into its photographs (the project
commits no real image; pass ``--image`` to draw a real one into a folder outside the repository).
Panels: the disc region before, the detected contour pixels, after inpainting.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from drscreen.data.contour import contour_mask, remove_disc_contour
from drscreen.io import read_image
from drscreen.synth import generate_fundus


def synthetic_example(size: int = 768) -> np.ndarray:
    """A synthetic fundus (RGB uint8) with a dotted green ellipse around its optic disc."""
    fundus = generate_fundus(seed=7, size=size, target_dr=3)
    ys, xs = np.nonzero(fundus.masks["OD"])
    cx, cy = int(xs.mean()), int(ys.mean())
    rx, ry = int((xs.max() - xs.min()) * 0.6) + 4, int((ys.max() - ys.min()) * 0.6) + 4
    image = fundus.image.copy()
    for angle in np.arange(0, 360, 5):
        point = (round(cx + rx * np.cos(np.radians(angle))), round(cy + ry * np.sin(np.radians(angle))))
        cv2.circle(image, point, 2, (40, 235, 20), -1)
    return image


def figure(image: np.ndarray, out: Path, title: str) -> None:
    """Three panels around the contour: before, detected pixels, after."""
    mask = contour_mask(image)
    clean, count = remove_disc_contour(image)
    ys, xs = np.nonzero(mask)
    pad = max(20, (ys.max() - ys.min()) // 4)
    y0, y1 = max(0, ys.min() - pad), min(image.shape[0], ys.max() + pad)
    x0, x1 = max(0, xs.min() - pad), min(image.shape[1], xs.max() + pad)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
    panels = [(image, "before"), (mask, f"detected ({count} px)"), (clean, "after (Telea inpainting)")]
    for ax, (panel, label) in zip(axes, panels, strict=True):
        ax.imshow(panel[y0:y1, x0:x1], cmap="gray" if panel.ndim == 2 else None)
        ax.set_title(label, fontsize=10)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", type=Path, help="a photograph with the burnt-in contour (default: synthetic)")
    parser.add_argument("--out", type=Path, default=Path("docs/images/contour_removal.png"))
    args = parser.parse_args()
    if args.image is None:
        image, title = synthetic_example(), "synthetic fundus with a dotted green disc outline like idrid-seg-subset's"
    else:
        image, title = read_image(args.image), f"{args.image.name}: burnt-in optic-disc contour"
    figure(image, args.out, title)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
