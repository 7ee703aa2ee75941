"""The inference core: ``Predictor`` from a live network and from a packed model, its decisions,
and that ``drscreen evaluate`` (config or packed model) gives the probabilities it gives."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from drscreen.data import load_dataset
from drscreen.engine import config_from_dict
from drscreen.engine.evaluation import evaluate, evaluate_packed
from drscreen.grading import OperatingPoint, decode_grades, referable_scores
from drscreen.inference import Predictor, TorchBackend
from drscreen.io import read_image
from drscreen.models import create_model, load_pretrained
from drscreen.models.registry import MODELS
from drscreen.preprocess import PreprocessConfig
from drscreen.synth import generate_fundus, write_dataset


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 synthetic images in the official IDRiD layout."""
    root = tmp_path_factory.mktemp("synth-idrid")
    return write_dataset(root, n=8, size=128, seed=3, layout="idrid", workers=1, progress=False)


def tiny_model() -> torch.nn.Module:
    return create_model("drscreen_effnet", **{**MODELS.get("drscreen_effnet").metadata["tiny"], "encoder": "simple_cnn"})


def fundus(seed: int, size: int = 128) -> np.ndarray:
    return generate_fundus(size=size, seed=seed).image


def test_predictions_follow_the_clinical_rules() -> None:
    preprocess = PreprocessConfig(size=64, quality_gate=False)
    predictor = Predictor.from_model(tiny_model(), preprocess, dr_decoding="expected",
                                     operating_point=OperatingPoint(0.3), batch_size=2)  # fmt: skip
    images = [fundus(seed) for seed in range(3)]
    predictions = predictor.predict_arrays(images)
    assert len(predictions) == 3 and all(p.graded for p in predictions)
    dr = np.stack([p.dr_probs for p in predictions])
    dme = np.stack([p.dme_probs for p in predictions])
    np.testing.assert_allclose(dr.sum(axis=1), 1.0, atol=1e-12)
    assert [p.dr_grade for p in predictions] == decode_grades(dr, "expected").tolist()
    assert [p.dme_grade for p in predictions] == dme.argmax(axis=1).tolist()
    scores = referable_scores(dr, dme)
    np.testing.assert_allclose([p.referable_score for p in predictions], scores)
    assert [p.referable for p in predictions] == (scores >= 0.3).tolist()
    first = predictions[0]
    assert first.lesion_probs is not None and first.lesion_probs.shape == (5, 64, 64)
    assert first.lesion_classes == ("MA", "HE", "EX", "SE", "OD")
    original = first.lesion_probs_original()
    assert original is not None and original.shape == (5, *images[0].shape[:2])
    # Batching does not change a prediction.
    alone = predictor.predict_array(images[2])
    np.testing.assert_allclose(alone.dr_probs, predictions[2].dr_probs, atol=1e-6)


def test_referable_score_from_dr_only_ignores_the_dme_head() -> None:
    predictor = Predictor.from_model(tiny_model(), PreprocessConfig(size=64, quality_gate=False), referable_from=("dr",))
    prediction = predictor.predict_array(fundus(1))
    assert prediction.referable_score == pytest.approx(float(prediction.dr_probs[2:].sum()))


def test_images_the_gate_rejects_are_not_graded() -> None:
    predictor = Predictor.from_model(tiny_model(), PreprocessConfig(size=64, quality_gate=True))
    blank, photo = np.zeros((200, 200, 3), np.uint8), fundus(2, size=256)
    rejected, accepted = predictor.predict_arrays([blank, photo])
    assert not rejected.graded and rejected.dr_grade is None and rejected.referable is None
    assert rejected.prepared.quality is not None and not rejected.prepared.quality.usable
    assert accepted.graded and accepted.dr_grade is not None


def test_settings_are_validated() -> None:
    model = tiny_model()
    for bad in ({"dr_decoding": "median"}, {"tta": "rotations"}, {"referable_from": ("dme",)}, {"batch_size": 0}):
        with pytest.raises(ValueError):
            Predictor.from_model(model, PreprocessConfig(size=64), **bad)


def test_predict_files_reports_unreadable_files_and_goes_on(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), cv2.cvtColor(fundus(4), cv2.COLOR_RGB2BGR))
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    predictor = Predictor.from_model(tiny_model(), PreprocessConfig(size=64, quality_gate=False), batch_size=4)
    outcomes = list(predictor.predict_files([good, bad, good]))
    assert [o.path.name for o in outcomes] == ["good.png", "bad.jpg", "good.png"]
    assert outcomes[1].error is not None and outcomes[1].prediction is None
    assert outcomes[0].prediction is not None and outcomes[2].prediction is not None
    np.testing.assert_array_equal(outcomes[0].prediction.dr_probs, outcomes[2].prediction.dr_probs)


def test_config_evaluation_gives_the_predictors_probabilities(synth_root: Path, tmp_path: Path) -> None:
    """``drscreen evaluate CONFIG`` (the engine's cached, sharded path) and ``Predictor.predict_files``
    (the path screening takes) agree on every probability of every image."""
    model = tiny_model()
    checkpoint = tmp_path / "weights.pt"
    torch.save({"model": model.state_dict()}, checkpoint)
    raw = {
        "data": {"train": [{"name": "idrid-grading", "root": str(synth_root), "split": "train"}], "test": [{"name": "idrid-grading", "root": str(synth_root), "split": "test"},
                          {"name": "idrid-grading", "root": str(synth_root), "split": "train"}],
                 "preprocess": {"size": 64, "quality_gate": False},
                 "cache": {"enabled": True, "dir": str(tmp_path / "cache")}},
        "model": {"name": "drscreen_effnet", "tiny": True, "kwargs": {"encoder": "simple_cnn"}, "dr_decoding": "expected"},
        "optim": {"batch_size": 3},
        "train": {"device": "cpu", "workers": 0, "progress": False},
        "run": {"name": "eval", "dir": str(tmp_path / "runs")},
    }  # fmt: skip
    config = config_from_dict(raw)
    results = evaluate(config, checkpoint, split="test", n_bootstrap=0, out_dir=tmp_path / "out")
    with (tmp_path / "out" / "predictions.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert results["n_images"] == len(rows) == 8
    predictor = Predictor.from_model(model, PreprocessConfig.for_model(raw["data"]["preprocess"], model.normalization),
                                     dr_decoding="expected")  # fmt: skip
    paths = {sample.id: sample.image_path for sample in load_dataset("idrid-grading", synth_root)}
    for row in rows:
        prediction = predictor.predict_array(read_image(paths[row["id"]]))
        written = np.array([float(row[f"dr_prob_{g}"]) for g in range(5)])
        np.testing.assert_allclose(written, prediction.dr_probs, atol=6e-7)
        assert int(row["dr_pred"]) == prediction.dr_grade
        assert float(row["referable_score"]) == pytest.approx(
            float(referable_scores(prediction.dr_probs[None], prediction.dme_probs[None])[0]), abs=6e-7
        )


def test_packed_model_evaluation_skips_bad_files_and_keeps_what_it_computed(tmp_path: Path) -> None:
    images = tmp_path / "images"
    for grade in (0, 2):
        (images / str(grade)).mkdir(parents=True)
        for seed in range(2):
            image = fundus(10 * grade + seed, size=256)
            cv2.imwrite(str(images / str(grade) / f"g{grade}_{seed}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (images / "2" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "eval"
    results = evaluate_packed("folder", images, out, n_bootstrap=0, progress=False)
    assert results["n_images"] == 4 and results["n_unreadable"] == 1
    with (out / "errors.csv").open(newline="") as stream:
        (error,) = list(csv.DictReader(stream))
    assert error["file"].endswith("broken.png") and error["reason"]
    assert json.loads((out / "metrics.json").read_text())["model_info"]["name"] == "drscreen_default"
    predictor = Predictor.from_packed()
    with (out / "predictions.csv").open(newline="") as stream:
        for row in csv.DictReader(stream):
            path = images / row["dr_true"] / f"{row['id']}.png"
            expected = predictor.predict_array(read_image(path))
            np.testing.assert_allclose([float(row[f"dr_prob_{g}"]) for g in range(5)], expected.dr_probs, atol=6e-7)


def test_from_packed_reads_the_shipped_models_settings() -> None:
    packed = load_pretrained()
    predictor = Predictor.from_packed(operating_point="0.35")
    assert predictor.settings.dr_decoding == packed.dr_decoding
    assert predictor.settings.referable_from == ("dr",), "the shipped DME head is validated on synthetic data only"
    assert predictor.settings.operating_point.threshold == 0.35
    assert predictor.preprocessor.config == packed.photograph_preprocess
    gated = Predictor.from_packed(inputs="training", quality_gate=True)
    assert gated.preprocessor.config.quality_gate and gated.preprocessor.config.crop_to_fov == packed.preprocess.crop_to_fov
    assert isinstance(gated.backend, TorchBackend)
    with pytest.raises(ValueError, match="inputs"):
        Predictor.from_packed(inputs="camera")


def test_padded_batches_make_a_prediction_independent_of_its_batch_mates() -> None:
    predictor = Predictor.from_model(tiny_model(), PreprocessConfig(size=64, quality_gate=False), batch_size=4)
    prepared = [predictor.prepare(fundus(seed)) for seed in range(5)]
    together = predictor.predict_prepared(prepared, pad_batches=True)
    alone = predictor.predict_prepared([prepared[4]], pad_batches=True)[0]
    reordered = predictor.predict_prepared([prepared[4], *prepared[:3]], pad_batches=True)[0]
    assert np.array_equal(together[4].dr_probs, alone.dr_probs) and np.array_equal(alone.dr_probs, reordered.dr_probs)
    assert np.array_equal(together[4].lesion_probs, reordered.lesion_probs)


def test_the_shipped_model_refers_at_a_validated_sensitivity_that_users_can_move() -> None:
    info = load_pretrained().info
    curve, point = info["referable_curve"], info["operating_point"]
    assert len(curve["threshold"]) == len(curve["sensitivity"]) == len(curve["specificity"]) > 10
    assert point["sensitivity"] >= 0.9 and point["threshold"] in curve["threshold"]
    assert Predictor.from_packed().settings.operating_point.threshold == point["threshold"]
    stricter = Predictor.from_packed(operating_point="sensitivity=0.95").settings.operating_point
    assert stricter.threshold <= point["threshold"] and stricter.sensitivity >= 0.95


def test_packed_evaluation_scores_the_referral_at_the_models_operating_point(tmp_path: Path) -> None:
    images = tmp_path / "images"
    for grade in (0, 3):
        (images / str(grade)).mkdir(parents=True)
        image = fundus(30 + grade, size=256)
        cv2.imwrite(str(images / str(grade) / f"g{grade}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    results = evaluate_packed("folder", images, tmp_path / "eval", n_bootstrap=0, progress=False)
    packed_threshold = load_pretrained().info["operating_point"]["threshold"]
    assert results["referable"]["threshold"] == results["operating_point"]["threshold"] == packed_threshold
