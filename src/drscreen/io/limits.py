"""Size guards applied from the file header, before any pixel is decoded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drscreen.io.errors import InputError


@dataclass(frozen=True)
class ReadLimits:
    """Accepted image dimensions.

    ``min_side``: shortest accepted side in pixels. ``max_pixels``: largest accepted width x height,
    the decompression-bomb guard (a few kilobytes of PNG or JPEG can declare gigapixels).
    ``max_aspect_ratio``: largest accepted longer side / shorter side. Preprocessing works on a
    square around the image, so its cost grows with the longer side squared: a 15 KB PNG of
    128 x 40,000 px passes the pixel limit, but its padded square would hold 1.6 gigapixels.
    """

    min_side: int = 128
    max_pixels: int = 64_000_000
    max_aspect_ratio: float = 4.0

    def __post_init__(self) -> None:
        if self.min_side < 1 or self.max_pixels < 1 or self.max_aspect_ratio < 1:
            raise ValueError(f"ReadLimits must be positive (max_aspect_ratio at least 1), got {self}")


#: Limits for fundus photographs: at least 128 px a side, at most 64 megapixels, at most 4:1.
DEFAULT_LIMITS = ReadLimits()
#: Limits for lesion masks: any size from 1 px, at most 64 megapixels, at most 4:1.
MASK_LIMITS = ReadLimits(min_side=1)


def check_dimensions(path: Path, width: int, height: int, limits: ReadLimits) -> None:
    """Raise ``InputError`` (``too_large`` / ``bad_aspect_ratio`` / ``too_small``) when ``width`` x
    ``height`` breaks ``limits``. Called with the header's size, before any pixel is decoded."""
    if width * height > limits.max_pixels:
        raise InputError(
            path,
            f"image is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{limits.max_pixels:,} (raise ReadLimits.max_pixels if this is a genuine image)",
            "too_large",
        )
    longer, shorter = max(width, height), max(min(width, height), 1)
    if longer > limits.max_aspect_ratio * shorter:
        raise InputError(
            path,
            f"image is {width}x{height} pixels, an aspect ratio of {longer / shorter:,.1f}:1, more than the "
            f"limit of {limits.max_aspect_ratio:g}:1 (not a fundus photograph; raise "
            "ReadLimits.max_aspect_ratio if this is a genuine image)",
            "bad_aspect_ratio",
        )
    if min(width, height) < limits.min_side:
        raise InputError(
            path,
            f"image is {width}x{height} pixels, smaller than the minimum of {limits.min_side} px a side",
            "too_small",
        )
