"""ONNX Runtime backend: an exported drscreen model (``drscreen export``) behind the inference core.

An exported file is served on its own: besides the network it carries ``ExportMetadata`` (the
preprocessing, the DR grade decoding, the lesion channels and activation and the packed model's
``info``) as string entries, in the ONNX file's ``metadata_props`` or in a TorchScript archive's
extra files. ``OnnxBackend`` runs such a file and returns the model contract's ``ModelOutput``,
so ``Predictor.from_onnx`` gives the predictions ``Predictor.from_packed`` gives.

``onnxruntime`` is imported when an ``OnnxBackend`` is built, never at module import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from drscreen.models import ModelOutput
from drscreen.preprocess import PreprocessConfig

#: Layout version of the metadata an exported file carries.
EXPORT_METADATA_FORMAT = 1
#: Prefix of every metadata key drscreen writes.
METADATA_PREFIX = "drscreen."
#: Name of the exported network's one input: (B, 3, S, S) float32 normalised images.
INPUT_NAME = "images"
#: ``ModelOutput`` fields an export may carry, in output order (``side_outputs`` are training-only).
EXPORTABLE_OUTPUTS: tuple[str, ...] = ("dr_logits", "dr_score", "dme_logits", "lesion_logits", "embedding")
#: ONNX Runtime providers for a ``device`` type.
DEVICE_PROVIDERS: dict[str, tuple[str, ...]] = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
}


@dataclass
class ExportMetadata:
    """What an exported network needs to be served without its packed file.

    Attributes:
        model: the network's class name (``DRModel`` subclass).
        input_size: side ``S`` of the (B, 3, S, S) input the file was exported at, px.
        outputs: the ``ModelOutput`` fields the file returns, in output order.
        lesion_classes: lesion codes of the ``lesion_logits`` channels.
        lesion_activation: ``"sigmoid"`` or ``"softmax"`` (a leading background channel).
        preprocess: inputs prepared like the training images.
        photograph_preprocess: camera photographs to inputs.
        dr_decoding: how the DR grade is read (``drscreen.grading.decode_grades``).
        info: the packed model's metadata (model card data, operating point, validation curve).
    """

    model: str
    input_size: int
    outputs: tuple[str, ...]
    lesion_classes: tuple[str, ...]
    lesion_activation: str
    preprocess: PreprocessConfig
    photograph_preprocess: PreprocessConfig
    dr_decoding: str = "argmax"
    info: dict[str, Any] = field(default_factory=dict)

    def to_strings(self) -> dict[str, str]:
        """``METADATA_PREFIX``-keyed JSON strings (ONNX ``metadata_props``, TorchScript extra files)."""
        values: dict[str, Any] = {
            "format": EXPORT_METADATA_FORMAT,
            "model": self.model,
            "input_size": self.input_size,
            "outputs": list(self.outputs),
            "lesion_classes": list(self.lesion_classes),
            "lesion_activation": self.lesion_activation,
            "preprocess": self.preprocess.to_dict(),
            "photograph_preprocess": self.photograph_preprocess.to_dict(),
            "dr_decoding": self.dr_decoding,
            "info": self.info,
        }
        return {METADATA_PREFIX + key: json.dumps(value) for key, value in values.items()}

    @classmethod
    def from_strings(cls, strings: Mapping[str, str], source: str | Path) -> ExportMetadata:
        """Read ``to_strings`` output back; ``source`` names the file in errors."""
        values = {key.removeprefix(METADATA_PREFIX): json.loads(text) for key, text in strings.items()
                  if key.startswith(METADATA_PREFIX)}  # fmt: skip
        if values.get("format") != EXPORT_METADATA_FORMAT:
            raise ValueError(
                f"{source}: not a drscreen export (no {METADATA_PREFIX}format = {EXPORT_METADATA_FORMAT} metadata); "
                "write one with `drscreen export`"
            )
        return cls(
            model=values["model"],
            input_size=int(values["input_size"]),
            outputs=tuple(values["outputs"]),
            lesion_classes=tuple(values["lesion_classes"]),
            lesion_activation=values["lesion_activation"],
            preprocess=PreprocessConfig.from_dict(values["preprocess"]),
            photograph_preprocess=PreprocessConfig.from_dict(values["photograph_preprocess"]),
            dr_decoding=values["dr_decoding"],
            info=values["info"],
        )


def read_onnx_metadata(path: str | Path) -> ExportMetadata:
    """The ``ExportMetadata`` in an ONNX file's ``metadata_props`` (external weight files are not read)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return ExportMetadata.from_strings({entry.key: entry.value for entry in proto.metadata_props}, path)


def session_options(threads: int | None = None) -> Any:
    """The ``onnxruntime.SessionOptions`` of every session drscreen creates.

    All graph optimisations (constant folding, fusions, the CPU's blocked NCHWc layout), one
    operator at a time on ``threads`` intra-op threads (default ``torch.get_num_threads()``, so
    that ``OMP_NUM_THREADS``, ``torch.set_num_threads`` and the screening workers' one thread
    apply to both runtimes), and idle threads that sleep instead of spinning: on a CPU shared
    with the screening workers a spinning thread takes a core from them (interleaved
    measurements in docs/performance.md).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def output_from_arrays(names: Sequence[str], arrays: Sequence[Any]) -> ModelOutput:
    """The ``ModelOutput`` of an exported network's outputs: ``arrays`` (NumPy arrays or tensors)
    in the order of their field ``names``."""
    return ModelOutput(**{name: torch.as_tensor(array) for name, array in zip(names, arrays)})


class OnnxBackend:
    """An exported ONNX file run by ONNX Runtime; implements ``InferenceBackend``.

    Args:
        path: an ONNX file written by ``drscreen.export.export_model``.
        providers: ONNX Runtime execution providers in order of preference (default: CPU).
            A provider this onnxruntime build lacks is an error, not a silent fallback.
        threads: intra-op threads (default ``torch.get_num_threads()``; see ``session_options``).

    Inputs (B, 3, S, S) float32 go to the session on the CPU as NumPy arrays; outputs come back
    as float32 CPU tensors.
    """

    def __init__(self, path: str | Path, providers: Sequence[str] | None = None, threads: int | None = None) -> None:
        import onnxruntime

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        chosen = list(providers or DEVICE_PROVIDERS["cpu"])
        missing = [name for name in chosen if name not in onnxruntime.get_available_providers()]
        if missing:
            raise ValueError(
                f"ONNX Runtime providers {missing} are not available in this onnxruntime build; "
                f"available: {onnxruntime.get_available_providers()}"
            )
        self.session = onnxruntime.InferenceSession(str(self.path), session_options(threads), providers=chosen)
        self.metadata = ExportMetadata.from_strings(self.session.get_modelmeta().custom_metadata_map, self.path)
        self.output_names: tuple[str, ...] = tuple(output.name for output in self.session.get_outputs())
        self.lesion_classes: tuple[str, ...] = self.metadata.lesion_classes
        self.lesion_activation: str = self.metadata.lesion_activation
        self.device = torch.device("cpu")

    def __call__(self, images: Tensor) -> ModelOutput:
        """One forward of (B, 3, S, S) inputs -> ``ModelOutput`` of float32 CPU tensors."""
        feed = {INPUT_NAME: images.detach().to("cpu", torch.float32).contiguous().numpy()}
        return output_from_arrays(self.output_names, self.session.run(list(self.output_names), feed))
