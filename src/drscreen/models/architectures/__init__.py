"""The papers' architectures and drscreen's default model; each module registers its models."""

from drscreen.registry import import_submodules

import_submodules(__name__)
