"""Paper experiments: one YAML file per table, expanded into engine runs whose metrics make the table.

An experiment file (``configs/papers/``, docs/experiments.md) has three top-level keys:

* ``extends``: a file (relative to this one) whose mapping this one is merged onto; mappings
  merge key by key, anything else (lists included) is replaced. Chains are allowed.
* ``config``: the engine config every run starts from (docs/training.md; strict schema).
* ``experiment``: how the table is made (``ExperimentSpec``): the ``runs`` (table rows; each a
  set of dotted-key overrides exactly like ``drscreen train -o``), an optional ``grid`` of
  override axes crossed with every run, ``seeds`` (repeated trainings), ``folds`` (patient-level
  k-fold cross-validation through the engine's ``data.folds``), the ``evaluate`` sets and the
  table ``columns``, and the ``tiny`` settings of CI smoke runs.

``${data_root}`` in any string is replaced by the data root (``--data-root``), the folder that
holds each dataset in its official layout under a fixed name (``DATASET_FOLDERS``).

Each run trains with ``drscreen.engine.train`` into ``<out>/<group>/<run>/seed<s>[-fold<k>]``
and is scored with ``drscreen.engine.evaluate`` on every evaluation set. A run folder whose
``metrics.json`` exists is not trained again (experiments resume, and tables of one paper share
identical runs); a folder holding another config is an error. Each cell of the table is the
mean over the replicates (seeds x folds) with the sample standard deviation; the table is
written as ``<out>/<group>/<name>.{json,md}``, and each run's validation curves (its monitored
metric and, where there is one, the referable AUC, from ``log.csv``) as ``<name>_curves.png``.

``drscreen experiment CONFIG [CONFIG ...] [--data-root DIR | --synthetic N] [--tiny]`` runs
experiments from the command line; ``drscreen.synth.data_root`` writes the synthetic stand-in
for the data root that the tests and the synthetic benchmark use.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import math
import os
import re
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import yaml

from drscreen.engine.cli import add_override_argument
from drscreen.engine.config import (
    ConfigError,
    ExperimentConfig,
    apply_override,
    build_dataclass,
    config_from_dict,
    set_value,
)
from drscreen.engine.evaluate import default_checkpoint, evaluate
from drscreen.engine.inference import TTA_FLIPS
from drscreen.engine.recorder import read_log
from drscreen.engine.schedules import train, write_json
from drscreen.metrics import GRADE_DECODINGS, plot_curves
from drscreen.synth.data_root import DATASET_FOLDERS, SYNTHETIC_MARKER, write_synthetic_data_root

log = logging.getLogger(__name__)

#: Parts of the engine config an evaluation set may name instead of listing datasets.
SPLITS = ("train", "val", "test")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class ExperimentError(ValueError):
    """An invalid experiment file, or a run folder that holds another experiment's run."""


# ------------------------------------------------------------------------------------ the schema
@dataclass(frozen=True)
class RunSpec:
    """One configuration of the table (before the grid, seeds and folds multiply it).

    ``name``: run folder name; ``row``: its table row label (default ``name``); runs with the
    same label share a row, e.g. Siebert & Rostalski's four single-lesion networks. ``set``:
    dotted-key overrides of the engine config (``-o`` semantics, values already YAML).
    ``tiny_set``: more overrides in tiny mode. ``init``: another run of the experiment (same seed
    and fold) whose final weights start this one (``model.checkpoint``). ``report: false`` trains
    the run (for ``init``) but leaves it out of the table.
    """

    name: str
    row: str | None = None
    set: dict[str, Any] = field(default_factory=dict)
    tiny_set: dict[str, Any] = field(default_factory=dict)
    init: str | None = None
    report: bool = True


@dataclass(frozen=True)
class Column:
    """A table column: ``metric`` (or the mean of several) read from the ``eval_set`` evaluation
    set (default: the first).

    A metric is a flat name of the evaluation summary (``dr_qwk``, ``joint_accuracy``,
    ``lesion_MA_aupr``; docs/training.md) or a dotted path into the full evaluation results
    (``dr.auc_per_grade.2``). ``where`` restricts the column to runs with these grid values
    (``{dataset: IDRiD}``); a grid axis that no column names spreads over the rows instead.
    """

    label: str
    metric: str | list[str]
    eval_set: str | None = None
    where: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TinySettings:
    """CI smoke mode: ``set`` overrides every run (tiny model, 64 px, 1 epoch, CPU), only the
    first seed runs, and cross-validation uses ``folds`` folds."""

    set: dict[str, Any] = field(default_factory=dict)
    folds: int = 2


@dataclass(frozen=True)
class ExperimentSpec:
    """The ``experiment`` section of an experiment file (module docstring)."""

    name: str
    title: str
    paper: str
    columns: list[Column]
    group: str | None = None
    runs: list[RunSpec] = field(default_factory=lambda: [RunSpec("run")])
    grid: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    folds: int | None = None
    evaluate: dict[str, Any] = field(default_factory=lambda: {"test": "test"})
    tiny: TinySettings = field(default_factory=TinySettings)


@dataclass(frozen=True)
class PlannedRun:
    """One engine run: ``raw`` is its engine config as a plain mapping (``init`` still unset)."""

    name: str
    row: str
    tags: dict[str, str]
    seed: int
    fold: int | None
    raw: dict[str, Any]
    init: str | None
    report: bool

    @property
    def run_dir(self) -> Path:
        return Path(self.raw["run"]["dir"]) / self.raw["run"]["name"]


@dataclass(frozen=True)
class Experiment:
    """A loaded experiment file: its spec, its runs in training order, where results go."""

    path: Path
    spec: ExperimentSpec
    runs: list[PlannedRun]
    out_dir: Path
    tiny: bool
    data_root: str

    @property
    def group_dir(self) -> Path:
        return self.out_dir / (self.spec.group or self.spec.name)

    @property
    def synthetic(self) -> bool:
        """Whether the data root is one ``write_synthetic_data_root`` wrote."""
        return (Path(self.data_root) / SYNTHETIC_MARKER).is_file()


# ------------------------------------------------------------------------------------- loading
def read_experiment_file(path: str | Path) -> dict[str, Any]:
    """The mapping of the experiment file at ``path`` with its ``extends`` chain merged in."""
    path = Path(path)
    chain: list[Path] = []
    merged: dict[str, Any] = {}
    while True:
        if path.resolve() in chain:
            raise ExperimentError(f"{path}: 'extends' loops back to itself")
        chain.append(path.resolve())
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ExperimentError(f"{path}: cannot read: {error}") from None
        if not isinstance(raw, dict) or set(raw) - {"extends", "config", "experiment"}:
            raise ExperimentError(f"{path}: the top level may hold only extends, config and experiment")
        parent = raw.pop("extends", None)
        merged = deep_merge(raw, merged)
        if parent is None:
            return merged
        path = path.parent / parent


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` merged onto ``base``: mappings key by key, anything else replaced by ``top``'s."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def substitute(value: Any, variables: Mapping[str, str]) -> Any:
    """``value`` with every ``${name}`` in its strings replaced from ``variables``."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables:
                raise ExperimentError(f"unknown variable ${{{name}}} in {value!r}; known: {', '.join(variables)}")
            return variables[name]

        return _VARIABLE.sub(replace, value)
    if isinstance(value, dict):
        return {key: substitute(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    return value


def load_experiment(
    path: str | Path,
    *,
    data_root: str | Path = "data",
    tiny: bool = False,
    out_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> Experiment:
    """Read and expand the experiment file at ``path`` into its runs, validating every config.

    ``out_dir`` defaults to ``runs/papers`` (``runs/papers-tiny`` in tiny mode). ``overrides``
    (``KEY=VALUE`` strings, ``${data_root}`` allowed) apply to every run after the experiment's
    own settings.
    """
    variables = {"data_root": str(data_root)}
    document = substitute(read_experiment_file(path), variables)
    if "experiment" not in document or "config" not in document:
        raise ExperimentError(f"{path}: needs an 'experiment' and a 'config' section")
    try:
        spec: ExperimentSpec = build_dataclass(ExperimentSpec, document["experiment"], "experiment")
    except ConfigError as error:
        raise ExperimentError(f"{path}: {error}") from None
    grid = _check_spec(spec, Path(path))
    out = Path(out_dir) if out_dir is not None else Path("runs/papers-tiny" if tiny else "runs/papers")
    group_dir = out / (spec.group or spec.name)
    user = [substitute(item, variables) for item in overrides]
    seeds = spec.seeds[:1] if tiny else spec.seeds
    folds = spec.tiny.folds if tiny and spec.folds is not None else spec.folds
    planned: list[PlannedRun] = []
    names: list[str] = []
    for run in spec.runs:
        for combo in itertools.product(*(list(values.items()) for values in grid.values())):
            tags = {axis: label for axis, (label, _) in zip(grid, combo)}
            suffix = [_slug(label) for label in tags.values()]
            name = "-".join([run.name, *suffix])
            init = None if run.init is None else "-".join([run.init, *suffix])
            names.append(name)
            row = ", ".join([run.row or run.name, *(f"{axis} {tags[axis]}" for axis in _row_axes(spec, grid))])
            raw = dict(document["config"])
            settings = [run.set, *(values for _, values in combo)]
            if tiny:
                settings += [spec.tiny.set, run.tiny_set]
            for mapping in settings:
                for key, value in mapping.items():
                    raw = set_value(raw, key, value)
            for override in user:
                try:
                    raw = apply_override(raw, override)
                except ConfigError as error:
                    raise ExperimentError(f"{path}: {error}") from None
            for seed in seeds:
                for fold in range(folds) if folds is not None else [None]:
                    resolved = set_value(raw, "train.seed", seed)
                    if fold is not None:
                        resolved = set_value(resolved, "data.folds", {"k": folds, "index": fold, "seed": 0})
                    run_name = f"seed{seed}" + (f"-fold{fold}" if fold is not None else "")
                    resolved = set_value(resolved, "run", {"dir": str(group_dir / name), "name": run_name})
                    try:
                        config_from_dict(resolved)
                    except ConfigError as error:
                        raise ExperimentError(f"{path}: run {name} ({run_name}): {error}") from None
                    planned.append(PlannedRun(name, row, tags, seed, fold, resolved, init, run.report))
    if len(names) != len(set(names)):
        raise ExperimentError(f"{path}: run names are not unique: {names}")
    return Experiment(Path(path), spec, planned, out, tiny, str(data_root))


def _check_spec(spec: ExperimentSpec, path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Cross-field checks; returns the grid with its value labels as strings."""
    grid: dict[str, dict[str, dict[str, Any]]] = {}
    for axis, values in spec.grid.items():
        if not isinstance(values, dict) or not values or not all(isinstance(v, dict) for v in values.values()):
            raise ExperimentError(f"{path}: experiment.grid.{axis}: map each value label to a mapping of overrides")
        grid[axis] = {str(label): settings for label, settings in values.items()}
    if not spec.runs or not spec.seeds:
        raise ExperimentError(f"{path}: experiment.runs and experiment.seeds must not be empty")
    names = [run.name for run in spec.runs]
    for run in spec.runs:
        if run.init is not None and run.init not in names[: names.index(run.name)]:
            raise ExperimentError(f"{path}: run {run.name}: init {run.init!r} must name an earlier run")
    for name, target in spec.evaluate.items():
        try:
            evaluation_target(target)
        except ValueError as error:
            raise ExperimentError(f"{path}: experiment.evaluate.{name}: {error}") from None
    for column in spec.columns:
        if column.eval_set is not None and column.eval_set not in spec.evaluate:
            raise ExperimentError(f"{path}: column {column.label!r}: unknown evaluation set {column.eval_set!r}")
        for axis, label in column.where.items():
            if str(label) not in grid.get(axis, {}):
                raise ExperimentError(f"{path}: column {column.label!r}: the grid has no {axis} value {label!r}")
    if spec.folds is not None and (spec.folds < 2 or spec.tiny.folds < 2):
        raise ExperimentError(f"{path}: experiment.folds and experiment.tiny.folds must be >= 2")
    return grid


def _row_axes(spec: ExperimentSpec, grid: Mapping[str, Any]) -> list[str]:
    """Grid axes that spread over rows: those no column selects with ``where``."""
    selected = {axis for column in spec.columns for axis in column.where}
    return [axis for axis in grid if axis not in selected]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "x"


def select_runs(experiment: Experiment, names: Sequence[str]) -> Experiment:
    """``experiment`` reduced to the runs called ``names`` (table rows), plus the runs they start
    from (``init``, trained or reused but left out of the table)."""
    known = {run.name for run in experiment.runs}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ExperimentError(f"{experiment.path}: no run named {', '.join(unknown)}; runs: {', '.join(sorted(known))}")
    by_name = {run.name: run.init for run in experiment.runs}
    needed, pending = set(names), list(names)
    while pending:
        parent = by_name[pending.pop()]
        if parent is not None and parent not in needed:
            needed.add(parent)
            pending.append(parent)
    runs = [
        run if run.name in names else dataclasses.replace(run, report=False)
        for run in experiment.runs
        if run.name in needed
    ]
    return dataclasses.replace(experiment, runs=runs)


# ------------------------------------------------------------------------------------- running
def run_experiment(experiment: Experiment, command: str | None = None) -> dict[str, Any]:
    """Train and evaluate every run of ``experiment`` (skipping finished ones), then write and
    return the table (``<group dir>/<name>.json`` and ``.md``); ``command`` is recorded in it."""
    started = time.perf_counter()
    spec = experiment.spec
    done: dict[tuple[str, int, int | None], ExperimentConfig] = {}
    records: list[tuple[PlannedRun, dict[str, Any]]] = []
    for number, run in enumerate(experiment.runs, start=1):
        log.info("%s: run %d/%d: %s (%s)", spec.name, number, len(experiment.runs), run.name, run.run_dir.name)
        raw = run.raw
        if run.init is not None:
            raw = set_value(raw, "model.checkpoint", str(default_checkpoint(done[(run.init, run.seed, run.fold)])))
        config = config_from_dict(raw)
        _check_run_folder(config)
        if not (config.run.path / "metrics.json").is_file():
            train(config, resume=True)
        done[(run.name, run.seed, run.fold)] = config
        if run.report:
            records.append((run, _evaluate_run(raw, config, spec.evaluate)))
    table = tabulate(experiment, records)
    table["command"] = command
    table["seconds"] = round(time.perf_counter() - started, 1)
    experiment.group_dir.mkdir(parents=True, exist_ok=True)
    write_json(table, experiment.group_dir / f"{spec.name}.json")
    (experiment.group_dir / f"{spec.name}.md").write_text(table_markdown(table), encoding="utf-8")
    curves = validation_curves([(f"{run.name}/{run.run_dir.name}", done[(run.name, run.seed, run.fold)])
                                for run, _ in records])  # fmt: skip
    if curves:
        plot_curves(curves, experiment.group_dir / f"{spec.name}_curves.png", title=spec.title)
    return table


def validation_curves(runs: Sequence[tuple[str, ExperimentConfig]]) -> dict[str, dict[str, list[float]]]:
    """``{"val_<monitor>": {label: values}, "val_referable_auc": {...}}`` from each run's
    ``log.csv``: the value of every validation, in order (all stages); empty without logs."""
    curves: dict[str, dict[str, list[float]]] = {}
    for label, config in runs:
        rows = read_log(config.run.path)
        for metric in dict.fromkeys([f"val_{config.train.monitor}", "val_referable_auc"]):
            values = [float(row[metric]) for row in rows if row.get(metric)]
            if values:
                curves.setdefault(metric, {})[label] = values
    return curves


def _check_run_folder(config: ExperimentConfig) -> None:
    """Refuse a run folder whose ``config.yaml`` differs from ``config``; settings added to the
    engine since that run was made count at their defaults."""
    saved = config.run.path / "config.yaml"
    if not saved.is_file():
        return
    try:
        stored = config_from_dict(yaml.safe_load(saved.read_text(encoding="utf-8")))
    except ConfigError:
        stored = None
    if stored != config:
        raise ExperimentError(
            f"{config.run.path} holds a run of another config: delete the folder or choose another --out"
        )


class EvaluationTarget(NamedTuple):
    """One ``experiment.evaluate`` entry: a part of the run's data (``val``) or a dataset list,
    the test-time augmentation, and the DR grade decoding (``None``: the config's)."""

    data: str | list[Any]
    tta: str = "none"
    dr_decoding: str | None = None


def evaluation_target(target: Any) -> EvaluationTarget:
    """The ``EvaluationTarget`` of an ``experiment.evaluate`` entry.

    An entry is a part of the run's own data (``val``), a list of datasets scored as its test
    part, or a mapping ``{split: val}`` / ``{datasets: [...]}`` with ``tta: flips``
    (test-time augmentation, ``drscreen evaluate --tta``) and/or ``dr_decoding: argmax``
    (``drscreen.metrics.decode_grades``).
    """
    tta, dr_decoding = "none", None
    if isinstance(target, Mapping):
        unknown = set(target) - {"split", "datasets", "tta", "dr_decoding"}
        if unknown or len(set(target) & {"split", "datasets"}) != 1:
            raise ValueError("a mapping needs exactly one of split or datasets, and optionally tta and dr_decoding")
        tta = target.get("tta", "none")
        if tta not in TTA_FLIPS:
            raise ValueError(f"unknown tta {tta!r}; known: {', '.join(TTA_FLIPS)}")
        dr_decoding = target.get("dr_decoding")
        if dr_decoding is not None and dr_decoding not in GRADE_DECODINGS:
            raise ValueError(f"unknown dr_decoding {dr_decoding!r}; known: {', '.join(GRADE_DECODINGS)}")
        target = target.get("split", target.get("datasets"))
    if not (target in SPLITS or isinstance(target, list)):
        raise ValueError(f"give one of {', '.join(SPLITS)}, a list of datasets, or a mapping with split/datasets")
    return EvaluationTarget(target, tta, dr_decoding)


def _evaluate_run(raw: dict[str, Any], config: ExperimentConfig, sets: Mapping[str, Any]) -> dict[str, Any]:
    """``drscreen.engine.evaluate`` results of the run (engine config ``raw``, built: ``config``)
    on each evaluation set: a part of its own data, or datasets scored as its test part."""
    results: dict[str, Any] = {}
    checkpoint = default_checkpoint(config)
    for name, entry in sets.items():
        target, tta, dr_decoding = evaluation_target(entry)
        dr_decoding = dr_decoding or config.model.dr_decoding
        split = target if isinstance(target, str) else "test"
        out = config.run.path / f"eval-{name}"
        previous = _previous_evaluation(out / "metrics.json", checkpoint, split, tta, dr_decoding)
        if previous is not None:
            results[name] = previous
            continue
        scored = config if isinstance(target, str) else config_from_dict(set_value(raw, "data.test", target))
        results[name] = evaluate(
            scored, checkpoint, split=split, out_dir=out, n_bootstrap=0, tta=tta, dr_decoding=dr_decoding
        )
    return results


def _previous_evaluation(
    path: Path, checkpoint: Path, split: str, tta: str, dr_decoding: str
) -> dict[str, Any] | None:
    """The evaluation stored at ``path`` when it scored this ``checkpoint`` (unchanged since) on
    ``split`` with ``tta`` and ``dr_decoding``; else ``None`` (it is then recomputed)."""
    if not path.is_file() or not checkpoint.is_file() or path.stat().st_mtime < checkpoint.stat().st_mtime:
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    same = (stored.get("checkpoint"), stored.get("split"), stored.get("tta"), stored.get("dr_decoding", "argmax")) == (
        str(checkpoint), split, tta, dr_decoding
    )
    return stored if same else None


# ------------------------------------------------------------------------------------ the table
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


# ----------------------------------------------------------------------------------- the command
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
    parser.set_defaults(func=_run_command)


def _run_command(args: argparse.Namespace) -> int:
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
