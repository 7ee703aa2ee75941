"""``drscreen data``: list the adapters, summarise a dataset, write a patient-level split.

Light module (argparse only): the adapters are imported when a command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``drscreen data {list,summary,split}``."""
    parser = subparsers.add_parser(
        "data",
        help="inspect datasets and make patient-level splits",
        description="List the dataset adapters, summarise a dataset, write a patient-level split.",
    )
    actions = parser.add_subparsers(dest="data_action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="the dataset adapters and their splits")
    listing.set_defaults(func=_run_list)

    summary = actions.add_parser("summary", help="counts per split, grade, eye and lesion mask")
    _add_dataset_arguments(summary)
    summary.add_argument(
        "--check-images", action="store_true", help="also read every image with drscreen.io; report failures"
    )
    summary.set_defaults(func=_run_summary)

    split = actions.add_parser("split", help="patient-level stratified split, written as CSV")
    _add_dataset_arguments(split)
    split.add_argument(
        "--fractions", type=float, nargs="+", default=[0.8, 0.1, 0.1], metavar="F",
        help="train val [test] fractions of patients (default: 0.8 0.1 0.1)",
    )
    split.add_argument("--seed", type=int, default=0, help="shuffling seed (default: 0)")
    split.add_argument(
        "--no-stratify", dest="stratify", action="store_false", help="do not stratify by worst grade"
    )
    split.add_argument("--out", type=Path, required=True, help="CSV to write (one row per image)")
    split.set_defaults(func=_run_split)


def _add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, metavar="NAME", help="adapter name (drscreen data list)")
    parser.add_argument("--root", type=Path, required=True, help="dataset folder")
    parser.add_argument("--split", default=None, help="load only this split (default: all present)")
    parser.add_argument(
        "-o", "--option", action="append", default=[], metavar="KEY=VALUE",
        help="adapter option, repeatable, e.g. -o skip_missing=true -o labels_csv=labels.csv",
    )


def _run_list(args: argparse.Namespace) -> int:
    from drscreen.data.cli import run_list

    return run_list(args)


def _run_summary(args: argparse.Namespace) -> int:
    from drscreen.data.cli import run_summary

    return run_summary(args)


def _run_split(args: argparse.Namespace) -> int:
    from drscreen.data.cli import run_split

    return run_split(args)
