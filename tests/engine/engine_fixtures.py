"""Helpers of the engine tests: the tiny smoke config pointed at a test's folders, the training samples."""

from __future__ import annotations

from pathlib import Path

import yaml

from drscreen.data import Sample, load_dataset
from drscreen.engine.config import ExperimentConfig, config_from_dict

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "configs" / "tiny" / "smoke.yaml"


def tiny_config(synth_root: Path, run_dir: Path, cache_dir: Path, *overrides: str) -> ExperimentConfig:
    """configs/tiny/smoke.yaml pointed at the test's data, run and cache folders."""
    raw = yaml.safe_load(TINY_CONFIG.read_text())
    paths = [
        f"data.{part}.{i}.root={synth_root}"
        for part in ("train", "val", "test")
        for i in range(len(raw["data"].get(part, [])))
    ]
    return config_from_dict(
        raw, [*paths, f"run.dir={run_dir}", f"data.cache.dir={cache_dir}", "train.workers=0", *overrides]
    )


def trainer_samples(synth_root: Path) -> list[Sample]:
    """The training part of the synthetic IDRiD grading data."""
    return load_dataset("idrid-grading", synth_root, "train")
