"""Photographs decoded and reduced on a GPU (nvJPEG through ``torchvision.io.decode_jpeg``).

A CPU decodes a 12-megapixel JPEG at about 11 per second and core (DCT-scaled at 1/4: about 40);
an H100's nvJPEG decodes several hundred per second. ``decode_reduced`` decodes a batch of JPEG
files on ``device`` and area-averages each by its ``drscreen.io.draft.reduction_factor`` there
(the same factor the CPU path uses; nvJPEG has no DCT scaling), returning ``ReducedPhotograph``
records on the CPU for the preprocessing. The pixels differ from the CPU's DCT-scaled decode by
about one grey level on average (as two JPEG decoders do), so results are reproducible per device
path, not across paths.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from drscreen.io.draft import MIN_LONG_SIDE, MIN_SHORT_SIDE, ReducedPhotograph, reduction_factor


def decode_reduced(
    paths: Sequence[str | os.PathLike[str]],
    device: str | torch.device = "cuda",
    min_long_side: int | None = MIN_LONG_SIDE,
    min_short_side: int = MIN_SHORT_SIDE,
) -> list[ReducedPhotograph]:
    """Decode the JPEG files ``paths`` on ``device`` (EXIF orientation applied) and reduce each by
    its reduction factor: ``ReducedPhotograph`` with (h, w, 3) uint8 RGB on the CPU.

    Raises ``RuntimeError`` for a file nvJPEG cannot decode (callers read such files on the CPU).
    """
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    encoded = [read_file(os.fspath(path)) for path in paths]
    decoded = decode_jpeg(encoded, mode=ImageReadMode.RGB, device=torch.device(device), apply_exif_orientation=True)
    photographs = []
    for image in decoded:
        height, width = image.shape[-2:]
        factor = reduction_factor(width, height, min_long_side, min_short_side)
        photographs.append(ReducedPhotograph(image=reduce_on_device(image, factor), original_size=(height, width),
                                             factor=factor))  # fmt: skip
    return photographs


def reduce_on_device(image: torch.Tensor, factor: int) -> np.ndarray:
    """(3, H, W) uint8 on any device -> (ceil(H / f), ceil(W / f), 3) uint8 NumPy: the mean of each
    f x f block (edge blocks: of their pixels inside the image), rounded."""
    if factor > 1:
        pooled = F.avg_pool2d(image[None].float(), factor, stride=factor, ceil_mode=True, count_include_pad=False)
        image = pooled[0].round_().clamp_(0, 255).to(torch.uint8)
    return image.permute(1, 2, 0).contiguous().cpu().numpy()
