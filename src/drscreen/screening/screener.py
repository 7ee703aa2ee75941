"""``Screener``: photographs in, one ``ImageResult`` per photograph out (nothing written to disk).

Settings go in the constructor (model, operating point, explanation, device, batch size);
``screen(inputs)`` then reads and prepares the photographs (``drscreen.screening.batch``: reduced
decoding, worker processes) while it predicts batch by batch through the inference core
(``drscreen.inference.Predictor``, quality gate always on), and finishes each image: retinal
landmarks, laterality check, lesion findings per region, the default explanation, provenance.
With a separate lesion model (by default the shipped ``drscreen_lesions.pt``: the grader's lesion
decoder fine-tuned at 512 px; or any packed segmenter, such as the ``u2net_xs`` of
``scripts/train_lesion_segmenter.sh``) the same reduced read is prepared a second time with that
model's preprocessing (512 px), and its maps, not the grader's, give the lesion findings, the
overlays and the optic disc of the landmarks.
What becomes files (JSON, CSV, overlays, HTML) is ``drscreen.report``'s business.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drscreen._version import __version__
from drscreen.explain import Explanation, explain_default
from drscreen.grading import DME_GRADE_NAMES, DR_GRADE_NAMES
from drscreen.inference import ONNX_RUNTIMES, Prediction, Predictor
from drscreen.io.draft import MIN_LONG_SIDE
from drscreen.models.pretrained import DEFAULT_LESION_MODEL_FILE, DEFAULT_MODEL_FILE, load_pretrained
from drscreen.preprocess import CropGeometry, PreparedImage
from drscreen.screening.batch import LoadFailure, PhotographLoader, PreparedPhotograph, default_workers
from drscreen.screening.findings import LESION_THRESHOLD, lesion_findings
from drscreen.screening.inputs import ScreeningInput
from drscreen.screening.landmarks import Landmarks, locate_landmarks
from drscreen.screening.schema import (
    SCHEMA_VERSION,
    ExplanationResult,
    GradeResult,
    ImageResult,
    LandmarkResult,
    LesionModelProvenance,
    Provenance,
    QualityResult,
    ReferableResult,
)

#: Runtimes a Screener can run the network on.
RUNTIMES: tuple[str, ...] = ("torch", *ONNX_RUNTIMES)
#: ``Screener(lesion_model=DEFAULT_LESION_MODEL)``: the shipped lesion model, ``DEFAULT_LESION_MODEL_FILE``.
DEFAULT_LESION_MODEL = "default"
#: Where JPEG files are decoded (``Screener(jpeg_decode=...)``).
JPEG_DECODERS: tuple[str, ...] = ("auto", "cpu", "device")
#: Laterality read from the image counts (for a warning or as the eye) from this confidence on.
LATERALITY_CONFIDENCE = 0.5

@dataclass
class ScreenedImage:
    """One screened photograph: its result and the arrays its overlays are drawn from.

    ``image``: (h, w, 3) uint8 RGB, the photograph reduced by an integer factor to at least the
    display size asked for (``drscreen.io.draft``; ``result.image_size`` is the original's).
    ``prepared``: the grading model's input. ``lesion_prepared``: the input the lesion maps and
    landmarks come from (the separate lesion model's, else ``prepared``); None for an image the
    quality gate rejected (not graded: no maps, no landmarks). ``lesion_probs``: (C, S', S')
    float32 in ``lesion_prepared``'s crop (channels ``lesion_classes``). ``landmarks``: disc and
    fovea in the same crop's pixels. ``saliency``: (S, S) float32 in [0, 1] in ``prepared``'s crop. Map
    crop arrays onto ``image`` with the geometry of the input they come from.
    """

    result: ImageResult
    image: np.ndarray
    prepared: PreparedImage
    lesion_classes: tuple[str, ...]
    lesion_probs: np.ndarray | None
    saliency: np.ndarray | None
    landmarks: Landmarks | None
    lesion_prepared: PreparedImage | None


@dataclass(frozen=True)
class ScreeningFailure:
    """An input that could not be screened: the input, a reason code and a message."""

    input: ScreeningInput
    code: str
    message: str


def content_sha256(item: ScreeningInput) -> str:
    """SHA-256 of the file's bytes, or of an in-memory image's shape and pixels."""
    digest = hashlib.sha256()
    if item.path is not None:
        with item.path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    else:
        assert item.image is not None
        digest.update(repr(item.image.shape).encode())
        digest.update(np.ascontiguousarray(item.image).tobytes())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return content_sha256(ScreeningInput(id="", path=path))


class Screener:
    """Screens photographs with a packed model.

    Args:
        model: packed model file (default: the shipped model).
        operating_point: a referable threshold or ``"sensitivity=0.9"`` (the packed validation
            curve); None: the packed operating point.
        explain: compute the default explanation (``drscreen.explain.explain_default``); it
            needs the PyTorch weights (a packed file), so an ONNX file alone is screened without.
        lesion_threshold: probability from which a lesion-map pixel is lesion.
        device, amp, batch_size: where and how the network runs.
        channels_last: run the PyTorch networks in NHWC memory format (faster convolutions on
            recent GPUs and CPUs; results equal up to float rounding).
        jpeg_decode: where JPEG files are decoded: ``"cpu"`` (DCT-scaled, in the worker
            processes), ``"device"`` (in batches by ``torchvision.io.decode_jpeg`` on ``device``:
            nvJPEG on a GPU; ``drscreen.screening.gpu``) or ``"auto"``: the device when it is a
            GPU, else the CPU. The two decoders differ by about one grey level, so the decoder is
            part of the settings every result records.
        runtime: ``"torch"``, ``"onnx"`` (ONNX Runtime, full precision only) or ``"openvino"``
            (OpenVINO, CPU; ``amp`` ``"bf16"`` for its bf16 precision): with the last two,
            ``model`` may be an ``.onnx`` file from ``drscreen export`` (``--int8`` too); a packed
            file is exported once and kept in the export cache (``drscreen.export.cached_onnx_export``).
        predictor: a ready predictor instead of ``model`` (its quality gate is forced on).
        lesion_model: the separate lesion segmenter whose maps give the lesion findings, the
            overlays and the optic disc: ``DEFAULT_LESION_MODEL`` (``"default"``: the shipped
            ``drscreen_lesions.pt``, better than the grading model's own maps in 5-fold
            cross-validation on real images; docs/model_card.md, "Lesion model"), a packed file, a
            ready ``Predictor``, or None to keep the grading model's own maps (one network, about
            a third of the CPU time). It runs on ``runtime`` too (a packed file is exported like
            ``model``).
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        operating_point: str | None = None,
        explain: bool = True,
        lesion_threshold: float = LESION_THRESHOLD,
        device: str = "cpu",
        amp: str = "fp32",
        batch_size: int = 8,
        runtime: str = "torch",
        predictor: Predictor | None = None,
        lesion_model: str | Path | Predictor | None = DEFAULT_LESION_MODEL,
        channels_last: bool = False,
        jpeg_decode: str = "auto",
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if jpeg_decode not in JPEG_DECODERS:
            raise ValueError(f"jpeg_decode must be one of {', '.join(JPEG_DECODERS)}, got {jpeg_decode!r}")
        exported = [str(m) for m in (model, lesion_model)
                    if isinstance(m, str | Path) and Path(m).suffix.lower() == ".onnx"]  # fmt: skip
        if exported and runtime not in ONNX_RUNTIMES:
            raise ValueError(
                f"{', '.join(exported)}: an .onnx file runs on runtime 'onnx' or 'openvino', not {runtime!r}"
            )
        explainer = None
        if predictor is None and runtime in ONNX_RUNTIMES:
            predictor, explainer = _onnx_predictor(model, operating_point, device, batch_size, explain, runtime, amp)
        elif predictor is None:
            predictor = Predictor.from_packed(
                model, quality_gate=True, operating_point=operating_point, device=device, amp=amp,
                channels_last=channels_last, batch_size=batch_size,
            )  # fmt: skip
        self.predictor = predictor.with_quality_gate(True)
        #: The separate lesion segmenter (None: the grading model's maps are used).
        self.lesion_predictor = _lesion_predictor(lesion_model, runtime, device, amp, batch_size, channels_last)
        #: The torch device that decodes JPEG files, or None: the CPU workers do.
        self.decode_device = _decode_device(jpeg_decode, device)
        #: The PyTorch network the explanations are computed on (None: no explanations).
        self.explainer = explainer or (predictor.packed.model if predictor.packed is not None else None)
        self.explain = explain and self.explainer is not None
        self.lesion_threshold = lesion_threshold
        info = predictor.info
        validated = info.get("validated_on_real_data", {})
        if self.lesion_predictor is not None:
            lesion_validated = self.lesion_predictor.info.get("validated_on_real_data", {})
            validated = {**validated, **{k: lesion_validated.get(k, False) for k in ("lesion_maps", "optic_disc")}}
        self.validated: dict[str, bool] = {
            "dr": bool(validated.get("dr_grade", False)),
            "referable": bool(validated.get("referable", False)),
            "dme": bool(validated.get("dme_grade", False)),
            "lesion_maps": bool(validated.get("lesion_maps", False)),
            "optic_disc": bool(validated.get("optic_disc", False)),
            "explanation": False,
        }
        weights = predictor.weights_path
        if weights is None and predictor.packed is not None:
            weights = DEFAULT_MODEL_FILE
        self.weights_sha256 = file_sha256(weights) if weights is not None and weights.is_file() else "unknown"
        self.model_name = str(info.get("name", "unnamed model"))
        self.model_version = None if info.get("version") is None else str(info["version"])
        self.settings: dict[str, Any] = {
            **predictor.settings.to_dict(),
            "runtime": type(predictor.backend).__name__,
            "precision": str(getattr(predictor.backend, "amp_dtype", None) or "fp32").removeprefix("torch."),
            "explain": self.explain,
            "lesion_threshold": lesion_threshold,
            "quality_gate": True,
            "jpeg_decoder": _decoder_name(self.decode_device),
        }
        self.preprocess = predictor.preprocessor.config.to_dict()
        self.lesion_provenance = None if self.lesion_predictor is None else _lesion_provenance(self.lesion_predictor)
        lesion_key = None if self.lesion_provenance is None else self.lesion_provenance.model_dump()
        key = json.dumps(
            [SCHEMA_VERSION, self.weights_sha256, self.preprocess, self.settings, lesion_key], sort_keys=True
        )
        #: Hash of everything that changes a result: a stored result with another key is redone.
        self.settings_key = hashlib.sha256(key.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------------------- screening
    def screen(
        self,
        inputs: Iterable[ScreeningInput],
        *,
        workers: int | None = None,
        display_size: int | None = MIN_LONG_SIDE,
        pad_batches: bool = True,
    ) -> Iterator[ScreenedImage | ScreeningFailure]:
        """Screen ``inputs`` batch by batch, yielding one outcome per input, in order.

        ``pad_batches``: every forward pass has ``batch_size`` images (zero-padded), so that an
        image's result does not depend on which images share its batch: a run resumed after a
        kill, or sharded over processes, gives exactly the uninterrupted run's results
        (``Predictor.predict_prepared``).

        Every input is read and prepared by ``drscreen.screening.batch.load_photograph`` (the one
        way a photograph becomes a network input), in ``workers`` processes when there are two
        inputs or more (None: ``default_workers()``; 0: in this process) while the network runs
        here. ``display_size``: smallest long side (px) of ``ScreenedImage.image`` (None: full
        resolution); results do not depend on it.
        """
        loader = PhotographLoader(
            self.predictor.preprocessor.config, content_sha256,
            workers=default_workers() if workers is None else workers, display_size=display_size,
            lesion_config=None if self.lesion_predictor is None else self.lesion_predictor.preprocessor.config,
            decode_device=self.decode_device,
        )  # fmt: skip
        batch: list[tuple[ScreeningInput, PreparedPhotograph]] = []
        for item, loaded in loader.load(inputs):
            if isinstance(loaded, LoadFailure):
                yield from self._finish(batch, pad_batches)
                batch = []
                yield ScreeningFailure(item, loaded.code, loaded.message)
                continue
            batch.append((item, loaded))
            if len(batch) >= self.predictor.settings.batch_size:
                yield from self._finish(batch, pad_batches)
                batch = []
        yield from self._finish(batch, pad_batches)

    def screen_one(self, item: ScreeningInput | np.ndarray) -> ScreenedImage | ScreeningFailure:
        """Screen one input (a record or an (H, W, 3) uint8 RGB array) in a batch of one: its
        probabilities may differ from a padded batch run's in the 7th decimal."""
        record = item if isinstance(item, ScreeningInput) else ScreeningInput(id="image", image=item)
        return next(iter(self.screen([record], workers=0, pad_batches=False)))

    def _finish(
        self, batch: list[tuple[ScreeningInput, PreparedPhotograph]], pad_batches: bool
    ) -> Iterator[ScreenedImage]:
        """Predict a batch and finish each image; an image's seconds: reading and preparing, its
        share of the forward pass, and its finishing."""
        if not batch:
            return
        started = time.perf_counter()
        predictions = self.predictor.predict_prepared([loaded.prepared for _, loaded in batch], pad_batches=pad_batches)
        lesion_predictions: list[Prediction | None] = [None] * len(batch)
        # The loader prepares the lesion model's view of every photograph the quality gate passed.
        views = {i: loaded.lesion for i, (_, loaded) in enumerate(batch) if loaded.lesion is not None}
        graded = [i for i, prediction in enumerate(predictions) if prediction.graded and i in views]
        if self.lesion_predictor is not None and graded:
            inputs = [views[i].prepared for i in graded]
            lesion_batch = self.lesion_predictor.predict_prepared(inputs, pad_batches=pad_batches)
            for i, lesion_prediction in zip(graded, lesion_batch, strict=True):
                lesion_predictions[i] = lesion_prediction
        forward_share = (time.perf_counter() - started) / len(batch)
        for (item, loaded), prediction, lesion_prediction in zip(batch, predictions, lesion_predictions, strict=True):
            seconds = time.perf_counter() - loaded.seconds - forward_share
            yield self._screened(item, loaded, prediction, lesion_prediction, seconds)

    def _screened(
        self,
        item: ScreeningInput,
        loaded: PreparedPhotograph,
        prediction: Prediction,
        lesion_prediction: Prediction | None,
        started: float,
    ) -> ScreenedImage:
        """``lesion_prediction``: the lesion model's, for a graded image when there is one; the
        lesion maps, landmarks and findings then live in its crop (``loaded.lesion``)."""
        prepared = loaded.prepared
        maps = prediction if lesion_prediction is None else lesion_prediction
        lesion_prepared, lesion_original = prepared, loaded.original_geometry
        if lesion_prediction is not None and loaded.lesion is not None:
            lesion_prepared, lesion_original = loaded.lesion.prepared, loaded.lesion.original_geometry
        warnings: list[str] = []
        landmarks = explanation = None
        lesion_probs = maps.lesion_probs
        classes = maps.lesion_classes
        if prediction.graded:
            disc = lesion_probs[classes.index("OD")] if lesion_probs is not None and "OD" in classes else None
            landmarks = locate_landmarks(lesion_prepared.display, lesion_prepared.fov_mask, disc)
            if self.explain and self.explainer is not None:
                explanation = explain_default(self.explainer, prepared.tensor)
                if explanation.degenerate:
                    warnings.append("no explanation method gave a usable map: " + "; ".join(explanation.skipped))
        laterality, source = item.laterality, item.laterality_source
        if landmarks is not None and landmarks.laterality is not None:
            seen = landmarks.laterality_confidence >= LATERALITY_CONFIDENCE
            if laterality is None and seen:
                laterality, source = landmarks.laterality, "image"
            elif laterality is not None and seen and landmarks.laterality != laterality:
                warnings.append(
                    f"laterality {laterality} (from the {source.replace('_', ' ') if source else 'input'}) disagrees "
                    f"with the image (optic disc {'right' if landmarks.laterality == 'R' else 'left'} of the fovea "
                    f"suggests {landmarks.laterality}, confidence {landmarks.laterality_confidence:.2f})"
                )
        result = ImageResult(
            id=item.id,
            source=None if item.path is None else str(item.path),
            content_sha256=loaded.digest,
            image_size=(int(loaded.original_size[1]), int(loaded.original_size[0])),
            patient_id=item.patient_id,
            laterality=laterality,
            laterality_source=source,
            visit=item.visit,
            field=item.field,
            status="screened" if prediction.graded else "ungradable",
            quality=self._quality(prepared),
            dr=self._grade(prediction.dr_grade, prediction.dr_probs, DR_GRADE_NAMES, self.validated["dr"]),
            dme=self._grade(prediction.dme_grade, prediction.dme_probs, DME_GRADE_NAMES, self.validated["dme"]),
            referable=self._referable(prediction),
            lesions=self._findings(maps, lesion_prepared, landmarks, lesion_original) if prediction.graded else [],
            landmarks=None if landmarks is None else _landmark_result(landmarks.to_original(lesion_original)),
            explanation=None if explanation is None else _explanation_result(explanation),
            overlays={},
            warnings=warnings,
            validated_on_real_data=dict(self.validated),
            provenance=self._provenance(time.perf_counter() - started),
        )
        return ScreenedImage(
            result=result, image=loaded.image, prepared=prepared, lesion_classes=classes,
            lesion_probs=lesion_probs if prediction.graded else None,
            saliency=None if explanation is None or explanation.degenerate else explanation.map,
            landmarks=landmarks, lesion_prepared=lesion_prepared if prediction.graded else None,
        )  # fmt: skip

    # --------------------------------------------------------------------------------- parts
    @staticmethod
    def _quality(prepared: PreparedImage) -> QualityResult:
        report = prepared.quality
        assert report is not None, "the screener always runs the quality gate"
        measures = {k: (None if not np.isfinite(v) else float(v)) for k, v in report.measurements.items()}
        return QualityResult(gradable=report.usable, reasons=[r.value for r in report.reasons], measures=measures)

    @staticmethod
    def _grade(grade: int | None, probs: np.ndarray | None, names: dict[int, str], validated: bool) -> GradeResult | None:
        if grade is None or probs is None:
            return None
        return GradeResult(grade=grade, name=names[grade], probabilities=[round(float(p), 6) for p in probs],
                           validated_on_real_data=validated)  # fmt: skip

    def _referable(self, prediction: Prediction) -> ReferableResult | None:
        if prediction.referable_score is None or prediction.referable is None:
            return None
        settings = self.predictor.settings
        return ReferableResult(
            score=round(prediction.referable_score, 6),
            referable=prediction.referable,
            threshold=settings.operating_point.threshold,
            operating_point=settings.operating_point.source,
            from_grades=list(settings.referable_from),
            validated_on_real_data=self.validated["referable"],
        )

    def _findings(
        self, maps: Prediction, prepared: PreparedImage, landmarks: Landmarks | None, original: CropGeometry
    ) -> list[Any]:
        """Region findings of ``maps`` (whose input is ``prepared``, landmarks in its crop); areas
        in the original photograph's pixels (``original``: that crop there)."""
        if maps.lesion_probs is None:
            return []
        return lesion_findings(
            maps.lesion_probs, maps.lesion_classes, landmarks, prepared.fov_mask,
            original.scale, self.validated, self.lesion_threshold,
        )  # fmt: skip

    def _provenance(self, seconds: float) -> Provenance:
        return Provenance(
            drscreen_version=__version__,
            model_name=self.model_name,
            model_version=self.model_version,
            weights_sha256=self.weights_sha256,
            runtime=type(self.predictor.backend).__name__,
            preprocess=self.preprocess,
            settings=self.settings,
            lesion_model=self.lesion_provenance,
            settings_key=self.settings_key,
            seconds=round(seconds, 4),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )


def _decode_device(jpeg_decode: str, device: str) -> str | None:
    """The device ``Screener(jpeg_decode=...)`` decodes JPEG files on; None for the CPU workers."""
    if jpeg_decode == "device" or (jpeg_decode == "auto" and torch.device(device).type == "cuda"):
        return device
    return None


def _decoder_name(decode_device: str | None) -> str:
    """``"cpu"`` (the workers' DCT-scaled decode) or ``"torchvision-<device type>"``."""
    return "cpu" if decode_device is None else f"torchvision-{torch.device(decode_device).type}"


def _lesion_predictor(
    lesion_model: str | Path | Predictor | None,
    runtime: str,
    device: str,
    amp: str,
    batch_size: int,
    channels_last: bool = False,
) -> Predictor | None:
    """The separate lesion model's predictor (quality gate off: the grader's gate decides), or None."""
    if lesion_model is None:
        return None
    if isinstance(lesion_model, Predictor):
        return lesion_model.with_quality_gate(False)
    if lesion_model == DEFAULT_LESION_MODEL:
        lesion_model = DEFAULT_LESION_MODEL_FILE
    if runtime in ONNX_RUNTIMES:
        predictor, _ = _onnx_predictor(
            lesion_model, None, device, batch_size, explain=False, runtime=runtime, amp=amp, quality_gate=False
        )
        return predictor
    return Predictor.from_packed(
        lesion_model, quality_gate=False, device=device, amp=amp, channels_last=channels_last, batch_size=batch_size
    )


def _lesion_provenance(predictor: Predictor) -> LesionModelProvenance:
    """Name, version, weights hash, runtime and preprocessing of the lesion model."""
    weights = predictor.weights_path
    return LesionModelProvenance(
        model_name=str(predictor.info.get("name", "unnamed model")),
        model_version=None if predictor.info.get("version") is None else str(predictor.info["version"]),
        weights_sha256=file_sha256(weights) if weights is not None and weights.is_file() else "unknown",
        runtime=type(predictor.backend).__name__,
        preprocess=predictor.preprocessor.config.to_dict(),
    )


def _onnx_predictor(
    model: str | Path | None,
    operating_point: str | None,
    device: str,
    batch_size: int,
    explain: bool,
    runtime: str = "onnx",
    amp: str = "fp32",
    quality_gate: bool = True,
) -> tuple[Predictor, Any]:
    """A predictor of ``runtime`` (``ONNX_RUNTIMES``) for ``model`` (an ``.onnx`` file, or a
    packed file, None: the shipped one, exported once into the export cache) and the PyTorch
    network for explanations (None for a bare ``.onnx`` file). ``weights_path`` is the file the
    user named (the packed file, not its export). ``amp``: the precision (ONNX Runtime refuses
    anything but full)."""
    options = {"quality_gate": quality_gate, "operating_point": operating_point, "device": device,
               "batch_size": batch_size, "runtime": runtime, "amp": amp}  # fmt: skip
    if model is not None and Path(model).suffix.lower() == ".onnx":
        return Predictor.from_onnx(model, **options), None
    from drscreen.export import cached_onnx_export, export_model

    packed_file = Path(model) if model is not None else DEFAULT_MODEL_FILE
    try:
        predictor = Predictor.from_onnx(cached_onnx_export(packed_file), **options)
    except OSError:  # no writable cache folder: export for this run only
        with tempfile.TemporaryDirectory(prefix="drscreen-onnx-") as folder:  # the runtime keeps the model in memory
            onnx_file = Path(folder) / "model.onnx"
            export_model(packed_file, onnx_file, "onnx")
            predictor = Predictor.from_onnx(onnx_file, **options)
    predictor.weights_path = packed_file  # the packed file the ONNX model was exported from
    return predictor, load_pretrained(packed_file).model if explain else None


def _landmark_result(landmarks: Landmarks) -> LandmarkResult:
    return LandmarkResult(
        disc_center=(round(landmarks.disc_center[0], 1), round(landmarks.disc_center[1], 1)),
        disc_diameter_px=round(landmarks.disc_diameter, 1),
        disc_confidence=round(landmarks.disc_confidence, 3),
        disc_source=landmarks.disc_source,
        fovea_center=(round(landmarks.fovea_center[0], 1), round(landmarks.fovea_center[1], 1)),
        fovea_confidence=round(landmarks.fovea_confidence, 3),
        laterality=landmarks.laterality,
        laterality_confidence=round(landmarks.laterality_confidence, 3),
    )


def _explanation_result(explanation: Explanation) -> ExplanationResult:
    return ExplanationResult(
        method=explanation.method, target=explanation.target, settings=dict(explanation.settings),
        degenerate=explanation.degenerate, fallback=explanation.fallback, skipped=list(explanation.skipped),
    )  # fmt: skip
