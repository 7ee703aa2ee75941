"""Test-time augmentation (``tta_forward``) and the autocast dtype of the inference core."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from drscreen.inference import TTA_FLIPS, amp_dtype_for, tta_forward
from drscreen.models import ModelOutput


class CornerModel(nn.Module):
    """Grades read from the top-left pixel (so flips change them); lesion logits = the image's
    first channel (per pixel, so flipping the map back must restore it exactly)."""

    def forward(self, images: Tensor) -> ModelOutput:
        corner = images[:, :, 0, 0]
        return ModelOutput(
            dr_logits=torch.cat([corner, -corner[:, :2]], dim=1),
            dme_logits=corner,
            lesion_logits=images[:, :1] * 3.0,
            embedding=corner * 2.0,
        )


def test_tta_none_is_the_plain_forward() -> None:
    images = torch.randn(2, 3, 8, 8)
    plain, augmented = CornerModel()(images), tta_forward(CornerModel(), images, "none")
    assert torch.equal(plain.dr_logits, augmented.dr_logits)


def test_tta_flips_average_log_probabilities_over_the_four_corners() -> None:
    images = torch.randn(2, 3, 8, 8)
    output = tta_forward(CornerModel(), images, "flips")
    corners = [images[:, :, 0, 0], images[:, :, 0, -1], images[:, :, -1, 0], images[:, :, -1, -1]]
    expected = torch.stack([torch.cat([c, -c[:, :2]], dim=1).log_softmax(dim=1) for c in corners]).mean(dim=0)
    assert torch.allclose(output.dr_logits, expected, atol=1e-6)
    assert torch.allclose(
        output.dme_logits, torch.stack([c.log_softmax(dim=1) for c in corners]).mean(dim=0), atol=1e-6
    )
    assert torch.allclose(output.embedding, torch.stack(corners).mean(dim=0) * 2.0, atol=1e-6)
    # Per-pixel lesion maps are flipped back before averaging: identical to the plain map.
    assert torch.allclose(output.lesion_logits, images[:, :1] * 3.0, atol=1e-6)
    assert len(TTA_FLIPS["flips"]) == 4


def test_tta_rejects_unknown_modes() -> None:
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        tta_forward(CornerModel(), torch.zeros(1, 3, 4, 4), "rotations")


def test_autocast_dtype() -> None:
    cpu = torch.device("cpu")
    assert amp_dtype_for("auto", cpu) is None and amp_dtype_for("fp32", cpu) is None
    assert amp_dtype_for("bf16", cpu) is torch.bfloat16 and amp_dtype_for("fp16", cpu) is torch.float16
    with pytest.raises(ValueError, match="unknown mixed-precision"):
        amp_dtype_for("int8", cpu)
