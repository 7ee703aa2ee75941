"""Square crop geometry: original image -> (S, S) network input, and results back to the original.

A :class:`CropGeometry` is a square box in original pixel coordinates (it may extend beyond the
image; the outside is zero-padded) and an output size ``S``. ``apply`` crops/pads and resizes an
image or mask; ``to_original`` maps any per-pixel result computed on the crop (masks, heatmaps,
logits, channels-last or channels-first, NumPy or torch) back onto the original image, with zeros
outside the box. When ``S`` equals the box side no resampling happens and the round trip is exact.

Pixel-centre convention: pixel (row ``i``, column ``j``) is centred at ``(x, y) = (j, i)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from math import ceil
from typing import Any, Literal, TypeVar

import cv2
import numpy as np
import torch

from drscreen.preprocess.fov import FieldOfView

Interpolation = Literal["nearest", "linear", "area", "cubic"]
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

_CV2_INTERPOLATION = {
    # INTER_NEAREST_EXACT samples at pixel centres (INTER_NEAREST is shifted by up to half a pixel).
    "nearest": cv2.INTER_NEAREST_EXACT,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
}
#: Dtypes OpenCV can resample with interpolation other than nearest.
_INTERPOLABLE_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.float32, np.float64))
_MAX_CV2_CHANNELS = 128


@dataclass(frozen=True)
class CropGeometry:
    """A square crop box in an image and the size it is resampled to.

    Attributes:
        original_size: (H, W) of the original image, px.
        x0, y0: column and row of the box's top-left pixel in the original (may be negative).
        side: side of the box in original px (the box covers columns ``x0 .. x0 + side - 1``).
        output_size: side ``S`` of the resampled crop, px.
    """

    original_size: tuple[int, int]
    x0: int
    y0: int
    side: int
    output_size: int

    def __post_init__(self) -> None:
        if self.side < 1 or self.output_size < 1:
            raise ValueError(f"side and output_size must be positive, got {self.side}, {self.output_size}")

    @classmethod
    def around_fov(cls, fov: FieldOfView, output_size: int, margin: float = 0.0) -> CropGeometry:
        """The square centred on the FOV that encloses its outline, widened by ``margin`` (fraction of the radius)."""
        radius = fov.radius * (1.0 + margin)
        side = max(1, ceil(2.0 * radius - 1e-6))
        cx, cy = fov.center
        return cls(
            original_size=fov.image_size,
            x0=round(cx - (side - 1) / 2),
            y0=round(cy - (side - 1) / 2),
            side=side,
            output_size=output_size,
        )

    @classmethod
    def whole_image(cls, height: int, width: int, output_size: int) -> CropGeometry:
        """The whole image, zero-padded symmetrically to a square."""
        side = max(height, width)
        x0, y0 = -((side - width) // 2), -((side - height) // 2)
        return cls((height, width), x0=x0, y0=y0, side=side, output_size=output_size)

    @property
    def scale(self) -> float:
        """Output pixels per original pixel."""
        return self.output_size / self.side

    def rescaled(self, factor: float, original_size: tuple[int, int]) -> CropGeometry:
        """The same crop on the image resized by ``factor`` to ``original_size`` (H, W): the box
        covers the same part of the scene (exactly so for an integer ``factor``)."""
        return replace(
            self,
            original_size=original_size,
            x0=round(self.x0 * factor),
            y0=round(self.y0 * factor),
            side=max(1, round(self.side * factor)),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable form."""
        data = asdict(self)
        data["original_size"] = list(self.original_size)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CropGeometry:
        return cls(
            original_size=(int(data["original_size"][0]), int(data["original_size"][1])),
            x0=int(data["x0"]),
            y0=int(data["y0"]),
            side=int(data["side"]),
            output_size=int(data["output_size"]),
        )

    def points_to_original(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) x, y in crop pixels -> (N, 2) x, y in original pixels."""
        points = np.asarray(points, dtype=np.float64)
        return (points + 0.5) / self.scale - 0.5 + np.array([self.x0, self.y0])

    def points_to_crop(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) x, y in original pixels -> (N, 2) x, y in crop pixels."""
        points = np.asarray(points, dtype=np.float64)
        return (points - np.array([self.x0, self.y0]) + 0.5) * self.scale - 0.5

    def apply(self, image: np.ndarray, interpolation: Interpolation = "area") -> np.ndarray:
        """Crop/pad ``image`` (H, W) or (H, W, C) to the box and resample it to (S, S) or (S, S, C).

        Bool masks are resampled as 0/1 floats and thresholded at 0.5 (``"nearest"`` keeps them exact).
        """
        height, width = self.original_size
        if image.shape[:2] != (height, width):
            raise ValueError(f"image is {image.shape[:2]}, this geometry is for {self.original_size}")
        box = np.zeros((self.side, self.side, *image.shape[2:]), dtype=image.dtype)
        src, dst = self._overlap()
        box[dst] = image[src]
        return _resize(box, self.output_size, self.output_size, interpolation)

    def to_original(
        self,
        array: ArrayT,
        interpolation: Interpolation = "linear",
        channels_first: bool | None = None,
    ) -> ArrayT:
        """Map ``array`` computed on the crop back onto the original image, zeros outside the box.

        Args:
            array: (S, S), (S, S, C) or (C, S, S); NumPy array or torch tensor (returned on its
                device); bool, integer or float. Bool arrays are resampled as 0/1 and thresholded
                at 0.5; integer label maps need ``"nearest"``.
            interpolation: resampling used when ``S`` differs from the box side.
            channels_first: layout of a 3-D array; None infers it from where the (S, S) axes are.

        Returns:
            (H, W), (H, W, C) or (C, H, W) in the original geometry, same dtype as ``array``.
        """
        if isinstance(array, torch.Tensor):
            result = self.to_original(array.detach().cpu().numpy(), interpolation, channels_first)
            return torch.from_numpy(result).to(array.device)
        s = self.output_size
        if array.ndim == 3 and channels_first is None:
            channels_first = array.shape[1:] == (s, s) and array.shape[:2] != (s, s)
        if array.ndim == 3 and channels_first:
            array = np.moveaxis(array, 0, -1)
        if array.shape[:2] != (s, s) or array.ndim not in (2, 3):
            raise ValueError(f"expected (S, S[, C]) or (C, S, S) with S={s}, got {array.shape}")
        box = _resize(array, self.side, self.side, interpolation)
        height, width = self.original_size
        out = np.zeros((height, width, *box.shape[2:]), dtype=box.dtype)
        src, dst = self._overlap()
        out[src] = box[dst]
        return np.ascontiguousarray(np.moveaxis(out, -1, 0)) if array.ndim == 3 and channels_first else out

    def _overlap(self) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """(image slices, box slices) of the part of the box that lies inside the image."""
        height, width = self.original_size
        top, left = max(self.y0, 0), max(self.x0, 0)
        bottom, right = min(self.y0 + self.side, height), min(self.x0 + self.side, width)
        if bottom <= top or right <= left:
            empty = (slice(0, 0), slice(0, 0))
            return empty, empty
        image_slices = (slice(top, bottom), slice(left, right))
        box_slices = (slice(top - self.y0, bottom - self.y0), slice(left - self.x0, right - self.x0))
        return image_slices, box_slices


def _resize(array: np.ndarray, height: int, width: int, interpolation: Interpolation) -> np.ndarray:
    """Resize (h, w) or (h, w, C) ``array`` to (height, width), keeping its dtype and channel axis."""
    if array.shape[:2] == (height, width):
        return array.copy()
    if interpolation not in _CV2_INTERPOLATION:
        raise ValueError(f"unknown interpolation {interpolation!r}; use one of {sorted(_CV2_INTERPOLATION)}")
    if array.dtype == np.bool_:
        if interpolation == "nearest":
            return _resize_cv2(array.view(np.uint8), height, width, cv2.INTER_NEAREST_EXACT).view(bool)
        return _resize_cv2(array.astype(np.float32), height, width, _CV2_INTERPOLATION[interpolation]) >= 0.5
    if array.dtype.itemsize == 8 and np.issubdtype(array.dtype, np.integer) and array.size:
        info = np.iinfo(np.int32)
        if array.min() < info.min or array.max() > info.max:
            raise ValueError("64-bit label values must fit in int32 (OpenCV resizes them as int32)")
    if interpolation != "nearest" and array.dtype not in _INTERPOLABLE_DTYPES:
        if array.dtype != np.float16:
            raise ValueError(f"{array.dtype} arrays (label maps) can only be resampled with 'nearest'")
        return _resize(array.astype(np.float32), height, width, interpolation).astype(np.float16)
    return _resize_cv2(array, height, width, _CV2_INTERPOLATION[interpolation])


def _resize_cv2(array: np.ndarray, height: int, width: int, flag: int) -> np.ndarray:
    """cv2.resize of (h, w) or (h, w, C) with any C (OpenCV resizes at most 128 channels at once)."""
    if array.ndim == 3 and array.shape[2] > _MAX_CV2_CHANNELS:
        chunks = range(0, array.shape[2], _MAX_CV2_CHANNELS)
        return np.concatenate(
            [_resize_cv2(array[..., i : i + _MAX_CV2_CHANNELS], height, width, flag) for i in chunks], axis=2
        )
    out = cv2.resize(np.ascontiguousarray(array), (width, height), interpolation=flag).astype(array.dtype, copy=False)
    return out[..., None] if array.ndim == 3 and out.ndim == 2 else out
