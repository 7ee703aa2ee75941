"""Crop-and-resize with bounded memory.

:meth:`CropGeometry.apply` builds the whole square box at the original resolution before resizing
it. For a box around an ordinary photo that is cheap, but the box of a long, thin image (the
whole image padded to a ``max(H, W)`` square) or of a huge one can be gigabytes. ``crop_resized``
gives the same result without ever allocating the box: above :data:`MAX_BOX_PIXELS` it resizes the
part of the box that lies inside the image straight to its place in the ``S x S`` output.
"""

from __future__ import annotations

import cv2
import numpy as np

from drscreen.preprocess.geometry import CropGeometry, Interpolation

#: Largest box (side squared, px) built at full resolution; larger boxes are resized first.
MAX_BOX_PIXELS = 6000 * 6000

_CV2_FLAGS = {
    "nearest": cv2.INTER_NEAREST_EXACT,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
}


def crop_resized(
    geometry: CropGeometry, image: np.ndarray, interpolation: Interpolation = "area"
) -> np.ndarray:
    """``geometry.apply(image, interpolation)`` for (H, W) or (H, W, 3) uint8/bool ``image``,
    allocating at most the image's own size plus the (S, S[, C]) output.

    Boxes up to :data:`MAX_BOX_PIXELS` go through ``geometry.apply`` (exact). Larger ones: the
    image part of the box is resized to its footprint in the output, rounded to whole output
    pixels (so the image may shift by up to half an output pixel), and the rest is zero.
    """
    if geometry.side**2 <= MAX_BOX_PIXELS:
        return geometry.apply(image, interpolation)
    height, width = geometry.original_size
    if image.shape[:2] != (height, width):
        raise ValueError(f"image is {image.shape[:2]}, this geometry is for {geometry.original_size}")
    size, scale = geometry.output_size, geometry.scale
    out = np.zeros((size, size, *image.shape[2:]), dtype=image.dtype)
    top, left = max(geometry.y0, 0), max(geometry.x0, 0)
    bottom, right = min(geometry.y0 + geometry.side, height), min(geometry.x0 + geometry.side, width)
    out_top, out_left = round((top - geometry.y0) * scale), round((left - geometry.x0) * scale)
    out_bottom, out_right = round((bottom - geometry.y0) * scale), round((right - geometry.x0) * scale)
    if out_bottom <= out_top or out_right <= out_left:
        return out
    part = image[top:bottom, left:right]
    target = (out_right - out_left, out_bottom - out_top)
    flag = _CV2_FLAGS[interpolation]
    if image.dtype == np.bool_:
        resized = cv2.resize(part.astype(np.float32), target, interpolation=flag) >= 0.5
    else:
        resized = cv2.resize(np.ascontiguousarray(part), target, interpolation=flag)
    out[out_top:out_bottom, out_left:out_right] = resized.reshape(out[out_top:out_bottom, out_left:out_right].shape)
    return out
