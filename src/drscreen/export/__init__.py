"""Exporting drscreen models for other runtimes: ONNX (served by ``drscreen.inference.OnnxBackend``
and ``Predictor.from_onnx``) and TorchScript, with the packed metadata inside the file (``drscreen export``)."""

from drscreen.export.exporter import (
    EXPORT_CACHE_ENV,
    EXPORT_FORMATS,
    ONNX_OPSET,
    ContractOutputs,
    cached_onnx_export,
    export_cache_dir,
    export_model,
    load_torchscript,
    read_export_metadata,
    save_onnx,
)

__all__ = [
    "EXPORT_CACHE_ENV",
    "EXPORT_FORMATS",
    "ONNX_OPSET",
    "ContractOutputs",
    "cached_onnx_export",
    "export_cache_dir",
    "export_model",
    "load_torchscript",
    "read_export_metadata",
    "save_onnx",
]
