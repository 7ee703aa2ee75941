"""drscreen: explainable diabetic-retinopathy screening from colour fundus photographs.

The public API resolves on first use (PEP 562), so ``import drscreen`` (and ``drscreen --help``)
imports neither torch nor OpenCV::

    import drscreen

    packed = drscreen.load_pretrained()  # the shipped default model
    model = drscreen.create_model("default", pretrained=False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drscreen._lazy import lazy_exports
from drscreen._version import __version__

if TYPE_CHECKING:
    from drscreen.inference import Predictor
    from drscreen.models import create_model, list_models, load_pretrained
    from drscreen.report import screen
    from drscreen.screening import Screener


__all__ = ["Predictor", "Screener", "__version__", "create_model", "list_models", "load_pretrained", "screen"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "drscreen.models": ("create_model", "list_models", "load_pretrained"),
        "drscreen.inference": ("Predictor",),
        "drscreen.screening": ("Screener",),
        "drscreen.report": ("screen",),
    },
)
