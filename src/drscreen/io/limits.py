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
    """

    min_side: int = 128
    max_pixels: int = 64_000_000

    def __post_init__(self) -> None:
        if self.min_side < 1 or self.max_pixels < 1:
            raise ValueError(f"ReadLimits must be positive, got {self}")


#: Limits for fundus photographs: at least 128 px a side, at most 64 megapixels.
DEFAULT_LIMITS = ReadLimits()
#: Limits for lesion masks: any size from 1 px, at most 64 megapixels.
MASK_LIMITS = ReadLimits(min_side=1)


def check_dimensions(path: Path, width: int, height: int, limits: ReadLimits) -> None:
    """Raise ``InputError`` (``too_large`` / ``too_small``) when ``width`` x ``height`` breaks ``limits``."""
    if width * height > limits.max_pixels:
        raise InputError(
            path,
            f"image is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{limits.max_pixels:,} (raise ReadLimits.max_pixels if this is a genuine image)",
            "too_large",
        )
    if min(width, height) < limits.min_side:
        raise InputError(
            path,
            f"image is {width}x{height} pixels, smaller than the minimum of {limits.min_side} px a side",
            "too_small",
        )
