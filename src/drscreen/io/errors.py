"""The one exception the readers raise for unusable input."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

#: Machine-readable reasons an input file cannot be used.
InputErrorCode = Literal[
    "missing",  # no such file or folder
    "not_a_file",  # a folder (or other non-file) was given where a file was expected
    "not_a_folder",  # a file was given where a folder was expected
    "unreadable",  # the operating system refused to read it (permissions, I/O error)
    "empty",  # zero bytes
    "truncated",  # the file ends before the image data does
    "corrupt",  # recognised format, undecodable content
    "not_an_image",  # no known image format (e.g. a text file renamed .jpg), or DICOM without pixels
    "unsupported_format",  # an image format drscreen does not accept (e.g. GIF)
    "unsupported_mode",  # a pixel type with no defined conversion to RGB (float, signed, ...)
    "too_small",  # a side shorter than ReadLimits.min_side
    "too_large",  # more pixels than ReadLimits.max_pixels (decompression-bomb guard)
    "bad_aspect_ratio",  # longer side more than ReadLimits.max_aspect_ratio times the shorter one
]


class InputError(Exception):
    """An input file that cannot be used, with the file, a human ``reason`` and a machine ``code``.

    ``str(error)`` reads ``"<path>: <reason>"``.
    """

    def __init__(self, path: str | Path, reason: str, code: InputErrorCode) -> None:
        self.path = Path(path)
        self.reason = reason
        self.code: InputErrorCode = code
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple[type[InputError], tuple[Path, str, InputErrorCode]]:
        # Exceptions pickle through their args; keep the three fields across worker processes.
        return (type(self), (self.path, self.reason, self.code))
