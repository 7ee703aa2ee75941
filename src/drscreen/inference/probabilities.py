"""From a model's raw ``ModelOutput`` to probabilities: the only place this is computed.

Grade probabilities (DR, DME), lesion probability maps, flip test-time augmentation and the
mixed-precision context all live here; ``Predictor`` (``drscreen.inference.predictor``), the
engine's validation and every benchmark call these functions instead of applying a softmax
themselves. Grade *decoding* and the referable rule are clinical rules: ``drscreen.grading``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from drscreen.grading import NUM_DR_GRADES
from drscreen.models import ModelOutput

#: Lesion probabilities are kept as 8-bit maps where memory matters; AUPR over 256 thresholds is then exact.
LESION_LEVELS = 255

#: Test-time augmentation modes: the flips whose outputs are averaged (spatial dims flipped).
TTA_FLIPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": ((),),
    "flips": ((), (3,), (2,), (2, 3)),
}

#: Mixed-precision settings a user can name (``amp_dtype_for``).
AMP_SETTINGS: tuple[str, ...] = ("fp32", "auto", "bf16", "fp16")


def grade_probabilities(output: ModelOutput) -> tuple[Tensor | None, Tensor | None]:
    """DR (B, 5) and DME (B, 3) probabilities, float32; ``None`` where the model has no such head.

    A regression model's ``dr_score`` becomes probabilities with a triangular kernel: the two
    grades around the score share the mass by distance (score 1.3 -> 0.7 on grade 1, 0.3 on
    grade 2), so the arg-max is the rounded grade and P(DR >= 2) grows with the score.
    """
    dr = None
    if output.dr_logits is not None:
        dr = output.dr_logits.float().softmax(dim=1)
    elif output.dr_score is not None:
        grades = torch.arange(NUM_DR_GRADES, device=output.dr_score.device, dtype=torch.float32)
        score = output.dr_score.float().clamp(0, NUM_DR_GRADES - 1).unsqueeze(1)
        dr = (1.0 - (score - grades).abs()).clamp(min=0.0)
        dr = dr / dr.sum(dim=1, keepdim=True)
    dme = None if output.dme_logits is None else output.dme_logits.float().softmax(dim=1)
    return dr, dme


def lesion_probabilities(logits: Tensor, activation: str, size: tuple[int, int]) -> Tensor:
    """(B, C, *size) float32 lesion probabilities from (B, C[+1], h, w) logits.

    Logits are resized to ``size`` first; a softmax model's background channel is dropped.
    """
    logits = logits.float()
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    if activation == "softmax":
        return logits.softmax(dim=1)[:, 1:]
    return logits.sigmoid()


def quantise_probabilities(probs: Tensor) -> Tensor:
    """Probabilities in [0, 1] as uint8 levels 0-``LESION_LEVELS`` (same shape)."""
    return (probs * LESION_LEVELS).round().to(torch.uint8)


def amp_dtype_for(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for an ``AMP_SETTINGS`` value, ``None`` for full precision.

    ``fp32``: ``None``. ``auto``: bf16 where the GPU supports it, else fp16; full precision on
    CPU. An explicit ``bf16`` / ``fp16`` also applies on CPU (bf16 pays off on CPUs with
    AVX-512 BF16 or AMX).
    """
    if setting not in AMP_SETTINGS:
        raise ValueError(f"unknown mixed-precision setting {setting!r}; known: {', '.join(AMP_SETTINGS)}")
    if setting == "fp32" or (setting == "auto" and device.type != "cuda"):
        return None
    if setting == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if setting == "bf16" else torch.float16


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """Mixed-precision context for ``dtype`` (``None``: full precision)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _flip(tensor: Tensor, dims: tuple[int, ...]) -> Tensor:
    return torch.flip(tensor, dims) if dims else tensor


def tta_forward(model: Callable[[Tensor], ModelOutput], images: Tensor, tta: str = "none") -> ModelOutput:
    """``model(images)`` averaged over the flips of ``TTA_FLIPS[tta]``.

    ``model`` is any callable returning a ``ModelOutput`` (a network or an inference backend).
    Grade logits are averaged as log-probabilities (their softmax is the normalised geometric
    mean of the per-view probabilities), ``dr_score`` and ``embedding`` as values, and lesion
    logits after flipping each map back onto the input. Side outputs are dropped.
    """
    if tta not in TTA_FLIPS:
        raise ValueError(f"unknown test-time augmentation {tta!r}; known: {', '.join(TTA_FLIPS)}")
    views = TTA_FLIPS[tta]
    if len(views) == 1:
        return model(images)
    outputs = [(dims, model(_flip(images, dims))) for dims in views]

    def mean(values: list[Tensor | None]) -> Tensor | None:
        return None if values[0] is None else torch.stack(values).float().mean(dim=0)  # type: ignore[arg-type]

    def log_probs(logits: Tensor | None) -> Tensor | None:
        return None if logits is None else logits.float().log_softmax(dim=1)

    return ModelOutput(
        dr_logits=mean([log_probs(o.dr_logits) for _, o in outputs]),
        dr_score=mean([o.dr_score for _, o in outputs]),
        dme_logits=mean([log_probs(o.dme_logits) for _, o in outputs]),
        lesion_logits=mean([None if o.lesion_logits is None else _flip(o.lesion_logits, d) for d, o in outputs]),
        embedding=mean([o.embedding for _, o in outputs]),
    )
