"""The Screener on ONNX Runtime gives the PyTorch Screener's results."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drscreen.screening import ScreenedImage, Screener, ScreeningInput
from drscreen.synth import generate_fundus


@pytest.mark.parametrize(("runtime", "backend"), [("onnx", "OnnxBackend"), ("openvino", "OpenVinoBackend")])
def test_exported_runtimes_screen_like_torch(runtime: str, backend: str) -> None:
    """Both networks (grader and the shipped lesion model) run on the runtime, with the same results."""
    inputs = [ScreeningInput(id=f"s{seed}", image=generate_fundus(seed, 384, target_dr=2 * seed).image) for seed in range(2)]
    torch_results = [o for o in Screener(explain=False).screen(inputs)]
    onnx_screener = Screener(explain=False, runtime=runtime)
    onnx_results = [o for o in onnx_screener.screen(inputs)]
    assert onnx_screener.settings["runtime"] == backend
    assert onnx_screener.settings_key != Screener(explain=False).settings_key
    assert onnx_screener.lesion_provenance is not None and onnx_screener.lesion_provenance.runtime == backend
    for expected, got in zip(torch_results, onnx_results):
        assert isinstance(expected, ScreenedImage) and isinstance(got, ScreenedImage)
        assert got.result.provenance.runtime == backend
        assert expected.result.lesions
        assert [(f.code, f.region) for f in got.result.lesions] == [(f.code, f.region) for f in expected.result.lesions]
        for got_finding, expected_finding in zip(got.result.lesions, expected.result.lesions):
            assert got_finding.area_px == pytest.approx(expected_finding.area_px, rel=0.02, abs=50)
        assert got.result.dr is not None and expected.result.dr is not None
        assert got.result.dr.grade == expected.result.dr.grade
        np.testing.assert_allclose(got.result.dr.probabilities, expected.result.dr.probabilities, atol=1e-3)
        assert got.result.referable is not None and expected.result.referable is not None
        assert got.result.referable.referable == expected.result.referable.referable


def test_unknown_runtimes_are_refused() -> None:
    with pytest.raises(ValueError, match="runtime"):
        Screener(runtime="tensorrt")
    with pytest.raises(ValueError, match="lesions.onnx: an .onnx file runs on runtime 'onnx' or 'openvino'"):
        Screener(lesion_model="lesions.onnx")


def test_precision_and_batch_size_are_part_of_the_settings_key() -> None:
    default = Screener(explain=False)
    assert default.settings["precision"] == "fp32"
    openvino = Screener(explain=False, runtime="openvino", lesion_model=None)
    openvino_bf16 = Screener(explain=False, runtime="openvino", amp="bf16", lesion_model=None)
    assert openvino.settings["precision"] == "fp32"
    chosen = openvino_bf16.predictor.backend.amp_dtype  # what OpenVINO runs on this CPU: bf16 or f32
    assert openvino_bf16.settings["precision"] == ("bfloat16" if chosen == torch.bfloat16 else "fp32")
    assert (openvino_bf16.settings_key != openvino.settings_key) == (chosen is not None)
    with pytest.raises(ValueError, match="ONNX Runtime runs exported files in full precision"):
        Screener(explain=False, runtime="onnx", amp="bf16", lesion_model=None)
    assert Screener(explain=False, amp="bf16").settings_key != default.settings_key
    assert Screener(explain=False, batch_size=4).settings_key != default.settings_key
