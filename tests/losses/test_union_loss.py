"""``lesion_union``: per-class lesion maps trained from masks that only know the union."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from drscreen.losses import UNION_POSITIVE, TaskTargets, create_loss
from drscreen.models.output import ModelOutput


def _union_masks(union: torch.Tensor, group: int, extra: torch.Tensor | None = None) -> torch.Tensor:
    """(B, H, W) 0/1 union -> (B, group [+ 1], H, W) masks holding 0 / UNION_POSITIVE per group channel."""
    channels = [union * UNION_POSITIVE] * group
    if extra is not None:
        channels.append(extra)
    return torch.stack(channels, dim=1).float()


def test_union_only_equals_bce_on_the_maximum() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 8, 8)
    union = (torch.rand(2, 8, 8) > 0.7).float()
    loss = create_loss("lesion_union", base="lesion_ce")(logits, _union_masks(union, 4))
    expected = F.binary_cross_entropy_with_logits(logits.amax(dim=1), union)
    torch.testing.assert_close(loss, expected)


def test_gradient_reaches_only_the_argmax_channel() -> None:
    torch.manual_seed(1)
    logits = torch.randn(1, 4, 6, 6, requires_grad=True)
    union = (torch.rand(1, 6, 6) > 0.5).float()
    create_loss("lesion_union", base="focal_bce_dice")(logits, _union_masks(union, 4)).backward()
    assert logits.grad is not None
    winner = F.one_hot(logits.detach().argmax(dim=1), 4).permute(0, 3, 1, 2).bool()
    assert bool((logits.grad[~winner] == 0).all())
    assert bool((logits.grad[winner] != 0).any())


def test_known_channels_keep_their_masks_and_full_samples_are_scored_as_they_are() -> None:
    torch.manual_seed(2)
    logits = torch.randn(3, 5, 8, 8)
    union = (torch.rand(1, 8, 8) > 0.6).float()
    disc = (torch.rand(3, 8, 8) > 0.8).float()
    full = (torch.rand(2, 5, 8, 8) > 0.8).float()
    masks = torch.cat([full, _union_masks(union, 4, disc[2:])])
    base = create_loss("lesion_ce")
    loss = create_loss("lesion_union", base="lesion_ce")(logits, masks)
    merged = torch.cat([logits[2:, :4].amax(dim=1, keepdim=True), logits[2:, 4:]], dim=1)
    merged_masks = torch.stack([union, disc[2:]], dim=1)
    expected = (2 * base(logits[:2], full) + base(merged, merged_masks)) / 3
    torch.testing.assert_close(loss, expected)
    # Without union pixels the loss is the base loss.
    torch.testing.assert_close(create_loss("lesion_union", base="lesion_ce")(logits[:2], full), base(logits[:2], full))


def test_an_empty_union_means_every_class_is_absent() -> None:
    logits = torch.randn(1, 4, 4, 4)
    zeros = torch.zeros(1, 4, 4, 4)
    union_loss = create_loss("lesion_union", base="lesion_ce")(logits, zeros)
    torch.testing.assert_close(union_loss, create_loss("lesion_ce")(logits, zeros))


def test_rejects_softmax_and_mixed_groups() -> None:
    loss = create_loss("lesion_union", base="lesion_ce")
    with pytest.raises(ValueError, match="sigmoid"):
        loss(torch.randn(1, 5, 4, 4), torch.zeros(1, 4, 4, 4), "softmax")
    masks = torch.zeros(2, 3, 4, 4)
    masks[0, :2, 0, 0] = UNION_POSITIVE
    masks[1, 1:, 0, 0] = UNION_POSITIVE
    with pytest.raises(ValueError, match="group"):
        loss(torch.randn(2, 3, 4, 4), masks)


def test_in_the_multitask_loss_with_deep_supervision() -> None:
    torch.manual_seed(3)
    loss = create_loss("multitask", preset="u2net", lesion_loss="lesion_union")
    logits = torch.randn(2, 5, 8, 8, requires_grad=True)
    sides = (torch.randn(2, 5, 8, 8, requires_grad=True),)
    masks = torch.cat(
        [(torch.rand(1, 5, 8, 8) > 0.8).float(), _union_masks(torch.ones(1, 8, 8), 4, torch.zeros(1, 8, 8))]
    )
    targets = TaskTargets(torch.full((2,), -1), lesion_masks=masks)
    total, parts = loss(ModelOutput(lesion_logits=logits, side_outputs=sides), targets)
    total.backward()
    assert torch.isfinite(total) and "lesion" in parts
    assert logits.grad is not None and sides[0].grad is not None
