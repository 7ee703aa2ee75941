"""Photographs read at a reduced size: JPEG by DCT scaling (Pillow's ``draft``), other formats by area.

A 12-megapixel photograph is decoded in full only to be shrunk to a 224-512 px network input, a
512 px quality-gate crop and a 1024 px preview. ``read_reduced`` decodes it at the smallest
power-of-two reduction (1, 1/2, 1/4, 1/8) whose long side is still at least ``min_long_side`` and
whose short side is still at least ``min_short_side``, so that every later step downsamples and
none upsamples. JPEGs are decoded at that scale by libjpeg (the inverse DCT of fewer
coefficients, 3-6 times faster than a full decode); other formats are decoded in full and
area-averaged by the same factor (``reduce_photograph``), as are in-memory images.

The factor depends only on the photograph's size, so a photograph always becomes the same
reduced image, whichever path (one image, worker processes, ranks) reads it.

Pixel-centre convention (as in ``drscreen.preprocess``): reduced pixel ``(x, y)`` covers the
original pixels ``f x .. f x + f - 1``, so ``x_original + 0.5 = f (x_reduced + 0.5)``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps

from drscreen.io._pillow import _pixels_from_pillow
from drscreen.io.limits import DEFAULT_LIMITS, ReadLimits, check_dimensions
from drscreen.io.pixels import to_rgb_uint8
from drscreen.io.readers import _DICOM_EXTENSIONS, read_image

#: Reduction factors libjpeg decodes directly (scale 1/f).
REDUCTION_FACTORS: tuple[int, ...] = (1, 2, 4, 8)
#: Default smallest long side (px) of a reduced photograph: the default display size of previews
#: and overlays (``drscreen.report.overlays.DISPLAY_SIZE``), above the FOV detector's 640 px.
MIN_LONG_SIDE = 1024
#: Default smallest short side (px): the quality gate measures on a 512 px crop of the FOV
#: (``drscreen.preprocess.quality.ASSESSMENT_SIZE``), which is at most as tall as the image.
MIN_SHORT_SIDE = 512
#: EXIF orientations that swap width and height (transposed and rotated by 90 or 270 degrees).
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})
_T = TypeVar("_T")


@dataclass(frozen=True, eq=False)
class ReducedPhotograph:
    """A photograph at 1/``factor`` of its size.

    Attributes:
        image: (h, w, 3) uint8 RGB, upright; ``h = ceil(H / factor)``, ``w = ceil(W / factor)``.
        original_size: (H, W) of the upright photograph, px.
        factor: original px per reduced px (1, 2, 4 or 8).
    """

    image: np.ndarray
    original_size: tuple[int, int]
    factor: int


def reduction_factor(
    width: int, height: int, min_long_side: int | None = MIN_LONG_SIDE, min_short_side: int = MIN_SHORT_SIDE
) -> int:
    """The largest factor of ``REDUCTION_FACTORS`` that keeps both sides above their minimum
    (``min_long_side`` None: 1, the full resolution)."""
    if min_long_side is None:
        return 1
    longer, shorter = max(width, height), min(width, height)
    usable = [f for f in REDUCTION_FACTORS if -(-longer // f) >= min_long_side and -(-shorter // f) >= min_short_side]
    return max(usable, default=1)


def reduce_photograph(
    image: np.ndarray, min_long_side: int | None = MIN_LONG_SIDE, min_short_side: int = MIN_SHORT_SIDE
) -> ReducedPhotograph:
    """Area-average (H, W, 3) uint8 ``image`` by its ``reduction_factor`` (a copy-free view when 1)."""
    height, width = image.shape[:2]
    factor = reduction_factor(width, height, min_long_side, min_short_side)
    if factor > 1:
        size = (-(-width // factor), -(-height // factor))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return ReducedPhotograph(image=image, original_size=(height, width), factor=factor)


def read_reduced(
    path: str | os.PathLike[str],
    *,
    min_long_side: int | None = MIN_LONG_SIDE,
    min_short_side: int = MIN_SHORT_SIDE,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> ReducedPhotograph:
    """Read ``path`` reduced by its ``reduction_factor`` (``min_long_side`` None: full resolution).

    JPEG (and MPO) files are decoded by DCT scaling; every other file, and every JPEG that the
    scaled decode cannot read, goes through ``drscreen.io.read_image`` (same checks, same
    ``InputError`` codes) and is then area-averaged.
    """
    path = Path(path)
    decoded = (
        None if path.suffix.lower() in _DICOM_EXTENSIONS else _draft_jpeg(path, min_long_side, min_short_side, limits)
    )
    if decoded is not None:
        return decoded
    return reduce_photograph(read_image(path, limits=limits), min_long_side, min_short_side)


def is_jpeg_within_limits(path: str | os.PathLike[str], limits: ReadLimits = DEFAULT_LIMITS) -> bool:
    """Whether ``path`` is a JPEG (or MPO) file whose header passes ``limits``: the files another
    JPEG decoder (``drscreen.screening.gpu``) may decode; False for anything else, unreadable or
    not (``read_reduced`` then reads it and names the reason)."""
    path = Path(path)
    return path.suffix.lower() not in _DICOM_EXTENSIONS and _with_jpeg(path, limits, lambda opened: True) is not None


def _with_jpeg(path: Path, limits: ReadLimits, action: Callable[[Image.Image], _T | None]) -> _T | None:
    """``action`` of the opened JPEG (or MPO) file ``path``; None when it is not one, breaks
    ``limits``, or Pillow fails on it (``read_image`` then names the reason)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                if opened.format not in _JPEG_FORMATS:
                    return None
                check_dimensions(path, opened.width, opened.height, limits)
                return action(opened)
    except MemoryError:
        raise
    except Exception:  # Pillow's plugins raise many types for malformed data; read_image names them
        return None


def _draft_jpeg(
    path: Path, min_long_side: int | None, min_short_side: int, limits: ReadLimits
) -> ReducedPhotograph | None:
    """DCT-scaled decode of a JPEG; None when ``path`` is not a JPEG, breaks ``limits`` or fails to
    decode (``read_image`` then names the reason)."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        return None  # read_image refuses to read while truncated images would load silently

    def decode(opened: Image.Image) -> ReducedPhotograph | None:
        width, height = opened.size
        if opened.getexif().get(0x0112) in _SWAPPING_ORIENTATIONS:
            width, height = height, width
        factor = reduction_factor(width, height, min_long_side, min_short_side)
        if factor > 1:
            stored_width, stored_height = opened.size
            opened.draft("RGB", (stored_width // factor, stored_height // factor))
            if opened.size != (-(-stored_width // factor), -(-stored_height // factor)):
                return None  # libjpeg chose another scale
        opened.load()
        pixels = to_rgb_uint8(_pixels_from_pillow(path, ImageOps.exif_transpose(opened), "image"))
        return ReducedPhotograph(image=pixels, original_size=(height, width), factor=factor)

    return _with_jpeg(path, limits, decode)
