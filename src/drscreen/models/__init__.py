"""Models: one registry, one output contract (``ModelOutput``), encoders, papers' architectures.

See ``docs/models.md``.
"""

from drscreen.models import architectures as _architectures  # noqa: E402,F401

# Importing the packages runs every module's @register_encoder / @register_model.
from drscreen.models import encoders as _encoders  # noqa: E402,F401
from drscreen.models.base import DRModel, Encoder, ExplainLayers
from drscreen.models.output import ModelOutput
from drscreen.models.pretrained import DEFAULT_MODEL_FILE, PretrainedModel, load_pretrained, pack_checkpoint
from drscreen.models.registry import (
    create_encoder,
    create_model,
    list_encoders,
    list_models,
    load_checkpoint,
    register_encoder,
    register_model,
)

__all__ = [
    "DEFAULT_MODEL_FILE",
    "DRModel",
    "Encoder",
    "ExplainLayers",
    "ModelOutput",
    "PretrainedModel",
    "create_encoder",
    "create_model",
    "list_encoders",
    "list_models",
    "load_checkpoint",
    "load_pretrained",
    "pack_checkpoint",
    "register_encoder",
    "register_model",
]
