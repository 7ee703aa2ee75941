"""HBP graders: the pooling maths by hand, output shapes, the pyramid, the VGG-16 taps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drscreen.models import create_model
from drscreen.models.architectures.finegrained import (
    FPN,
    hierarchical_bilinear_pool,
    signed_sqrt_l2,
)

PROJ_DIM = 32


def project(x: Tensor, conv: nn.Conv2d) -> Tensor:
    """A 1x1 conv written as an einsum: (B, C, h, w) -> (B, d, h, w)."""
    weight = conv.weight[:, :, 0, 0]
    assert conv.bias is not None
    return torch.einsum("bchw,dc->bdhw", x, weight) + conv.bias[None, :, None, None]


def hbp_by_hand(
    f1: Tensor, f3: Tensor, f5: Tensor, u: nn.Conv2d, v: nn.Conv2d, s: nn.Conv2d
) -> Tensor:
    """HBP written out: einsum projections and products, signed sqrt, per-part L2 norm."""
    pu, pv, ps = project(f1, u), project(f3, v), project(f5, s)
    parts = []
    for a, b in ((pu, pv), (pu, ps), (pv, ps)):
        z = torch.einsum("bdhw,bdhw->bd", a, b)
        z = z.sign() * z.abs().sqrt()
        parts.append(z / z.norm(dim=1, keepdim=True))
    return torch.cat(parts, dim=1)


def test_hbp_matches_a_hand_computation() -> None:
    f1, f3, f5 = torch.randn(2, 3, 4, 5), torch.randn(2, 6, 4, 5), torch.randn(2, 5, 4, 5)
    u, v, s = nn.Conv2d(3, 7, 1), nn.Conv2d(6, 7, 1), nn.Conv2d(5, 7, 1)
    with torch.no_grad():
        actual = hierarchical_bilinear_pool(f1, f3, f5, u, v, s)
        expected = hbp_by_hand(f1, f3, f5, u, v, s)
    assert actual.shape == (2, 21)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_hbp_needs_one_grid() -> None:
    conv = nn.Conv2d(2, 3, 1)
    with pytest.raises(ValueError, match="one grid"):
        maps = (torch.randn(1, 2, 8, 8), torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4))
        hierarchical_bilinear_pool(*maps, conv, conv, conv)


def test_signed_sqrt_l2() -> None:
    out = signed_sqrt_l2(torch.tensor([[4.0, -9.0, 0.0], [1e-3, 2.0, -7.0]]))
    torch.testing.assert_close(out[0], torch.tensor([2.0, -3.0, 0.0]) / 13**0.5)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    assert torch.equal(out.sign(), torch.tensor([[1.0, -1.0, 0.0], [1.0, 1.0, -1.0]]))


def test_signed_sqrt_l2_gradient_is_finite_at_zero() -> None:
    x = torch.tensor([[0.0, 1.0, -2.0]], requires_grad=True)
    signed_sqrt_l2(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_fpn_levels() -> None:
    maps = [torch.randn(1, c, 33 // 2**i, 40 // 2**i) for i, c in enumerate((4, 6, 8, 10, 12))]
    fpn = FPN([4, 6, 8, 10, 12], channels=5, outputs=(0, 2, 4))
    levels = fpn(maps)
    assert [tuple(level.shape) for level in levels] == [(1, 5, 33, 40), (1, 5, 8, 10), (1, 5, 2, 2)]


@pytest.fixture(scope="module")
def finegrained() -> nn.Module:
    torch.manual_seed(0)
    return create_model("finegrained_hbp", fpn_channels=8, proj_dim=PROJ_DIM).eval()


def test_finegrained_outputs(finegrained: nn.Module) -> None:
    levels: list[Tensor] = []
    finegrained.fpn.register_forward_hook(lambda _m, _i, out: levels.extend(out))
    images = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        output = finegrained(images)
    assert output.dr_logits.shape == (2, 5)
    assert output.embedding.shape == (2, 3 * PROJ_DIM)
    torch.testing.assert_close(output.embedding.view(2, 3, PROJ_DIM).norm(dim=2), torch.ones(2, 3))
    assert output.lesion_logits is None and output.dr_score is None
    # F1, F3, F5 of DenseNet-169: strides 2, 8, 32; F1 and F3 are average-pooled onto F5's grid.
    f1, f3, f5 = levels
    assert [tuple(f.shape[-2:]) for f in levels] == [(48, 32), (12, 8), (3, 2)]
    hbp = finegrained.hbp
    with torch.no_grad():
        expected = hbp_by_hand(
            F.avg_pool2d(f1, 16), F.avg_pool2d(f3, 4), f5, hbp.u, hbp.v, hbp.s
        )
        torch.testing.assert_close(output.embedding, expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(output.dr_logits, hbp.classifier(output.embedding))


def test_finegrained_explain_layers(finegrained: nn.Module) -> None:
    assert finegrained.explain_layers.high == "fpn.smooth.2"
    assert finegrained.explain_layers.low == "fpn.smooth.1"
    assert finegrained.normalization == finegrained.encoder.normalization


def test_vgg16_hbp_pools_relu5_1_to_5_3() -> None:
    model = create_model("vgg16_hbp", proj_dim=PROJ_DIM).eval()
    assert model.taps == (25, 27, 29)  # torchvision's relu5_1, relu5_2, relu5_3
    assert model.explain_layers.low == "encoder.features.22"  # relu4_3
    assert model.explain_layers.high == "encoder.features.29"  # relu5_3
    taps: dict[int, Tensor] = {}
    for index in (25, 27, 29):
        layer = model.encoder.features[index]
        assert isinstance(layer, nn.ReLU)
        layer.register_forward_hook(
            lambda _m, _i, out, key=index: taps.__setitem__(key, out.clone())
        )
    with torch.no_grad():
        output = model(torch.randn(2, 3, 64, 48))
        expected = hbp_by_hand(taps[25], taps[27], taps[29], model.hbp.u, model.hbp.v, model.hbp.s)
    assert all(t.shape == (2, 512, 4, 3) for t in taps.values())  # stride 16, no alignment needed
    assert output.dr_logits.shape == (2, 5)
    assert output.embedding.shape == (2, 3 * PROJ_DIM)
    torch.testing.assert_close(output.embedding, expected, rtol=1e-4, atol=1e-5)


def test_published_sizes() -> None:
    with torch.device("meta"):
        finegrained = create_model("finegrained_hbp")
        vgg = create_model("vgg16_hbp")
    for model in (finegrained, vgg):
        assert model.hbp.classifier.in_features == 3 * 8192
    assert sum(p.numel() for p in finegrained.parameters()) == 21_661_573
    assert sum(p.numel() for p in vgg.parameters()) == 27_445_061
