"""``drscreen train`` and ``drscreen evaluate``: train from a YAML config; score a run or a packed model.

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
        help="score a model on labelled images: metrics.json, predictions.csv, confusion matrices",
        description="Score a model on labelled images through the inference core. Either a run's checkpoint on "
        "a part of its YAML config (drscreen evaluate CONFIG), or a packed model (default: the shipped one) on "
        "any dataset adapter (drscreen evaluate --dataset NAME --root FOLDER [--model PACKED]); 'folder' and 'csv' "
        "read plain folders and label tables. Unreadable images are listed in errors.csv and skipped.",
    )  # fmt: skip
    evaluate.add_argument("config", nargs="?", help="experiment YAML (configs/default.yaml, ...); omit with --dataset")
    add_override_argument(evaluate, "override a config value, e.g. -o data.preprocess.size=256 (repeatable)")
    evaluate.add_argument("--checkpoint", help="with CONFIG: checkpoint file (default: the run's best.pt, else last.pt)")
    evaluate.add_argument("--split", help="data part: train, val or test with CONFIG (default test); the adapter's split otherwise")
    evaluate.add_argument("--out", help="output folder (default with CONFIG: <run folder>/eval-<split>)")
    evaluate.add_argument("--model", help="packed model file (default: the shipped model); with --dataset")
    evaluate.add_argument("--dataset", help="dataset adapter name (drscreen data list), e.g. aptos2019, eyepacs, folder, csv")
    evaluate.add_argument("--root", help="the dataset's folder; with --dataset")
    evaluate.add_argument(
        "--dataset-option", action="append", default=[], metavar="KEY=VALUE",
        help="adapter option, e.g. --dataset-option grade_column=level (repeatable)",
    )  # fmt: skip
    evaluate.add_argument(
        "--inputs", choices=("photograph", "training"), default="photograph",
        help="with --dataset: prepare images as camera photographs (default) or like the model's training images",
    )  # fmt: skip
    evaluate.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals (default 1000)"
    )
    evaluate.add_argument(
        "--tta", choices=("none", "flips"), default="none",
        help="test-time augmentation: average the outputs over the four flips (default: none)",
    )  # fmt: skip
    evaluate.add_argument("--device", default="cpu", help="with --dataset: cpu, cuda, cuda:1 ... (default cpu)")
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
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if (args.config is None) == (args.dataset is None):
        raise SystemExit("drscreen evaluate: give either CONFIG (a run) or --dataset with --root (a packed model)")
    if args.config is not None:
        from drscreen.engine.evaluation import evaluate

        if args.split not in (None, "train", "val", "test"):
            raise SystemExit(f"drscreen evaluate: --split must be train, val or test with CONFIG, got {args.split!r}")
        split = args.split or "test"
        results = evaluate(
            _load(args), args.checkpoint, split=split, out_dir=args.out, n_bootstrap=args.bootstrap, tta=args.tta
        )
    else:
        if args.root is None or args.out is None:
            raise SystemExit("drscreen evaluate: --dataset needs --root and --out")
        from drscreen.data import DatasetError
        from drscreen.engine.evaluation import evaluate_packed

        options = dict(_key_value(item) for item in args.dataset_option)
        try:
            results = evaluate_packed(
                args.dataset, args.root, args.out, model=args.model, split=args.split, dataset_options=options,
                inputs=args.inputs, n_bootstrap=args.bootstrap, tta=args.tta, device=args.device,
            )  # fmt: skip
        except (DatasetError, KeyError, ValueError, FileNotFoundError) as error:
            raise SystemExit(f"drscreen evaluate: {error}") from None
        split = args.split or args.dataset
    summary = ", ".join(f"{key} {value:.4f}" for key, value in results["summary"].items() if isinstance(value, float))
    print(f"{split}: {summary}")
    return 0


def _key_value(item: str) -> tuple[str, object]:
    import yaml

    key, sep, value = item.partition("=")
    if not sep or not key:
        raise SystemExit(f"drscreen evaluate: --dataset-option needs KEY=VALUE, got {item!r}")
    return key.strip(), yaml.safe_load(value)
