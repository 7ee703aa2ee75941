"""PEP 562 lazy package attributes: a public name imports its module only when first used."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``; ``exports`` maps a module to the names it provides.

    ``__all__`` is the map's names, sorted, so the map is the one list of the package's lazy API
    (a package adds the names it defines itself, e.g. ``__version__``). A resolved name is cached
    in the package's namespace, so each import happens once.
    """
    origin = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in origin:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(origin[name]), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(origin))

    return __getattr__, __dir__, sorted(origin)
