"""The ``experiment`` section of an experiment file as dataclasses, and the runs it expands into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from drscreen.grading import GRADE_DECODINGS
from drscreen.inference import TTA_FLIPS
from drscreen.synth.data_root import SYNTHETIC_MARKER

#: Parts of the engine config an evaluation set may name instead of listing datasets.
SPLITS = ("train", "val", "test")


class ExperimentError(ValueError):
    """An invalid experiment file, or a run folder that holds another experiment's run."""


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
    (``drscreen.grading.decode_grades``).
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
