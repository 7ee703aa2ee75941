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
and is scored with ``drscreen.engine.evaluation`` on every evaluation set. A run folder whose
``metrics.json`` exists is not trained again (experiments resume, and tables of one paper share
identical runs); a folder holding another config is an error. Each cell of the table is the
mean over the replicates (seeds x folds) with the sample standard deviation; the table is
written as ``<out>/<group>/<name>.{json,md}``, and each run's validation curves (its monitored
metric and, where there is one, the referable AUC, from ``log.csv``) as ``<name>_curves.png``.

``drscreen experiment CONFIG [CONFIG ...] [--data-root DIR | --synthetic N] [--tiny]`` runs
experiments from the command line; ``drscreen.synth.data_root`` writes the synthetic stand-in
for the data root that the tests and the synthetic benchmark use.

Modules: ``spec`` (the schema), ``dialect`` (``extends`` and ``${variables}``), ``plan`` (file ->
runs), ``run`` (train, evaluate, write), ``table`` (cells, markdown, report), ``cli`` (the
command's work). Names resolve on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drscreen._lazy import lazy_exports

if TYPE_CHECKING:
    from drscreen.experiments.dialect import deep_merge as deep_merge
    from drscreen.experiments.dialect import read_experiment_file as read_experiment_file
    from drscreen.experiments.dialect import substitute as substitute
    from drscreen.experiments.plan import load_experiment as load_experiment
    from drscreen.experiments.plan import select_runs as select_runs
    from drscreen.experiments.run import run_experiment as run_experiment
    from drscreen.experiments.run import validation_curves as validation_curves
    from drscreen.experiments.spec import SPLITS as SPLITS
    from drscreen.experiments.spec import Column as Column
    from drscreen.experiments.spec import EvaluationTarget as EvaluationTarget
    from drscreen.experiments.spec import Experiment as Experiment
    from drscreen.experiments.spec import ExperimentError as ExperimentError
    from drscreen.experiments.spec import ExperimentSpec as ExperimentSpec
    from drscreen.experiments.spec import PlannedRun as PlannedRun
    from drscreen.experiments.spec import RunSpec as RunSpec
    from drscreen.experiments.spec import TinySettings as TinySettings
    from drscreen.experiments.spec import evaluation_target as evaluation_target
    from drscreen.experiments.table import format_cell as format_cell
    from drscreen.experiments.table import lookup as lookup
    from drscreen.experiments.table import table_markdown as table_markdown
    from drscreen.experiments.table import tabulate as tabulate
    from drscreen.experiments.table import training_seconds as training_seconds
    from drscreen.experiments.table import write_report as write_report


__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "drscreen.experiments.spec": (
            "SPLITS",
            "Column",
            "EvaluationTarget",
            "Experiment",
            "ExperimentError",
            "ExperimentSpec",
            "PlannedRun",
            "RunSpec",
            "TinySettings",
            "evaluation_target",
        ),
        "drscreen.experiments.dialect": ("deep_merge", "read_experiment_file", "substitute"),
        "drscreen.experiments.plan": ("load_experiment", "select_runs"),
        "drscreen.experiments.run": ("run_experiment", "validation_curves"),
        "drscreen.experiments.table": (
            "format_cell",
            "lookup",
            "table_markdown",
            "tabulate",
            "training_seconds",
            "write_report",
        ),
    },
)
