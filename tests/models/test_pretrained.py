"""Packed models (``drscreen.models.pretrained``) and the default model shipped in the package."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
import yaml

from drscreen.commands import model as model_command
from drscreen.models import DEFAULT_MODEL_FILE, create_model, load_pretrained, pack_checkpoint

TINY = {"decoder_channels": [8, 8, 8, 8]}


def engine_checkpoint() -> dict:
    torch.manual_seed(0)
    model = create_model("drscreen_effnet", **TINY)
    model.eval()
    config = {
        "model": {"name": "drscreen_effnet", "kwargs": {**TINY, "pretrained": True}, "dr_decoding": "expected"},
        "data": {"preprocess": {"size": 96, "crop_to_fov": False, "enhancement": "none"}},
    }
    return {"model": model.state_dict(), "config": config}


def test_pack_then_load_gives_the_same_predictions_in_half_the_bytes(tmp_path: Path) -> None:
    checkpoint = engine_checkpoint()
    out = pack_checkpoint(
        checkpoint, tmp_path / "m.pt", photograph_preprocess={"crop_to_fov": True, "enhancement": "ben_graham"},
        info={"training": "unit test"},
    )  # fmt: skip
    packed = load_pretrained(out)
    reference = create_model("drscreen_effnet", **TINY).eval()
    reference.load_state_dict(checkpoint["model"])
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected, got = reference(images), packed.model(images)
    assert not packed.model.training and packed.info == {"training": "unit test"}
    assert torch.allclose(got.dr_logits.softmax(1), expected.dr_logits.softmax(1), atol=2e-2)
    assert got.lesion_logits.shape == expected.lesion_logits.shape
    assert packed.preprocess.size == 96 and not packed.preprocess.crop_to_fov
    assert packed.dr_decoding == "expected"
    assert packed.preprocess.normalization == reference.normalization
    assert packed.photograph_preprocess.crop_to_fov and packed.photograph_preprocess.enhancement == "ben_graham"
    torch.save(checkpoint["model"], tmp_path / "fp32.pt")
    assert out.stat().st_size < 0.6 * (tmp_path / "fp32.pt").stat().st_size


def test_a_packed_temperature_divides_the_dr_logits_of_the_loaded_network(tmp_path: Path) -> None:
    checkpoint = engine_checkpoint()
    plain = load_pretrained(pack_checkpoint(checkpoint, tmp_path / "plain.pt"))
    scaled = load_pretrained(pack_checkpoint(checkpoint, tmp_path / "scaled.pt", temperature=2.0))
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        reference, calibrated = plain.model(images), scaled.model(images)
    assert plain.temperature == 1.0 and scaled.temperature == 2.0
    assert torch.allclose(calibrated.dr_logits, reference.dr_logits / 2.0, atol=1e-5)
    assert torch.equal(calibrated.dme_logits, reference.dme_logits)
    with pytest.raises(ValueError, match="temperature"):
        pack_checkpoint(checkpoint, tmp_path / "bad.pt", temperature=0.0)


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an engine checkpoint"):
        pack_checkpoint({"model": {}}, tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError, match="packed model not found"):
        load_pretrained(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a packed drscreen model"):
        load_pretrained(tmp_path / "other.pt")


def test_cli_pack_stores_metrics_and_info_prints_them(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.save(engine_checkpoint(), tmp_path / "best.pt")
    metrics = {"split": "val", "n_images": 4, "tta": "none", "summary": {"dr_qwk": 0.5},
               "referable": {"auc": 0.9, "auc_ci": [0.8, 1.0]},
               "dr": {"confusion_matrix": [[1]], "qwk": 0.5, "qwk_ci": [0.2, 0.7]}}  # fmt: skip
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "info.yaml").write_text("licence: test\n")
    parser = argparse.ArgumentParser()
    model_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["model", "pack", str(tmp_path / "best.pt"), "--out", str(tmp_path / "m.pt"),
                              "--info", str(tmp_path / "info.yaml"),
                              "--metrics", f"val={tmp_path / 'metrics.json'}"])  # fmt: skip
    assert args.func(args) == 0
    args = parser.parse_args(["model", "info", str(tmp_path / "m.pt")])
    capsys.readouterr()
    assert args.func(args) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["info"]["licence"] == "test"
    assert shown["info"]["metrics"]["val"] == {**metrics, "dr": {"qwk": 0.5, "qwk_ci": [0.2, 0.7]}}


@pytest.mark.skipif(not DEFAULT_MODEL_FILE.is_file(), reason="the package's default weights are not built")
def test_the_shipped_default_model_loads_offline_and_grades() -> None:
    assert DEFAULT_MODEL_FILE.stat().st_size <= 25 * 2**20
    packed = load_pretrained()
    size = packed.preprocess.size
    with torch.no_grad():
        output = packed.model(torch.zeros(1, 3, size, size))
    assert output.dr_logits.shape == (1, 5) and output.dme_logits.shape == (1, 3)
    assert output.lesion_logits.shape[1] == len(packed.model.lesion_classes)
    validated = packed.info["validated_on_real_data"]
    assert validated["dr_grade"] and validated["referable"]
    assert not validated["dme_grade"] and not validated["lesion_maps"]
    assert "research use only" in packed.info["intended_use"].lower()
    metrics = packed.info["metrics"]
    assert metrics["aptos2019_test"]["n_images"] == 549 and metrics["eyepacs_test"]["n_images"] == 278
    assert packed.info["operating_point"]["threshold"] == pytest.approx(metrics["aptos2019_test"]["referable"]["threshold"])


def test_default_config_is_the_ablation_row_it_documents() -> None:
    from dataclasses import replace

    from drscreen.engine import config_from_dict
    from drscreen.engine.config import load_config
    from drscreen.experiments import load_experiment

    repo = Path(__file__).resolve().parents[2]
    default = load_config(repo / "configs" / "default.yaml")
    experiment = load_experiment(
        repo / "configs" / "results" / "aptos_224.yaml", data_root="../shared/data", out_dir="runs/results"
    )
    run = next(run for run in experiment.runs if run.name == "default")
    row = config_from_dict(run.raw)
    # The experiment sets the checkpoint when it runs (init); the file names that run's weights.
    grading = next(r for r in experiment.runs if r.name == run.init)
    assert default.model.checkpoint == str(grading.run_dir / "checkpoints" / "best.pt")
    assert replace(row, run=default.run, model=replace(row.model, checkpoint=default.model.checkpoint)) == default
