"""Overlays of saliency maps and lesion masks on fundus photographs, and the side-by-side figure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import cv2
import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from drscreen.grading import lesion_color


def _check_image(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")


def _check_plane(image: np.ndarray, plane: np.ndarray, what: str) -> None:
    if plane.shape != image.shape[:2]:
        raise ValueError(
            f"{what} of shape {plane.shape} does not match the image {image.shape[:2]}; "
            "map it to the original geometry first (drscreen.explain.to_original_geometry)"
        )


def heatmap_overlay(
    image: np.ndarray, saliency: np.ndarray, alpha: float = 0.5, colormap: str = "jet"
) -> np.ndarray:
    """Blend a colour-mapped saliency map onto an RGB image.

    Args:
        image: uint8 (H, W, 3) RGB.
        saliency: (H, W) values in [0, 1] (clipped).
        alpha: weight of the heat map, 0 (image only) to 1 (heat map only).
        colormap: a matplotlib colormap name.

    Returns:
        uint8 (H, W, 3): ``(1 - alpha) * image + alpha * colormap(saliency)``.
    """
    _check_image(image)
    saliency = np.asarray(saliency, dtype=np.float32)
    _check_plane(image, saliency, "saliency")
    colours = matplotlib.colormaps[colormap](np.clip(saliency, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def mask_overlay(
    image: np.ndarray,
    masks: Mapping[str, np.ndarray],
    alpha: float = 0.5,
    style: Literal["filled", "contour"] = "filled",
    thickness: int = 2,
) -> np.ndarray:
    """Draw lesion masks in their ``drscreen.grading`` colours on an RGB image.

    Args:
        image: uint8 (H, W, 3) RGB.
        masks: lesion code (e.g. ``"EX"``) -> bool (H, W) mask; drawn in the mapping's order.
        alpha: opacity of the drawn colour, 0 to 1.
        style: ``"filled"`` colours every mask pixel; ``"contour"`` only the outlines.
        thickness: outline width in pixels (``"contour"``).

    Returns:
        uint8 (H, W, 3) copy of the image with the masks drawn.
    """
    _check_image(image)
    if style not in ("filled", "contour"):
        raise ValueError(f"style must be 'filled' or 'contour', got {style!r}")
    out = image.astype(np.float32)
    for code, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        _check_plane(image, mask, f"mask {code!r}")
        if style == "contour":
            contours, _ = cv2.findContours(
                mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
            )
            outline = np.zeros(mask.shape, np.uint8)
            cv2.drawContours(outline, contours, -1, 1, thickness)
            mask = outline.astype(bool)
        out[mask] = (1.0 - alpha) * out[mask] + alpha * np.asarray(lesion_color(code), np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def saliency_grid(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    alpha: float = 0.5,
    colormap: str = "jet",
    panel_size: float = 3.0,
) -> Figure:
    """One-row figure: the image, then its ``heatmap_overlay`` for each method, and a colour bar.

    Args:
        image: uint8 (H, W, 3) RGB.
        maps: method name (panel title) -> (H, W) saliency in [0, 1].
        alpha, colormap: as ``heatmap_overlay``.
        panel_size: width and height of each panel in inches.
    """
    _check_image(image)
    panels = [("image", image)]
    panels += [(name, heatmap_overlay(image, m, alpha, colormap)) for name, m in maps.items()]
    figure = Figure(figsize=(panel_size * len(panels) + 0.6, panel_size), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, picture) in zip(axes, panels):
        ax.imshow(picture)
        ax.set_title(title)
        ax.set_axis_off()
    mappable = ScalarMappable(Normalize(0.0, 1.0), matplotlib.colormaps[colormap])
    figure.colorbar(mappable, ax=list(axes), label="saliency", shrink=0.8)
    return figure
