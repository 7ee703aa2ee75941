"""Inference backends: what runs the network on a batch of prepared inputs.

A backend takes (B, 3, S, S) float32 normalised inputs and returns the model contract's
``ModelOutput``; everything before (preprocessing) and after (probabilities, decoding, the
referable rule) is the ``Predictor``'s, so that another runtime (ONNX Runtime) only has to
implement ``__call__`` to give identical predictions.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

from drscreen.inference.probabilities import amp_dtype_for, autocast_context
from drscreen.models import ModelOutput


class InferenceBackend(Protocol):
    """Runs the network: (B, 3, S, S) float32 -> ``ModelOutput`` (tensors on any device)."""

    #: Lesion codes of the ``lesion_logits`` channels, in order.
    lesion_classes: tuple[str, ...]
    #: ``"sigmoid"`` or ``"softmax"`` (a leading background channel).
    lesion_activation: str
    #: Where the inputs are sent.
    device: torch.device

    def __call__(self, images: Tensor) -> ModelOutput: ...


class TorchBackend:
    """A PyTorch ``DRModel`` in eval mode, without gradients, optionally under autocast.

    Args:
        model: the network (any ``drscreen.models`` model); moved to ``device``.
        device: where to run.
        amp: mixed precision, one of ``drscreen.inference.AMP_SETTINGS`` (``"fp32"`` is exact).
        channels_last: NHWC memory format (faster convolutions on recent CPUs and GPUs).
    """

    def __init__(
        self, model: nn.Module, *, device: str | torch.device = "cpu", amp: str = "fp32", channels_last: bool = False
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.amp_dtype = amp_dtype_for(amp, self.device)
        self.lesion_classes: tuple[str, ...] = tuple(getattr(model, "lesion_classes", ()))
        self.lesion_activation: str = getattr(model, "lesion_activation", "sigmoid")

    @torch.no_grad()
    def __call__(self, images: Tensor) -> ModelOutput:
        """One eval-mode forward of ``images`` (B, 3, S, S); the model's train/eval mode is restored."""
        was_training = self.model.training
        self.model.eval()
        try:
            with autocast_context(self.device, self.amp_dtype):
                return self.model(images.to(self.device, non_blocking=True))
        finally:
            self.model.train(was_training)
