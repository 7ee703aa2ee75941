"""The ``drscreen`` command line. Each domain package adds its own sub-command(s)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Modules that define ``add_parser(subparsers)``; each sub-parser sets ``func=`` to run it.
COMMAND_MODULES: tuple[str, ...] = (
    "drscreen.demo",
    "drscreen.synth.cli",
    "drscreen.data.cli",
    "drscreen.engine.cli",
    "drscreen.engine.experiments",
    "drscreen.models.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command."""
    from drscreen import __version__

    parser = argparse.ArgumentParser(prog="drscreen", description=__doc__)
    parser.add_argument("--version", action="version", version=f"drscreen {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
