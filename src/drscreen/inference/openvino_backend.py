"""OpenVINO backend: an exported ONNX file (``drscreen export``) compiled by OpenVINO for the CPU.

The same file ``OnnxBackend`` runs, compiled by OpenVINO's CPU plugin (oneDNN kernels). On
x86 CPUs it is the faster of the two runtimes for the 512 px lesion networks, and its bf16
inference precision uses AVX-512 BF16 / AMX where the CPU has them (docs/performance.md). An
int8 QDQ file (``drscreen export --int8``) runs with integer kernels. The network is compiled
once per input shape, with static shapes (screening pads its batches to one size).

``openvino`` is imported when an ``OpenVinoBackend`` is built, never at module import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from drscreen.inference.onnx_backend import INPUT_NAME, ExportMetadata, output_from_arrays
from drscreen.inference.probabilities import amp_dtype_for
from drscreen.models import ModelOutput

#: OpenVINO's name of the inference precision of an autocast dtype (None: full precision).
OPENVINO_PRECISIONS: dict[torch.dtype | None, str] = {None: "f32", torch.bfloat16: "bf16", torch.float16: "f16"}
#: The autocast dtype of an OpenVINO element type name (``Type.get_type_name()``; f32: None).
TORCH_PRECISIONS: dict[str, torch.dtype | None] = {"f32": None, "bf16": torch.bfloat16, "f16": torch.float16}


class OpenVinoBackend:
    """An exported ONNX file run by OpenVINO on the CPU; implements ``InferenceBackend``.

    Args:
        path: an ONNX file written by ``drscreen.export.export_model`` (fp32 or ``int8=True``).
        amp: ``drscreen.inference.AMP_SETTINGS``: ``"fp32"`` (exact up to float rounding),
            ``"bf16"`` / ``"fp16"`` (OpenVINO's reduced inference precision; OpenVINO chooses
            what the CPU runs natively, e.g. bf16 for fp16 on AVX-512 BF16 and f32 on a CPU with
            neither), ``"auto"``: full precision, as for PyTorch on a CPU. ``amp_dtype`` is the
            precision OpenVINO chose.
        threads: inference threads (default ``torch.get_num_threads()``, like ``OnnxBackend``).

    Inputs (B, 3, S, S) float32 go in as NumPy arrays; outputs come back as float32 CPU tensors.
    """

    def __init__(self, path: str | Path, *, amp: str = "fp32", threads: int | None = None) -> None:
        import openvino

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        self.core = openvino.Core()
        self.model = self.core.read_model(str(self.path))
        info = self.model.get_rt_info()
        framework = info["framework"] if "framework" in info else {}
        strings = {key: framework[key].astype(str) for key in framework}
        self.metadata = ExportMetadata.from_strings(strings, self.path)
        self.output_names: tuple[str, ...] = tuple(output.get_any_name() for output in self.model.outputs)
        self.lesion_classes: tuple[str, ...] = self.metadata.lesion_classes
        self.lesion_activation: str = self.metadata.lesion_activation
        self.device = torch.device("cpu")
        self.config: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
            "INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[amp_dtype_for(amp, self.device)],
            "PERFORMANCE_HINT": "LATENCY",
        }
        self.core.set_property("CPU", {"INFERENCE_PRECISION_HINT": self.config["INFERENCE_PRECISION_HINT"]})
        chosen = self.core.get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
        #: The precision OpenVINO runs in (the autocast dtype in ``TorchBackend``'s terms; None: f32).
        self.amp_dtype: torch.dtype | None = TORCH_PRECISIONS[chosen]
        self._compiled: dict[tuple[int, ...], tuple[Any, Any]] = {}

    def _compile(self, shape: tuple[int, ...]) -> tuple[Any, Any]:
        """The network compiled for inputs of ``shape`` (B, 3, S, S) and its infer request (made
        once); a shape the export does not take (only its batch axis is free) is a ``ValueError``."""
        if shape not in self._compiled:
            from openvino import PartialShape

            exported = self.model.inputs[0].get_partial_shape()
            if not exported.compatible(PartialShape(list(shape))):
                raise ValueError(f"{self.path} takes {INPUT_NAME} of shape {exported}, got {shape}")
            model = self.model.clone()
            model.reshape({INPUT_NAME: list(shape)})
            compiled = self.core.compile_model(model, "CPU", self.config)
            self._compiled[shape] = compiled, compiled.create_infer_request()
        return self._compiled[shape]

    def __call__(self, images: Tensor) -> ModelOutput:
        """One forward of (B, 3, S, S) inputs -> ``ModelOutput`` of float32 CPU tensors."""
        array = images.detach().to("cpu", torch.float32).contiguous().numpy()
        compiled, request = self._compile(tuple(array.shape))
        results = request.infer({INPUT_NAME: array})
        arrays = [results[compiled.output(name)].copy() for name in self.output_names]
        return output_from_arrays(self.output_names, arrays)
