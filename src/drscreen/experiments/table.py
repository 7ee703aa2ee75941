"""An experiment's table from its runs' evaluations: cells (mean ± SD over replicates), markdown, report."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drscreen.engine.recorder import read_log
from drscreen.engine.runs import write_json
from drscreen.experiments.spec import Experiment, PlannedRun


def lookup(results: Mapping[str, Any], metric: str) -> float | None:
    """``metric`` from one evaluation's results: a summary name, else a dotted path; ``None`` when
    the run does not report it (a DR-only model has no DME accuracy)."""
    summary = results.get("summary", {})
    if metric in summary:
        value = summary[metric]
    else:
        value = results
        for part in metric.split("."):
            if not isinstance(value, Mapping):
                return None
            value = value.get(part, value.get(int(part)) if part.isdigit() else None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def tabulate(experiment: Experiment, records: Sequence[tuple[PlannedRun, dict[str, Any]]]) -> dict[str, Any]:
    """The experiment's table from ``(run, evaluation results per set)`` records.

    Rows keep the order of the runs. A cell is computed per replicate (seed, fold): the mean of
    the column's metrics over the row's runs that report them (and match ``where``); the cell
    holds the mean over replicates, the sample standard deviation and the replicate count.
    """
    spec = experiment.spec
    first_set = next(iter(spec.evaluate))
    rows: dict[str, dict[tuple[int, int | None], list[tuple[PlannedRun, dict[str, Any]]]]] = {}
    for run, results in records:
        rows.setdefault(run.row, {}).setdefault((run.seed, run.fold), []).append((run, results))
    table_rows = []
    for label, replicates in rows.items():
        cells: dict[str, dict[str, float | int | None] | None] = {}
        for column in spec.columns:
            metrics = [column.metric] if isinstance(column.metric, str) else column.metric
            values = []
            for members in replicates.values():
                per_metric = []
                for metric in metrics:
                    found = [
                        lookup(results[column.eval_set or first_set], metric)
                        for run, results in members
                        if all(run.tags.get(axis) == str(value) for axis, value in column.where.items())
                    ]
                    found = [v for v in found if v is not None]
                    if found:
                        per_metric.append(float(np.mean(found)))
                if per_metric:
                    values.append(float(np.mean(per_metric)))
            cells[column.label] = _summarise(values)
        table_rows.append({"label": label, "cells": cells})
    return {
        "experiment": spec.name,
        "title": spec.title,
        "paper": spec.paper,
        "config": str(experiment.path),
        "tiny": experiment.tiny,
        "synthetic": experiment.synthetic,
        "data_root": experiment.data_root,
        "replicates": _replicate_note(experiment),
        "columns": [column.label for column in spec.columns],
        "rows": table_rows,
        "runs": [
            {
                "name": run.name, "row": run.row, "tags": run.tags, "seed": run.seed, "fold": run.fold,
                "dir": str(run.run_dir), "train_seconds": training_seconds(run.run_dir),
                "metrics": {name: result["summary"] for name, result in results.items()},
            }
            for run, results in records
        ],
    }  # fmt: skip


def training_seconds(run_dir: Path) -> float:
    """Seconds the run spent training and validating, from its ``log.csv`` (0 without one)."""
    return round(sum(float(row["seconds"]) for row in read_log(run_dir)), 1)


def _summarise(values: Sequence[float]) -> dict[str, float | int | None] | None:
    if not values:
        return None
    finite = [v for v in values if math.isfinite(v)]
    mean = float(np.mean(finite)) if finite else math.nan
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return {"mean": mean, "std": std, "n": len(finite)}


def _replicate_note(experiment: Experiment) -> str:
    seeds = len({run.seed for run in experiment.runs})
    folds = len({run.fold for run in experiment.runs if run.fold is not None})
    parts = [f"{seeds} seed{'s' if seeds > 1 else ''}"] + ([f"{folds} folds"] if folds else [])
    if seeds == 1 and not folds:
        return "one training per row"
    return "mean ± sample standard deviation over " + " x ".join(parts)


def format_cell(cell: Mapping[str, Any] | None) -> str:
    """``0.6116``, ``0.6116 ± 0.0100`` (several replicates), ``NaN`` (undefined) or ``–`` (none)."""
    if cell is None:
        return "–"
    mean = cell["mean"]
    if mean is None or not math.isfinite(mean):
        return "NaN"
    return f"{mean:.4f}" if cell["std"] is None else f"{mean:.4f} ± {cell['std']:.4f}"


def table_markdown(table: Mapping[str, Any], heading: str = "###") -> str:
    """The table as markdown: a heading, the paper, the replicates and the rows; tables made on
    synthetic data or at tiny scale say so first."""
    columns = table["columns"]
    warnings = [
        "SYNTHETIC data (drscreen.synth), not real patients" if table["synthetic"] else "",
        "tiny models and settings (--tiny)" if table["tiny"] else "",
    ]
    warning = "; ".join(w for w in warnings if w)
    lines = [
        f"{heading} {table['title']}",
        "",
        *([f"**{warning}: not comparable to the paper's numbers.**", ""] if warning else []),
        f"{table['paper']}. {table['replicates'].capitalize()}.",
        "",
        "| | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    lines += [
        f"| {row['label']} | " + " | ".join(format_cell(row["cells"][c]) for c in columns) + " |"
        for row in table["rows"]
    ]
    return "\n".join(lines) + "\n"


def write_report(tables: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Every table in one ``PATH.json`` and ``PATH.md``, each with the command that remakes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    environment = {"python": sys.version.split()[0], "torch": torch.__version__, "cpus": os.cpu_count()}
    write_json({"environment": environment, "tables": list(tables)}, path.with_suffix(".json"))
    runs = {run["dir"]: run["train_seconds"] for table in tables for run in table["runs"]}
    lines = [
        "# Paper experiments: results",
        "",
        f"Written by `drscreen experiment ... --report {path}`: Python {environment['python']}, torch "
        f"{environment['torch']}, {environment['cpus']} CPUs. {len(runs)} reported runs, "
        f"{sum(runs.values()) / 60:.1f} min of training and validation in all (their log.csv).",
        "",
    ]
    if any(table["synthetic"] or table["tiny"] for table in tables):
        lines += [
            "> **Synthetic data and/or tiny models.** These numbers show that every experiment runs end to end;",
            "> they say nothing about the methods and are **not comparable to the papers' results**.",
            "",
        ]
    for table in tables:
        count, train = len(table["runs"]), sum(run["train_seconds"] for run in table["runs"])
        lines += [
            table_markdown(table, "##"),
            f"{count} run{'' if count == 1 else 's'}, {train:.0f} s of training and validation.",
            "",
            "```bash",
            str(table["command"]),
            "```",
            "",
        ]
    path.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
