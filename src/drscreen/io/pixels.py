"""Decoded pixels as stored in a file, and their conversion to RGB images and boolean masks.

Policy for more than 8 bits per sample: values are scaled by the range the file *declares*
(``max_value``: 2**bits - 1 of the declared bit depth, or TIFF's MaxSampleValue), never by the
range the data happens to use. Min/max stretching would change a photograph's brightness with its
content, which is wrong for medical images; a 12-bit image stored in a 16-bit container that does
not declare 12 bits therefore looks dark, exactly as the file says it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

#: How the channels of a decoded array are laid out.
Layout = Literal["grey", "grey_alpha", "rgb", "rgba"]

_CHANNELS: dict[Layout, int] = {"grey": 1, "grey_alpha": 2, "rgb": 3, "rgba": 4}


@dataclass(frozen=True)
class DecodedPixels:
    """Pixels straight from a decoder.

    ``array``: (H, W) for ``grey``, else (H, W, C) with C = 2, 3 or 4 per ``layout``; unsigned
    integers (bool for bilevel images). ``max_value``: the declared full-scale sample value
    (255 for 8-bit, 65535 for 16-bit, 4095 for 12 bits stored, 1 for bilevel).
    """

    array: np.ndarray
    layout: Layout
    max_value: int

    def __post_init__(self) -> None:
        channels = 1 if self.array.ndim == 2 else self.array.shape[-1]
        if channels != _CHANNELS[self.layout] or self.array.ndim not in (2, 3):
            raise ValueError(f"array of shape {self.array.shape} does not match layout {self.layout!r}")
        if self.max_value < 1:
            raise ValueError(f"max_value must be positive, got {self.max_value}")


def scale_to_uint8(array: np.ndarray, max_value: int) -> np.ndarray:
    """Map unsigned samples in [0, ``max_value``] linearly onto [0, 255], rounding; above is clipped."""
    if array.dtype == np.uint8 and max_value == 255:
        return array
    clipped = np.minimum(array, max_value).astype(np.uint32)
    return ((clipped * 255 + max_value // 2) // max_value).astype(np.uint8)


def _composite_on_black(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``colour`` (H, W[, C]) uint8 weighted by ``alpha`` (H, W) uint8: alpha over a black background."""
    weights = alpha.astype(np.uint16)
    if colour.ndim == 3:
        weights = weights[..., None]
    return ((colour.astype(np.uint16) * weights + 127) // 255).astype(np.uint8)


def to_rgb_uint8(pixels: DecodedPixels) -> np.ndarray:
    """(H, W, 3) uint8 RGB: grey is replicated, alpha is composited on black (fundus background)."""
    data = scale_to_uint8(pixels.array, pixels.max_value)
    if pixels.layout == "grey_alpha":
        data = _composite_on_black(data[..., 0], data[..., 1])
    elif pixels.layout == "rgba":
        data = _composite_on_black(data[..., :3], data[..., 3])
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=2)
    return np.ascontiguousarray(data)


def to_mask(pixels: DecodedPixels) -> np.ndarray:
    """(H, W) bool: foreground where any colour sample is > 0 and the pixel is not fully transparent."""
    if pixels.layout == "grey":
        return np.ascontiguousarray(pixels.array > 0)
    colour = pixels.array[..., :-1] if pixels.layout in ("grey_alpha", "rgba") else pixels.array
    mask = (colour > 0).any(axis=-1)
    if pixels.layout in ("grey_alpha", "rgba"):
        mask &= pixels.array[..., -1] > 0
    return np.ascontiguousarray(mask)
