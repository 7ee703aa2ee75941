"""Running an experiment: train each run (finished runs are reused), evaluate it, write the table."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from drscreen.engine.config import ConfigError, ExperimentConfig, config_from_dict, set_value
from drscreen.engine.evaluation import default_checkpoint, evaluate
from drscreen.engine.recorder import read_log
from drscreen.engine.runs import train, write_json
from drscreen.experiments.spec import Experiment, ExperimentError, PlannedRun, evaluation_target
from drscreen.experiments.table import table_markdown, tabulate
from drscreen.metrics import plot_curves

log = logging.getLogger(__name__)


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


def _evaluate_run(raw: dict[str, Any], config: ExperimentConfig, sets: Mapping[str, Any]) -> dict[str, Any]:
    """``drscreen.engine.evaluation`` results of the run (engine config ``raw``, built: ``config``)
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
