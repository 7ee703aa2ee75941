"""Photographs decoded and reduced on a GPU (nvJPEG through ``torchvision.io.decode_jpeg``).

A CPU decodes a 12-megapixel JPEG at about 11 per second and core (DCT-scaled at 1/4: about 40);
an H100's nvJPEG decodes several hundred per second. ``decode_reduced`` decodes a batch of JPEG
files on ``device`` and area-averages each by its ``drscreen.io.draft.reduction_factor`` there
(the same factor the CPU path uses; nvJPEG has no DCT scaling), returning ``ReducedPhotograph``
records on the CPU for the preprocessing. The pixels differ from the CPU's DCT-scaled decode by
about one grey level on average (as two JPEG decoders do), so results are reproducible per device
path, not across paths (a screening's settings name its decoder).

``decode_inputs`` is what the screening loader calls (``PhotographLoader(decode_device=...)``):
the JPEG files of a batch of inputs decoded on the device, None for every input the CPU reads
instead (in-memory images, other formats, files over the read limits or that the device cannot
decode), so that nothing is lost and every refusal keeps the CPU path's reason code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from drscreen.io.draft import (
    MIN_LONG_SIDE,
    MIN_SHORT_SIDE,
    ReducedPhotograph,
    is_jpeg_within_limits,
    reduction_factor,
)
from drscreen.screening.inputs import ScreeningInput


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


def decode_inputs(
    items: Sequence[ScreeningInput], device: str | torch.device = "cuda"
) -> list[ReducedPhotograph | None]:
    """One entry per input of ``items``: the JPEG files decoded on ``device`` in one batch and
    reduced (``decode_reduced``), None for every other input and for a file the device cannot
    decode (the CPU path reads those and, for a bad file, names the reason)."""
    decodable = [
        (index, item.path) for index, item in enumerate(items)
        if item.path is not None and is_jpeg_within_limits(item.path)
    ]  # fmt: skip
    paths = [path for _, path in decodable]
    try:
        decoded: list[ReducedPhotograph | None] = list(decode_reduced(paths, device)) if paths else []
    except (OSError, RuntimeError):  # one bad file fails the whole batch: decode one by one
        decoded = [_decode_one(path, device) for path in paths]
    photographs: list[ReducedPhotograph | None] = [None] * len(items)
    for (index, _), photograph in zip(decodable, decoded, strict=True):
        photographs[index] = photograph
    return photographs


def _decode_one(path: str | os.PathLike[str], device: str | torch.device) -> ReducedPhotograph | None:
    """``decode_reduced`` of one file; None when the device cannot decode it."""
    try:
        return decode_reduced([path], device)[0]
    except (OSError, RuntimeError):
        return None
