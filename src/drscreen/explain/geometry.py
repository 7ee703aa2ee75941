"""Saliency maps back in the original photograph's pixel grid (undoing the field-of-view crop)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from drscreen.preprocess.geometry import CropGeometry


def to_original_geometry(
    maps: Tensor | np.ndarray, geometries: Sequence[CropGeometry]
) -> list[np.ndarray]:
    """Map each saliency map (B, S, S) onto its original image; zeros outside the crop box.

    ``geometries[i]`` is the crop that preprocessing recorded for image ``i``; the map is resampled
    bilinearly to the box side (``CropGeometry.to_original``), so values stay in [0, 1]. Returns
    one float32 (H_i, W_i) array per image (originals may differ in size).
    """
    array = maps.detach().cpu().numpy() if isinstance(maps, Tensor) else np.asarray(maps)
    if array.ndim != 3:
        raise ValueError(f"maps must be (B, S, S), got shape {array.shape}")
    if len(geometries) != array.shape[0]:
        raise ValueError(f"{array.shape[0]} maps but {len(geometries)} geometries")
    return [geometry.to_original(m) for m, geometry in zip(array.astype(np.float32), geometries)]
