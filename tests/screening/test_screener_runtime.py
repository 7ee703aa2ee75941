"""The Screener on ONNX Runtime gives the PyTorch Screener's results."""

from __future__ import annotations

import numpy as np
import pytest

from drscreen.screening import ScreenedImage, Screener, ScreeningInput
from drscreen.synth import generate_fundus


def test_onnx_runtime_screens_like_torch() -> None:
    inputs = [ScreeningInput(id=f"s{seed}", image=generate_fundus(seed, 384, target_dr=2 * seed).image) for seed in range(2)]
    torch_results = [o for o in Screener(explain=False).screen(inputs)]
    onnx_screener = Screener(explain=False, runtime="onnx")
    onnx_results = [o for o in onnx_screener.screen(inputs)]
    assert onnx_screener.settings["runtime"] == "OnnxBackend" and onnx_screener.settings_key != Screener(explain=False).settings_key
    for expected, got in zip(torch_results, onnx_results):
        assert isinstance(expected, ScreenedImage) and isinstance(got, ScreenedImage)
        assert got.result.provenance.runtime == "OnnxBackend"
        assert got.result.dr is not None and expected.result.dr is not None
        assert got.result.dr.grade == expected.result.dr.grade
        np.testing.assert_allclose(got.result.dr.probabilities, expected.result.dr.probabilities, atol=1e-3)
        assert got.result.referable is not None and expected.result.referable is not None
        assert got.result.referable.referable == expected.result.referable.referable


def test_unknown_runtimes_are_refused() -> None:
    with pytest.raises(ValueError, match="runtime"):
        Screener(runtime="tensorrt")


def test_precision_and_batch_size_are_part_of_the_settings_key() -> None:
    default = Screener(explain=False)
    assert default.settings["precision"] == "fp32"
    assert Screener(explain=False, amp="bf16").settings_key != default.settings_key
    assert Screener(explain=False, batch_size=4).settings_key != default.settings_key
