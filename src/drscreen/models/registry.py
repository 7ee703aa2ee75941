"""Model and encoder registries, ``create_model`` / ``create_encoder`` and checkpoint loading.

Registration metadata convention (read by the contract tests and ``benchmarks/model_table.py``)::

    @register_model(
        "sunet",
        paper="Authors: Title (venue)",      # the paper the default config reproduces; None
                                             # for drscreen's own models
        description="one line",
        tiny={"width": 4, ...},              # kwargs building a very small instance for CPU
                                             # wiring tests (pretrained=False, tiny widths)
        input_multiple=32,                   # optional: H and W must be multiples of this
        min_input_size=128,                  # optional: smallest H and W the model accepts
        lesion_reduction=1,                  # optional: lesion_logits are H/r x W/r (default 1)
        no_grad_params=("name.prefix",),     # optional: parameters that legitimately get no
                                             # gradient from a forward (keep empty if possible)
    )
    def sunet(**config) -> DRModel: ...

The factory (a function or the model class itself) called with no arguments builds the default
(paper) configuration. Every factory takes ``pretrained: bool = False`` (raising ``ValueError``
through ``encoders.common.require_no_pretrained`` where no weights ship offline); a model built
on a registered encoder takes its name as ``encoder=`` and that encoder's settings as
``encoder_kwargs: dict | None``, passed to ``create_encoder``. ``tiny`` configs use
``encoder="simple_cnn", encoder_kwargs={"widths": simple_cnn.TINY_WIDTHS}`` where they can.
``@register_encoder(name, pretrained_offline=bool)`` marks encoders with offline weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from drscreen.models.base import DRModel, Encoder
from drscreen.registry import Registry

MODELS: Registry[DRModel] = Registry("model")
ENCODERS: Registry[Encoder] = Registry("encoder")

register_model = MODELS.register
register_encoder = ENCODERS.register


def load_checkpoint(
    module: nn.Module, path: str | Path, *, strict: bool = True, allow_missing: bool = False
) -> nn.Module:
    """Load weights from ``path`` into ``module`` (in place) and return it.

    Accepts a bare state dict or a dict holding one under ``"state_dict"``, ``"model"`` or
    ``"model_state"`` (the engine's checkpoints). A ``"module."`` prefix (DDP) is stripped.
    ``allow_missing``: parameters the file lacks (heads added since) keep their initial values;
    weights the module has no place for are still an error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    state = payload
    if isinstance(payload, dict):
        for key in ("state_dict", "model", "model_state"):
            if key in payload and isinstance(payload[key], dict):
                state = payload[key]
                break
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if allow_missing:
        unexpected = sorted(set(state) - set(module.state_dict()))
        if unexpected:
            raise RuntimeError(f"{path}: weights without a place in {type(module).__name__}: {unexpected[:5]}")
        strict = False
    module.load_state_dict(state, strict=strict)
    return module


def create_model(name: str, *, checkpoint: str | Path | None = None, **config: Any) -> DRModel:
    """Build the registered model ``name`` with ``config``; load ``checkpoint`` weights if given."""
    model = MODELS.create(name, **config)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model


def create_encoder(name: str, *, checkpoint: str | Path | None = None, **config: Any) -> Encoder:
    """Build the registered encoder ``name``; ``checkpoint`` loads a user's weights into it."""
    encoder = ENCODERS.create(name, **config)
    if checkpoint is not None:
        load_checkpoint(encoder, checkpoint)
    return encoder


def list_models() -> list[str]:
    """Names of every registered model."""
    return MODELS.names()


def list_encoders() -> list[str]:
    """Names of every registered encoder."""
    return ENCODERS.names()
