"""``Predictor``: the one place where a network's output becomes a per-image prediction.

Settings go in the constructor; a predictor is made from a packed model
(``Predictor.from_packed``) or from a live network plus its preprocessing
(``Predictor.from_model``, what the trainer's validation uses), then predicts from files,
arrays or already prepared batches. Preprocessing is the one ``Preprocessor``; the network runs
behind an ``InferenceBackend``; probabilities come from ``drscreen.inference.probabilities`` and
grades, the referable score and the referral decision from the clinical rules in
``drscreen.grading``. The screening pipeline, ``drscreen evaluate``, the engine and the
benchmarks all call it, so none of them computes a probability of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from drscreen.grading import OperatingPoint, decode_grades, referable_scores
from drscreen.inference.backends import InferenceBackend, TorchBackend
from drscreen.inference.onnx_backend import DEVICE_PROVIDERS, OnnxBackend
from drscreen.inference.openvino_backend import OpenVinoBackend
from drscreen.inference.probabilities import (
    TTA_FLIPS,
    amp_dtype_for,
    grade_probabilities,
    lesion_probabilities,
    tta_forward,
)
from drscreen.io import InputError
from drscreen.io.draft import read_reduced, reduce_photograph
from drscreen.models import ModelOutput
from drscreen.models.pretrained import PretrainedModel, load_pretrained
from drscreen.preprocess import PreparedImage, PreprocessConfig, Preprocessor
from drscreen.preprocess.photograph import prepare_photograph

#: Which grades the referable score combines (``Predictor(referable_from=...)``).
REFERABLE_SOURCES: tuple[tuple[str, ...], ...] = (("dr",), ("dr", "dme"))


@dataclass
class BatchProbabilities:
    """Probabilities of one batch, float32 tensors on the backend's device.

    ``dr`` (B, 5), ``dme`` (B, 3), ``lesions`` (B, C, S, S) in the crop geometry (``None`` where the
    model lacks the head or lesions were not asked for); ``output``: the averaged ``ModelOutput``
    they came from (for a loss).
    """

    dr: Tensor | None
    dme: Tensor | None
    lesions: Tensor | None
    output: ModelOutput


@dataclass
class Prediction:
    """The prediction for one image.

    Attributes:
        prepared: the preprocessed image (crop geometry, field of view, quality report).
        graded: False when the quality gate rejected the image; then every grade field is None.
        dr_probs: (5,) float64 ICDR grade probabilities.
        dr_grade: the grade read from ``dr_probs`` with the predictor's ``dr_decoding``.
        dme_probs: (3,) float64 IDRiD DME-risk probabilities; ``dme_grade`` their arg-max.
        referable_score: probability of referable disease (``drscreen.grading.referable_scores``).
        referable: ``referable_score >= operating_point.threshold``.
        lesion_classes: channel codes of ``lesion_probs``.
        lesion_probs: (C, S, S) float32 lesion probabilities in the crop geometry.
    """

    prepared: PreparedImage
    graded: bool
    dr_probs: np.ndarray | None = None
    dr_grade: int | None = None
    dme_probs: np.ndarray | None = None
    dme_grade: int | None = None
    referable_score: float | None = None
    referable: bool | None = None
    lesion_classes: tuple[str, ...] = ()
    lesion_probs: np.ndarray | None = None

    def lesion_probs_original(self) -> np.ndarray | None:
        """(C, H, W) float32 lesion probabilities in the original image's geometry (zeros outside the crop)."""
        if self.lesion_probs is None:
            return None
        return self.prepared.geometry.to_original(self.lesion_probs, "linear", channels_first=True)


@dataclass
class FileOutcome:
    """What became of one input file: a ``prediction``, or the ``error`` that stopped it."""

    path: Path
    prediction: Prediction | None = None
    error: InputError | None = None


#: Runtimes that run an exported ONNX file (``Predictor.from_onnx``): ONNX Runtime and OpenVINO.
ONNX_RUNTIMES: tuple[str, ...] = ("onnx", "openvino")


def onnx_file_backend(
    path: str | Path, runtime: str, *, device: str = "cpu", providers: Sequence[str] | None = None, amp: str = "fp32"
) -> OnnxBackend | OpenVinoBackend:
    """The backend of ``runtime`` (``ONNX_RUNTIMES``) for the exported ONNX file at ``path``."""
    if runtime == "openvino":
        if device != "cpu" or providers is not None:
            raise ValueError(f"OpenVINO runs on the CPU here; device {device!r} and providers need runtime='onnx'")
        return OpenVinoBackend(path, amp=amp)
    if runtime != "onnx":
        raise ValueError(f"runtime must be one of {', '.join(ONNX_RUNTIMES)}, got {runtime!r}")
    if providers is None and device not in DEVICE_PROVIDERS:
        raise ValueError(f"device must be one of {sorted(DEVICE_PROVIDERS)} for ONNX Runtime, got {device!r}")
    if amp_dtype_for(amp, torch.device(device)) is not None:
        raise ValueError(f"ONNX Runtime runs exported files in full precision; amp {amp!r} needs runtime='openvino'")
    return OnnxBackend(path, providers=providers or DEVICE_PROVIDERS[device])


@dataclass
class PredictorSettings:
    """The settings that change a prediction (recorded as provenance by the callers).

    Attributes:
        dr_decoding: how the DR grade is read (``drscreen.grading.GRADE_DECODINGS``).
        operating_point: where the referable score becomes a referral.
        referable_from: the grades the referable score combines: ``("dr",)`` or ``("dr", "dme")``.
        tta: test-time augmentation, a key of ``TTA_FLIPS``.
        batch_size: images per forward.
        lesions: compute lesion probability maps (when the model has a lesion head).
        grade_ungradable: also grade images the quality gate rejected (research use; screening never does).
    """

    dr_decoding: str = "argmax"
    operating_point: OperatingPoint = field(default_factory=OperatingPoint)
    referable_from: tuple[str, ...] = ("dr", "dme")
    tta: str = "none"
    batch_size: int = 16
    lesions: bool = True
    grade_ungradable: bool = False

    def __post_init__(self) -> None:
        decode_grades(np.ones((1, 2)) / 2, self.dr_decoding)  # validates the name
        if tuple(self.referable_from) not in REFERABLE_SOURCES:
            raise ValueError(f"referable_from must be one of {REFERABLE_SOURCES}, got {self.referable_from!r}")
        if self.tta not in TTA_FLIPS:
            raise ValueError(f"unknown test-time augmentation {self.tta!r}; known: {', '.join(TTA_FLIPS)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        point = self.operating_point
        return {
            "dr_decoding": self.dr_decoding,
            "operating_point": {"threshold": point.threshold, "source": point.source,
                                "sensitivity": point.sensitivity, "specificity": point.specificity},
            "referable_from": list(self.referable_from),
            "tta": self.tta,
            "batch_size": self.batch_size,
        }  # fmt: skip


class Predictor:
    """Preprocess -> network -> probabilities -> grades, referable decision and lesion maps.

    Args:
        backend: runs the network (``TorchBackend`` or another ``InferenceBackend``).
        preprocess: how an image becomes the network's input (``PreprocessConfig``).
        settings: decoding, operating point, TTA, batch size (``PredictorSettings``).
        packed: the packed PyTorch model this predictor was loaded from, if any.
        weights_path: the file the weights came from, if any (hashed for provenance by callers).
        info: the model card data (name, version, which outputs were validated on real data,
            operating point); default: ``packed.info``, else empty.
    """

    def __init__(
        self,
        backend: InferenceBackend,
        preprocess: PreprocessConfig,
        settings: PredictorSettings | None = None,
        *,
        packed: PretrainedModel | None = None,
        weights_path: Path | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.preprocessor = Preprocessor(preprocess)
        self.settings = settings or PredictorSettings()
        self.packed = packed
        self.weights_path = weights_path
        self.info: dict[str, Any] = dict(info if info is not None else (packed.info if packed is not None else {}))

    # ---------------------------------------------------------------------------- building
    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        preprocess: PreprocessConfig,
        *,
        device: str | torch.device = "cpu",
        amp: str = "fp32",
        channels_last: bool = False,
        **settings: Any,
    ) -> Predictor:
        """A predictor around a live network (``settings``: ``PredictorSettings`` fields)."""
        backend = TorchBackend(model, device=device, amp=amp, channels_last=channels_last)
        return cls(backend, preprocess, PredictorSettings(**settings))

    @classmethod
    def from_packed(
        cls,
        path: str | Path | None = None,
        *,
        inputs: str = "photograph",
        quality_gate: bool | None = None,
        operating_point: str | OperatingPoint | None = None,
        device: str | torch.device = "cpu",
        amp: str = "fp32",
        channels_last: bool = False,
        **settings: Any,
    ) -> Predictor:
        """A predictor for the packed model at ``path`` (default: the shipped model).

        Args:
            inputs: ``"photograph"`` (camera photographs: the packed ``photograph_preprocess``)
                or ``"training"`` (inputs prepared like the model's training images).
            quality_gate: force the quality gate on or off (``None``: as packed).
            operating_point: a threshold or ``"sensitivity=0.9"`` (``OperatingPoint.parse`` on the
                packed validation curve); ``None``: the packed operating point, else 0.5.
            settings: other ``PredictorSettings`` fields; ``dr_decoding`` defaults to the packed
                one, ``referable_from`` to the grades validated on real data.
        """
        if inputs not in ("photograph", "training"):
            raise ValueError(f"inputs must be 'photograph' or 'training', got {inputs!r}")
        packed = load_pretrained(path, device=device)
        preprocess = packed.photograph_preprocess if inputs == "photograph" else packed.preprocess
        if quality_gate is not None:
            preprocess = replace(preprocess, quality_gate=quality_gate)
        settings.setdefault("dr_decoding", packed.dr_decoding)
        settings.setdefault("referable_from", packed_referable_sources(packed.info))
        settings["operating_point"] = packed_operating_point(packed.info, operating_point)
        backend = TorchBackend(packed.model, device=device, amp=amp, channels_last=channels_last)
        weights = Path(path) if path is not None else None
        return cls(backend, preprocess, PredictorSettings(**settings), packed=packed, weights_path=weights)

    @classmethod
    def from_onnx(
        cls,
        path: str | Path,
        *,
        inputs: str = "photograph",
        quality_gate: bool | None = None,
        operating_point: str | OperatingPoint | None = None,
        device: str = "cpu",
        providers: Sequence[str] | None = None,
        runtime: str = "onnx",
        amp: str = "fp32",
        **settings: Any,
    ) -> Predictor:
        """A predictor for an ONNX file written by ``drscreen export``, run by ONNX Runtime or OpenVINO.

        The preprocessing, DR decoding, operating point and referable sources come from the
        file's metadata exactly as ``from_packed`` takes them from the packed file; ``inputs``,
        ``quality_gate``, ``operating_point`` and ``settings`` mean what they mean there.
        ``runtime``: ``"onnx"`` (ONNX Runtime, ``OnnxBackend``; ``device`` ``"cpu"`` or ``"cuda"``,
        the providers of ``DEVICE_PROVIDERS``, unless ``providers`` names them; full precision) or
        ``"openvino"`` (``OpenVinoBackend``, CPU only; ``amp`` ``"bf16"`` for its bf16 precision).
        ``packed`` stays ``None``; ``weights_path`` is ``path``.
        """
        if inputs not in ("photograph", "training"):
            raise ValueError(f"inputs must be 'photograph' or 'training', got {inputs!r}")
        backend = onnx_file_backend(path, runtime, device=device, providers=providers, amp=amp)
        exported = backend.metadata
        preprocess = exported.photograph_preprocess if inputs == "photograph" else exported.preprocess
        if quality_gate is not None:
            preprocess = replace(preprocess, quality_gate=quality_gate)
        settings.setdefault("dr_decoding", exported.dr_decoding)
        settings.setdefault("referable_from", packed_referable_sources(exported.info))
        settings["operating_point"] = packed_operating_point(exported.info, operating_point)
        return cls(backend, preprocess, PredictorSettings(**settings), weights_path=Path(path), info=exported.info)

    def with_quality_gate(self, enabled: bool) -> Predictor:
        """This predictor with the quality gate on or off (itself when it already is so)."""
        config = self.preprocessor.config
        if config.quality_gate == enabled:
            return self
        return Predictor(self.backend, replace(config, quality_gate=enabled), self.settings,
                         packed=self.packed, weights_path=self.weights_path, info=self.info)  # fmt: skip

    # ---------------------------------------------------------------------------- batches
    @property
    def lesion_classes(self) -> tuple[str, ...]:
        """Lesion codes of the lesion maps, in channel order."""
        return self.backend.lesion_classes

    def forward(self, images: Tensor) -> ModelOutput:
        """The network's output for (B, 3, S, S) prepared inputs, averaged over the TTA views."""
        return tta_forward(self.backend, images, self.settings.tta)

    def probabilities(self, images: Tensor) -> BatchProbabilities:
        """Grade and (if ``settings.lesions``) lesion probabilities of (B, 3, S, S) prepared inputs."""
        output = self.forward(images)
        dr, dme = grade_probabilities(output)
        lesions = None
        if self.settings.lesions and output.lesion_logits is not None:
            lesions = lesion_probabilities(output.lesion_logits, self.backend.lesion_activation, tuple(images.shape[-2:]))
        return BatchProbabilities(dr=dr, dme=dme, lesions=lesions, output=output)

    def decide(self, dr_probs: np.ndarray | None, dme_probs: np.ndarray | None) -> dict[str, np.ndarray | None]:
        """Grades, referable scores and decisions of (N, 5) / (N, 3) float64 probabilities.

        Returns ``dr_grade`` (N,), ``dme_grade`` (N,), ``referable_score`` (N,), ``referable`` (N,)
        bool; ``None`` where the head is missing.
        """
        result: dict[str, np.ndarray | None] = dict.fromkeys(("dr_grade", "dme_grade", "referable_score", "referable"))
        if dme_probs is not None:
            result["dme_grade"] = decode_grades(dme_probs, "argmax")
        if dr_probs is not None:
            result["dr_grade"] = decode_grades(dr_probs, self.settings.dr_decoding)
            use_dme = "dme" in self.settings.referable_from and dme_probs is not None
            scores = referable_scores(dr_probs, dme_probs if use_dme else None)
            result["referable_score"] = scores
            result["referable"] = self.settings.operating_point.refer(scores)
        return result

    # ---------------------------------------------------------------------------- images
    def prepare(self, image: np.ndarray) -> PreparedImage:
        """(H, W, 3) uint8 RGB -> the network input with its geometry (original pixels) and quality
        report, by the one photograph rule screening uses (``drscreen.preprocess.photograph``:
        a large photograph is reduced first)."""
        return prepare_photograph(self.preprocessor.config, reduce_photograph(image))

    def predict_prepared(self, prepared: Sequence[PreparedImage], *, pad_batches: bool = False) -> list[Prediction]:
        """Predictions for prepared images, in order; images the gate rejected are not graded
        (unless ``settings.grade_ungradable``).

        ``pad_batches``: fill every forward pass with zero images up to ``settings.batch_size``.
        With a fixed input shape an image's output does not depend on which images share its
        batch (the kernels' arithmetic per image is then the same; without padding, batches of
        other sizes differ by about 1e-7), so results do not depend on how a run was cut into
        batches: a resumed, sharded or reordered run gives the uninterrupted run's numbers.
        """
        predictions = [Prediction(prepared=p, graded=False) for p in prepared]
        todo = [i for i, p in enumerate(prepared) if p.usable or self.settings.grade_ungradable]
        for start in range(0, len(todo), self.settings.batch_size):
            chunk = todo[start : start + self.settings.batch_size]
            batch = torch.stack([prepared[i].tensor for i in chunk])
            if pad_batches and len(chunk) < self.settings.batch_size:
                padding = batch.new_zeros((self.settings.batch_size - len(chunk), *batch.shape[1:]))
                batch = torch.cat([batch, padding])
            probs = self.probabilities(batch)
            dr, dme = probability_rows(probs.dr), probability_rows(probs.dme)
            lesions = None if probs.lesions is None else probs.lesions.cpu().numpy()
            decided = self.decide(dr, dme)
            for row, index in enumerate(chunk):
                predictions[index] = Prediction(
                    prepared=prepared[index],
                    graded=True,
                    dr_probs=None if dr is None else dr[row],
                    dr_grade=_item(decided["dr_grade"], row),
                    dme_probs=None if dme is None else dme[row],
                    dme_grade=_item(decided["dme_grade"], row),
                    referable_score=None if decided["referable_score"] is None else float(decided["referable_score"][row]),
                    referable=None if decided["referable"] is None else bool(decided["referable"][row]),
                    lesion_classes=self.lesion_classes if lesions is not None else (),
                    lesion_probs=None if lesions is None else lesions[row],
                )
        return predictions

    def predict_arrays(self, images: Iterable[np.ndarray]) -> list[Prediction]:
        """Predictions for (H, W, 3) uint8 RGB arrays (PIL images: ``np.asarray(image.convert("RGB"))``)."""
        return self.predict_prepared([self.prepare(image) for image in images])

    def predict_array(self, image: np.ndarray) -> Prediction:
        """The prediction for one (H, W, 3) uint8 RGB array."""
        return self.predict_arrays([image])[0]

    def predict_files(self, paths: Iterable[str | Path]) -> Iterator[FileOutcome]:
        """One ``FileOutcome`` per path, in order, batch by batch; a file that cannot be read
        (``InputError``) is reported in its outcome and the others go on."""
        pending: list[tuple[Path, PreparedImage]] = []

        def flush() -> Iterator[FileOutcome]:
            for (path, _), prediction in zip(pending, self.predict_prepared([p for _, p in pending])):
                yield FileOutcome(path=path, prediction=prediction)
            pending.clear()

        for raw in paths:
            path = Path(raw)
            try:
                prepared = prepare_photograph(self.preprocessor.config, read_reduced(path))
            except InputError as error:
                yield from flush()
                yield FileOutcome(path=path, error=error)
                continue
            pending.append((path, prepared))
            if len(pending) == self.settings.batch_size:
                yield from flush()
        yield from flush()


def probability_rows(probs: Tensor | None) -> np.ndarray | None:
    """(N, K) float64 rows of a probability tensor, renormalised to sum to 1 in float64."""
    if probs is None:
        return None
    rows = probs.double().cpu().numpy()
    return rows / rows.sum(axis=1, keepdims=True)


def _item(values: np.ndarray | None, row: int) -> int | None:
    return None if values is None else int(values[row])


def packed_referable_sources(info: Mapping[str, Any]) -> tuple[str, ...]:
    """The grades a model's referable score should combine, from its card data ``info``: DME only
    when its DME head was validated on real data (``validated_on_real_data.dme_grade``)."""
    validated = info.get("validated_on_real_data", {})
    return ("dr", "dme") if validated.get("dme_grade", False) else ("dr",)


def packed_operating_point(info: Mapping[str, Any], setting: str | OperatingPoint | None) -> OperatingPoint:
    """The operating point for a model with card data ``info``: ``setting`` (parsed against the
    validation curve ``info["referable_curve"]``), else ``info["operating_point"]``, else the default."""
    curve = info.get("referable_curve")
    if isinstance(setting, OperatingPoint):
        return setting
    if setting is not None:
        return OperatingPoint.parse(str(setting), curve)
    stored = info.get("operating_point")
    if stored:
        return OperatingPoint(**stored)
    return OperatingPoint()
