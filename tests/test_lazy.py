"""The lazy packages' public names: each resolves, and each is known to type checkers."""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest

LAZY_PACKAGES = ("drscreen", "drscreen.engine", "drscreen.experiments")


def _type_checking_names(package: str) -> set[str]:
    """Names the package's ``if TYPE_CHECKING:`` block re-exports (``from m import x as x``) to type checkers."""
    tree = ast.parse(inspect.getsource(importlib.import_module(package)))
    blocks = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    return {alias.name for block in blocks for node in block.body for alias in node.names if alias.asname == alias.name}


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)
    assert set(module.__all__) <= set(namespace)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_type_checkers_see_the_lazy_names(package: str) -> None:
    """The static imports for type checkers name exactly the lazy map's names, re-exported (``as``)."""
    module = importlib.import_module(package)
    assert _type_checking_names(package) == set(module.__all__) - {"__version__"}


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        importlib.import_module("drscreen.engine").nonexistent  # noqa: B018
