"""TIFF with more than 8 bits per sample, through tifffile (Pillow would drop the low byte)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile

from drscreen.io.errors import InputError
from drscreen.io.limits import ReadLimits, check_dimensions
from drscreen.io.pixels import DecodedPixels

_EXTRASAMPLE_ASSOCIATED_ALPHA = 1  # premultiplied: the colour samples are already "over black"
_EXTRASAMPLE_UNASSOCIATED_ALPHA = 2

#: TIFF/EXIF Orientation tag value -> the operation that displays the stored (row, col) array upright.
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def tiff_needs_tifffile(path: Path) -> bool:
    """True when the first page stores more than 8 bits or non-integer samples per channel."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            return int(page.bitspersample) > 8 or page.sampleformat != tifffile.SAMPLEFORMAT.UINT
    except Exception:  # an unreadable header: let Pillow produce the diagnosis
        return False


def decode_with_tifffile(path: Path, limits: ReadLimits) -> DecodedPixels:
    """First page of a TIFF as unsigned integers scaled by BitsPerSample (or MaxSampleValue)."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            check_dimensions(path, int(page.imagewidth), int(page.imagelength), limits)
            data_end = max(o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=True))
            if data_end > path.stat().st_size:
                raise InputError(path, "file ends before the image data does", "truncated")
            array = page.asarray()
            photometric = page.photometric
            samples = int(page.samplesperpixel)
            extrasamples = tuple(int(e) for e in page.extrasamples)
            bits = int(page.bitspersample)
            max_sample_tag = page.tags.get("MaxSampleValue")
            orientation_tag = page.tags.get("Orientation")
            planar_separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
    except InputError:
        raise
    except MemoryError:
        raise
    except Exception as error:  # tifffile and imagecodecs raise many types for malformed data
        raise InputError(path, f"cannot decode the TIFF ({type(error).__name__}: {error})", "corrupt") from None

    if array.dtype.kind != "u":
        raise InputError(
            path, f"TIFF samples are {array.dtype} (only unsigned integers have a defined range)", "unsupported_mode"
        )
    if planar_separate and samples > 1:
        array = np.moveaxis(array, 0, -1)
    max_value = (1 << bits) - 1
    if max_sample_tag is not None:
        max_value = int(np.max(max_sample_tag.value))

    if photometric == tifffile.PHOTOMETRIC.MINISWHITE and samples == 1:
        array = max_value - np.minimum(array, max_value)
        layout = "grey"
    elif photometric == tifffile.PHOTOMETRIC.MINISBLACK and samples == 1:
        layout = "grey"
    elif photometric == tifffile.PHOTOMETRIC.MINISBLACK and samples == 2 and extrasamples:
        layout = "grey_alpha" if extrasamples[0] == _EXTRASAMPLE_UNASSOCIATED_ALPHA else "grey"
        array = array if layout == "grey_alpha" else array[..., 0]
    elif photometric == tifffile.PHOTOMETRIC.RGB and samples >= 3:
        has_alpha = samples >= 4 and extrasamples[:1] == (_EXTRASAMPLE_UNASSOCIATED_ALPHA,)
        layout = "rgba" if has_alpha else "rgb"
        array = array[..., :4] if has_alpha else array[..., :3]
    else:
        raise InputError(
            path,
            f"TIFF photometric interpretation {photometric.name} with {samples} samples of {bits} bits "
            "has no defined conversion to RGB",
            "unsupported_mode",
        )
    if orientation_tag is not None and int(orientation_tag.value) in _ORIENT:
        array = _ORIENT[int(orientation_tag.value)](array)
    return DecodedPixels(np.ascontiguousarray(array), layout, max_value)
