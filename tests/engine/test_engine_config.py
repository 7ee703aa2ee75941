"""Engine units without training: config validation and overrides, LR schedule, samplers, φ choice,
pseudo-mask channels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from drscreen.data import Sample
from drscreen.engine.config import ConfigError, config_from_dict, config_to_dict, load_config, save_config
from drscreen.engine.optim import build_optimizer, build_scheduler
from drscreen.engine.samplers import AlternatingBatchSampler, ShardSampler
from drscreen.engine.schedules.alternate import keep_mask_fraction
from drscreen.engine.schedules.pseudo_masks import clear_lesions_on_dr0, pseudo_mask_channels
from drscreen.engine.trainer import build_model, frozen_modules
from drscreen.models import load_pretrained

REPO = Path(__file__).resolve().parents[2]
MINIMAL = {"data": {"train": [{"name": "idrid-grading", "root": "/data/idrid", "split": "train"}]}}


def test_unknown_keys_are_errors_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"optim\.lrr: unknown key \(did you mean 'lr'\?\)"):
        config_from_dict({**MINIMAL, "optim": {"lrr": 0.1}})
    bad_dataset = {"data": {"train": [{"name": "idrid-grading", "rooot": "/x"}]}}
    with pytest.raises(ConfigError, match=r"data\.train\.0\.rooot: unknown key"):
        config_from_dict(bad_dataset)
    with pytest.raises(ConfigError, match=r"^trian: unknown key"):
        config_from_dict({**MINIMAL, "trian": {}})
    with pytest.raises(ConfigError, match=r"data\.augmentation\.rotate: unknown key"):
        config_from_dict({"data": {**MINIMAL["data"], "augmentation": {"rotate": 5}}})


def test_types_and_values_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"optim\.epochs: expected an integer"):
        config_from_dict(MINIMAL, ["optim.epochs=two"])
    with pytest.raises(ConfigError, match=r"train\.amp: must be one of auto, bf16, fp16, fp32"):
        config_from_dict(MINIMAL, ["train.amp=off"])
    with pytest.raises(ConfigError, match=r"schedule\.alternate\.phi: must be in \(0, 1\]"):
        config_from_dict(MINIMAL, ["schedule.alternate.phi=1.5"])
    with pytest.raises(ConfigError, match=r"data\.train: required key is missing"):
        config_from_dict({"data": {}})
    with pytest.raises(ConfigError, match=r"schedule\.rounds\.optim\.lr: expected a number"):
        config_from_dict(MINIMAL, ["schedule.name=rounds", "schedule.rounds.optim={lr: fast}"])


def test_overrides() -> None:
    config = config_from_dict(
        MINIMAL,
        [
            "optim.lr=3e-4",  # YAML 1.1 reads this as a string; the float field accepts it
            "data.train.0.root=/elsewhere",
            "model.kwargs={width: 0.5}",
            "data.augmentation.preset=u2net",
            "data.augmentation.rotation=45",
            "train.patience=3",
        ],
    )
    assert config.optim.lr == pytest.approx(3e-4)
    assert config.data.train[0].root == "/elsewhere"
    assert config.model.kwargs == {"width": 0.5}
    assert config.data.augmentation.rotation == 45.0 and config.data.augmentation.scale == (0.6, 1.4)
    assert config.train.patience == 3
    with pytest.raises(ConfigError, match=r"data\.train\.3: no list item"):
        config_from_dict(MINIMAL, ["data.train.3.root=/x"])
    with pytest.raises(ConfigError, match="must look like key.path=value"):
        config_from_dict(MINIMAL, ["optim.lr"])


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config = config_from_dict(MINIMAL, ["data.augmentation.preset=mtunet", "schedule.name=pseudo_masks"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["optim"]["lr"] == config.optim.lr and saved["data"]["augmentation"]["shear"] == 10.0
    assert config_to_dict(config) == saved


# configs/papers/ and configs/results/ hold experiment files, not engine configs (tests/test_experiments.py).
# configs/*_model_info.yaml are packed models' metadata (drscreen model pack --info).
ENGINE_CONFIGS = sorted(
    p
    for p in (REPO / "configs").rglob("*.yaml")
    if not {"papers", "results"} & set(p.relative_to(REPO).parts) and not p.name.endswith("_model_info.yaml")
)


@pytest.mark.parametrize("path", ENGINE_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    load_config(path)


def test_learning_rate_schedules() -> None:
    config = config_from_dict(
        MINIMAL, ["optim.lr=1.0", "optim.schedule=cosine", "optim.warmup_epochs=1", "optim.epochs=4"]
    )
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer([parameter], config.optim)
    scheduler = build_scheduler(optimizer, config.optim, steps_per_epoch=2)
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.5 * 1.0)  # warm-up: step 1 of 2
    assert rates[4] == pytest.approx(0.5)  # cosine half-way
    assert rates[7] < rates[5] < rates[4]
    step = config_from_dict(MINIMAL, ["optim.lr=1.0", "optim.schedule=step", "optim.step_size=2", "optim.gamma=0.5"])
    factor = build_scheduler(build_optimizer([parameter], step.optim), step.optim, 3).lr_lambdas[0]
    assert [factor(s) for s in (0, 5, 6, 11, 12)] == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_alternating_batches() -> None:
    first, second = list(range(0, 4)), list(range(4, 20))
    sampler = AlternatingBatchSampler(first, second, batch_size=2, seed=3)
    sampler.set_epoch(0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 16  # 2 x the 8 batches of the larger subset
    for step, batch in enumerate(batches):
        assert set(batch) <= set(first if step % 2 == 0 else second)
    assert sorted(i for b in batches[1::2] for i in b) == second  # one pass over the larger subset
    assert sorted(i for b in batches[0::2] for i in b) == sorted(first * 4)  # the smaller one repeats
    sampler.set_epoch(1)
    assert list(sampler) != batches
    sampler.set_epoch(0)
    assert list(sampler) == batches
    ranks = [AlternatingBatchSampler(first, second, 2, seed=3, rank=r, world_size=2) for r in range(2)]
    shards = [list(s) for s in ranks]
    assert len(shards[0]) == len(shards[1]) == 8
    assert sorted(i for s in shards for b in s[1::2] for i in b) == second
    with pytest.raises(ValueError, match="both subsets"):
        AlternatingBatchSampler([], second, 2)
    assert list(ShardSampler(5, rank=1, world_size=2)) == [1, 3]


def _sample(index: int, masks: bool, dr: int | None = 1) -> Sample:
    lesions = {code: Path(f"/m/{index}_{code}.png") for code in ("MA", "HE", "EX", "SE", "OD")} if masks else None
    return Sample(id=f"s{index}", image_path=Path(f"/i/{index}.jpg"), dr_grade=dr, lesion_masks=lesions, dataset="t")


def test_phi_keeps_the_requested_fraction_of_masks() -> None:
    samples = [_sample(i, masks=i < 12) for i in range(20)]
    classes = ("MA", "HE", "EX", "SE")
    kept = keep_mask_fraction(samples, 0.25, classes, seed=0)
    with_masks = [s.id for s in kept if s.lesion_masks is not None]
    assert len(with_masks) == 5 and all(int(i[1:]) < 12 for i in with_masks)
    assert [s.id for s in kept] == [s.id for s in samples] and kept[0].dr_grade == 1
    assert keep_mask_fraction(samples, 0.25, classes, seed=0) == kept
    assert keep_mask_fraction(samples, 0.25, classes, seed=1) != kept
    with pytest.raises(ValueError, match="only 12 have masks"):
        keep_mask_fraction(samples, 0.75, classes, seed=0)


def test_pseudo_mask_channels_and_dr0_clearing() -> None:
    classes = ("MA", "HE", "EX", "SE", "OD")
    probs = torch.zeros(5, 4, 4)
    probs[0, :2] = 0.9  # MA on the top half
    probs[4, 2:] = 0.7  # optic disc on the bottom half
    sigmoid = pseudo_mask_channels(probs, classes, "sigmoid", threshold=0.5)
    assert sigmoid.dtype == np.bool_ and sigmoid[0, :2].all() and sigmoid[4, 2:].all() and sigmoid.sum() == 16
    softmax = pseudo_mask_channels(probs, classes, "softmax", threshold=0.5)
    assert np.array_equal(softmax, sigmoid)
    cleared = clear_lesions_on_dr0(sigmoid, classes, dr_grade=0)
    assert not cleared[:4].any() and cleared[4, 2:].all()
    assert clear_lesions_on_dr0(sigmoid, classes, dr_grade=2) is sigmoid


def test_lesion_decoder_recipe_trains_only_the_shipped_decoder() -> None:
    """configs/lesion_decoder.yaml starts from the shipped grader and leaves only its lesion
    decoder trainable (benchmarks/lesion_cv.py --config replaces its data sources)."""
    config = load_config(REPO / "configs/lesion_decoder.yaml")
    assert config.data.lesion_union and config.loss.kwargs["lesion_loss"] == "lesion_union"
    checkpoint = REPO / str(config.model.checkpoint)
    model = build_model(dataclasses.replace(config.model, checkpoint=str(checkpoint)))
    frozen_modules(model, config.model.freeze)
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"lesion_decoder"}
    shipped = load_pretrained().model.state_dict()
    assert all(torch.equal(v.float(), shipped[k].float()) for k, v in model.state_dict().items())
