"""The ``ellg`` round hook end to end: a tiny model, ten synthetic 128 px images at 64 px input.

The tiny model is untrained, so which images it grades correctly would be arbitrary (often no
healthy one). ``Trainer.predict`` is therefore replaced by an oracle that grades every image
right except those named, which also tests that wrongly graded images are never used. GMSM,
generation, the files and the engine's use of the returned samples are real.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from drscreen.augment import label_to_grade
from drscreen.data import Sample, load_dataset
from drscreen.engine import ROUND_HOOKS, RoundContext, config_from_dict, train
from drscreen.engine.config import ExperimentConfig
from drscreen.engine.dataset import FundusDataset
from drscreen.engine.distributed import init_distributed
from drscreen.engine.inference import Predictions
from drscreen.engine.schedules.ellg_round import CSV_NAME, IMAGE_DIR
from drscreen.engine.trainer import Trainer
from drscreen.synth import write_dataset

REPO = Path(__file__).resolve().parents[2]
#: The training image the oracle grades wrongly (a healthy one: it must not become a target).
WRONG = "train/IDRiD_005"


def training_grades(root: Path) -> dict[str, int]:
    return {s.id: s.dr_grade for s in load_dataset("idrid-grading", root, "train") if s.dr_grade is not None}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten synthetic images in the IDRiD layout; training grades 0, 3, 2, 4, 0, 2, 0, 1."""
    root = tmp_path_factory.mktemp("ellg-synth")
    return write_dataset(root, n=10, size=128, seed=0, layout="idrid", workers=1, progress=False)


def config_for(root: Path, run_dir: Path, *overrides: str) -> ExperimentConfig:
    """configs/tiny/smoke.yaml on ``root``, 64 px input, graded training images only."""
    raw = yaml.safe_load((REPO / "configs" / "tiny" / "smoke.yaml").read_text())
    raw["data"]["train"] = [{"name": "idrid-grading", "root": str(root), "split": "train"}]
    raw["data"]["val"], raw["data"]["test"] = [], []
    return config_from_dict(
        raw, [f"run.dir={run_dir}", "data.cache.enabled=false", "train.workers=0", "train.monitor=loss", *overrides]
    )


def oracle(wrong: set[str]) -> Callable[..., Predictions]:
    """A ``Trainer.predict`` that gives every graded sample its true grade, except ``wrong`` ones."""

    def predict(self: Trainer, dataset: FundusDataset, *, description: str = "predict") -> Predictions:
        probs = np.full((len(dataset), 5), 0.2)
        for row, sample in enumerate(dataset.samples):
            if sample.dr_grade is not None:
                grade = (sample.dr_grade + 1) % 5 if sample.id in wrong else sample.dr_grade
                probs[row] = np.eye(5)[grade]
        return Predictions(indices=np.arange(len(dataset)), dr_probs=probs, dme_probs=None)

    return predict


def read_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / CSV_NAME).open(newline="") as stream:
        return list(csv.DictReader(stream))


def run_hook(config: ExperimentConfig, work_dir: Path, extra: list[Sample], **kwargs: Any) -> list[Sample]:
    from drscreen.engine.parts import load_parts

    trainer = Trainer(config, init_distributed("cpu"), work_dir.parent)
    train = load_parts(config.data)["train"]
    hook = ROUND_HOOKS.create("ellg", **kwargs)
    return hook(RoundContext(1, trainer, train, extra, work_dir))


def test_hook_writes_and_returns_generated_samples(
    synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Trainer, "predict", oracle({WRONG}))
    config = config_for(synth_root, tmp_path)
    samples = run_hook(config, tmp_path / "a", [], n=4, gate=0.0)
    assert len(samples) == 4 and {s.dataset for s in samples} == {"ellg"}
    rows = read_rows(tmp_path / "a")
    grades = training_grades(synth_root)
    assert grades[WRONG] == 0 and list(grades.values()).count(0) > 1, "other healthy targets exist"
    for sample, row in zip(samples, rows):
        assert sample.image_path.name == row["image"] and sample.dr_grade == int(row["grade"])
        source, target = row["source"].split(":", 1)[1], row["target"].split(":", 1)[1]
        assert grades[source] >= 1 and grades[target] == 0 and WRONG not in (source, target)
        assert float(row["label"]) == pytest.approx(float(row["ratio"]) * grades[source], abs=1e-5)
        assert int(row["grade"]) == label_to_grade(float(row["label"]))
        assert int(row["placed"]) >= 1 and int(row["placed"]) + int(row["dropped"]) == int(row["patches"])
        image = cv2.imread(str(sample.image_path))
        assert image.shape == (128, 128, 3), "the 64 px network-input grid, enlarged x2 for the reader"
        assert np.array_equal(image[::2, ::2], image[1::2, 1::2])

    again = run_hook(config, tmp_path / "b", [], n=4, gate=0.0)
    assert read_rows(tmp_path / "b") == rows
    for a, b in zip(samples, again):
        assert np.array_equal(cv2.imread(str(a.image_path)), cv2.imread(str(b.image_path))), "deterministic"

    kept = run_hook(config, tmp_path / "c", samples[:1], n=2, gate=0.0, accumulate=True, ratio_range=[0.9, 1.0])
    assert kept[0] == samples[0] and len(kept) == 3
    assert all(0.9 <= float(r["ratio"]) <= 1.0 for r in read_rows(tmp_path / "c"))


def test_hook_without_targets_generates_nothing(
    synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthy = {name for name, grade in training_grades(synth_root).items() if grade == 0}
    monkeypatch.setattr(Trainer, "predict", oracle(healthy))
    assert run_hook(config_for(synth_root, tmp_path), tmp_path / "r", []) == []
    assert read_rows(tmp_path / "r") == [] and not list((tmp_path / "r" / IMAGE_DIR).iterdir())


def test_rounds_schedule_trains_on_the_generated_images(
    synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Trainer, "predict", oracle(set()))
    config = config_for(
        synth_root, tmp_path, "schedule.name=rounds", "schedule.rounds.rounds=2", "schedule.rounds.epochs=1",
        "optim.epochs=1", "schedule.rounds.hooks=[{name: ellg, kwargs: {n: 3, gate: 0.0}}]",
    )  # fmt: skip
    run_dir = train(config)
    with (run_dir / "log.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(r["stage"], r["train_samples"]) for r in rows] == [("base", "8"), ("round1", "11"), ("round2", "11")]
    for number in (1, 2):
        names = sorted(p.name for p in (run_dir / "rounds" / str(number) / IMAGE_DIR).iterdir())
        assert names == [f"ellg-r{number}-{k:05d}.png" for k in range(3)]
