"""The Screener with a separate lesion model: its maps (in its own crop) give findings, overlays and the disc."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from drscreen.grading import SEGMENTATION_CLASSES
from drscreen.inference import Predictor, TorchBackend
from drscreen.models import create_model
from drscreen.models.base import DRModel
from drscreen.models.output import ModelOutput
from drscreen.models.pretrained import pack_checkpoint
from drscreen.preprocess import PreprocessConfig
from drscreen.report.overlays import overlay_layers
from drscreen.screening import ScreenedImage, Screener, ScreeningInput
from drscreen.screening.batch import PreparedPhotograph, load_photograph
from drscreen.screening.findings import lesion_findings
from drscreen.screening.screener import content_sha256
from drscreen.synth import generate_fundus

#: Input side of the stub lesion model (the grader's is 224).
LESION_SIZE = 320
#: Where the stub draws its optic disc and an exudate, as fractions of its crop: (x, y, radius).
DISC = (0.3, 0.5, 0.07)
EXUDATE = (0.6, 0.45, 0.03)


class BlobSegmenter(DRModel):
    """Sigmoid maps (B, 5, S, S) with a disc on channel OD and an exudate on EX, nothing else."""

    lesion_classes = SEGMENTATION_CLASSES

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, images: Tensor) -> ModelOutput:
        batch, _, height, width = images.shape
        ys, xs = torch.meshgrid(torch.arange(height) / height, torch.arange(width) / width, indexing="ij")
        logits = torch.full((batch, len(self.lesion_classes), height, width), -8.0)
        for code, (x, y, r) in (("OD", DISC), ("EX", EXUDATE)):
            inside = ((xs - x) ** 2 + (ys - y) ** 2) <= r * r
            logits[:, self.lesion_classes.index(code)][:, inside] = 8.0
        return ModelOutput(lesion_logits=logits * self.scale)


@pytest.fixture(scope="module")
def lesion_predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    weights = tmp_path_factory.mktemp("lesion") / "blob.pt"
    model = BlobSegmenter()
    torch.save(model.state_dict(), weights)
    preprocess = PreprocessConfig.for_model(
        {"size": LESION_SIZE, "crop_to_fov": True, "quality_gate": False}, model.normalization
    )
    info = {
        "name": "blob-lesions",
        "version": "0",
        "validated_on_real_data": {"lesion_maps": False, "optic_disc": True},
    }
    return Predictor(TorchBackend(model), preprocess, weights_path=weights, info=info)


@pytest.fixture(scope="module")
def photograph() -> np.ndarray:
    return generate_fundus(seed=3, size=600, target_dr=2).image


def test_the_lesion_model_gives_findings_landmarks_and_provenance(
    lesion_predictor: Predictor, photograph: np.ndarray
) -> None:
    screener = Screener(explain=False, lesion_model=lesion_predictor)
    screened = screener.screen_one(photograph)
    assert isinstance(screened, ScreenedImage) and screened.result.status == "screened"
    assert screened.prepared.display.shape[:2] == (224, 224)
    assert screened.lesion_prepared is not None and screened.lesion_prepared.display.shape[:2] == (LESION_SIZE,) * 2
    assert screened.lesion_probs is not None and screened.lesion_probs.shape == (5, LESION_SIZE, LESION_SIZE)

    # The disc comes from the lesion model's map, mapped from its crop to the photograph.
    landmarks = screened.result.landmarks
    assert landmarks is not None and landmarks.disc_source == "model"
    expected = screened.lesion_prepared.geometry.points_to_original(
        np.array([[DISC[0] * LESION_SIZE, DISC[1] * LESION_SIZE]])
    )[0]
    assert np.allclose(landmarks.disc_center, expected, atol=2.0)

    # Findings: the lesion model's maps on its own field of view, areas in original pixels.
    assert screened.landmarks is not None
    geometry = screened.lesion_prepared.geometry  # the display frame is the photograph here (not reduced)
    findings = lesion_findings(screened.lesion_probs, SEGMENTATION_CLASSES, screened.landmarks,
                               screened.lesion_prepared.fov_mask, geometry.scale, screener.validated)  # fmt: skip
    assert findings == screened.result.lesions
    exudates = [f for f in screened.result.lesions if f.code == "EX" and f.count]
    assert sum(f.count for f in exudates) == 1
    area = np.pi * (EXUDATE[2] * LESION_SIZE) ** 2 / geometry.scale**2
    assert sum(f.area_px for f in exudates) == pytest.approx(area, rel=0.15)
    disc = next(f for f in screened.result.lesions if f.code == "OD")
    assert disc.validated_on_real_data and not exudates[0].validated_on_real_data

    provenance = screened.result.provenance.lesion_model
    assert lesion_predictor.weights_path is not None and provenance is not None
    assert provenance.model_name == "blob-lesions"
    assert provenance.weights_sha256 == hashlib.sha256(Path(lesion_predictor.weights_path).read_bytes()).hexdigest()
    assert provenance.preprocess["size"] == LESION_SIZE
    assert screened.result.provenance.weights_sha256 != provenance.weights_sha256

    # Overlays: the exudate layer lies where the lesion model put it on the photograph.
    layers = overlay_layers(screened, screener.lesion_threshold, size=None)
    ys, xs = np.nonzero(layers["lesions"][..., 3])
    centre = geometry.points_to_original(np.array([[EXUDATE[0] * LESION_SIZE, EXUDATE[1] * LESION_SIZE]]))[0]
    assert np.allclose([xs.mean(), ys.mean()], centre, atol=2.0)


def test_without_a_lesion_model_the_grader_maps_are_used(lesion_predictor: Predictor, photograph: np.ndarray) -> None:
    grader_only = Screener(explain=False, lesion_model=None)
    screened = grader_only.screen_one(photograph)
    assert isinstance(screened, ScreenedImage)
    assert screened.result.provenance.lesion_model is None and screened.lesion_prepared is screened.prepared
    assert screened.lesion_probs is not None and screened.lesion_probs.shape[-1] == 224
    assert grader_only.settings_key != Screener(explain=False, lesion_model=lesion_predictor).settings_key


def test_the_batch_path_with_a_lesion_model_gives_the_one_image_results(lesion_predictor: Predictor) -> None:
    """Three photographs and, between them, a blank image the quality gate rejects."""
    screener = Screener(explain=False, lesion_model=lesion_predictor, batch_size=2)
    inputs = [ScreeningInput(id=f"s{seed}", image=generate_fundus(seed=seed, size=512).image) for seed in range(3)]
    inputs.insert(1, ScreeningInput(id="blank", image=np.full((480, 640, 3), 128, np.uint8)))
    batched = list(screener.screen(inputs, workers=2))
    for many, item in zip(batched, inputs, strict=True):
        one = screener.screen_one(item)
        assert isinstance(many, ScreenedImage) and isinstance(one, ScreenedImage)
        assert many.result.status == one.result.status == ("ungradable" if item.id == "blank" else "screened")
        assert many.result.lesions == one.result.lesions and many.result.landmarks == one.result.landmarks
        if item.id == "blank":
            assert many.lesion_probs is None and one.lesion_probs is None
            continue
        assert many.lesion_probs is not None and one.lesion_probs is not None
        assert np.abs(many.lesion_probs - one.lesion_probs).max() <= 1e-5


def test_a_rejected_photograph_gets_no_lesion_view(lesion_predictor: Predictor) -> None:
    """The lesion model's input is prepared only for photographs the quality gate passed."""
    screener = Screener(explain=False, lesion_model=lesion_predictor)
    config, lesion_config = screener.predictor.preprocessor.config, lesion_predictor.preprocessor.config
    blank = ScreeningInput(id="blank", image=np.full((480, 640, 3), 128, np.uint8))
    fundus = ScreeningInput(id="fundus", image=generate_fundus(seed=3, size=512).image)
    rejected = load_photograph(blank, config, content_sha256, lesion_config=lesion_config)
    passed = load_photograph(fundus, config, content_sha256, lesion_config=lesion_config)
    assert isinstance(rejected, PreparedPhotograph) and not rejected.prepared.usable and rejected.lesion is None
    assert isinstance(passed, PreparedPhotograph) and passed.prepared.usable and passed.lesion is not None

    screened = screener.screen_one(blank)
    assert isinstance(screened, ScreenedImage) and screened.result.status == "ungradable"
    assert screened.lesion_prepared is None and screened.lesion_probs is None and screened.landmarks is None
    assert overlay_layers(screened, screener.lesion_threshold, size=None) == {}


def test_a_packed_u2net_lesion_model_screens_on_torch_and_onnx(
    photograph: np.ndarray, tmp_path: Path
) -> None:
    """A packed ``u2net_xs`` (random weights) as the lesion model, exported with the grader for ``--runtime onnx``."""
    classes = list(SEGMENTATION_CLASSES)
    model = create_model("u2net_xs", lesions=classes, pretrained=False)
    checkpoint = {
        "model": model.state_dict(),
        "config": {"model": {"name": "u2net_xs", "kwargs": {"lesions": classes}},
                   "data": {"preprocess": {"size": 256, "crop_to_fov": True, "enhancement": "clahe"}}},
    }  # fmt: skip
    info = {"name": "test-u2net", "version": "0", "validated_on_real_data": {"lesion_maps": False, "optic_disc": False}}
    packed = pack_checkpoint(checkpoint, tmp_path / "lesions.pt", info=info)
    outcomes = {}
    for runtime in ("torch", "onnx"):
        screener = Screener(explain=False, runtime=runtime, lesion_model=packed)
        outcome = screener.screen_one(photograph)
        assert isinstance(outcome, ScreenedImage) and outcome.lesion_prepared is not None
        provenance = outcome.result.provenance.lesion_model
        assert provenance is not None and provenance.model_name == "test-u2net"
        assert provenance.runtime == ("OnnxBackend" if runtime == "onnx" else "TorchBackend")
        assert provenance.preprocess["size"] == 256 and outcome.lesion_prepared.display.shape[:2] == (256, 256)
        outcomes[runtime] = outcome
    torch_maps, onnx_maps = outcomes["torch"].lesion_probs, outcomes["onnx"].lesion_probs
    assert torch_maps is not None and onnx_maps is not None
    assert np.abs(torch_maps - onnx_maps).max() < 1e-3
    assert outcomes["torch"].result.provenance.lesion_model == outcomes[
        "onnx"
    ].result.provenance.lesion_model.model_copy(update={"runtime": "TorchBackend"})


def test_the_shipped_lesion_model_is_the_default(photograph: np.ndarray) -> None:
    """``Screener()`` runs the packed ``drscreen_lesions.pt`` at 512 px; its disc is validated on real data."""
    from drscreen.models.pretrained import DEFAULT_LESION_MODEL_FILE

    screener = Screener(explain=False)
    assert screener.lesion_predictor is not None
    assert screener.lesion_predictor.preprocessor.config.size == 512
    screened = screener.screen_one(photograph)
    assert isinstance(screened, ScreenedImage) and screened.lesion_probs is not None
    assert screened.lesion_probs.shape[-1] == 512
    provenance = screened.result.provenance.lesion_model
    assert provenance is not None and provenance.model_name == "drscreen_lesion_decoder"
    assert provenance.weights_sha256 == hashlib.sha256(DEFAULT_LESION_MODEL_FILE.read_bytes()).hexdigest()
    assert screener.validated["optic_disc"] and not screener.validated["lesion_maps"]
