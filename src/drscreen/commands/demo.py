"""``drscreen demo``: the main job on bundled input, needing no data and no network.

Writes sample photographs (scikit-image's ``retina``, synthetic photographs with known lesions of
two patients, one damaged file) into ``<out>/inputs`` and screens them with the shipped model
into ``<out>/screening``: per-image JSON, CSV tables, overlays and ``report.html`` (docs/usage.md).
The exit code is 1 when anything but the deliberately damaged file fails.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``drscreen demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="screen the bundled sample photographs into a report (the main job; no data needed)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: runs/demo)")
    parser.add_argument("--size", type=int, default=768, help="side of the synthetic photographs, px (default: 768)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from drscreen.demo import run

    return run(args)
