"""Export to ONNX and TorchScript (``drscreen.export``), the ONNX Runtime and OpenVINO backends and
``Predictor.from_onnx``: the exported files give the probabilities and grades of the PyTorch model
(max abs difference < 1e-3, identical grades), at any batch size, and serve alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from drscreen.cli import main as cli_main
from drscreen.export import export_model, load_torchscript, read_export_metadata
from drscreen.grading import decode_grades
from drscreen.inference import OnnxBackend, OpenVinoBackend, Predictor, grade_probabilities, lesion_probabilities
from drscreen.inference.onnx_backend import METADATA_PREFIX
from drscreen.models import ModelOutput, PretrainedModel, create_model, load_pretrained, pack_checkpoint
from drscreen.models.registry import MODELS
from drscreen.synth import generate_fundus

#: Largest allowed difference of a probability between PyTorch and an exported file.
PROBABILITY_TOLERANCE = 1e-3
#: Largest allowed difference of a probability between PyTorch and an int8 export, as a share of
#: the spread (max - min) of PyTorch's probabilities: a constant output would break it.
INT8_TOLERANCE = 0.1
#: Tiny input side for the packed test models, px.
TINY_SIZE = 64
#: The U²-Net family (the U²-XS-Net of the mobile paper and its larger siblings).
U2NET_FAMILY = ("u2net_xs", "u2net_lite", "u2net")
#: A grading + DME + lesion model quick enough for every test (the shipped architecture, tiny).
TINY_GRADER = ("drscreen_effnet", {**MODELS.get("drscreen_effnet").metadata["tiny"], "encoder": "simple_cnn"})
#: Metadata a packed file carries and an export must keep.
INFO = {"name": "tiny test model", "operating_point": {"threshold": 0.3, "source": "unit test"},
        "validated_on_real_data": {"dr_grade": True, "dme_grade": True}}  # fmt: skip


def pack_tiny(name: str, kwargs: dict, folder: Path) -> Path:
    """``name`` built with ``kwargs`` (random weights), packed at ``TINY_SIZE`` px with ``INFO``."""
    model = create_model(name, **kwargs).eval()
    config = {
        "model": {"name": name, "kwargs": kwargs, "dr_decoding": "expected"},
        "data": {"preprocess": {"size": TINY_SIZE, "crop_to_fov": False, "quality_gate": False}},
    }
    photograph = {"crop_to_fov": True, "enhancement": "ben_graham"}
    checkpoint = {"model": model.state_dict(), "config": config}
    return pack_checkpoint(checkpoint, folder / f"{name}.pt", photograph_preprocess=photograph, info=INFO)


def fundus_batch(predictor: Predictor, n: int, size: int = 128) -> torch.Tensor:
    """(n, 3, S, S) prepared synthetic fundus photographs."""
    return torch.stack([predictor.prepare(generate_fundus(size=size, seed=seed).image).tensor for seed in range(n)])


def probabilities(output: ModelOutput, packed: PretrainedModel, size: int) -> dict[str, np.ndarray]:
    """DR, DME and lesion probabilities of ``output`` (the ones the model has)."""
    dr, dme = grade_probabilities(output)
    result = {name: probs.numpy() for name, probs in (("dr", dr), ("dme", dme)) if probs is not None}
    if output.lesion_logits is not None:
        activation = packed.model.lesion_activation
        result["lesions"] = lesion_probabilities(output.lesion_logits, activation, (size, size)).numpy()
    return result


def assert_same_probabilities(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert got.keys() == expected.keys()
    for name in expected:
        difference = float(np.abs(got[name] - expected[name]).max())
        assert difference < PROBABILITY_TOLERANCE, f"{name}: max abs difference {difference}"
    if "dr" in expected:
        assert decode_grades(got["dr"], "argmax").tolist() == decode_grades(expected["dr"], "argmax").tolist()
        assert decode_grades(got["dr"], "expected").tolist() == decode_grades(expected["dr"], "expected").tolist()
    if "dme" in expected:
        assert got["dme"].argmax(axis=1).tolist() == expected["dme"].argmax(axis=1).tolist()


TINY_MODELS = [TINY_GRADER, *((name, MODELS.get(name).metadata["tiny"]) for name in U2NET_FAMILY)]


@pytest.mark.parametrize(("name", "kwargs"), TINY_MODELS, ids=lambda value: value if isinstance(value, str) else "tiny")
def test_onnx_and_torchscript_give_the_torch_probabilities_at_any_batch_size(
    name: str, kwargs: dict, tmp_path: Path
) -> None:
    packed = load_pretrained(pack_tiny(name, kwargs, tmp_path))
    metadata = export_model(packed, tmp_path / "model.onnx", "onnx")
    export_model(packed, tmp_path / "model.ts", "torchscript")
    with torch.no_grad():
        reference_output = packed.model(torch.zeros(1, 3, TINY_SIZE, TINY_SIZE))
    present = [field for field in ("dr_logits", "dr_score", "dme_logits", "lesion_logits", "embedding")
               if getattr(reference_output, field) is not None]  # fmt: skip
    assert list(metadata.outputs) == present
    backend = OnnxBackend(tmp_path / "model.onnx")
    openvino = OpenVinoBackend(tmp_path / "model.onnx")
    assert backend.output_names == openvino.output_names == metadata.outputs
    assert backend.lesion_classes == openvino.lesion_classes == packed.model.lesion_classes
    scripted, scripted_metadata = load_torchscript(tmp_path / "model.ts")
    assert scripted_metadata == metadata
    predictor = Predictor.from_packed(tmp_path / f"{name}.pt", inputs="training")
    for batch in (1, 3):
        images = fundus_batch(predictor, batch)
        with torch.no_grad():
            expected = probabilities(packed.model(images), packed, TINY_SIZE)
            from_torchscript = probabilities(ModelOutput(**scripted(images)), packed, TINY_SIZE)
        from_onnx = probabilities(backend(images), packed, TINY_SIZE)
        assert_same_probabilities(from_onnx, expected)
        assert_same_probabilities(probabilities(openvino(images), packed, TINY_SIZE), expected)
        assert_same_probabilities(from_torchscript, expected)
        assert all(probs.shape[0] == batch for probs in from_onnx.values())


def test_predictor_from_onnx_gives_the_packed_predictions_from_the_file_alone(tmp_path: Path) -> None:
    packed_file = pack_tiny(*TINY_GRADER, tmp_path / "packed")
    export_model(packed_file, tmp_path / "served" / "grader.onnx")
    for inputs in ("photograph", "training"):
        from_packed = Predictor.from_packed(packed_file, inputs=inputs, batch_size=2)
        from_onnx = Predictor.from_onnx(tmp_path / "served" / "grader.onnx", inputs=inputs, batch_size=2)
        assert from_onnx.preprocessor.config == from_packed.preprocessor.config
        assert from_onnx.settings == from_packed.settings
        assert from_onnx.settings.dr_decoding == "expected" and from_onnx.settings.operating_point.threshold == 0.3
        assert from_onnx.settings.referable_from == ("dr", "dme")
        images = [generate_fundus(size=160, seed=seed).image for seed in range(3)]
        expected, got = from_packed.predict_arrays(images), from_onnx.predict_arrays(images)
        for a, b in zip(expected, got):
            assert (b.dr_grade, b.dme_grade, b.referable) == (a.dr_grade, a.dme_grade, a.referable)
            assert b.lesion_classes == a.lesion_classes == ("MA", "HE", "EX", "SE", "OD")
            for name in ("dr_probs", "dme_probs", "lesion_probs"):
                assert np.abs(getattr(b, name) - getattr(a, name)).max() < PROBABILITY_TOLERANCE
            assert abs(b.referable_score - a.referable_score) < PROBABILITY_TOLERANCE
    assert from_onnx.weights_path == tmp_path / "served" / "grader.onnx" and from_onnx.packed is None


def test_the_onnx_file_carries_the_packed_metadata(tmp_path: Path) -> None:
    packed = load_pretrained(pack_tiny(*TINY_GRADER, tmp_path))
    export_model(packed, tmp_path / "grader.onnx")
    proto = onnx.load(str(tmp_path / "grader.onnx"))
    props = {entry.key: json.loads(entry.value) for entry in proto.metadata_props}
    assert props[METADATA_PREFIX + "info"] == INFO
    assert props[METADATA_PREFIX + "dr_decoding"] == "expected"
    assert props[METADATA_PREFIX + "lesion_classes"] == ["MA", "HE", "EX", "SE", "OD"]
    assert props[METADATA_PREFIX + "lesion_activation"] == "sigmoid"
    assert props[METADATA_PREFIX + "preprocess"] == packed.preprocess.to_dict()
    assert props[METADATA_PREFIX + "photograph_preprocess"] == packed.photograph_preprocess.to_dict()
    assert [value.name for value in proto.graph.output] == ["dr_logits", "dme_logits", "lesion_logits", "embedding"]
    metadata = read_export_metadata(tmp_path / "grader.onnx")
    assert metadata.preprocess == packed.preprocess and metadata.photograph_preprocess == packed.photograph_preprocess
    assert metadata.info == INFO


def test_a_static_batch_export_takes_single_images_only(tmp_path: Path) -> None:
    name, kwargs = "u2net_xs", MODELS.get("u2net_xs").metadata["tiny"]
    export_model(load_pretrained(pack_tiny(name, kwargs, tmp_path)), tmp_path / "one.onnx", dynamic_batch=False)
    backend = OnnxBackend(tmp_path / "one.onnx")
    assert backend.session.get_inputs()[0].shape == [1, 3, TINY_SIZE, TINY_SIZE]
    assert backend(torch.zeros(1, 3, TINY_SIZE, TINY_SIZE)).lesion_logits.shape == (1, 4, TINY_SIZE, TINY_SIZE)
    with pytest.raises(Exception, match="images"):
        backend(torch.zeros(3, 3, TINY_SIZE, TINY_SIZE))


def test_the_shipped_model_exports_with_parity_at_224(tmp_path: Path) -> None:
    packed = load_pretrained()
    export_model(packed, tmp_path / "default.onnx")
    export_model(packed, tmp_path / "default.ts", "torchscript")
    torch_predictor = Predictor.from_packed(batch_size=4)
    images = [generate_fundus(size=320, seed=seed).image for seed in range(4)]
    expected = torch_predictor.predict_arrays(images)
    for runtime in ("onnx", "openvino"):
        got = Predictor.from_onnx(tmp_path / "default.onnx", batch_size=4, runtime=runtime).predict_arrays(images)
        for a, b in zip(expected, got):
            assert (b.dr_grade, b.dme_grade, b.referable) == (a.dr_grade, a.dme_grade, a.referable)
            for name in ("dr_probs", "dme_probs", "lesion_probs"):
                assert np.abs(getattr(b, name) - getattr(a, name)).max() < PROBABILITY_TOLERANCE, (runtime, name)
    batch = torch.stack([p.prepared.tensor for p in expected])
    scripted, _ = load_torchscript(tmp_path / "default.ts")
    with torch.no_grad():
        assert_same_probabilities(probabilities(ModelOutput(**scripted(batch)), packed, 224),
                                  probabilities(packed.model(batch), packed, 224))  # fmt: skip


def test_bad_requests_are_clear_errors(tmp_path: Path) -> None:
    packed = load_pretrained(pack_tiny(*TINY_GRADER, tmp_path))
    with pytest.raises(ValueError, match="unknown export format"):
        export_model(packed, tmp_path / "m.x", "tflite")
    with pytest.raises(ValueError, match="packed input size 64"):
        export_model(packed, tmp_path / "m.onnx", input_size=128)
    foreign = tmp_path / "foreign.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(foreign), dynamo=False)
    with pytest.raises(ValueError, match="not a drscreen export"):
        OnnxBackend(foreign)
    export_model(packed, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="not available"):
        OnnxBackend(tmp_path / "m.onnx", providers=["NoSuchExecutionProvider"])
    with pytest.raises(ValueError, match="device must be one of"):
        Predictor.from_onnx(tmp_path / "m.onnx", device="tpu")


def test_a_live_model_exports_with_its_normalisation(tmp_path: Path) -> None:
    model = create_model("u2net_xs", **MODELS.get("u2net_xs").metadata["tiny"]).eval()
    metadata = export_model(model, tmp_path / "live.onnx", input_size=TINY_SIZE)
    assert metadata.input_size == TINY_SIZE and metadata.outputs == ("lesion_logits",)
    assert metadata.preprocess.normalization == model.normalization and metadata.info == {}
    images = torch.randn(2, 3, TINY_SIZE, TINY_SIZE)
    with torch.no_grad():
        expected = model(images).lesion_logits.sigmoid()
    got = OnnxBackend(tmp_path / "live.onnx")(images).lesion_logits.sigmoid()
    assert float((got - expected).abs().max()) < PROBABILITY_TOLERANCE


def test_u_net_resizes_export_with_constant_scales_and_sessions_share_one_setting(tmp_path: Path) -> None:
    """The U-Net merges' resizes get constant scales (ONNX Runtime's NCHWc layout takes them) and
    no shape arithmetic is left; the session follows torch's thread count and does not spin."""
    model = create_model("u2net_xs", **MODELS.get("u2net_xs").metadata["tiny"]).eval()
    export_model(model, tmp_path / "live.onnx", input_size=TINY_SIZE)
    graph = onnx.load(str(tmp_path / "live.onnx")).graph
    resizes = [node for node in graph.node if node.op_type == "Resize"]
    initializers = {tensor.name for tensor in graph.initializer}
    assert resizes and all(len(node.input) == 3 and node.input[2] in initializers for node in resizes)
    assert not any(node.op_type in ("Shape", "Gather") for node in graph.node)
    backend = OnnxBackend(tmp_path / "live.onnx", threads=1)
    options = backend.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    default = OnnxBackend(tmp_path / "live.onnx").session.get_session_options()
    assert default.intra_op_num_threads == torch.get_num_threads()


def test_int8_export_quantises_the_u2net_xs_and_keeps_its_outputs_and_metadata(tmp_path: Path) -> None:
    """``int8=True``: QDQ integer graph, same outputs and metadata as the fp32 file, probabilities within
    the int8 tolerance of PyTorch; TorchScript refuses it."""
    model = create_model("u2net_xs", **MODELS.get("u2net_xs").metadata["tiny"]).eval()
    fp32 = export_model(model, tmp_path / "fp32.onnx", input_size=TINY_SIZE)
    export_model(model, tmp_path / "int8.onnx", input_size=TINY_SIZE, int8=True)
    graph = onnx.load(str(tmp_path / "int8.onnx")).graph
    assert any(node.op_type == "QuantizeLinear" for node in graph.node)
    assert read_export_metadata(tmp_path / "int8.onnx") == fp32
    predictor = Predictor.from_onnx(tmp_path / "int8.onnx", quality_gate=False)
    images = fundus_batch(predictor, 2)
    with torch.no_grad():
        expected = model(images).lesion_logits.sigmoid()
    spread = float(expected.max() - expected.min())  # small for random weights: a relative bound
    for backend in (predictor.backend, OpenVinoBackend(tmp_path / "int8.onnx")):
        got = backend(images).lesion_logits.sigmoid()
        assert got.shape == expected.shape and float((got - expected).abs().max()) < INT8_TOLERANCE * spread
    with pytest.raises(ValueError, match="ONNX exports only"):
        export_model(model, tmp_path / "int8.ts", "torchscript", input_size=TINY_SIZE, int8=True)


def test_cli_exports_a_packed_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    packed_file = pack_tiny(*TINY_GRADER, tmp_path)
    assert cli_main(["export", "--format", "onnx", "--model", str(packed_file), "--out", str(tmp_path / "m.onnx")]) == 0
    assert "outputs dr_logits, dme_logits, lesion_logits, embedding" in capsys.readouterr().out
    assert read_export_metadata(tmp_path / "m.onnx").info == INFO
    for flag in ("--static-batch", "--int8"):
        with pytest.raises(SystemExit, match="onnx only"):
            cli_main(["export", "--format", "torchscript", "--model", str(packed_file), "--out", str(tmp_path / "m.ts"),
                      flag])  # fmt: skip


def test_the_runtimes_are_imported_only_when_their_backend_is_used() -> None:
    code = ("import sys, drscreen.inference, drscreen.export; "
            "print('onnxruntime' in sys.modules, 'openvino' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False False"
