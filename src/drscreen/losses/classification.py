"""Image-level grading losses: cross-entropy, focal, SORD soft ordinal labels, score regression.

Every loss here takes one prediction per image and returns the mean over the batch. Selecting the
samples that carry a label (missing grades are ``-1`` in ``TaskTargets``) is the multi-task loss's
job; these losses expect valid targets only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drscreen.losses.registry import register_loss


def _optional_buffer(module: nn.Module, name: str, values: Sequence[float] | None) -> None:
    """Register ``values`` as a float buffer (``None`` stays ``None``) so it follows ``.to()``."""
    tensor = None if values is None else torch.as_tensor(values, dtype=torch.float32)
    module.register_buffer(name, tensor)


def soft_focal_nll(
    logits: Tensor, target_dist: Tensor, gamma: float = 0.0, class_weight: Tensor | None = None
) -> Tensor:
    """Per-sample focal cross-entropy against a target distribution.

    Computes ``sum_j w_j q_j (1 - p_j)^gamma (-log p_j)`` with ``p = softmax(logits)``. With a
    one-hot ``q`` this is the multi-class focal loss of Lin et al.; with ``gamma = 0`` and no
    weights it is the cross-entropy between ``q`` and ``p``.

    Shapes: ``logits`` (B, K) float, ``target_dist`` (B, K) float rows summing to 1,
    ``class_weight`` (K,) or ``None``. Returns (B,) float (no reduction).
    """
    log_p = F.log_softmax(logits, dim=1)
    terms = -target_dist * log_p
    if gamma != 0.0:
        terms = terms * (1.0 - log_p.exp()).pow(gamma)
    if class_weight is not None:
        terms = terms * class_weight
    return terms.sum(dim=1)


@register_loss(
    "cross_entropy",
    paper="Tu et al., SUNet (eq. 3); Foo et al., MTUnet (eq. 2)",
    description="softmax cross-entropy with optional class weights and label smoothing",
)
class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy for DR / DME grades, the grading loss of SUNet and MTUnet.

    Shapes: ``logits`` (B, K) float, ``target`` (B,) int64 in ``[0, K)``. Returns a scalar: the
    mean over the batch, or with ``weight`` the weighted mean (divided by the summed weights of
    the targets, as ``torch.nn.functional.cross_entropy`` does).

    Args:
        weight: optional per-class weights, length K.
        label_smoothing: mass in ``[0, 1)`` spread uniformly over the K classes.
    """

    weight: Tensor | None

    def __init__(self, weight: Sequence[float] | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        _optional_buffer(self, "weight", weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(
            logits, target, weight=self.weight, label_smoothing=self.label_smoothing
        )


@register_loss(
    "focal",
    paper="Lin et al., Focal Loss for Dense Object Detection (ICCV 2017); used by Tian et al.",
    description="multi-class softmax focal loss, gamma=2, optional per-class alpha",
)
class FocalLoss(nn.Module):
    """Multi-class focal loss: ``-alpha_t (1 - p_t)^gamma log p_t`` with ``p = softmax(logits)``.

    Lin, Goyal, Girshick, He and Dollár ("Focal Loss for Dense Object Detection") down-weight
    well-classified examples by the factor ``(1 - p_t)^gamma``; Tian et al. ("Learning
    discriminative representations for fine-grained diabetic retinopathy grading") use it with
    ``gamma = 2`` against the class imbalance of DR data sets. ``gamma = 0`` without ``alpha`` is
    plain cross-entropy.

    Shapes: ``logits`` (B, K) float, ``target`` (B,) int64 in ``[0, K)``. Returns the mean over
    the batch (a scalar; ``alpha`` scales the terms, it does not renormalise the mean).

    Args:
        gamma: focusing parameter, >= 0.
        alpha: optional per-class balancing weights ``alpha_k``, length K.
    """

    alpha: Tensor | None

    def __init__(self, gamma: float = 2.0, alpha: Sequence[float] | None = None) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        _optional_buffer(self, "alpha", alpha)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        one_hot = F.one_hot(target, logits.shape[1]).to(logits.dtype)
        return soft_focal_nll(logits, one_hot, self.gamma, self.alpha).mean()


def sord_targets(
    target: Tensor,
    num_classes: int,
    scale: float = 1.0,
    distance: Literal["squared", "absolute"] = "squared",
) -> Tensor:
    """Soft ordinal labels: ``q_j = softmax_j(-scale * phi(t, j))`` over ranks ``j = 0..K-1``.

    ``phi`` is the squared (default) or absolute rank difference. A larger ``scale`` sharpens the
    distribution towards one-hot. Shapes: ``target`` (B,) int64 -> (B, K) float, rows sum to 1.
    """
    ranks = torch.arange(num_classes, device=target.device, dtype=torch.float32)
    diff = target.to(torch.float32).unsqueeze(1) - ranks
    phi = diff.pow(2) if distance == "squared" else diff.abs()
    return torch.softmax(-scale * phi, dim=1)


@register_loss(
    "sord",
    paper="Díaz & Marathe, Soft Labels for Ordinal Regression (CVPR 2019); Tian et al.",
    description="cross-entropy (optionally focal) against soft ordinal labels softmax(-scale*phi)",
)
class SORDLoss(nn.Module):
    """Cross-entropy against soft ordinal labels (SORD), optionally with focal modulation.

    Díaz and Marathe ("Soft Labels for Ordinal Regression") replace the one-hot grade by a
    distribution that decays with the distance between ranks, so predicting a neighbouring grade
    costs less than a distant one. Tian et al. combine these soft labels with the focal loss;
    ``gamma > 0`` reproduces that (each class term is weighted by ``(1 - p_j)^gamma``).

    Shapes: ``logits`` (B, K) float, ``target`` (B,) int64 grade in ``[0, K)``. Returns the mean
    over the batch (a scalar).

    Args:
        scale: multiplies ``phi`` before the softmax; larger is closer to one-hot labels.
        distance: ``"squared"`` (the papers' choice) or ``"absolute"`` rank difference.
        gamma: focal focusing parameter; 0 gives plain SORD, Tian et al. use 2.
        alpha: optional per-class weights, length K.
    """

    alpha: Tensor | None

    def __init__(
        self,
        scale: float = 1.0,
        distance: Literal["squared", "absolute"] = "squared",
        gamma: float = 0.0,
        alpha: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if distance not in ("squared", "absolute"):
            raise ValueError(f"sord distance must be 'squared' or 'absolute', got {distance!r}")
        if scale <= 0 or gamma < 0:
            raise ValueError(f"sord needs scale > 0 and gamma >= 0, got {scale}, {gamma}")
        self.scale = scale
        self.distance = distance
        self.gamma = gamma
        _optional_buffer(self, "alpha", alpha)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        soft = sord_targets(target, logits.shape[1], self.scale, self.distance).to(logits.dtype)
        return soft_focal_nll(logits, soft, self.gamma, self.alpha).mean()


@register_loss(
    "regression",
    paper="Lin et al., ELLG (o_O detection net of Antony & Brüggemann)",
    description="MSE or smooth-L1 between the continuous DR score and the grade",
)
class RegressionLoss(nn.Module):
    """Regression loss on the continuous severity score (``ModelOutput.dr_score``).

    The ELLG paper (Lin et al., "Explainable lesion learning and generation for diabetic
    retinopathy detection") builds on the o_O Kaggle network, which regresses the grade as one
    number; the paper does not name the loss, so MSE is the default and smooth-L1 is offered.

    Shapes: ``score`` (B,) float, ``target`` (B,) float or int grade. Returns the batch mean.

    Args:
        kind: ``"mse"`` or ``"smooth_l1"``.
        beta: smooth-L1 transition point (ignored for MSE).
    """

    def __init__(self, kind: Literal["mse", "smooth_l1"] = "mse", beta: float = 1.0) -> None:
        super().__init__()
        if kind not in ("mse", "smooth_l1"):
            raise ValueError(f"regression kind must be 'mse' or 'smooth_l1', got {kind!r}")
        self.kind = kind
        self.beta = beta

    def forward(self, score: Tensor, target: Tensor) -> Tensor:
        target = target.to(score.dtype)
        if self.kind == "mse":
            return F.mse_loss(score, target)
        return F.smooth_l1_loss(score, target, beta=self.beta)
