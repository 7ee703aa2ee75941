"""Model and encoder registries, ``create_model`` / ``create_encoder`` and checkpoint loading."""

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


def load_checkpoint(module: nn.Module, path: str | Path, *, strict: bool = True) -> nn.Module:
    """Load weights from ``path`` into ``module`` (in place) and return it.

    Accepts a bare state dict or a dict holding one under ``"state_dict"``, ``"model"`` or
    ``"model_state"`` (the engine's checkpoints). A ``"module."`` prefix (DDP) is stripped.
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
