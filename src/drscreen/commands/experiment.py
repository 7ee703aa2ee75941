"""``drscreen experiment``: reproduce a paper table (``drscreen.experiments``, docs/experiments.md).

Light module (argparse only): the experiments and the engine are imported when the command runs.
"""

from __future__ import annotations

import argparse

from drscreen.commands.engine import add_override_argument

#: ``drscreen.synth.data_root.DATASET_FOLDERS``, repeated here so that ``--help`` imports no generator.
DATASET_FOLDERS: dict[str, str] = {
    "idrid": "IDRiD: A. Segmentation/ and B. Disease Grading/",
    "eyepacs": "EyePACS (Kaggle DR Detection): trainLabels.csv, train/, retinopathy_solution.csv, test/",
    "aptos2019": "APTOS 2019: train.csv, train_images/",
    "deepdrid": "DeepDRiD: regular_fundus_images/",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``experiment`` sub-command."""
    parser = subparsers.add_parser(
        "experiment",
        help="reproduce a paper table: train and evaluate its runs, write the table",
        description="Expand each experiment file (configs/papers/) into its runs, train and evaluate "
        "them with the engine (finished runs are reused) and write the table as "
        "<out>/<group>/<name>.{json,md}. docs/experiments.md describes every paper config.",
    )
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="experiment file(s)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--data-root", help="folder holding the datasets in their official layouts: "
        + "; ".join(f"{name}/ ({what})" for name, what in DATASET_FOLDERS.items()) + " (default: data)",
    )  # fmt: skip
    source.add_argument(
        "--synthetic", type=int, metavar="N",
        help="use a synthetic data root of N images per dataset, written under --out if absent",
    )  # fmt: skip
    parser.add_argument(
        "--synthetic-size", type=int, default=128, metavar="PX", help="side of the synthetic images (default 128)"
    )
    parser.add_argument(
        "--tiny", action="store_true",
        help="CI smoke mode: tiny models, 64 px, 1 epoch, first seed, 2 folds (synthetic data unless --data-root)",
    )  # fmt: skip
    parser.add_argument("--out", help="output folder (default: runs/papers, with --tiny runs/papers-tiny)")
    add_override_argument(
        parser, "override an engine config value in every run, e.g. -o train.device=cuda:1 (repeatable)"
    )
    parser.add_argument(
        "--runs", nargs="+", metavar="NAME",
        help="only these runs (table rows) and the runs they start from; default: all",
    )  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their folders; train nothing")
    parser.add_argument("--report", metavar="PATH", help="also write every table together to PATH.json and PATH.md")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from drscreen.experiments.cli import run_command

    return run_command(args)
