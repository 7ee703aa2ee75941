"""Overlay layers of one screened photograph, as transparent RGBA images in its own geometry.

Each layer is drawn at a display size (the photograph's long side scaled to ``size`` px, or
full resolution with ``size=None``) in the original photograph's frame: the network-crop maps are
placed back through the crop geometry (``CropGeometry``), so a layer lies exactly on the
photograph (or on its preview, which has the same size). Layers never call a model.
"""

from __future__ import annotations

import cv2
import numpy as np

from drscreen.grading import SEGMENTATION_LESIONS, lesion_color
from drscreen.preprocess import CropGeometry
from drscreen.screening import ScreenedImage

#: Default long side (px) of previews and overlay layers; None keeps the full resolution.
DISPLAY_SIZE = 1024
#: Alpha of the saliency layer where the map is 1.
SALIENCY_ALPHA = 200


def display_scale(width: int, height: int, size: int | None) -> float:
    """Factor from original pixels to display pixels (<= 1)."""
    return 1.0 if size is None else min(1.0, size / max(width, height))


def preview(screened: ScreenedImage, size: int | None = DISPLAY_SIZE) -> np.ndarray:
    """(h, w, 3) uint8 RGB: the photograph at display size."""
    height, width = screened.image.shape[:2]
    factor = display_scale(width, height, size)
    if factor == 1.0:
        return screened.image
    shape = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(screened.image, shape, interpolation=cv2.INTER_AREA)


def overlay_layers(screened: ScreenedImage, threshold: float, size: int | None = DISPLAY_SIZE) -> dict[str, np.ndarray]:
    """``{"lesions", "disc", "saliency"}`` -> (h, w, 4) uint8 RGBA layers at display size.

    A layer is missing when its source is (an ungradable image has none). Lesion maps and
    landmarks are placed through the crop they were computed in (``screened.lesion_prepared``:
    a separate lesion model's), the saliency through the grading model's (``screened.prepared``).
    """
    height, width = screened.prepared.geometry.original_size  # the frame of ``screened.image``
    factor = display_scale(width, height, size)
    display = (max(1, round(height * factor)), max(1, round(width * factor)))
    geometry = screened.prepared.geometry.rescaled(factor, display)
    lesion_view = screened.lesion_prepared  # None: not graded, so no maps and no landmarks
    lesion_geometry = None if lesion_view is None else lesion_view.geometry.rescaled(factor, display)
    shape = geometry.original_size
    layers: dict[str, np.ndarray] = {}
    if screened.lesion_probs is not None and lesion_geometry is not None:
        probs = screened.lesion_probs
        lesions = np.zeros((*shape, 4), np.uint8)
        for code in SEGMENTATION_LESIONS:
            if code in screened.lesion_classes:
                mask = lesion_geometry.to_original(probs[screened.lesion_classes.index(code)] >= threshold, "linear")
                lesions[mask] = (*lesion_color(code), 255)
        layers["lesions"] = lesions
    if screened.landmarks is not None and lesion_geometry is not None:
        layers["disc"] = _disc_layer(screened, lesion_geometry, threshold)
    if screened.saliency is not None:
        heat = geometry.to_original(screened.saliency.astype(np.float32), "linear")
        colours = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)[..., ::-1]
        alpha = np.uint8(np.clip(heat, 0, 1) * SALIENCY_ALPHA)
        layers["saliency"] = np.dstack([colours, alpha])
    return layers


def _disc_layer(screened: ScreenedImage, geometry: CropGeometry, threshold: float) -> np.ndarray:
    """Optic-disc outline (model map, else the located disc's circle), fovea cross, macula circle;
    ``geometry``: from the lesion maps' crop to the display frame."""
    assert screened.landmarks is not None
    layer = np.zeros((*geometry.original_size, 4), np.uint8)
    thickness = max(1, round(max(geometry.original_size) / 400))
    magenta, cyan = (*lesion_color("OD"), 255), (0, 255, 255, 255)
    landmarks = screened.landmarks
    disc_xy, fovea_xy = geometry.points_to_original(np.array([landmarks.disc_center, landmarks.fovea_center]))
    disc_radius = landmarks.disc_diameter / geometry.scale / 2
    drawn = False
    if screened.lesion_probs is not None and "OD" in screened.lesion_classes:
        disc = geometry.to_original(screened.lesion_probs[screened.lesion_classes.index("OD")] >= threshold, "linear")
        contours, _ = cv2.findContours(disc.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if contours:
            cv2.drawContours(layer, contours, -1, magenta, thickness)
            drawn = True
    if not drawn:
        cv2.circle(layer, _point(disc_xy), max(1, round(disc_radius)), magenta, thickness)
    cv2.circle(layer, _point(fovea_xy), max(1, round(2 * disc_radius)), cyan, thickness)
    arm = max(3, round(disc_radius / 3))
    fx, fy = _point(fovea_xy)
    cv2.line(layer, (fx - arm, fy), (fx + arm, fy), cyan, thickness)
    cv2.line(layer, (fx, fy - arm), (fx, fy + arm), cyan, thickness)
    return layer


def _point(xy: np.ndarray) -> tuple[int, int]:
    return round(float(xy[0])), round(float(xy[1]))
