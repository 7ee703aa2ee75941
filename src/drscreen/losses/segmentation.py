"""Pixel-level lesion losses: per-channel cross-entropy, Dice, focal-BCE + Dice, deep supervision.

All of them take ``(logits, masks, activation)``:

- ``logits`` (B, C', h, w) float: ``ModelOutput.lesion_logits`` or one of its ``side_outputs``.
  When (h, w) differs from the masks' (H, W) the logits are resized bilinearly to (H, W)
  (masks are never resized, so thin lesions such as microaneurysms are not lost).
- ``masks`` (B, C, H, W) float in [0, 1], channels in the model's ``lesion_classes`` order.
- ``activation``: the model's ``lesion_activation``. ``"sigmoid"``: C' = C independent maps.
  ``"softmax"``: C' = C + 1, channel 0 is background; its target is ``1 - max_c masks_c``.

Losses reduce over the batch and the pixels together and return a scalar.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drscreen.losses.registry import create_loss, register_loss
from drscreen.losses.targets import UNION_POSITIVE

LesionActivation = Literal["sigmoid", "softmax"]


def _binary_log_probs(
    logits: Tensor, masks: Tensor, activation: LesionActivation
) -> tuple[Tensor, Tensor, Tensor]:
    """``(log p, log(1 - p), target)`` per channel, all (B, C', H, W), logits resized to masks.

    For ``"softmax"`` the background target is prepended and ``log(1 - p_c)`` is computed as
    ``logsumexp`` of the other channels minus ``logsumexp`` of all, which stays finite and has a
    useful gradient even when ``p_c`` rounds to 1.
    """
    if activation not in ("sigmoid", "softmax"):
        raise ValueError(f"lesion activation must be 'sigmoid' or 'softmax', got {activation!r}")
    if masks.dim() != 4 or logits.dim() != 4:
        raise ValueError(
            f"expected (B,C,H,W) logits and masks, got {tuple(logits.shape)}, {tuple(masks.shape)}"
        )
    expected = masks.shape[1] + (activation == "softmax")
    if logits.shape[1] != expected or logits.shape[0] != masks.shape[0]:
        raise ValueError(
            f"{activation} lesion logits {tuple(logits.shape)} do not match masks "
            f"{tuple(masks.shape)}: expected {expected} channels"
        )
    if logits.shape[-2:] != masks.shape[-2:]:
        logits = F.interpolate(logits, size=masks.shape[-2:], mode="bilinear", align_corners=False)
    masks = masks.to(logits.dtype)
    if activation == "sigmoid":
        return F.logsigmoid(logits), F.logsigmoid(-logits), masks
    total = logits.logsumexp(dim=1, keepdim=True)
    others = [
        torch.cat([logits[:, :c], logits[:, c + 1 :]], dim=1).logsumexp(dim=1)
        for c in range(logits.shape[1])
    ]
    background = 1.0 - masks.amax(dim=1, keepdim=True)
    return logits - total, torch.stack(others, dim=1) - total, torch.cat([background, masks], dim=1)


def _lesion_channels(tensors: Sequence[Tensor], activation: LesionActivation) -> list[Tensor]:
    """Drop the softmax background channel so that region losses score lesions only."""
    return [t[:, 1:] if activation == "softmax" else t for t in tensors]


def soft_dice_coefficient(probs: Tensor, targets: Tensor, smooth: float = 1.0) -> Tensor:
    """Per-channel soft Dice ``(2 sum p y + s) / (sum p + sum y + s)``, sums over batch and pixels.

    Shapes: ``probs`` and ``targets`` (B, C, H, W) float -> (C,). With binary inputs and
    ``smooth = 0`` this is ``2 |A n B| / (|A| + |B|)``.
    """
    dims = (0, 2, 3)
    intersection = (probs * targets).sum(dims)
    return (2.0 * intersection + smooth) / (probs.sum(dims) + targets.sum(dims) + smooth)


def u2net_class_weights(masks: Tensor, power: float = 0.125) -> Tensor:
    """Class weights of Siebert & Rostalski's eq. 1 from a batch of masks.

    ``r_k = sum_n (1 - y_nk) / (sum_n y_nk + 1)`` over every pixel n of the batch, then
    ``w_k = r_k^power / sum_j r_j^power`` (power 1/8 in the paper). Rare lesions get larger
    weights; the weights sum to 1. Shapes: (B, C, H, W) -> (C,), no gradient.
    """
    masks = masks.detach()
    dims = (0, 2, 3)
    ratio = (1.0 - masks).sum(dims) / (masks.sum(dims) + 1.0)
    raw = ratio.pow(power)
    return raw / raw.sum()


@register_loss(
    "lesion_ce",
    paper="Tu et al., SUNet (eq. 4, lesion regulariser); Foo et al., MTUnet (eq. 1)",
    description="per-channel binary cross-entropy on sigmoid maps, or on softmax maps with "
    "the background channel",
)
class LesionCrossEntropy(nn.Module):
    """Pixel-wise binary cross-entropy for each lesion channel, adapted to the activation.

    ``"sigmoid"``: independent per-class BCE, the lesion regulariser ``L_R`` of Tu et al.
    ("SUNet: a lesion regularized model for simultaneous diabetic retinopathy and diabetic
    macular edema grading"). ``"softmax"``: the BCE of Foo et al. ("Multi-task learning for
    diabetic retinopathy grading and lesion segmentation", eq. 1) applied to every channel of
    the softmax map, background included. The paper sums over pixels and channels; this loss
    takes the mean over batch, channels and pixels so its size does not depend on the image size.

    Shapes: see the module docstring. Returns a scalar.
    """

    def forward(
        self, logits: Tensor, masks: Tensor, activation: LesionActivation = "sigmoid"
    ) -> Tensor:
        log_p, log_q, target = _binary_log_probs(logits, masks, activation)
        return -(target * log_p + (1.0 - target) * log_q).mean()


@register_loss(
    "dice",
    paper="Dice coefficient loss (MTUnet and U²-Net papers evaluate/train with Dice)",
    description="1 - soft Dice per lesion channel over the batch, mean over channels",
)
class DiceLoss(nn.Module):
    """Soft Dice loss ``1 - mean_c Dice_c`` over the lesion channels.

    Dice is computed per channel over the whole batch (see ``soft_dice_coefficient``); the
    softmax background channel is not scored. Shapes: see the module docstring. Returns a scalar.

    Args:
        smooth: added to numerator and denominator; keeps empty channels defined.
    """

    def __init__(self, smooth: float = 1.0) -> None:
        super().__init__()
        self.smooth = smooth

    def forward(
        self, logits: Tensor, masks: Tensor, activation: LesionActivation = "sigmoid"
    ) -> Tensor:
        log_p, _, target = _binary_log_probs(logits, masks, activation)
        log_p, target = _lesion_channels((log_p, target), activation)
        return 1.0 - soft_dice_coefficient(log_p.exp(), target, self.smooth).mean()


@register_loss(
    "focal_bce_dice",
    paper="Siebert & Rostalski, Multi-task lesion segmentation with a lightweight U²-Net (eq. 1)",
    description="(1/C) sum_k w_k (alpha fBCE_k + (1-alpha) DiceLoss_k), alpha=0.75, gamma=1, "
    "w_k from the batch",
)
class FocalBCEDiceLoss(nn.Module):
    """Class-weighted fusion of focal binary cross-entropy and Dice loss (U²-Net paper, eq. 1).

    Siebert and Rostalski ("Multi-task lesion segmentation with a lightweight U²-Net to enhance
    explainability of mobile screening systems for diabetic retinopathy") train on

        L = (1/C) sum_k [alpha * fBCE_k + (1 - alpha) * D_k] * w_k

    with, per channel k and over every pixel n of the batch,
    ``fBCE_k = mean_n -[y (1-p)^gamma log p + (1-y) p^gamma log(1-p)]``,
    ``D_k = 1 - Dice_k`` (soft Dice, ``smooth`` added) and ``w_k`` from ``u2net_class_weights``
    (recomputed from each batch's targets, normalised to sum 1). The ``1/C`` is kept as written
    even though the weights already sum to 1. Softmax maps are scored on the lesion channels only.

    Shapes: see the module docstring. Returns a scalar.

    Args:
        alpha: weight of the focal BCE against the Dice term (0.75 in the paper).
        gamma: focusing parameter of the focal BCE (1.0 in the paper).
        smooth: Dice smoothing constant (the paper does not state one).
        weight_power: exponent applied to the class ratio (1/8 in the paper).
    """

    def __init__(
        self,
        alpha: float = 0.75,
        gamma: float = 1.0,
        smooth: float = 1.0,
        weight_power: float = 0.125,
    ) -> None:
        super().__init__()
        self.alpha, self.gamma, self.smooth, self.weight_power = alpha, gamma, smooth, weight_power

    def forward(
        self, logits: Tensor, masks: Tensor, activation: LesionActivation = "sigmoid"
    ) -> Tensor:
        log_p, log_q, target = _lesion_channels(
            _binary_log_probs(logits, masks, activation), activation
        )
        p = log_p.exp()
        positive = target * (1.0 - p).pow(self.gamma) * log_p
        negative = (1.0 - target) * p.pow(self.gamma) * log_q
        focal_bce = -(positive + negative)
        per_class = self.alpha * focal_bce.mean(dim=(0, 2, 3)) + (1.0 - self.alpha) * (
            1.0 - soft_dice_coefficient(p, target, self.smooth)
        )
        weights = u2net_class_weights(target, self.weight_power)
        return (per_class * weights).sum() / per_class.numel()


@register_loss(
    "lesion_union",
    paper="drscreen: per-class sigmoid maps trained with sources that annotate only the union "
    "of the lesion classes (the idrid-seg-subset folder)",
    description="a lesion loss on the known channels, and on the per-pixel maximum of the "
    "channels known only through their union",
)
class UnionLesionLoss(nn.Module):
    """A lesion loss that also learns from masks that merged several classes into one.

    Masks hold 0 / 1 per known channel; a sample whose classes are known only through their
    union holds 0 and ``UNION_POSITIVE`` in every channel of that group (``drscreen.engine``
    writes them with ``data.lesion_union``). Per sample, the channels holding ``UNION_POSITIVE``
    somewhere form its group. Samples without one are scored by ``base`` as they are. For the
    others the group's channels are replaced by a single channel, the per-pixel maximum of their
    logits (the sigmoid is monotone, so this is the maximum of the probabilities and the gradient
    reaches only the arg-max channel of each pixel), whose target is the union; their other
    channels (the optic disc, say) keep their own masks and ``base`` scores the
    (B_u, 1 + C - G, H, W) result. The two parts are averaged weighted by their sample counts.
    All union samples of a batch must share one group.

    Shapes: see the module docstring (sigmoid maps only). Returns a scalar.

    Args:
        base: a registered lesion-loss name or a loss module (``focal_bce_dice`` by default).
        base_config: keyword arguments for ``create_loss(base, ...)`` when ``base`` is a name.
    """

    def __init__(self, base: str | nn.Module = "focal_bce_dice", base_config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.base = create_loss(base, **(base_config or {})) if isinstance(base, str) else base

    def forward(
        self, logits: Tensor, masks: Tensor, activation: LesionActivation = "sigmoid"
    ) -> Tensor:
        if activation != "sigmoid":
            raise ValueError("lesion_union scores sigmoid maps only")
        if logits.dim() != 4 or masks.dim() != 4 or logits.shape[:2] != masks.shape[:2]:
            raise ValueError(
                f"expected (B,C,H,W) logits and masks of as many channels, got "
                f"{tuple(logits.shape)}, {tuple(masks.shape)}"
            )
        if logits.shape[-2:] != masks.shape[-2:]:
            logits = F.interpolate(logits, size=masks.shape[-2:], mode="bilinear", align_corners=False)
        grouped = (masks == UNION_POSITIVE).flatten(2).any(dim=2)  # (B, C)
        union_rows = grouped.any(dim=1)
        if not bool(union_rows.any()):
            return self.base(logits, masks, activation)
        group = grouped[union_rows]
        if not bool((group == group[0]).all()):
            raise ValueError("lesion_union: the union samples of a batch must share one channel group")
        group = group[0]
        union_logits, union_masks = logits[union_rows], masks[union_rows]
        merged_logits = torch.cat(
            [union_logits[:, group].amax(dim=1, keepdim=True), union_logits[:, ~group]], dim=1
        )
        union_target = (union_masks[:, group] == UNION_POSITIVE).any(dim=1, keepdim=True)
        merged_masks = torch.cat([union_target.to(masks.dtype), union_masks[:, ~group]], dim=1)
        loss = self.base(merged_logits, merged_masks, activation) * union_rows.sum()
        if not bool(union_rows.all()):
            known = ~union_rows
            loss = loss + self.base(logits[known], masks[known], activation) * known.sum()
        return loss / logits.shape[0]


@register_loss(
    "deep_supervision",
    paper="Qin et al., U²-Net (deep supervision); Siebert & Rostalski (equal side-output weights)",
    description="applies a lesion loss to the main output and every side output with equal weights",
)
class DeepSupervision(nn.Module):
    """Equal-weight deep supervision around a lesion loss.

    The base loss is applied to the main ``lesion_logits`` and to every ``side_outputs`` map;
    each map's logits are upsampled bilinearly to the masks' size by the base loss (masks keep
    their resolution). The per-output losses are averaged (``reduction="mean"``, the default,
    so the scale matches an undecorated loss) or summed (``"sum"``, as in Qin et al.'s U²-Net).

    Shapes: ``outputs`` one (B, C', h, w) tensor or a sequence of them (main first), ``masks``
    (B, C, H, W). Returns a scalar.

    Args:
        base: a registered lesion-loss name or a loss module.
        base_config: keyword arguments for ``create_loss(base, ...)`` when ``base`` is a name.
        reduction: ``"mean"`` or ``"sum"`` over the outputs.
    """

    def __init__(
        self,
        base: str | nn.Module = "focal_bce_dice",
        base_config: dict[str, Any] | None = None,
        reduction: Literal["mean", "sum"] = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"deep_supervision reduction must be 'mean' or 'sum': {reduction!r}")
        self.base = create_loss(base, **(base_config or {})) if isinstance(base, str) else base
        self.reduction = reduction

    def forward(
        self,
        outputs: Tensor | Sequence[Tensor],
        masks: Tensor,
        activation: LesionActivation = "sigmoid",
    ) -> Tensor:
        maps = [outputs] if isinstance(outputs, Tensor) else list(outputs)
        if not maps:
            raise ValueError("deep_supervision needs at least one output")
        total = torch.stack([self.base(m, masks, activation) for m in maps]).sum()
        return total / len(maps) if self.reduction == "mean" else total
