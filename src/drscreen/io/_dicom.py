"""DICOM (e.g. Ophthalmic Photography) through pydicom and its pixel-data plugins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pydicom.pixels
from pydicom.errors import InvalidDicomError

from drscreen.io.errors import InputError
from drscreen.io.limits import ReadLimits, check_dimensions
from drscreen.io.pixels import DecodedPixels

#: Colour interpretations pydicom's ``pixel_array`` returns as RGB (it converts YCbCr itself).
_COLOUR_INTERPRETATIONS = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"})


def decode_dicom(path: Path, limits: ReadLimits) -> DecodedPixels:
    """The first frame of a DICOM image, scaled by BitsStored.

    RGB and YCbCr interpretations come back as RGB, MONOCHROME2 as grey and MONOCHROME1 inverted
    to grey. Compressed transfer syntaxes decode when an installed pydicom plugin handles them
    (Pillow: JPEG baseline/extended, JPEG 2000; pydicom itself: RLE, deflate). No VOI/LUT
    windowing is applied: photographs store display values.
    """
    try:
        dataset = pydicom.dcmread(path, force=True)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as error:
        code = "truncated" if isinstance(error, EOFError) else "corrupt"
        raise InputError(path, f"cannot parse the DICOM file ({error})", code) from None

    if "PixelData" not in dataset:
        float_pixels = "FloatPixelData" in dataset or "DoubleFloatPixelData" in dataset
        if float_pixels:
            raise InputError(path, "DICOM float pixel data has no defined display range", "unsupported_mode")
        raise InputError(path, "DICOM file holds no image (no PixelData element)", "not_an_image")
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        interpretation = str(dataset.PhotometricInterpretation).strip()
        bits_stored = int(dataset.BitsStored)
        signed = int(dataset.get("PixelRepresentation", 0)) == 1
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        stored_bits = rows * columns * int(dataset.SamplesPerPixel) * int(dataset.BitsAllocated) * frames
        stored_bytes = (stored_bits + 7) // 8
    except (AttributeError, ValueError, TypeError) as error:
        raise InputError(path, f"DICOM image attributes are missing or invalid ({error})", "corrupt") from None

    check_dimensions(path, columns, rows, limits)
    if signed:
        raise InputError(path, "signed DICOM pixels are not a photograph's display values", "unsupported_mode")
    if interpretation not in _COLOUR_INTERPRETATIONS and not interpretation.startswith("MONOCHROME"):
        raise InputError(
            path, f"DICOM photometric interpretation {interpretation} is not supported", "unsupported_mode"
        )
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    if syntax is not None and not syntax.is_compressed and len(dataset.PixelData) < stored_bytes:
        raise InputError(
            path, f"file ends before the image data does ({len(dataset.PixelData):,} of {stored_bytes:,} bytes)",
            "truncated",
        )
    try:
        array = pydicom.pixels.pixel_array(dataset, index=0 if frames > 1 else None)
    except MemoryError:
        raise
    except Exception as error:  # decoder plugins raise many types for bad pixel data
        raise InputError(
            path, f"cannot decode the DICOM pixel data ({type(error).__name__}: {error})", "corrupt"
        ) from None

    max_value = (1 << bits_stored) - 1
    if interpretation == "MONOCHROME1":
        array = max_value - np.minimum(array, max_value)
    layout = "rgb" if interpretation in _COLOUR_INTERPRETATIONS else "grey"
    return DecodedPixels(np.ascontiguousarray(array), layout, max_value)
