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
from drscreen._version import __version__ as __version__

if TYPE_CHECKING:
    from drscreen.inference import Predictor as Predictor
    from drscreen.models import create_model as create_model
    from drscreen.models import list_models as list_models
    from drscreen.models import load_pretrained as load_pretrained
    from drscreen.report import screen as screen
    from drscreen.screening import Screener as Screener

__getattr__, __dir__, _lazy_names = lazy_exports(
    __name__,
    {
        "drscreen.models": ("create_model", "list_models", "load_pretrained"),
        "drscreen.inference": ("Predictor",),
        "drscreen.screening": ("Screener",),
        "drscreen.report": ("screen",),
    },
)
__all__ = ["__version__", *_lazy_names]
