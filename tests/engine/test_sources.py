"""Source-balanced training order and per-source validation (``drscreen.engine.sources``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_fixtures import tiny_config

from drscreen.data import Sample
from drscreen.engine import train
from drscreen.engine.head_refit import extract_features, fit_head
from drscreen.engine.inference import Predictions
from drscreen.engine.parts import load_parts
from drscreen.engine.recorder import read_log
from drscreen.engine.sources import SOURCES_MEAN, SourceBalancedSampler, per_source_metrics, subset_predictions
from drscreen.engine.trainer import initial_model


def samples(counts: dict[str, int]) -> list[Sample]:
    return [
        Sample(id=f"{source}-{i}", image_path=f"{source}-{i}.png", dr_grade=i % 5, dataset=source)
        for source, count in counts.items()
        for i in range(count)
    ]


def test_every_epoch_draws_each_source_equally_and_repeats_the_small_one() -> None:
    records = samples({"big": 90, "small": 10})
    sampler = SourceBalancedSampler(records, seed=3)
    order = list(sampler)
    assert len(order) == len(sampler) == 100
    assert Counter(records[i].dataset for i in order) == {"big": 50, "small": 50}
    assert len({i for i in order if records[i].dataset == "small"}) == 10
    assert len({i for i in order if records[i].dataset == "big"}) == 50


def test_the_order_is_a_function_of_seed_and_epoch_and_shards_cover_it() -> None:
    records = samples({"a": 30, "b": 12})
    first, again = SourceBalancedSampler(records, seed=1), SourceBalancedSampler(records, seed=1)
    again.set_epoch(0)
    assert list(first) == list(again)
    again.set_epoch(1)
    assert list(first) != list(again)
    shards = [list(SourceBalancedSampler(records, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == sorted(first.epoch_order())


def test_per_source_metrics_score_each_source_alone_and_average_them() -> None:
    records = samples({"a": 10, "b": 10})
    truth = np.array([s.dr_grade for s in records])
    probs = np.full((20, 5), 0.01)
    probs[np.arange(20), truth] = 0.96
    probs[10:] = probs[10:][:, ::-1]  # source b predicted wrongly
    predictions = Predictions(indices=np.arange(20), dr_probs=probs, dme_probs=None)
    metrics = per_source_metrics(predictions, records, ())
    assert metrics["a_dr_accuracy"] == pytest.approx(1.0)
    assert metrics["b_dr_accuracy"] < 0.5
    assert metrics[f"{SOURCES_MEAN}_dr_accuracy"] == pytest.approx((1.0 + metrics["b_dr_accuracy"]) / 2)
    assert "a_loss" not in metrics
    part = subset_predictions(predictions, range(10, 20))
    assert part.indices.tolist() == list(range(10, 20)) and part.dr_probs.shape == (10, 5)


def test_a_source_balanced_run_logs_every_validation_per_source(
    synth_root: Path, tmp_path: Path, cache_dir: Path
) -> None:
    config = tiny_config(
        synth_root, tmp_path, cache_dir, "optim.epochs=1", "data.balance_sources=true",
        "train.monitor=sources_mean_dr_accuracy",
    )  # fmt: skip
    row = read_log(train(config))[-1]
    sources = {s.dataset for s in load_parts(config.data)["val"] if s.dr_grade is not None}
    for source in sources:
        assert f"val_{source}_dr_accuracy" in row
    assert f"val_{SOURCES_MEAN}_dr_accuracy" in row


def test_head_refit_on_cached_features_writes_an_engine_checkpoint(
    synth_root: Path, tmp_path: Path, cache_dir: Path
) -> None:
    config = tiny_config(synth_root, tmp_path, cache_dir, "optim.epochs=3", "train.monitor=dr_accuracy")
    features = tmp_path / "features"
    extract_features(config, features)
    cached = torch.load(features / "train.pt", weights_only=True)
    assert cached["maps"].dtype == torch.float16 and len(cached["ids"]) == cached["maps"].shape[0]
    extract_features(config, tmp_path / "only-val", parts=("val",))
    assert [f.name for f in (tmp_path / "only-val").iterdir()] == ["val.pt"]
    best = fit_head(config, features, tmp_path / "refit")
    checkpoint = torch.load(tmp_path / "refit" / "checkpoints" / "best.pt", weights_only=True)
    model = initial_model(config.model, 0)
    model.load_state_dict(checkpoint["model"])
    assert checkpoint["metrics"]["dr_accuracy"] == best["dr_accuracy"] and 1 <= checkpoint["epoch"] <= 3
    assert len(read_log(tmp_path / "refit")) == 3
