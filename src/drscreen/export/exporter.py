"""``export_model``: a packed (or live) drscreen model as an ONNX or TorchScript file that serves alone.

The network is wrapped so that its ``ModelOutput`` becomes named outputs (``dr_logits``,
``dme_logits``, ``lesion_logits``, ...: the fields the model fills, in ``EXPORTABLE_OUTPUTS``
order; deep-supervision ``side_outputs`` are left out), with one input ``images``
(B, 3, S, S) float32, normalised as the packed preprocessing does. The file also carries the
``ExportMetadata`` (preprocessing, DR decoding, lesion channels, the packed ``info``), so
``Predictor.from_onnx(path)`` needs nothing else.

ONNX goes through ``torch.onnx.export``'s TorchScript-based exporter (``dynamo=False``): on the
shared 2-core development machine it took 5.7 s for the shipped model and 2 s for the tiny
U²-XS-Net against 9.7 s and 27 s with the ``torch.export``-based exporter (which also needs a
batch of 2 to keep the batch axis symbolic), for the same outputs (parity tests in
tests/export); the batch axis is dynamic unless ``dynamic_batch=False``. Bilinear resizes to a
traced tensor's size (the U-Net merges) become ``Resize`` with constant scales
(``constant_resize_scales``), which ONNX Runtime runs in its blocked NCHWc layout. Both that exporter and
TorchScript are deprecated upstream in favour of ``torch.export``; their deprecation warnings are
silenced here (torch is pinned in pyproject.toml).

Quantisation is opt-in (``int8=True``, ONNX only): ONNX Runtime's static int8 quantisation
(``quantize_int8``: QDQ, uint8 activations, int8 weights per output channel, ranges calibrated on
``INT8_CALIBRATION_IMAGES`` synthetic fundus images prepared like photographs). It is meant for
the U²-XS-Net lesion segmenter: faster than fp32 on the 2-core CPU with its lesion and
optic-disc AUPR / Dice level with fp32 (measurements and commands: docs/performance.md).
Int8 dynamic quantisation lowered the shipped grader's APTOS val QWK and referable sensitivity
and ran slower on CPU (benchmarks/quantization.py), so the grader is exported in fp32.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
import warnings
import zipfile
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from drscreen.inference.onnx_backend import (
    EXPORTABLE_OUTPUTS,
    INPUT_NAME,
    METADATA_PREFIX,
    ExportMetadata,
    read_onnx_metadata,
)
from drscreen.models import DRModel, ModelOutput
from drscreen.models.pretrained import PretrainedModel, load_pretrained
from drscreen.preprocess import PreprocessConfig, Preprocessor

#: File formats ``export_model`` writes.
EXPORT_FORMATS: tuple[str, ...] = ("onnx", "torchscript")
#: ONNX operator set of the exported graphs.
ONNX_OPSET = 18
#: Synthetic fundus images an int8 export's activation ranges are calibrated on.
INT8_CALIBRATION_IMAGES = 8
#: Metadata keys of an export (TorchScript extra files must be named to be read back).
METADATA_KEYS: tuple[str, ...] = tuple(
    METADATA_PREFIX + name for name in ("format", *(f.name for f in fields(ExportMetadata)))
)


class ContractOutputs(nn.Module):
    """``model``'s ``ModelOutput`` as a tuple (``as_dict=False``) or a dict of the ``names`` fields."""

    def __init__(self, model: nn.Module, names: tuple[str, ...], *, as_dict: bool = False) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.as_dict = as_dict

    def forward(self, images: Tensor) -> tuple[Tensor, ...] | dict[str, Tensor]:
        """(B, 3, S, S) -> the named output tensors."""
        output: ModelOutput = self.model(images)
        if self.as_dict:
            return {name: getattr(output, name) for name in self.names}
        return tuple(getattr(output, name) for name in self.names)


def export_model(
    packed_or_model: PretrainedModel | DRModel | str | Path,
    path: str | Path,
    format: str = "onnx",
    *,
    dynamic_batch: bool = True,
    input_size: int | None = None,
    int8: bool = False,
) -> ExportMetadata:
    """Write ``packed_or_model`` to ``path`` as ONNX or TorchScript; returns the metadata stored in it.

    Args:
        packed_or_model: a ``PretrainedModel``, the path of a packed file, or a live ``DRModel``
            (then the preprocessing recorded is ``PreprocessConfig(size=input_size)`` with the
            model's normalisation, and ``info`` is empty).
        path: the file to write (its folder is created).
        format: ``"onnx"`` or ``"torchscript"`` (``torch.jit.trace``; outputs as a dict by name,
            metadata in the archive's extra files, read with ``load_torchscript``).
        dynamic_batch: ONNX only: a symbolic batch axis (else the file takes batches of 1).
            A TorchScript trace keeps the batch size symbolic wherever the model does.
        input_size: side ``S`` of the input, px: a live model's (default: ``PreprocessConfig``'s);
            for a packed model it must equal the packed size.
        int8: ONNX only: quantise the file to int8 (``quantize_int8``, calibrated on
            ``INT8_CALIBRATION_IMAGES`` synthetic fundus images prepared with the photograph
            preprocessing); outputs stay float32.

    The model itself is not modified (a float32 CPU copy in eval mode is traced).
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {format!r}; known: {', '.join(EXPORT_FORMATS)}")
    if int8 and format != "onnx":
        raise ValueError("int8 quantisation applies to ONNX exports only")
    model, metadata = _model_and_metadata(packed_or_model, input_size)
    network = copy.deepcopy(model).float().cpu().eval()
    example = torch.randn(2 if dynamic_batch else 1, 3, metadata.input_size, metadata.input_size,
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
    with torch.no_grad():
        probe = network(example)
    outputs = tuple(name for name in EXPORTABLE_OUTPUTS if getattr(probe, name) is not None)
    if not outputs:
        raise ValueError(f"{type(model).__name__} returns none of the exportable outputs {EXPORTABLE_OUTPUTS}")
    metadata = replace(metadata, outputs=outputs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "torchscript":
        _write_torchscript(ContractOutputs(network, outputs, as_dict=True), example, path, metadata)
    else:
        _write_onnx(ContractOutputs(network, outputs), example, path, metadata, dynamic_batch)
        if int8:
            quantize_int8(path, calibration_inputs(metadata.photograph_preprocess, INT8_CALIBRATION_IMAGES))
    return metadata


def calibration_inputs(preprocess: PreprocessConfig, count: int) -> list[Tensor]:
    """``count`` synthetic fundus images (seeds 0..count-1, rendered at twice the input side)
    prepared with ``preprocess``: (1, 3, S, S) float32 inputs each."""
    from drscreen.synth import generate_fundus

    preprocessor = Preprocessor(preprocess)
    images = (generate_fundus(seed=seed, size=2 * preprocess.size).image for seed in range(count))
    return [preprocessor.prepare(image).tensor.reshape(1, 3, preprocess.size, preprocess.size) for image in images]


def quantize_int8(path: str | Path, inputs: list[Tensor]) -> None:
    """Quantise the fp32 ONNX file at ``path`` to int8 in place, keeping its metadata.

    ONNX Runtime's static quantisation in QDQ form: uint8 activations (the fast x86 kernels take
    uint8 x int8), int8 weights with one scale per output channel, activation ranges (min / max)
    from running the network on ``inputs`` ((1, 3, S, S) float32 each). Its graph optimisations
    fuse the pairs into integer convolutions, concatenations, additions and pools.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Inputs(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{INPUT_NAME: tensor.numpy()} for tensor in inputs])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.feeds, None)

    path = Path(path)
    metadata = read_export_metadata(path)
    with tempfile.TemporaryDirectory() as scratch:
        prepared, quantized = Path(scratch) / "prepared.onnx", Path(scratch) / "int8.onnx"
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(quantized), Inputs(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)  # fmt: skip
        save_onnx(onnx.load(str(quantized)), path, metadata)


def read_export_metadata(path: str | Path) -> ExportMetadata:
    """The ``ExportMetadata`` stored in an exported ONNX or TorchScript file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exported model not found: {path}")
    if zipfile.is_zipfile(path):
        return load_torchscript(path)[1]
    return read_onnx_metadata(path)


def load_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, ExportMetadata]:
    """An exported TorchScript file: the module ((B, 3, S, S) -> dict of output tensors, on the
    CPU, eval mode) and its metadata."""
    extra_files = dict.fromkeys(METADATA_KEYS, "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra_files)
    texts = {key: text.decode() if isinstance(text, bytes) else text for key, text in extra_files.items() if text}
    return module.eval(), ExportMetadata.from_strings(texts, path)


def _model_and_metadata(
    packed_or_model: PretrainedModel | DRModel | str | Path, input_size: int | None
) -> tuple[nn.Module, ExportMetadata]:
    if isinstance(packed_or_model, (str, Path)):
        packed_or_model = load_pretrained(packed_or_model)
    if isinstance(packed_or_model, PretrainedModel):
        packed = packed_or_model
        if input_size is not None and input_size != packed.preprocess.size:
            raise ValueError(f"a packed model is exported at its packed input size {packed.preprocess.size}, "
                             f"not {input_size}")  # fmt: skip
        model: nn.Module = packed.model
        preprocess, photograph = packed.preprocess, packed.photograph_preprocess
        decoding, info = packed.dr_decoding, packed.info
    elif isinstance(packed_or_model, nn.Module):
        model = packed_or_model
        sized = {} if input_size is None else {"size": input_size}
        preprocess = photograph = PreprocessConfig.for_model(sized, model.normalization)
        decoding, info = "argmax", {}
    else:
        raise TypeError(f"expected a PretrainedModel, a packed file or a DRModel, got {type(packed_or_model).__name__}")
    metadata = ExportMetadata(
        model=type(model).__name__,
        input_size=preprocess.size,
        outputs=(),
        lesion_classes=tuple(getattr(model, "lesion_classes", ())),
        lesion_activation=getattr(model, "lesion_activation", "sigmoid"),
        preprocess=preprocess,
        photograph_preprocess=photograph,
        dr_decoding=decoding,
        info=info,
    )
    return model, metadata


def _write_torchscript(module: ContractOutputs, example: Tensor, path: Path, metadata: ExportMetadata) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(module, (example,), strict=False, check_trace=False)
    torch.jit.save(traced, str(path), _extra_files=metadata.to_strings())


def _write_onnx(
    module: ContractOutputs, example: Tensor, path: Path, metadata: ExportMetadata, dynamic_batch: bool
) -> None:
    import onnx

    names = list(metadata.outputs)
    dynamic_axes = {name: {0: "batch"} for name in (INPUT_NAME, *names)} if dynamic_batch else None
    with tempfile.TemporaryDirectory() as scratch:
        traced_file = Path(scratch) / "model.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(
                module, (example,), str(traced_file), input_names=[INPUT_NAME], output_names=names,
                dynamic_axes=dynamic_axes, opset_version=ONNX_OPSET, dynamo=False,
            )  # fmt: skip
        proto = constant_resize_scales(onnx.load(str(traced_file)))
    save_onnx(proto, path, metadata)


def save_onnx(proto: Any, path: str | Path, metadata: ExportMetadata) -> None:
    """Write the ONNX model ``proto`` to ``path`` with ``metadata`` as its only metadata properties."""
    import onnx

    del proto.metadata_props[:]
    for key, value in metadata.to_strings().items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


def constant_resize_scales(proto: Any) -> Any:
    """``proto`` (an ``onnx.ModelProto``) with every ``Resize`` whose ``sizes`` are computed from
    tensor shapes given constant ``scales`` instead, where the input side ``S`` fixes both spatial
    sizes and ``out / in`` is exact in float32 (the same output: ONNX Runtime derives its scales
    from ``sizes`` anyway); the shape computations left unused are removed.

    ONNX Runtime's NCHWc layout transformer takes only a ``Resize`` with constant scales; with
    computed sizes the maps are reordered to and from the blocked layout around every resize.
    """
    import numpy as np
    import onnx

    inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    spatial: dict[str, tuple[int, int]] = {}
    for value in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and all(d.HasField("dim_value") for d in dims[2:]):
            spatial[value.name] = (dims[2].dim_value, dims[3].dim_value)
    graph = proto.graph
    for node in graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or not node.input[3]:
            continue
        source, target = spatial.get(node.input[0]), spatial.get(node.output[0])
        if source is None or target is None:
            continue
        scales = np.array([1.0, 1.0, target[0] / source[0], target[1] / source[1]], dtype=np.float32)
        if any(float(scale) * side != size for scale, side, size in zip(scales[2:], source, target)):
            continue
        name = f"{node.output[0]}_scales"
        graph.initializer.append(onnx.numpy_helper.from_array(scales, name))
        node.input[2] = name
        del node.input[3]
    _remove_unused_nodes(graph)
    return proto


def _remove_unused_nodes(graph: Any) -> None:
    """Remove the nodes of an ``onnx.GraphProto`` none of whose outputs is used."""
    while True:
        used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
        unused = [node for node in graph.node if not any(name in used for name in node.output)]
        if not unused:
            return
        for node in unused:
            graph.node.remove(node)


#: Environment variable naming the folder of cached ONNX exports (``cached_onnx_export``).
EXPORT_CACHE_ENV = "DRSCREEN_CACHE_DIR"


def export_cache_dir() -> Path:
    """``$DRSCREEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/drscreen``, else ``~/.cache/drscreen``."""
    if os.environ.get(EXPORT_CACHE_ENV):
        return Path(os.environ[EXPORT_CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "drscreen"


def cached_onnx_export(packed_file: str | Path) -> Path:
    """The fp32 ONNX export (``export_model``, dynamic batch) of the packed file, made once.

    The file lives in ``export_cache_dir()/onnx`` under a name keyed by the SHA-256 of the packed
    file's bytes, of this exporter's source and of the torch version, so a changed model or
    exporter is exported again; it is written under a temporary name and renamed, so processes
    exporting at the same time (torchrun ranks) never read a partial file. Raises ``OSError``
    when the cache folder cannot be written (callers export to a temporary file instead).
    """
    packed_file = Path(packed_file)
    digest = hashlib.sha256()
    digest.update(packed_file.read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(torch.__version__.encode())
    target = export_cache_dir() / "onnx" / f"{packed_file.stem}-{digest.hexdigest()[:32]}.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        export_model(packed_file, partial, "onnx")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
