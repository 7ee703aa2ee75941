"""An experiment file expanded into its runs (grid x seeds x folds), each a validated engine config."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from drscreen.engine.config import ConfigError, apply_override, build_dataclass, config_from_dict, set_value
from drscreen.experiments.dialect import read_experiment_file, substitute
from drscreen.experiments.spec import Experiment, ExperimentError, ExperimentSpec, PlannedRun, evaluation_target


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
