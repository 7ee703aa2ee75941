"""Public readers: ``read_image``, ``read_mask``, ``find_images``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from drscreen.io._dicom import decode_dicom
from drscreen.io._pillow import Purpose, decode_with_pillow
from drscreen.io._tiff import decode_with_tifffile, tiff_needs_tifffile
from drscreen.io.errors import InputError
from drscreen.io.limits import DEFAULT_LIMITS, MASK_LIMITS, ReadLimits
from drscreen.io.pixels import DecodedPixels, to_mask, to_rgb_uint8

#: File extensions ``find_images`` collects (lower case; matching ignores case).
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".tif", ".tiff", ".bmp", ".dcm", ".dicom"}
)
_DICOM_EXTENSIONS = frozenset({".dcm", ".dicom"})
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def read_image(path: str | os.PathLike[str], *, limits: ReadLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Read a fundus photograph as an (H, W, 3) uint8 RGB array, upright.

    Formats are recognised by content, not by extension: JPEG, PNG (1-16 bit, grey, palette,
    alpha), TIFF (8/16-bit, any compression tifffile or Pillow decode), BMP and DICOM (also without
    extension when it has the "DICM" preamble). EXIF/TIFF orientation is applied. Alpha is
    composited on black, the fundus background. Samples of more than 8 bits are scaled by the
    declared bit depth (DICOM BitsStored, TIFF BitsPerSample or MaxSampleValue, PNG's container
    depth), never stretched to the data's min/max. Multi-frame files (DICOM, multi-page TIFF)
    give their first frame. CMYK, YCbCr and LAB are converted to RGB; float, signed and complex
    pixels raise ``InputError`` with code ``unsupported_mode``.

    Raises ``InputError`` naming the file, a reason and a code (see ``InputErrorCode``) for every
    unusable input; the size guards in ``limits`` are checked from the header before decoding.
    """
    return to_rgb_uint8(_decode(Path(path), limits, "image"))


def read_mask(path: str | os.PathLike[str], *, limits: ReadLimits = MASK_LIMITS) -> np.ndarray:
    """Read a lesion mask as an (H, W) bool array: True where any colour sample is > 0.

    Covers the stored forms of the public datasets: 0/255 or 0/1 grey, RGB with the lesion in one
    channel (IDRiD TIFFs), palette images (label index > 0 is foreground), bilevel and 16-bit
    images. Fully transparent pixels are background. Same guards and errors as ``read_image``,
    with ``MASK_LIMITS`` (no minimum size) by default.
    """
    return to_mask(_decode(Path(path), limits, "mask"))


def find_images(folder: str | os.PathLike[str], recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` with a supported extension (any case), sorted by path.

    Hidden files and, when ``recursive``, hidden folders (names starting with ".") are skipped.
    """
    root = Path(folder)
    if not root.exists():
        raise InputError(root, "folder does not exist", "missing")
    if not root.is_dir():
        raise InputError(root, "is not a folder", "not_a_folder")
    candidates = root.rglob("*") if recursive else root.iterdir()
    return sorted(
        path
        for path in candidates
        if path.suffix.lower() in SUPPORTED_EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and path.is_file()
    )


def _decode(path: Path, limits: ReadLimits, purpose: Purpose) -> DecodedPixels:
    """Check that ``path`` is a readable non-empty file, then dispatch on its content."""
    if not path.exists():
        raise InputError(path, "file does not exist", "missing")
    if not path.is_file():
        raise InputError(path, "is a folder or other non-file, not an image file", "not_a_file")
    try:
        with path.open("rb") as stream:
            head = stream.read(132)
    except OSError as error:
        raise InputError(path, f"cannot read the file ({error.strerror or error})", "unreadable") from None
    if not head:
        raise InputError(path, "file is empty (0 bytes)", "empty")
    if head[128:132] == b"DICM" or path.suffix.lower() in _DICOM_EXTENSIONS:
        return decode_dicom(path, limits)
    if head.startswith(_TIFF_SIGNATURES) and tiff_needs_tifffile(path):
        return decode_with_tifffile(path, limits)
    return decode_with_pillow(path, limits, purpose)
