"""Training runs end to end on CPU (tiny model, synthetic IDRiD layout): train + evaluate, checkpoint
choice, weight averaging, new heads on a frozen network, deterministic augmentation, channels-last
bf16 and flip test-time augmentation.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from engine_fixtures import tiny_config, trainer_samples
from torch.optim.swa_utils import AveragedModel

from drscreen.engine import config_from_dict, evaluate, train
from drscreen.engine.checkpoint import read_checkpoint
from drscreen.engine.distributed import init_distributed
from drscreen.engine.recorder import read_log
from drscreen.engine.trainer import Trainer, initial_model
from drscreen.models import create_model, load_checkpoint


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


def test_augmentation_depends_only_on_seed_epoch_and_index(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    trainer = Trainer(tiny_config(synth_root, tmp_path, cache_dir), init_distributed("cpu"), tmp_path)
    dataset = trainer.dataset(trainer_samples(synth_root), train=True)
    dataset.set_epoch(3)
    first = dataset[1].image
    torch.manual_seed(123)  # the global generator's state must not matter
    assert torch.equal(dataset[1].image, first)
    dataset.set_epoch(4)
    assert not torch.equal(dataset[1].image, first)
    plain = trainer.dataset(trainer_samples(synth_root), train=False)[1].image
    assert plain.shape == first.shape == (3, 64, 64) and not torch.equal(plain, first)


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
