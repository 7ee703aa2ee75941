"""What ``drscreen experiment`` does once its arguments are parsed (``drscreen.commands.experiment``)."""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path

from drscreen.engine.config import ConfigError
from drscreen.experiments.plan import load_experiment, select_runs
from drscreen.experiments.run import run_experiment
from drscreen.experiments.spec import ExperimentError
from drscreen.experiments.table import table_markdown, write_report
from drscreen.synth.data_root import write_synthetic_data_root


def run_command(args: argparse.Namespace) -> int:
    """Run ``drscreen experiment`` (parser: ``drscreen.commands.experiment``); returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out or ("runs/papers-tiny" if args.tiny else "runs/papers"))
    synthetic = args.synthetic if args.synthetic is not None else (10 if args.tiny and not args.data_root else None)
    if synthetic is not None:
        data_root: str | Path = out / f"synthetic-{synthetic}x{args.synthetic_size}"
        if not args.dry_run:
            write_synthetic_data_root(data_root, synthetic, args.synthetic_size)
    else:
        data_root = args.data_root or "data"
    shared = _shared_flags(args)
    tables = []
    for config in args.configs:
        try:
            experiment = load_experiment(config, data_root=data_root, tiny=args.tiny, out_dir=out,
                                         overrides=args.override)  # fmt: skip
            if args.runs:
                experiment = select_runs(experiment, args.runs)
            if args.dry_run:
                for run in experiment.runs:
                    init = f" (starts from {run.init})" if run.init else ""
                    print(f"{experiment.spec.name}: {run.row}: {run.run_dir}{init}")
                continue
            table = run_experiment(experiment, shlex.join(["drscreen", "experiment", config, *shared]))
        except (ExperimentError, ConfigError) as error:
            raise SystemExit(f"drscreen experiment: {error}") from None
        print(table_markdown(table))
        tables.append(table)
    if args.report and tables:
        write_report(tables, Path(args.report))
    return 0


def _shared_flags(args: argparse.Namespace) -> list[str]:
    """The command-line flags that apply to every config, to rebuild a per-table command."""
    flags: list[str] = []
    if args.data_root:
        flags += ["--data-root", args.data_root]
    if args.synthetic is not None:
        flags += ["--synthetic", str(args.synthetic), "--synthetic-size", str(args.synthetic_size)]
    if args.tiny:
        flags.append("--tiny")
    if args.out:
        flags += ["--out", args.out]
    for override in args.override:
        flags += ["-o", override]
    if args.runs:
        flags += ["--runs", *args.runs]
    return flags
