"""Safe image input: every supported file becomes an (H, W, 3) uint8 RGB array or a clear ``InputError``.

Public API: ``read_image``, ``read_mask``, ``find_images``, ``SUPPORTED_EXTENSIONS``, ``InputError``,
``ReadLimits``, ``DEFAULT_LIMITS``, ``MASK_LIMITS``.
"""

from drscreen.io.errors import InputError, InputErrorCode
from drscreen.io.limits import DEFAULT_LIMITS, MASK_LIMITS, ReadLimits
from drscreen.io.readers import SUPPORTED_EXTENSIONS, find_images, read_image, read_mask

__all__ = [
    "DEFAULT_LIMITS",
    "MASK_LIMITS",
    "SUPPORTED_EXTENSIONS",
    "InputError",
    "InputErrorCode",
    "ReadLimits",
    "find_images",
    "read_image",
    "read_mask",
]
