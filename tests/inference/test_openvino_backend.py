"""The OpenVINO backend (``drscreen.inference.OpenVinoBackend``) and the choice of runtime for
exported files (``onnx_file_backend``); its parity with PyTorch is tested with ONNX Runtime's in
tests/export/test_export.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from drscreen.export import export_model
from drscreen.inference import OnnxBackend, OpenVinoBackend, Predictor, onnx_file_backend
from drscreen.models import create_model, load_pretrained
from drscreen.models.registry import MODELS
from drscreen.synth import generate_fundus

#: Tiny input side of the U²-XS-Net test exports, px.
SIZE = 64
#: Largest difference of a DR probability between the shipped model in fp32 and OpenVINO's bf16.
BF16_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight U²-XS-Net exported with a dynamic batch."""
    path = tmp_path_factory.mktemp("openvino") / "u2net_xs.onnx"
    export_model(create_model("u2net_xs", **MODELS.get("u2net_xs").metadata["tiny"]).eval(), path, input_size=SIZE)
    return path


def test_one_compilation_per_input_shape_and_threads_follow_torch(tiny_export: Path) -> None:
    backend = OpenVinoBackend(tiny_export, threads=1)
    assert backend.config["INFERENCE_NUM_THREADS"] == 1 and backend.amp_dtype is None
    assert OpenVinoBackend(tiny_export).config["INFERENCE_NUM_THREADS"] == torch.get_num_threads()
    images = torch.randn(3, 3, SIZE, SIZE)
    first = backend(images).lesion_logits
    assert backend(images[:2]).lesion_logits.shape == (2, 4, SIZE, SIZE)
    torch.testing.assert_close(backend(images).lesion_logits, first)
    assert sorted(backend._compiled) == [(2, 3, SIZE, SIZE), (3, 3, SIZE, SIZE)]


def test_bf16_is_asked_for_and_the_shipped_model_keeps_its_probabilities(tmp_path: Path) -> None:
    """``amp="bf16"`` / ``"fp16"`` ask OpenVINO for a reduced precision and ``amp_dtype`` is the one
    the compiled network runs in (OpenVINO's choice: f32 on a CPU with neither, bf16 for fp16 on
    AVX-512 BF16); the shipped grader's DR probabilities stay within ``BF16_TOLERANCE``."""
    export_model(load_pretrained(), tmp_path / "default.onnx")
    backend = OpenVinoBackend(tmp_path / "default.onnx", amp="bf16")
    assert backend.config["INFERENCE_PRECISION_HINT"] == "bf16"
    predictor = Predictor.from_packed(quality_gate=False)
    images = torch.stack([predictor.prepare(generate_fundus(size=320, seed=seed).image).tensor for seed in range(4)])
    expected = OnnxBackend(tmp_path / "default.onnx")(images).dr_logits.softmax(dim=1)
    got = backend(images).dr_logits.softmax(dim=1)
    assert float((got - expected).abs().max()) < BF16_TOLERANCE
    for amp, candidate in (("bf16", backend), ("fp16", OpenVinoBackend(tmp_path / "default.onnx", amp="fp16"))):
        compiled, _ = candidate._compile(tuple(images.shape))
        chosen = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        assert chosen == {None: "f32", torch.bfloat16: "bf16", torch.float16: "f16"}[candidate.amp_dtype], amp


def test_a_static_batch_export_is_refused_other_shapes(tmp_path: Path) -> None:
    model = create_model("u2net_xs", **MODELS.get("u2net_xs").metadata["tiny"]).eval()
    export_model(model, tmp_path / "one.onnx", input_size=SIZE, dynamic_batch=False)
    backend = OpenVinoBackend(tmp_path / "one.onnx")
    assert backend(torch.zeros(1, 3, SIZE, SIZE)).lesion_logits.shape == (1, 4, SIZE, SIZE)
    with pytest.raises(ValueError, match=r"takes images of shape \[1,3,64,64\]"):
        backend(torch.zeros(3, 3, SIZE, SIZE))


def test_a_dynamic_batch_export_refuses_another_image_size(tiny_export: Path) -> None:
    """Only the batch axis is free, as with ONNX Runtime (which refuses the same input)."""
    backend = OpenVinoBackend(tiny_export)
    with pytest.raises(ValueError, match=r"takes images of shape \[\?,3,64,64\], got \(2, 3, 96, 96\)"):
        backend(torch.zeros(2, 3, 96, 96))
    with pytest.raises(Exception, match="images"):
        OnnxBackend(tiny_export)(torch.zeros(2, 3, 96, 96))


def test_the_runtime_choice_and_its_errors(tiny_export: Path, tmp_path: Path) -> None:
    assert isinstance(onnx_file_backend(tiny_export, "openvino"), OpenVinoBackend)
    assert isinstance(onnx_file_backend(tiny_export, "onnx"), OnnxBackend)
    assert isinstance(onnx_file_backend(tiny_export, "onnx", amp="auto"), OnnxBackend)  # full precision on a CPU
    with pytest.raises(ValueError, match="runtime must be one of onnx, openvino"):
        onnx_file_backend(tiny_export, "tensorrt")
    with pytest.raises(ValueError, match="OpenVINO runs on the CPU"):
        onnx_file_backend(tiny_export, "openvino", device="cuda")
    with pytest.raises(ValueError, match="full precision"):
        onnx_file_backend(tiny_export, "onnx", amp="bf16")
    with pytest.raises(FileNotFoundError, match="ONNX model not found"):
        OpenVinoBackend(tmp_path / "missing.onnx")
    foreign = tmp_path / "foreign.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(foreign), dynamo=False)
    with pytest.raises(ValueError, match="not a drscreen export"):
        OpenVinoBackend(foreign)
    assert np.isfinite(OpenVinoBackend(tiny_export)(torch.randn(1, 3, SIZE, SIZE)).lesion_logits.numpy()).all()
