"""``drscreen train`` and ``drscreen evaluate``: run the engine on a YAML experiment config.

Light module (argparse only): the engine is imported when a command runs.
"""

from __future__ import annotations

import argparse
import logging


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``train`` and ``evaluate`` sub-commands."""
    train = subparsers.add_parser(
        "train",
        help="train a model from a YAML config (also one rank of a torchrun job)",
        description="Train the configured model; the run folder gets config.yaml, log.csv, "
        "checkpoints/{last,best}.pt and metrics.json. Multi-GPU: torchrun --nproc_per_node N "
        "-m drscreen.cli train CONFIG (docs/training.md).",
    )
    _add_config_arguments(train)
    train.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoints/last.pt")
    train.set_defaults(func=_run_train)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint: metrics.json, predictions.csv, confusion matrices",
        description="Evaluate a checkpoint on one part of the configured data.",
    )
    _add_config_arguments(evaluate)
    evaluate.add_argument("--checkpoint", help="checkpoint file (default: the run's best.pt, else last.pt)")
    evaluate.add_argument("--split", choices=("train", "val", "test"), default="test", help="data part (default: test)")
    evaluate.add_argument("--out", help="output folder (default: <run folder>/eval-<split>)")
    evaluate.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals (default 1000)"
    )
    evaluate.add_argument(
        "--tta", choices=("none", "flips"), default="none",
        help="test-time augmentation: average the outputs over the four flips (default: none)",
    )  # fmt: skip
    evaluate.set_defaults(func=_run_evaluate)


def add_override_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """The repeatable ``-o KEY=VALUE`` engine-config override (``args.override``, a list)."""
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help=help_text)


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment YAML (configs/default.yaml, ...)")
    add_override_argument(parser, "override a config value, e.g. -o optim.lr=3e-4 -o run.name=try2 (repeatable)")


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from drscreen.engine.config import ConfigError, load_config

    try:
        return load_config(args.config, args.override)
    except ConfigError as error:
        raise SystemExit(f"drscreen {args.command}: {args.config}: {error}") from None


def _run_train(args: argparse.Namespace) -> int:
    from drscreen.engine.runs import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_dir = train(_load(args), resume=args.resume)
    print(f"run folder: {run_dir}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from drscreen.engine.evaluate import evaluate

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    results = evaluate(
        _load(args), args.checkpoint, split=args.split, out_dir=args.out, n_bootstrap=args.bootstrap, tta=args.tta
    )
    summary = ", ".join(f"{key} {value:.4f}" for key, value in results["summary"].items() if isinstance(value, float))
    print(f"{args.split}: {summary}")
    return 0
