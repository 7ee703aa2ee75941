"""The inference core: a model's output becomes a per-image prediction here, and only here.

``Predictor`` (settings in the constructor; ``from_packed`` / ``from_model``; then
``predict_files``, ``predict_arrays``, ``predict_prepared`` or, for a batch already prepared,
``probabilities``) runs the one ``Preprocessor``, a backend (``TorchBackend``; ``OnnxBackend``
and ``OpenVinoBackend`` for exported ONNX files), flip test-time augmentation and autocast, and
turns logits into grade and lesion probabilities, grades, the referable score and the referral
decision.
"""

from drscreen.inference.backends import InferenceBackend, TorchBackend
from drscreen.inference.onnx_backend import ExportMetadata, OnnxBackend
from drscreen.inference.openvino_backend import OpenVinoBackend
from drscreen.inference.predictor import (
    ONNX_RUNTIMES,
    BatchProbabilities,
    FileOutcome,
    Prediction,
    Predictor,
    PredictorSettings,
    onnx_file_backend,
    packed_operating_point,
    probability_rows,
)
from drscreen.inference.probabilities import (
    AMP_SETTINGS,
    LESION_LEVELS,
    TTA_FLIPS,
    amp_dtype_for,
    autocast_context,
    grade_probabilities,
    lesion_probabilities,
    quantise_probabilities,
    tta_forward,
)

__all__ = [
    "AMP_SETTINGS",
    "LESION_LEVELS",
    "TTA_FLIPS",
    "BatchProbabilities",
    "ExportMetadata",
    "FileOutcome",
    "InferenceBackend",
    "ONNX_RUNTIMES",
    "OnnxBackend",
    "OpenVinoBackend",
    "Prediction",
    "Predictor",
    "PredictorSettings",
    "TorchBackend",
    "amp_dtype_for",
    "autocast_context",
    "grade_probabilities",
    "lesion_probabilities",
    "onnx_file_backend",
    "packed_operating_point",
    "probability_rows",
    "quantise_probabilities",
    "tta_forward",
]
