"""Post-training quantisation of an exported ONNX graph (ONNX Runtime's quantisation tools)."""

from __future__ import annotations

from pathlib import Path

#: Quantisations ``export_model(quantize=...)`` applies.
QUANTIZATIONS: tuple[str, ...] = ("int8-dynamic",)


def quantize_onnx(source: str | Path, target: str | Path, quantization: str = "int8-dynamic") -> Path:
    """Write the float32 ONNX file ``source`` quantised to ``target``; returns ``target``.

    ``"int8-dynamic"``: ``onnxruntime.quantization.quantize_dynamic`` with int8 weights (per
    tensor); activations are quantised at run time from their observed range, so no
    calibration data is needed.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantisation {quantization!r}; known: {', '.join(QUANTIZATIONS)}")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(Path(source), Path(target), weight_type=QuantType.QInt8)
    return Path(target)
