"""``TaskTargets``: the one batch-target format every training loss reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

#: Grade value that marks a missing label.
MISSING = -1
#: Lesion-mask value of a pixel where the union of a group of channels is positive but the class
#: is unknown (a source that merged the lesion classes, ``drscreen.data.LESION_UNION``): every
#: channel of the group holds it there, and ``lesion_union`` scores their per-pixel maximum.
UNION_POSITIVE = 2.0


@dataclass
class TaskTargets:
    """Targets of one batch of B images; a sample may lack any of the labels.

    Attributes:
        dr: (B,) int64 ICDR grade 0-4, ``-1`` where missing.
        dme: (B,) int64 IDRiD DME grade 0-2, ``-1`` where missing (``None``: all missing).
        lesion_masks: (B, C, H, W) float in [0, 1], channels in the model's ``lesion_classes``
            order, or ``None`` when no sample of the batch has masks. Rows of samples without
            masks are ignored (fill them with zeros). Channels known only through their union
            hold 0 and ``UNION_POSITIVE`` (read by the ``lesion_union`` loss alone).
        has_lesion_masks: (B,) bool, False where the sample's masks are missing; the lesion term
            skips those samples (SUNet's partially annotated training set).

    Build it from per-sample values with ``TaskTargets.from_samples`` (``None`` = missing), or
    directly from tensors. After construction ``dme`` and ``has_lesion_masks`` are always
    tensors (``None`` is filled in). ``dr_score`` (the regression target) is derived from ``dr``.
    """

    dr: Tensor
    dme: Tensor | None = None
    lesion_masks: Tensor | None = None
    has_lesion_masks: Tensor | None = None

    def __post_init__(self) -> None:
        batch = self.dr.shape[0]
        if self.dme is None:
            self.dme = torch.full_like(self.dr, MISSING)
        if self.dr.dim() != 1 or self.dme.shape != (batch,):
            raise ValueError(
                f"dr and dme must both be (B,), got {tuple(self.dr.shape)}, {tuple(self.dme.shape)}"
            )
        if self.dr.is_floating_point() or self.dme.is_floating_point():
            raise TypeError("dr and dme must be integer tensors (int64), with -1 for missing")
        if self.lesion_masks is None:
            if self.has_lesion_masks is not None and bool(self.has_lesion_masks.any()):
                raise ValueError("has_lesion_masks is True for a sample but lesion_masks is None")
            self.has_lesion_masks = torch.zeros(batch, dtype=torch.bool, device=self.dr.device)
            return
        if self.lesion_masks.dim() != 4 or self.lesion_masks.shape[0] != batch:
            raise ValueError(
                f"lesion_masks must be (B,C,H,W) with B={batch}, "
                f"got {tuple(self.lesion_masks.shape)}"
            )
        if self.has_lesion_masks is None:
            self.has_lesion_masks = torch.ones(batch, dtype=torch.bool, device=self.dr.device)
        if self.has_lesion_masks.shape != (batch,) or self.has_lesion_masks.dtype != torch.bool:
            raise ValueError("has_lesion_masks must be a (B,) bool tensor")

    @classmethod
    def from_samples(
        cls,
        dr: Sequence[int | None],
        dme: Sequence[int | None] | None = None,
        lesion_masks: Sequence[Tensor | None] | None = None,
    ) -> TaskTargets:
        """Collate per-sample labels; ``None`` (or an omitted sequence) means missing.

        ``lesion_masks`` holds one (C, H, W) tensor or ``None`` per sample; missing ones become
        zeros with ``has_lesion_masks`` False.
        """
        batch = len(dr)

        def grades(values: Sequence[int | None] | None) -> Tensor:
            values = [None] * batch if values is None else values
            if len(values) != batch:
                raise ValueError(f"expected {batch} values, got {len(values)}")
            filled = [MISSING if v is None else int(v) for v in values]
            return torch.tensor(filled, dtype=torch.int64)

        masks = has = None
        if lesion_masks is not None and any(m is not None for m in lesion_masks):
            if len(lesion_masks) != batch:
                raise ValueError(f"expected {batch} lesion masks or None, got {len(lesion_masks)}")
            template = next(m for m in lesion_masks if m is not None)
            empty = torch.zeros_like(template, dtype=torch.float32)
            masks = torch.stack([empty if m is None else m.float() for m in lesion_masks])
            has = torch.tensor([m is not None for m in lesion_masks], dtype=torch.bool)
        return cls(grades(dr), grades(dme), masks, has)

    @property
    def batch_size(self) -> int:
        return self.dr.shape[0]

    @property
    def dr_score(self) -> Tensor:
        """(B,) float32 DR grade for regression heads (``-1.0`` where missing)."""
        return self.dr.to(torch.float32)

    def to(self, device: torch.device | str) -> TaskTargets:
        """A copy with every tensor on ``device``."""
        masks = None if self.lesion_masks is None else self.lesion_masks.to(device)
        has = None if self.has_lesion_masks is None else self.has_lesion_masks.to(device)
        return TaskTargets(self.dr.to(device), self.dme.to(device), masks, has)
