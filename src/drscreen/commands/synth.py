"""``drscreen synth``: write a synthetic fundus data set and print its grade counts.

Light module (argparse only): the generator is imported when the command runs.
"""

from __future__ import annotations

import argparse

#: ``drscreen.synth.writers.LAYOUTS``, repeated here so that ``--help`` imports no generator.
LAYOUTS: tuple[str, ...] = ("idrid", "aptos", "folder")


def _grades(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--grades needs 5 comma-separated numbers, got {text!r}") from None
    if len(values) != 5 or min(values) < 0 or sum(values) <= 0:
        raise argparse.ArgumentTypeError(f"--grades needs 5 non-negative weights with a positive sum, got {text!r}")
    return values


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"--label-noise must be in [0, 1], got {text}")
    return value


def _size(text: str) -> int:
    value = int(text)
    if not 128 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"--size must be between 128 and 4096 px (256-2048 recommended), got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Registers ``synth`` on the top-level ``drscreen`` parser."""
    parser = subparsers.add_parser(
        "synth",
        help="write a synthetic fundus data set (images, lesion masks, DR/DME grades)",
        description=(
            "Render N seeded synthetic fundus photographs with per-class lesion masks and rule-based "
            "DR/DME grades, written in the official IDRiD or APTOS 2019 layout or a plain folder. "
            "SYNTHETIC DATA: not real patients."
        ),
    )
    parser.add_argument("--out", required=True, help="output folder (new or empty)")
    parser.add_argument("--n", type=int, required=True, help="number of images")
    parser.add_argument("--size", type=_size, default=512, help="image side in px (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="data-set seed (default 0)")
    parser.add_argument("--layout", choices=LAYOUTS, default="idrid", help="output layout (default idrid)")
    parser.add_argument("--grades", type=_grades, default=None, help="DR 0-4 weights, e.g. 0.4,0.2,0.2,0.1,0.1")
    parser.add_argument(
        "--label-noise", type=_probability, default=0.0, help="probability a recorded label moves one grade"
    )
    parser.add_argument(
        "--ben-graham", action="store_true",
        help="apply Ben Graham's local-mean filter to every image, the look of the Kaggle 'Gaussian filtered' "
        "APTOS derivative (masks unchanged)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from drscreen.synth.cli import run

    return run(args)
