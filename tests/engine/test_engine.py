"""End-to-end engine runs on CPU with tiny models and a synthetic IDRiD-layout dataset.

Covers: train + evaluate, exact resume, the SUNet alternate schedule, MTUnet pseudo-masks,
ELLG rounds with a hook, and a 2-process gloo (torchrun) run.
"""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch.optim.swa_utils import AveragedModel

from drscreen.data import Sample
from drscreen.engine import ROUND_HOOKS, RoundContext, config_from_dict, evaluate, train
from drscreen.engine.checkpoint import read_checkpoint
from drscreen.engine.config import ExperimentConfig
from drscreen.engine.distributed import init_distributed
from drscreen.engine.recorder import read_log
from drscreen.engine.trainer import Trainer, initial_model
from drscreen.models import create_model, load_checkpoint
from drscreen.synth import write_dataset

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "configs" / "tiny" / "smoke.yaml"


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 synthetic images in the official IDRiD layout: 8 training, 2 testing, in both parts."""
    root = tmp_path_factory.mktemp("synth-idrid")
    return write_dataset(root, n=10, size=128, seed=0, layout="idrid", workers=1, progress=False)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


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


def test_train_then_evaluate(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    config = tiny_config(synth_root, tmp_path, cache_dir, "train.monitor=dr_accuracy")
    run_dir = train(config)
    assert run_dir == tmp_path / "smoke"
    for name in ("config.yaml", "log.csv", "metrics.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run_dir / name).is_file(), name
    assert config_from_dict(yaml.safe_load((run_dir / "config.yaml").read_text())) == config
    rows = read_log(run_dir)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert {"train_loss", "train_dr", "train_dme", "train_lesion", "val_dr_accuracy", "val_lesion_dice"} <= set(rows[0])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["monitor"] == "dr_accuracy" and "dr_qwk" in metrics["val"] and "lesion_dice" in metrics["test"]
    assert list(cache_dir.rglob("*.npz")), "prepared images are cached"

    results = evaluate(config, split="test", n_bootstrap=20)
    out = run_dir / "eval-test"
    assert results["checkpoint"].endswith("best.pt") and results["n_images"] == 4
    assert {"dr", "dme", "referable", "lesions"} <= set(results)
    assert (out / "confusion_dr.png").stat().st_size > 0 and (out / "confusion_dme.png").is_file()
    with (out / "predictions.csv").open(newline="") as stream:
        predictions = list(csv.DictReader(stream))
    assert len(predictions) == 4
    graded = [row for row in predictions if row["dr_true"]]
    assert len(graded) == 2 and all(abs(sum(float(row[f"dr_prob_{g}"]) for g in range(5)) - 1) < 1e-4 for row in graded)
    assert json.loads((out / "metrics.json").read_text())["referable"]["n_bootstrap"] == 20

    by_expectation = evaluate(config, split="test", n_bootstrap=0, dr_decoding="expected", out_dir=run_dir / "eval-e")
    assert results["dr_decoding"] == "argmax" and by_expectation["dr_decoding"] == "expected"
    with (run_dir / "eval-e" / "predictions.csv").open(newline="") as stream:
        for row in csv.DictReader(stream):
            expectation = sum(g * float(row[f"dr_prob_{g}"]) for g in range(5))
            assert int(row["dr_pred"]) == round(expectation)


def test_best_checkpoint_by_a_window_of_validations(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    config = tiny_config(
        synth_root, tmp_path, cache_dir, "optim.epochs=4", "train.monitor=loss", "train.monitor_window=2"
    )
    run_dir = train(config)
    rows = read_log(run_dir)
    losses = [float(row["val_loss"]) for row in rows]
    windows = [float(row["val_loss_window"]) for row in rows]
    expected = [losses[0]] + [(a + b) / 2 for a, b in zip(losses, losses[1:], strict=False)]
    assert windows == pytest.approx(expected)
    best_epoch = 1 + min(range(len(windows)), key=windows.__getitem__)
    assert read_checkpoint(run_dir / "checkpoints" / "best.pt")["epoch"] == best_epoch


def test_weight_average_is_validated_and_saved_as_best(
    synth_root: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """best.pt holds the EMA of the weights after every optimiser step, not the last weights."""
    decay, name = 0.7, "dr_head.weight"
    seen: list[torch.Tensor] = []
    original = AveragedModel.update_parameters

    def recording(self: AveragedModel, model: torch.nn.Module) -> None:
        seen.append(model.state_dict()[name].detach().clone())
        original(self, model)

    monkeypatch.setattr(AveragedModel, "update_parameters", recording)
    # Validated only after the last epoch, so that epoch is the best one.
    config = tiny_config(synth_root, tmp_path, cache_dir, f"train.ema_decay={decay}", "train.eval_every=5")
    run_dir = train(config)
    expected = seen[0]
    for weights in seen[1:]:
        expected = decay * expected + (1 - decay) * weights
    best = read_checkpoint(run_dir / "checkpoints" / "best.pt")["model"]
    last = read_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert len(seen) > 2 and torch.allclose(best[name], expected, atol=1e-6)
    assert torch.equal(last["model"][name], seen[-1]) and not torch.allclose(best[name], seen[-1])
    assert torch.equal(last["ema"][f"module.{name}"], best[name])


def test_heads_added_to_a_trained_network_and_trained_with_it_frozen(
    synth_root: Path, tmp_path: Path, cache_dir: Path
) -> None:
    """A DR-only run, then DME and lesion heads fitted with the encoder and DR head frozen: the
    frozen weights and BatchNorm statistics come out exactly as the first run left them."""
    grading = train(tiny_config(
        synth_root, tmp_path, cache_dir, "run.name=grading", "model.kwargs.dme=false", "model.kwargs.lesions=false",
        "loss.kwargs={preset: sunet, dme_loss: null, lesion_loss: null}",
    ))  # fmt: skip
    checkpoint = grading / "checkpoints" / "last.pt"
    base = read_checkpoint(checkpoint)["model"]
    with pytest.raises(RuntimeError, match="Missing key"):
        train(tiny_config(synth_root, tmp_path, cache_dir, "run.name=strict", f"model.checkpoint={checkpoint}"))
    heads = train(tiny_config(
        synth_root, tmp_path, cache_dir, "run.name=heads", f"model.checkpoint={checkpoint}",
        "model.checkpoint_allow_missing=true", "model.freeze=[encoder, dr_head]",
    ))  # fmt: skip
    after = read_checkpoint(heads / "checkpoints" / "last.pt")["model"]
    frozen = [key for key in base if key.startswith(("encoder.", "dr_head."))]
    assert any("running_mean" in key for key in frozen)
    for key in frozen:
        assert torch.equal(after[key], base[key]), key
    config = tiny_config(synth_root, tmp_path, cache_dir)
    assert not torch.equal(after["dme_head.weight"], initial_model(config.model, config.train.seed).dme_head.weight)
    with pytest.raises(ValueError, match="no sub-module"):
        train(tiny_config(synth_root, tmp_path, cache_dir, "run.name=typo", "model.freeze=[encodr]"))


def test_checkpoint_weights_without_a_place_are_an_error(tmp_path: Path) -> None:
    model = create_model("drscreen_effnet", encoder="simple_cnn", dme=True, lesions=False)
    path = tmp_path / "full.pt"
    torch.save({"model": model.state_dict()}, path)
    smaller = create_model("drscreen_effnet", encoder="simple_cnn", dme=False, lesions=False)
    with pytest.raises(RuntimeError, match="without a place"):
        load_checkpoint(smaller, path, allow_missing=True)


@pytest.mark.parametrize("overrides", [(), ("train.ema_decay=0.9",)], ids=["plain", "ema"])
def test_exact_resume(
    synth_root: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, overrides: tuple[str, ...]
) -> None:
    """2 epochs straight == 1 epoch, interruption, resume for the 2nd epoch (weights, log)."""
    straight = train(tiny_config(synth_root, tmp_path, cache_dir, "run.name=straight", *overrides))

    config = tiny_config(synth_root, tmp_path, cache_dir, "run.name=resumed", *overrides)
    original = Trainer.train_epoch
    calls = {"n": 0}

    def interrupted(self: Trainer, *args: Any, **kwargs: Any) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    with pytest.raises(FileExistsError, match="--resume"):
        train(config)
    resumed = train(config, resume=True)

    a = read_checkpoint(straight / "checkpoints/last.pt")
    b = read_checkpoint(resumed / "checkpoints/last.pt")
    assert a["epoch"] == b["epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert (a["ema"] is None) == (b["ema"] is None) == (not overrides)
    for key in a["ema"] or {}:
        assert torch.equal(a["ema"][key], b["ema"][key]), key
    log_a, log_b = read_log(straight), read_log(resumed)
    assert len(log_b) == 2
    for row_a, row_b in zip(log_a, log_b, strict=True):
        assert row_a["train_loss"] == row_b["train_loss"] and row_a["val_loss"] == row_b["val_loss"]


def test_alternate_schedule_alternates_lesion_and_grade_batches(
    synth_root: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """φ = 0.25 of the 16 training images (8 with masks, 8 with grades) keep masks: 4."""
    config = tiny_config(
        synth_root, tmp_path, cache_dir, "schedule.name=alternate", "schedule.alternate.phi=0.25", "optim.epochs=1"
    )
    seen: list[tuple[bool, bool]] = []
    datasets: list[Any] = []

    def record(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if torch.is_grad_enabled():  # training steps, not validation
            has = args[1].has_lesion_masks
            seen.append((bool(has.all()), bool(has.any())))

    original_dataset, original_stage = Trainer.dataset, Trainer.run_stage

    def spy_dataset(self: Trainer, samples: Any, *, train: bool) -> Any:
        dataset = original_dataset(self, samples, train=train)
        if train:
            datasets.append(dataset)
        return dataset

    def spy_stage(self: Trainer, *args: Any, **kwargs: Any) -> None:
        self.loss_fn.register_forward_pre_hook(record, with_kwargs=True)
        original_stage(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "dataset", spy_dataset)
    monkeypatch.setattr(Trainer, "run_stage", spy_stage)
    train(config)
    (dataset,) = datasets
    assert len(dataset) == 16 and sum(dataset.has_masks) == 4
    # 4 lesion images -> 1 batch of 4; 12 others -> 3 batches; 2 x 3 steps, lesion batch first.
    assert seen == [(True, True), (False, False)] * 3


def test_pseudo_mask_schedule(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    config = tiny_config(synth_root, tmp_path, cache_dir, "schedule.name=pseudo_masks",
                         "schedule.pseudo_masks.segmentation_epochs=1", "optim.epochs=1")  # fmt: skip
    run_dir = train(config)
    assert [row["stage"] for row in read_log(run_dir)] == ["segmentation", "multitask"]
    assert [row["train_samples"] for row in read_log(run_dir)] == ["8", "16"]
    assert (run_dir / "checkpoints" / "segmentation.pt").is_file()
    stage = read_checkpoint(run_dir / "checkpoints" / "last.pt")
    pseudo = [Sample(**s) for s in stage["train_samples"] if s["dataset"] == "idrid-grading"]
    assert len(pseudo) == 8 and all(s.lesion_masks is not None for s in pseudo)
    for sample in pseudo:
        assert sample.lesion_masks is not None and set(sample.lesion_masks) == {"MA", "HE", "EX", "SE", "OD"}
        for path in sample.lesion_masks.values():
            assert path is None or path.parent == run_dir / "pseudo_masks"
        if sample.dr_grade == 0:
            assert all(sample.lesion_masks[code] is None for code in ("MA", "HE", "EX", "SE"))


def test_pseudo_masks_are_cleared_on_dr0_images(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    """With a stub network that sees every lesion everywhere, DR-0 images keep only the disc."""
    from drscreen.engine.schedules.pseudo_masks import write_pseudo_masks
    from drscreen.io import read_mask
    from drscreen.models import ModelOutput

    trainer = Trainer(tiny_config(synth_root, tmp_path, cache_dir), _single_process(), tmp_path)

    class SeesEverything(torch.nn.Module):
        lesion_classes = trainer.model.lesion_classes
        lesion_activation = "sigmoid"

        def forward(self, images: torch.Tensor) -> ModelOutput:
            b, _, h, w = images.shape
            return ModelOutput(lesion_logits=torch.full((b, len(self.lesion_classes), h, w), 10.0))

    trainer.model = SeesEverything()  # type: ignore[assignment]
    graded = [s for s in trainer_samples(synth_root) if s.dr_grade is not None]
    assert {s.dr_grade == 0 for s in graded} == {True, False}
    pseudo = write_pseudo_masks(trainer, graded, tmp_path / "pseudo", threshold=0.5)
    for before, after in zip(graded, pseudo, strict=True):
        assert after.id == before.id and after.dr_grade == before.dr_grade and after.lesion_masks is not None
        od = after.lesion_masks["OD"]
        assert od is not None and read_mask(od).shape == (128, 128)
        for code in ("MA", "HE", "EX", "SE"):
            assert (after.lesion_masks[code] is None) == (before.dr_grade == 0)


def test_augmentation_depends_only_on_seed_epoch_and_index(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    trainer = Trainer(tiny_config(synth_root, tmp_path, cache_dir), _single_process(), tmp_path)
    dataset = trainer.dataset(trainer_samples(synth_root), train=True)
    dataset.set_epoch(3)
    first = dataset[1].image
    torch.manual_seed(123)  # the global generator's state must not matter
    assert torch.equal(dataset[1].image, first)
    dataset.set_epoch(4)
    assert not torch.equal(dataset[1].image, first)
    plain = trainer.dataset(trainer_samples(synth_root), train=False)[1].image
    assert plain.shape == first.shape == (3, 64, 64) and not torch.equal(plain, first)


def _single_process() -> Any:
    from drscreen.engine.distributed import init_distributed

    return init_distributed("cpu")


def trainer_samples(synth_root: Path) -> list[Sample]:
    from drscreen.data import load_dataset

    return load_dataset("idrid-grading", synth_root, "train")


ROUND_CALLS: list[tuple[int, int, int]] = []


@ROUND_HOOKS.register("test_duplicate_first", description="test hook: adds a copy of a training sample")
def _duplicate_first_hook() -> Any:
    def hook(context: RoundContext) -> list[Sample]:
        ROUND_CALLS.append((context.round, len(context.train_samples), len(context.extra_samples)))
        first = context.train_samples[0]
        copy = Sample(**{**first.__dict__, "id": f"generated-{context.round}"})
        return [*context.extra_samples, copy]

    return hook


def test_rounds_call_the_hooks(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    ROUND_CALLS.clear()
    config = tiny_config(synth_root, tmp_path, cache_dir, "schedule.name=rounds", "schedule.rounds.rounds=2",
                         "schedule.rounds.epochs=1", "optim.epochs=1",
                         "schedule.rounds.hooks=[{name: noop}, {name: test_duplicate_first}]",
                         "schedule.rounds.optim={lr: 1.0e-4, schedule: step, step_size: 10}")  # fmt: skip
    run_dir = train(config)
    assert ROUND_CALLS == [(1, 16, 0), (2, 16, 1)]
    rows = read_log(run_dir)
    assert [(r["stage"], r["train_samples"]) for r in rows] == [("base", "16"), ("round1", "17"), ("round2", "18")]
    assert float(rows[1]["lr"]) == pytest.approx(1e-4)


def test_channels_last_bf16_cpu_run_and_flip_tta_evaluation(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    config = tiny_config(
        synth_root, tmp_path, cache_dir, "train.channels_last=true", "train.amp=bf16", "optim.epochs=1"
    )
    trainer = Trainer(config, init_distributed("cpu"), tmp_path / "probe")
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert trainer.amp_dtype is torch.bfloat16
    trainer.close()
    run_dir = train(config)
    assert all(math.isfinite(float(row["train_loss"])) for row in read_log(run_dir))
    plain = evaluate(config, split="test", n_bootstrap=0)
    flipped = evaluate(config, split="test", n_bootstrap=0, tta="flips", out_dir=run_dir / "eval-tta")
    assert plain["tta"] == "none" and flipped["tta"] == "flips" and flipped["n_images"] == plain["n_images"]
    assert (run_dir / "eval-tta" / "predictions.csv").is_file()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_two_process_gloo_run(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    """torchrun with 2 CPU processes: both ranks train on half the data each, rank 0 writes."""
    config = tiny_config(synth_root, tmp_path, cache_dir, "optim.batch_size=2", "optim.epochs=1")
    config_path = tmp_path / "config.yaml"
    from drscreen.engine import save_config

    save_config(config, config_path)
    script = tmp_path / "run_rank.py"
    script.write_text(
        "import os, sys\n"
        "from drscreen.engine import load_config, train\n"
        "run_dir = train(load_config(sys.argv[1]))\n"
        "print(f\"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']} finished {run_dir}\")\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), str(script), str(config_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "rank 0 of 2 finished" in done.stdout and "rank 1 of 2 finished" in done.stdout
    run_dir = tmp_path / "smoke"
    (row,) = read_log(run_dir)
    # 16 training images, 2 per process and step, 2 processes: 4 steps, global batch 4.
    assert (row["world_size"], row["global_batch"], row["step"]) == ("2", "4", "4")
    assert (run_dir / "checkpoints" / "last.pt").is_file() and (run_dir / "metrics.json").is_file()
    state = read_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert len(state["rng"]) == 2
