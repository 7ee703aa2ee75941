"""U²-Net family: parameter counts, side outputs, arbitrary sizes, ST / DT / MT lesion groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from drscreen.grading import SEGMENTATION_LESIONS
from drscreen.models import create_model
from drscreen.models.architectures.u2net import (
    RSU,
    U2NET_LITE,
    U2NET_XS,
    U2Net,
    u2net_mode_lesions,
)


def count_parameters(name: str, **config: object) -> int:
    """Parameters of a registered model, built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = create_model(name, **config)
    return sum(p.numel() for p in model.parameters())


def test_full_u2net_has_44_million_parameters() -> None:
    # Qin et al. report 44.0 M for one output channel (the ST configuration).
    count = count_parameters("u2net", lesions=("EX",))
    assert abs(count - 44.0e6) / 44.0e6 < 0.01
    assert count == 43_995_469


def test_u2net_lite_has_1_13_million_parameters() -> None:
    count = count_parameters("u2net_lite", lesions=("EX",))
    assert abs(count - 1.13e6) / 1.13e6 < 0.01


def test_u2net_xs_has_0_29_million_parameters_in_mt_mode() -> None:
    counts = {
        mode: count_parameters("u2net_xs", lesions=u2net_mode_lesions(mode)[0])
        for mode in ("ST", "DT", "MT")
    }
    assert 0.25e6 <= counts["MT"] <= 0.33e6
    assert counts["MT"] == 290_108
    assert counts["ST"] < counts["DT"] < counts["MT"]  # only the side / fuse convs grow


def test_xs_widths_halve_the_lite_widths() -> None:
    assert U2NET_XS == U2NET_LITE.scaled(0.5)


@pytest.mark.parametrize(("dilated", "height"), [(False, 7), (False, 4), (True, 4)])
def test_rsu_keeps_odd_sizes(dilated: bool, height: int) -> None:
    block = RSU(height, 3, 4, 6, dilated=dilated)
    out = block(torch.randn(1, 3, 37, 23))
    assert out.shape == (1, 6, 37, 23)


def test_rsu_4f_is_dilated_not_pooled() -> None:
    block = RSU(4, 3, 4, 6, dilated=True)
    dilations = [m.dilation[0] for m in block.modules() if isinstance(m, nn.Conv2d)]
    # conv_in, inner encoder, bottom, inner decoder
    assert dilations == [1, 1, 2, 4, 8, 4, 2, 1]


@pytest.mark.parametrize("size", [(72, 72), (50, 37)])
def test_six_side_outputs_at_input_size(size: tuple[int, int]) -> None:
    model = create_model("u2net_xs", width_multiplier=0.5).eval()
    with torch.no_grad():
        output = model(torch.randn(2, 3, *size))
    assert output.lesion_logits is not None and output.side_outputs is not None
    assert output.lesion_logits.shape == (2, 4, *size)
    assert len(output.side_outputs) == 6
    assert all(side.shape == (2, 4, *size) for side in output.side_outputs)
    assert output.dr_logits is None and output.dme_logits is None and output.embedding is None


def test_fused_output_is_a_1x1_conv_of_the_side_outputs() -> None:
    model = create_model("u2net_xs", width_multiplier=0.5).eval()
    with torch.no_grad():
        output = model(torch.randn(1, 3, 40, 40))
        assert output.side_outputs is not None
        expected = model.fuse(torch.cat(output.side_outputs, dim=1))
    torch.testing.assert_close(output.lesion_logits, expected)


def test_explain_layers_are_en3_and_en6() -> None:
    model = create_model("u2net_xs", width_multiplier=0.5).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    for name in (model.explain_layers.low, model.explain_layers.high):
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, key=name: shapes.__setitem__(key, tuple(out.shape))
        )
    with torch.no_grad():
        model(torch.randn(1, 3, 72, 72))
    # Pools round up: 72 -> 36 -> 18 (En3) -> 9 -> 5 -> 3 (En6).
    assert shapes == {"encoder.2": (1, 16, 18, 18), "encoder.5": (1, 16, 3, 3)}


def test_mode_lesion_groups() -> None:
    assert u2net_mode_lesions("ST") == [("MA",), ("HE",), ("EX",), ("SE",)]
    assert u2net_mode_lesions("DT") == [("MA", "HE"), ("EX", "SE")]
    assert u2net_mode_lesions("MT") == [SEGMENTATION_LESIONS]
    with pytest.raises(ValueError, match="mode"):
        u2net_mode_lesions("XT")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["ST", "DT", "MT"])
def test_one_model_per_lesion_group(mode: str) -> None:
    for group in u2net_mode_lesions(mode):  # type: ignore[arg-type]
        model = create_model("u2net_xs", lesions=group, width_multiplier=0.25)
        assert model.lesion_classes == group
        assert model.lesion_activation == "sigmoid"
        assert model.fuse.out_channels == len(group)


def test_rejects_unknown_lesions() -> None:
    with pytest.raises(ValueError, match="unknown lesion"):
        U2Net(U2NET_XS, lesions=("MA", "XX"))
    with pytest.raises(ValueError, match="at least one"):
        U2Net(U2NET_XS, lesions=())
