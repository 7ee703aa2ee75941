"""JPEG, PNG, 8-bit TIFF and BMP through Pillow, with full decode and EXIF orientation."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from drscreen.io.errors import InputError
from drscreen.io.limits import ReadLimits, check_dimensions
from drscreen.io.pixels import DecodedPixels, Layout

#: Pillow format names accepted (MPO is the multi-picture JPEG many cameras write).
PILLOW_FORMATS: frozenset[str] = frozenset({"JPEG", "MPO", "PNG", "TIFF", "BMP", "DIB"})

#: Modes with no channel layout of their own that Pillow converts to RGB losslessly or by definition.
_CONVERT_TO_RGB = frozenset({"RGBX", "CMYK", "YCbCr", "LAB", "HSV"})
_CONVERT_PREMULTIPLIED = {"La": "LA", "RGBa": "RGBA"}
_SIXTEEN_BIT_GREY = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_LAYOUTS: dict[str, Layout] = {"L": "grey", "LA": "grey_alpha", "RGB": "rgb", "RGBA": "rgba"}

Purpose = Literal["image", "mask"]


def decode_with_pillow(path: Path, limits: ReadLimits, purpose: Purpose) -> DecodedPixels:
    """Open, size-check, fully decode and orient ``path``.

    Truncated files are errors: this relies on ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` being False
    (Pillow's default), and refuses to read when some other code has switched it on.
    Multi-frame files (multi-page TIFF, animated PNG) give their first frame.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True, so truncated images would load silently; "
            "drscreen.io needs it False"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                if opened.format not in PILLOW_FORMATS:
                    raise InputError(
                        path,
                        f"{opened.format} images are not supported (accepted: JPEG, PNG, TIFF, BMP, DICOM)",
                        "unsupported_format",
                    )
                check_dimensions(path, opened.width, opened.height, limits)
                opened.load()
                image = ImageOps.exif_transpose(opened)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(path, f"Pillow refused it as a decompression bomb ({error})", "too_large") from None
    except UnidentifiedImageError:
        raise InputError(path, "not an image file in any known format", "not_an_image") from None
    except EOFError:
        raise InputError(path, "file ends before the image data does", "truncated") from None
    except OSError as error:
        if "truncated" in str(error):
            raise InputError(path, f"file is truncated ({error})", "truncated") from None
        raise InputError(path, f"cannot decode the image ({error})", "corrupt") from None
    except MemoryError:
        raise
    except Exception as error:  # Pillow's plugins raise many types for malformed data
        raise InputError(path, f"cannot decode the image ({type(error).__name__}: {error})", "corrupt") from None
    return _pixels_from_pillow(path, image, purpose)


def _pixels_from_pillow(path: Path, image: Image.Image, purpose: Purpose) -> DecodedPixels:
    """Map a loaded Pillow image onto a ``DecodedPixels`` layout.

    Palette images become RGB(A) colours for ``purpose="image"`` and stay label indices for
    ``purpose="mask"`` (index > 0 is foreground, the label-map convention).
    """
    mode = image.mode
    if mode in ("P", "PA"):
        if purpose == "mask":
            return DecodedPixels(np.asarray(image), "grey" if mode == "P" else "grey_alpha", 255)
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
        mode = image.mode
    if mode in _CONVERT_PREMULTIPLIED:
        image = image.convert(_CONVERT_PREMULTIPLIED[mode])
        mode = image.mode
    if mode in _CONVERT_TO_RGB:
        try:
            image = image.convert("RGB")
        except ValueError as error:
            raise InputError(path, f"cannot convert {mode} pixels to RGB ({error})", "unsupported_mode") from None
        mode = "RGB"
    if mode == "1":
        return DecodedPixels(np.asarray(image), "grey", 1)
    if mode in _SIXTEEN_BIT_GREY:
        return DecodedPixels(np.asarray(image).astype(np.uint16), "grey", 65535)
    if mode not in _LAYOUTS:
        raise InputError(
            path, f"pixel mode {mode!r} has no defined conversion to RGB (e.g. float pixels)", "unsupported_mode"
        )
    return DecodedPixels(np.asarray(image), _LAYOUTS[mode], 255)
