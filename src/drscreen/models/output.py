"""The one output contract every drscreen model returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class ModelOutput:
    """What a model's forward returns; a field the model does not produce is ``None``.

    Attributes:
        dr_logits: (B, 5) ICDR grade logits.
        dr_score: (B,) continuous DR severity on the 0-4 scale, for regression heads
            (e.g. the ELLG paper's o_O network); round and clip to get a grade.
        dme_logits: (B, 3) IDRiD DME-risk logits.
        lesion_logits: (B, C, H, W) lesion-map logits, channels in the model's
            ``lesion_classes`` order (plus a leading background channel when the model's
            ``lesion_activation`` is ``"softmax"``). H, W equal the input size unless the model
            documents otherwise; consumers resize to the input before comparing with masks.
        side_outputs: deep-supervision logits, each (B, C, h, w) with the same channels as
            ``lesion_logits``.
        embedding: (B, D) image embedding (for metric losses such as SoftTriple).
    """

    dr_logits: Tensor | None = None
    dr_score: Tensor | None = None
    dme_logits: Tensor | None = None
    lesion_logits: Tensor | None = None
    side_outputs: tuple[Tensor, ...] | None = None
    embedding: Tensor | None = None


torch.utils._pytree.register_dataclass(ModelOutput)
