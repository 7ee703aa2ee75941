"""Backbones behind one encoder registry; each module registers its encoders."""

from drscreen.registry import import_submodules

import_submodules(__name__)
