"""Targets: which scalar per image a saliency map explains.

A target maps one forward's ``ModelOutput`` (and the model, for its lesion channel layout) to a
(B,) score; saliency methods differentiate that score with respect to hooked activations. Every
target raises ``TargetError`` when the model does not produce the output it reads.

Scores (all per image, shape (B,)):
    ``DRGradeTarget(g)``: the DR logit of grade ``g`` (default: each image's predicted grade).
    ``DMETarget(g)``: the DME logit of grade ``g`` (default: each image's predicted grade).
    ``ReferableTarget()``: ``log P(DR >= 2)`` under the softmax of the DR logits, i.e.
        ``logsumexp(z_2..z_4) - logsumexp(z_0..z_4)``. The log keeps the gradient from vanishing
        as P goes to 0, not as P goes to 1: its gradient is exactly ``(1 - P)`` times that of
        the log-odds, so on a confidently referable image it nearly vanishes. DME, the other
        referable axis, is ``DMETarget``.
    ``ReferableLogOddsTarget()``: ``log P(DR >= 2) - log P(DR < 2)``, i.e.
        ``logsumexp(z_2..z_4) - logsumexp(z_0, z_1)``: the same direction of gradient as
        ``ReferableTarget``, without the vanishing factor ``1 - P``, so a gate in absolute units
        (GMSM's ``t``) means the same on confident and on uncertain images.
    ``RegressionTarget()``: the continuous ``dr_score`` (regression heads such as ELLG's o_O net).
    ``LesionTarget(code)``: the per-pixel log-odds of lesion ``code``, averaged over the lesion
        map: the logit itself for sigmoid heads, ``z_c - logsumexp_{j != c} z_j`` for softmax heads
        (the two agree for a two-class softmax). For segmentation-only models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from drscreen.grading import REFERABLE_DR_MIN, validate_dme_grade, validate_dr_grade
from drscreen.models.base import DRModel
from drscreen.models.output import ModelOutput


class TargetError(ValueError):
    """The model does not produce the output a target needs, or the target does not fit it."""


class Target(Protocol):
    """Maps a forward's output to the (B,) score a saliency map explains."""

    def __call__(self, output: ModelOutput, model: DRModel) -> Tensor: ...


def _require(output: ModelOutput, field: str, target: object) -> Tensor:
    """``output.<field>``, or ``TargetError`` naming the target when the model lacks it."""
    value = getattr(output, field)
    if value is None:
        raise TargetError(
            f"{type(target).__name__} needs the model's {field}, which it does not produce"
        )
    return value


def _logit(logits: Tensor, index: int | None) -> Tensor:
    """(B, C) -> (B,): column ``index``, or each row's arg-max column when ``index`` is None."""
    if index is None:
        columns = logits.argmax(dim=1, keepdim=True)
    else:
        columns = torch.full((logits.shape[0], 1), index, dtype=torch.long, device=logits.device)
    return logits.gather(1, columns).squeeze(1)


@dataclass(frozen=True)
class DRGradeTarget:
    """DR logit of ``grade`` (0-4); ``None`` explains each image's predicted (arg-max) grade."""

    grade: int | None = None

    def __post_init__(self) -> None:
        if self.grade is not None:
            validate_dr_grade(self.grade)

    def __call__(self, output: ModelOutput, model: DRModel) -> Tensor:
        return _logit(_require(output, "dr_logits", self), self.grade)


@dataclass(frozen=True)
class DMETarget:
    """DME logit of ``grade`` (0-2); ``None`` explains each image's predicted (arg-max) grade."""

    grade: int | None = None

    def __post_init__(self) -> None:
        if self.grade is not None:
            validate_dme_grade(self.grade)

    def __call__(self, output: ModelOutput, model: DRModel) -> Tensor:
        return _logit(_require(output, "dme_logits", self), self.grade)


@dataclass(frozen=True)
class ReferableTarget:
    """``log P(DR >= 2)`` from the softmax over the five DR logits (natural log, <= 0)."""

    def __call__(self, output: ModelOutput, model: DRModel) -> Tensor:
        logits = _require(output, "dr_logits", self)
        return torch.logsumexp(logits[:, REFERABLE_DR_MIN:], dim=1) - torch.logsumexp(logits, dim=1)


@dataclass(frozen=True)
class ReferableLogOddsTarget:
    """``log P(DR >= 2) - log P(DR < 2)`` from the five DR logits (natural log, any sign)."""

    def __call__(self, output: ModelOutput, model: DRModel) -> Tensor:
        logits = _require(output, "dr_logits", self)
        referable = torch.logsumexp(logits[:, REFERABLE_DR_MIN:], dim=1)
        return referable - torch.logsumexp(logits[:, :REFERABLE_DR_MIN], dim=1)


@dataclass(frozen=True)
class RegressionTarget:
    """The continuous DR severity ``dr_score`` (0-4 scale) of a regression head."""

    def __call__(self, output: ModelOutput, model: DRModel) -> Tensor:
        return _require(output, "dr_score", self)


@dataclass(frozen=True)
class LesionTarget:
    """Mean per-pixel log-odds of lesion ``code`` (e.g. ``"EX"``) over the whole lesion map."""

    code: str

    def __call__(self, output: ModelOutput, model: DRModel) -> Tensor:
        logits = _require(output, "lesion_logits", self)
        if self.code not in model.lesion_classes:
            raise TargetError(f"model segments {model.lesion_classes}, not lesion {self.code!r}")
        channel = model.lesion_classes.index(self.code)
        if model.lesion_activation == "sigmoid":
            return logits[:, channel].mean(dim=(1, 2))
        channel += 1  # softmax heads put the background first
        others = torch.cat([logits[:, :channel], logits[:, channel + 1 :]], dim=1)
        log_odds = logits[:, channel] - torch.logsumexp(others, dim=1)
        return log_odds.mean(dim=(1, 2))


def default_target(output: ModelOutput, model: DRModel) -> Target:
    """The target used when none is given, the first that the output supports.

    Order: predicted DR grade, ``dr_score``, predicted DME grade, the model's first lesion class.
    """
    if output.dr_logits is not None:
        return DRGradeTarget()
    if output.dr_score is not None:
        return RegressionTarget()
    if output.dme_logits is not None:
        return DMETarget()
    if output.lesion_logits is not None and model.lesion_classes:
        return LesionTarget(model.lesion_classes[0])
    raise TargetError("the model produces no grade, score or lesion output to explain")
