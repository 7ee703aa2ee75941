"""``drscreen --help`` and ``drscreen COMMAND --help`` start without the heavy libraries, and the
root package exposes its public API lazily."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from drscreen.cli import COMMANDS

#: Modules that a help text must not import (seconds of start-up between them).
HEAVY = ("torch", "torchvision", "cv2", "numpy", "timm", "matplotlib")


def modules_after(code: str) -> set[str]:
    """The names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def help_modules(*argv: str) -> set[str]:
    code = (
        "import contextlib, io\nfrom drscreen.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main({list(argv)!r})"
    )
    return modules_after(code)


@pytest.mark.parametrize("argv", [("--help",), *((command, "--help") for command in COMMANDS)], ids=" ".join)
def test_help_imports_no_heavy_library(argv: tuple[str, ...]) -> None:
    loaded = help_modules(*argv)
    assert "drscreen.cli" in loaded  # the help really ran
    assert sorted(set(HEAVY) & loaded) == []


def test_every_command_of_the_table_is_defined() -> None:
    from drscreen.cli import build_parser

    subparsers = next(action for action in build_parser()._actions if action.dest == "command")
    assert set(subparsers.choices) == set(COMMANDS)


def test_root_package_resolves_its_api_lazily() -> None:
    assert sorted(set(HEAVY) & modules_after("import drscreen")) == []
    import drscreen
    from drscreen.models import create_model, list_models, load_pretrained

    assert (drscreen.create_model, drscreen.list_models, drscreen.load_pretrained) == (
        create_model, list_models, load_pretrained,
    )  # fmt: skip
    assert "Predictor" in dir(drscreen)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        drscreen.nope  # noqa: B018


def test_light_copies_of_constants_match_their_sources() -> None:
    from drscreen.commands import experiment, synth
    from drscreen.synth.data_root import DATASET_FOLDERS
    from drscreen.synth.writers import LAYOUTS

    assert synth.LAYOUTS == LAYOUTS
    assert experiment.DATASET_FOLDERS == DATASET_FOLDERS
