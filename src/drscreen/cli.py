"""The ``drscreen`` command line: a table of sub-commands whose parsers are light modules.

To add a sub-command: write ``drscreen/commands/<name>.py`` with ``add_parser(subparsers)``
(argparse only at module level; the parser's ``func`` imports the work when it runs) and list it
in ``COMMANDS``. ``tests/test_cli.py`` checks that ``--help`` imports neither torch nor OpenCV.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Sub-command -> the light module whose ``add_parser`` defines it (a module may define several).
COMMANDS: dict[str, str] = {
    "demo": "drscreen.commands.demo",
    "synth": "drscreen.commands.synth",
    "data": "drscreen.commands.data",
    "train": "drscreen.commands.engine",
    "evaluate": "drscreen.commands.engine",
    "experiment": "drscreen.commands.experiment",
    "model": "drscreen.commands.model",
    "export": "drscreen.commands.export",
    "screen": "drscreen.commands.screen",
    "serve": "drscreen.commands.serve",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command."""
    from drscreen import __version__

    parser = argparse.ArgumentParser(prog="drscreen", description="Explainable diabetic-retinopathy screening.")
    parser.add_argument("--version", action="version", version=f"drscreen {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
