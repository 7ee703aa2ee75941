"""Team o_O's DR regression network, as used by the ELLG paper."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from drscreen.models import create_model
from drscreen.models.architectures.ellg_net import MIN_INPUT_SIZE, Maxout, OONet, RMSPool
from drscreen.models.registry import MODELS

BLOCKS = ("block1", "block2", "block3")


def tiny() -> OONet:
    return create_model("o_o_net", width=2, dense_units=8).eval()


def block_sizes(model: OONet, size: int) -> dict[str, tuple[int, int]]:
    sizes: dict[str, tuple[int, int]] = {}
    handles = [
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, key=name: sizes.__setitem__(key, tuple(out.shape[-2:]))
        )
        for name in BLOCKS
    ]
    with torch.no_grad():
        model(torch.randn(1, 3, size, size))
    for handle in handles:
        handle.remove()
    return sizes


def test_blocks_end_at_27_13_6_on_the_native_448_crop() -> None:
    assert block_sizes(tiny(), 448) == {"block1": (27, 27), "block2": (13, 13), "block3": (6, 6)}


def test_512_inputs_give_31_15_7() -> None:
    # Lin et al. quote 512-pixel images; o_O crops them to 448 before the network.
    assert block_sizes(tiny(), 512) == {"block1": (31, 31), "block2": (15, 15), "block3": (7, 7)}


@pytest.mark.parametrize(("batch", "size"), [(2, 448), (1, MIN_INPUT_SIZE)])
def test_dr_score_is_one_value_per_image(batch: int, size: int) -> None:
    with torch.no_grad():
        output = tiny()(torch.randn(batch, 3, size, size))
    assert output.dr_score is not None and output.dr_score.shape == (batch,)
    assert output.dr_logits is None and output.lesion_logits is None and output.embedding is None


def test_minimum_input_size() -> None:
    assert MODELS.get("o_o_net").metadata["min_input_size"] == MIN_INPUT_SIZE
    with pytest.raises(RuntimeError):
        tiny()(torch.randn(1, 3, MIN_INPUT_SIZE - 1, MIN_INPUT_SIZE - 1))


def test_rms_pool_equals_o_o_fixed_window_on_6x6() -> None:
    x = torch.randn(2, 3, 6, 6)
    expected = F.avg_pool2d(x * x, kernel_size=3, stride=3).sqrt()
    torch.testing.assert_close(RMSPool((2, 2))(x), expected)


def test_maxout_pairs_consecutive_units() -> None:
    assert torch.equal(Maxout(2)(torch.tensor([[1.0, 5.0, 3.0, 2.0]])), torch.tensor([[5.0, 3.0]]))


def test_explain_layers() -> None:
    model = tiny()
    assert (model.explain_layers.low, model.explain_layers.high) == ("block1", "block3")


def test_published_parameter_count() -> None:
    with torch.device("meta"):
        model = create_model("o_o_net")
    assert sum(p.numel() for p in model.parameters()) == 8_145_121


def test_rejects_odd_dense_units() -> None:
    with pytest.raises(ValueError, match="even"):
        OONet(dense_units=7)
