"""Paper experiments (``drscreen.experiments``, configs/papers/): every table runs end to end
at tiny scale on a synthetic data root in the official layouts; expansion, tables, reuse, the
command line, and the engine settings the papers needed (cross-validation folds, grade
balancing, rounds without a base stage).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import yaml

from drscreen.commands.experiment import add_parser
from drscreen.data import Sample, load_dataset
from drscreen.engine.config import ConfigError, DatasetSpec, config_from_dict
from drscreen.engine.parts import balance_grades, load_parts, load_samples
from drscreen.experiments import (
    Experiment,
    ExperimentError,
    PlannedRun,
    deep_merge,
    format_cell,
    load_experiment,
    lookup,
    read_experiment_file,
    run_experiment,
    substitute,
    tabulate,
    validation_curves,
    write_report,
)
from drscreen.synth.data_root import write_synthetic_data_root

# Tiny synthetic sets have grades with a single image and models that predict one grade: the
# fold splitter and kappa warn about exactly that, which is expected here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The least populated class:UserWarning"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning"),
]

REPO = Path(__file__).resolve().parents[2]
PAPER_CONFIGS = sorted((REPO / "configs" / "papers").glob("*/[!_]*.yaml"))


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 synthetic images per dataset (128 px) in the IDRiD, EyePACS, APTOS and DeepDRiD layouts."""
    return write_synthetic_data_root(tmp_path_factory.mktemp("synthetic-root"), n=10, size=128)


@pytest.fixture(scope="session")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One output folder for the whole session, so tables of a paper share their common runs."""
    return tmp_path_factory.mktemp("papers")


def tiny(path: Path, data_root: Path, out_dir: Path, *overrides: str) -> Experiment:
    cache = f"data.cache.dir={out_dir / 'cache'}"
    return load_experiment(path, data_root=data_root, tiny=True, out_dir=out_dir, overrides=[cache, *overrides])


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- every paper table
def test_every_paper_table_has_a_config() -> None:
    names = {str(path.relative_to(REPO / "configs" / "papers")) for path in PAPER_CONFIGS}
    assert names == {
        "sunet/table1.yaml", "sunet/table2.yaml", "sunet/phi_sweep.yaml",
        "mtunet/table1.yaml", "mtunet/table2.yaml", "mtunet/table3.yaml",
        "u2net/table1.yaml", "finegrained/table1.yaml", "finegrained/table2.yaml",
        "ellg/table1.yaml", "ellg/table2.yaml",
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("path", PAPER_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_paper_experiment_runs_end_to_end(path: Path, data_root: Path, out_dir: Path) -> None:
    experiment = tiny(path, data_root, out_dir)
    table = run_experiment(experiment)

    for run in experiment.runs:
        assert (run.run_dir / "metrics.json").is_file(), run.run_dir
    written = json.loads((experiment.group_dir / f"{experiment.spec.name}.json").read_text())
    assert written["tiny"] is True and written["columns"] == [c.label for c in experiment.spec.columns]
    assert (experiment.group_dir / f"{experiment.spec.name}.md").read_text().startswith("### ")
    curves = validation_curves([(run.name, config_from_dict(run.raw)) for run in experiment.runs if run.report])
    assert (experiment.group_dir / f"{experiment.spec.name}_curves.png").is_file() == bool(curves)
    reported = {run.row for run in experiment.runs if run.report}
    assert [row["label"] for row in table["rows"]] == list(dict.fromkeys(r.row for r in experiment.runs if r.report))
    assert len(table["rows"]) == len(reported)
    # Every column names a metric that some row reports, and every row reports some column.
    for label in table["columns"]:
        assert any(row["cells"][label] is not None for row in table["rows"]), label
    for row in table["rows"]:
        assert any(cell is not None for cell in row["cells"].values()), row["label"]


# -------------------------------------------------------------------------------- expansion
def test_tiny_mode_takes_the_first_seed_tiny_models_and_two_folds(data_root: Path, out_dir: Path) -> None:
    u2net = REPO / "configs/papers/u2net/table1.yaml"
    full = load_experiment(u2net, data_root=data_root, out_dir=out_dir)
    small = tiny(u2net, data_root, out_dir)
    assert len(full.runs) == 33 and len(small.runs) == 11
    assert full.runs[0].raw["optim"]["epochs"] == 400 and full.runs[0].raw["data"]["preprocess"]["size"] == 512
    assert small.runs[0].raw["model"]["tiny"] is True and small.runs[0].raw["optim"]["epochs"] == 1
    assert small.runs[0].raw["data"]["preprocess"]["size"] == 64
    assert full.runs[0].raw["data"]["train"][0]["root"] == f"{data_root}/idrid"

    grid = tiny(REPO / "configs/papers/finegrained/table1.yaml", data_root, out_dir)
    assert [(r.name, r.tags["dataset"], r.fold) for r in grid.runs[:4]] == [
        ("hbp-vgg16-idrid", "IDRiD", 0), ("hbp-vgg16-idrid", "IDRiD", 1),
        ("hbp-vgg16-deepdr", "DeepDR", 0), ("hbp-vgg16-deepdr", "DeepDR", 1),
    ]  # fmt: skip
    assert grid.runs[1].raw["data"]["folds"] == {"k": 2, "index": 1, "seed": 0}
    assert grid.runs[1].run_dir == out_dir / "finegrained" / "hbp-vgg16-idrid" / "seed0-fold1"
    # `dataset` is selected by the columns, so it spreads over columns, not rows.
    assert grid.runs[0].row == "HBP (VGG16)"
    assert grid.runs[0].raw["loss"]["kwargs"]["metric_config"] == {"dim": 96}


def test_extends_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    write_yaml(tmp_path / "_base.yaml", {"config": {"data": {"train": [1, 2], "val_fraction": 0.1}, "x": 1}})
    child = write_yaml(tmp_path / "child.yaml", {"extends": "_base.yaml", "config": {"data": {"train": [3]}}})
    assert read_experiment_file(child) == {"config": {"data": {"train": [3], "val_fraction": 0.1}, "x": 1}}
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
    write_yaml(tmp_path / "loop.yaml", {"extends": "loop.yaml"})
    with pytest.raises(ExperimentError, match="loops"):
        read_experiment_file(tmp_path / "loop.yaml")


def test_data_root_substitution() -> None:
    assert substitute({"a": ["${data_root}/idrid", 3]}, {"data_root": "/d"}) == {"a": ["/d/idrid", 3]}
    with pytest.raises(ExperimentError, match="unknown variable"):
        substitute("${dataroot}/x", {"data_root": "/d"})


def minimal_experiment(tmp_path: Path, **experiment: object) -> Path:
    spec = {"name": "t", "title": "T", "paper": "P", "columns": [{"label": "QWK", "metric": "dr_qwk"}], **experiment}
    config = {"data": {"train": [{"name": "folder", "root": "x"}]}}
    return write_yaml(tmp_path / "t.yaml", {"config": config, "experiment": spec})


@pytest.mark.parametrize(
    ("experiment", "message"),
    [
        ({"runs": [{"name": "a", "init": "b"}, {"name": "b"}]}, "must name an earlier run"),
        ({"columns": [{"label": "x", "metric": "dr_qwk", "eval_set": "private"}]}, "unknown evaluation set"),
        ({"columns": [{"label": "x", "metric": "dr_qwk", "where": {"dataset": "A"}}]}, "no dataset value"),
        ({"columns": [{"label": "x", "metric": "dr_qwk", "on": "val"}]}, "unknown key"),
        ({"evaluate": {"v": "validation"}}, "give one of"),
        ({"runs": [{"name": "a", "set": {"optim.lrr": 1}}]}, "optim.lrr: unknown key"),
        ({"runs": [{"name": "a"}, {"name": "a"}]}, "not unique"),
    ],
)
def test_invalid_experiments_name_the_problem(tmp_path: Path, experiment: dict, message: str) -> None:
    with pytest.raises(ExperimentError, match=message):
        load_experiment(minimal_experiment(tmp_path, **experiment), out_dir=tmp_path)


# ------------------------------------------------------------------------------------ tables
def record(name: str, row: str, seed: int, summary: dict, fold: int | None = None, **tags: str) -> tuple:
    run = PlannedRun(name, row, tags, seed, fold, {"run": {"dir": "r", "name": name}}, None, True)
    return run, {"test": {"summary": summary, "dr": {"auc_per_grade": {0: 0.5, 1: 0.75}}}}


def test_tabulate_merges_a_rows_runs_and_summarises_replicates(tmp_path: Path) -> None:
    path = minimal_experiment(
        tmp_path,
        seeds=[0, 1],
        columns=[
            {"label": "MA", "metric": "lesion_MA_aupr"},
            {"label": "mean", "metric": ["lesion_MA_aupr", "lesion_HE_aupr"]},
            {"label": "DME", "metric": "dme_accuracy"},
            {"label": "AUC 1", "metric": "dr.auc_per_grade.1"},
        ],
    )
    experiment = load_experiment(path, out_dir=tmp_path)
    records = [
        record("st-ma", "ST", 0, {"lesion_MA_aupr": 0.2}), record("st-he", "ST", 0, {"lesion_HE_aupr": 0.6}),
        record("st-ma", "ST", 1, {"lesion_MA_aupr": 0.4}), record("st-he", "ST", 1, {"lesion_HE_aupr": 0.8}),
    ]  # fmt: skip
    table = tabulate(experiment, records)
    (row,) = table["rows"]
    assert row["label"] == "ST"
    assert row["cells"]["MA"]["mean"] == pytest.approx(0.3) and row["cells"]["MA"]["n"] == 2
    assert row["cells"]["MA"]["std"] == pytest.approx(math.sqrt(0.02))
    assert row["cells"]["mean"]["mean"] == pytest.approx(0.5)
    assert row["cells"]["DME"] is None and row["cells"]["AUC 1"]["mean"] == pytest.approx(0.75)
    assert table["replicates"] == "mean ± sample standard deviation over 2 seeds"
    assert format_cell(row["cells"]["MA"]) == "0.3000 ± 0.1414" and format_cell(None) == "–"
    assert format_cell({"mean": math.nan, "std": None, "n": 0}) == "NaN"


def test_report_labels_synthetic_tables_and_gives_their_commands(tmp_path: Path) -> None:
    experiment = load_experiment(minimal_experiment(tmp_path), out_dir=tmp_path)
    table = {**tabulate(experiment, [record("a", "A", 0, {"dr_qwk": 0.25})]), "command": "drscreen x", "seconds": 3}
    table["synthetic"] = True
    write_report([table], tmp_path / "report")
    text = (tmp_path / "report.md").read_text()
    assert "not comparable to the papers' results" in text and "**SYNTHETIC data" in text
    assert "| A | 0.2500 |" in text and "```bash\ndrscreen x\n```" in text
    assert json.loads((tmp_path / "report.json").read_text())["tables"][0]["rows"][0]["label"] == "A"


def test_lookup_reads_the_summary_then_dotted_paths() -> None:
    results = {"summary": {"dr_qwk": 0.5}, "dr": {"auc_per_grade": {"2": 0.7}, "notes": ["x"]}}
    assert lookup(results, "dr_qwk") == 0.5 and lookup(results, "dr.auc_per_grade.2") == 0.7
    assert lookup(results, "dme_accuracy") is None and lookup(results, "dr.notes") is None


# ------------------------------------------------------------------------- reuse and the CLI
def test_finished_runs_are_reused_and_a_changed_config_is_refused(data_root: Path, out_dir: Path) -> None:
    path = REPO / "configs/papers/mtunet/table3.yaml"
    experiment = tiny(path, data_root, out_dir)
    run_experiment(experiment)
    metrics = experiment.runs[0].run_dir / "metrics.json"
    stamp = metrics.stat().st_mtime_ns
    run_experiment(experiment)
    assert metrics.stat().st_mtime_ns == stamp, "a finished run is not trained again"
    saved = experiment.runs[0].run_dir / "config.yaml"
    older = yaml.safe_load(saved.read_text())
    del older["model"]["dr_decoding"]  # written before the engine had this setting
    saved.write_text(yaml.safe_dump(older))
    run_experiment(experiment)
    assert metrics.stat().st_mtime_ns == stamp, "a setting added later counts at its default"
    with pytest.raises(ExperimentError, match="holds a run of another config"):
        run_experiment(tiny(path, data_root, out_dir, "optim.lr=0.5"))


def test_command_line_dry_run_lists_the_runs(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser(prog="drscreen")
    add_parser(parser.add_subparsers(dest="command", required=True))
    config = str(REPO / "configs/papers/ellg/table2.yaml")
    args = parser.parse_args(["experiment", config, "--tiny", "--data-root", str(data_root), "--out", str(tmp_path),
                              "--dry-run"])  # fmt: skip
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"ellg-table2: baseline: {tmp_path}/ellg/baseline/seed0",
        f"ellg-table2: Baseline (o_O): {tmp_path}/ellg/aptos-baseline/seed0 (starts from baseline)",
        f"ellg-table2: ELLG: {tmp_path}/ellg/aptos-ellg/seed0 (starts from baseline)",
    ]
    with pytest.raises(SystemExit, match="unknown variable"):
        args = parser.parse_args(["experiment", config, "--dry-run", "-o", "run.dir=${nope}"])
        args.func(args)


# -------------------------------------------------------------------------- synthetic layouts
def test_synthetic_root_holds_every_official_layout(data_root: Path) -> None:
    assert json.loads((data_root / "synthetic.json").read_text())["synthetic"] is True
    assert len(load_dataset("idrid-grading", data_root / "idrid")) == 10
    assert len(load_dataset("aptos2019", data_root / "aptos2019", "train")) == 10
    eyepacs = load_dataset("eyepacs", data_root / "eyepacs")
    assert [len([s for s in eyepacs if s.split == split]) for split in ("train", "test")] == [8, 2]
    assert all(s.patient_id and s.eye for s in eyepacs)
    deepdrid = load_dataset("deepdrid", data_root / "deepdrid")
    assert sorted({s.split for s in deepdrid}) == ["train", "val"] and len(deepdrid) == 10
    options = {"csv": "retinopathy_solution.csv", "images": "test", "image_column": "image",
               "grade_column": "level", "split_column": "Usage"}  # fmt: skip
    assert len(load_dataset("csv", data_root / "eyepacs", "Private", **options)) == 1
    assert write_synthetic_data_root(data_root) == data_root, "a complete root is reused"


# ------------------------------------------------------------------------- engine additions
def engine_config(data_root: Path, **data: object) -> dict:
    return {"data": {"train": [{"name": "deepdrid", "root": str(data_root / "deepdrid")}], **data}}


def test_folds_hold_out_every_patient_once(data_root: Path) -> None:
    tests = []
    for index in range(2):
        parts = load_parts(config_from_dict(engine_config(data_root, folds={"k": 2, "index": index})).data)
        assert not {s.id for s in parts["train"]} & {s.id for s in parts["test"]}
        assert len(parts["train"]) + len(parts["test"]) == 10
        tests += [s.id for s in parts["test"]]
    assert sorted(tests) == sorted(s.id for s in load_dataset("deepdrid", data_root / "deepdrid"))
    with pytest.raises(ConfigError, match="data.test: must be empty"):
        config_from_dict(engine_config(data_root, folds={"k": 5}, test=[{"name": "folder", "root": "x"}]))
    with pytest.raises(ConfigError, match=r"data.folds.index: must be in \[0, k\)"):
        config_from_dict(engine_config(data_root, folds={"k": 5, "index": 5}))


def test_balance_grades_keeps_the_rarest_count_and_every_ungraded_image() -> None:
    samples = [
        Sample(id=str(i), image_path=Path("x"), dr_grade=g, dataset="d") for i, g in enumerate([0, 0, 0, 1, 1, 2, None])
    ]
    kept = balance_grades(samples, seed=0)
    assert sorted((s.dr_grade for s in kept), key=str) == [0, 1, 2, None]
    assert kept == [s for s in samples if s in kept], "order is kept"
    assert balance_grades(samples, seed=0) == kept


def test_validation_curves_read_every_validation_of_the_log(tmp_path: Path) -> None:
    config = config_from_dict({
        "data": {"train": [{"name": "x", "root": "y"}]}, "run": {"dir": str(tmp_path), "name": "r"},
        "train": {"monitor": "dr_qwk"},
    })  # fmt: skip
    assert validation_curves([("r", config)]) == {}
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "log.csv").write_text(
        "stage,epoch,val_dr_qwk,val_referable_auc\ntrain,1,0.5,0.9\ntrain,2,,\ntrain,3,0.7,0.95\nround1,1,0.8,\n"
    )
    assert validation_curves([("r", config)]) == {
        "val_dr_qwk": {"r": [0.5, 0.7, 0.8]}, "val_referable_auc": {"r": [0.9, 0.95]}
    }


def test_drop_labels_unsets_only_the_named_labels_of_that_dataset(data_root: Path) -> None:
    root = str(data_root / "idrid")
    kept, dropped = (
        load_samples([DatasetSpec(name="idrid-grading", root=root, split="train", drop_labels=drop)])
        for drop in ([], ["dr_grade"])
    )
    assert [s.id for s in kept] == [s.id for s in dropped] and kept
    assert all(s.dr_grade is not None for s in kept)
    assert all(s.dr_grade is None for s in dropped)
    assert [s.dme_grade for s in dropped] == [s.dme_grade for s in kept]
    with pytest.raises(ConfigError, match=r"data.train.0.drop_labels.0: must be one of"):
        config_from_dict({"data": {"train": [{"name": "idrid-grading", "root": root, "drop_labels": ["grade"]}]}})


def test_rounds_without_a_base_stage_start_from_the_baseline(data_root: Path, out_dir: Path) -> None:
    experiment = tiny(REPO / "configs/papers/ellg/table1.yaml", data_root, out_dir)
    run_experiment(experiment)
    ellg = next(run for run in experiment.runs if run.name == "ellg")
    saved = yaml.safe_load((ellg.run_dir / "config.yaml").read_text())
    assert saved["schedule"]["rounds"]["base_stage"] is False
    assert saved["model"]["checkpoint"].startswith(str(out_dir / "ellg" / "baseline" / "seed0" / "checkpoints"))
    stages = {line.split(",")[0] for line in (ellg.run_dir / "log.csv").read_text().splitlines()[1:]}
    assert stages == {"round1"}


RESULT_CONFIGS = sorted((REPO / "configs" / "results").glob("[!_]*.yaml"))


@pytest.mark.parametrize("path", RESULT_CONFIGS, ids=lambda p: p.name)
def test_results_experiments_expand_into_valid_runs(path: Path, tmp_path: Path) -> None:
    experiment = load_experiment(path, data_root=tmp_path / "data", out_dir=tmp_path / "out")
    assert experiment.runs
    for run in experiment.runs:
        assert run.run_dir.parent.parent == tmp_path / "out" / (experiment.spec.group or experiment.spec.name)
        datasets = run.raw["data"]["train"] + run.raw["data"]["val"]
        assert all("${" not in spec["root"] for spec in datasets)


def test_select_runs_keeps_the_rows_asked_for_and_the_runs_they_start_from(tmp_path: Path) -> None:
    from drscreen.experiments import select_runs

    path = REPO / "configs" / "results" / "aptos_ablation.yaml"
    experiment = load_experiment(path, data_root=tmp_path, out_dir=tmp_path / "out")
    chosen = select_runs(experiment, ["ellg", "sord"])
    assert [(run.name, run.report) for run in chosen.runs] == [("ce", False), ("sord", True), ("ellg", True)]
    with pytest.raises(ExperimentError, match="no run named nope"):
        select_runs(experiment, ["nope"])


def test_a_stored_evaluation_is_reused_only_for_the_same_checkpoint_split_tta_and_decoding(tmp_path: Path) -> None:
    import json
    import os

    from drscreen.experiments.run import _previous_evaluation

    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    stored = tmp_path / "metrics.json"
    stored.write_text(json.dumps({"checkpoint": str(checkpoint), "split": "val", "tta": "flips", "summary": {}}))
    assert _previous_evaluation(stored, checkpoint, "val", "flips", "argmax") is not None  # stored before decodings
    assert _previous_evaluation(stored, checkpoint, "val", "flips", "expected") is None
    assert _previous_evaluation(stored, checkpoint, "val", "none", "argmax") is None
    assert _previous_evaluation(stored, checkpoint, "test", "flips", "argmax") is None
    later = stored.stat().st_mtime + 10
    os.utime(checkpoint, (later, later))  # retrained after the evaluation
    assert _previous_evaluation(stored, checkpoint, "val", "flips", "argmax") is None
