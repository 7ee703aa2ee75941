"""Joint augmentation: masks follow the image under geometric transforms, colour ops skip masks."""

from __future__ import annotations

import pytest
import torch

from drscreen.transforms import PRESETS, AugmentationConfig, build_augmentation

SIZE = 64


def _square_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A dark image with a bright off-centre square, and two mask channels with the same square."""
    image = torch.full((3, SIZE, SIZE), 20, dtype=torch.uint8)
    masks = torch.zeros((2, SIZE, SIZE), dtype=torch.uint8)
    image[:, 12:30, 36:52] = 230
    masks[:, 12:30, 36:52] = 1
    return image, masks


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum().item()
    return (a & b).sum().item() / union if union else 1.0


@pytest.mark.parametrize("preset", ["u2net", "mtunet", "tian", "drscreen"])
def test_masks_stay_aligned_with_the_image(preset: str) -> None:
    augment = build_augmentation(AugmentationConfig.from_preset(preset), SIZE)
    image, masks = _square_pair()
    torch.manual_seed(0)
    moved = 0
    for _ in range(10):
        out_image, out_masks = augment(image, masks)
        assert out_image.shape == image.shape and out_image.dtype == torch.uint8
        assert out_masks is not None and out_masks.shape == masks.shape and out_masks.dtype == torch.uint8
        assert set(out_masks.unique().tolist()) <= {0, 1}, "masks must stay binary (nearest resampling)"
        assert torch.equal(out_masks[0], out_masks[1])
        in_image = out_image.float().mean(0) > 125
        in_mask = out_masks[0].bool()
        if in_mask.sum() < 20:  # the square left the frame
            continue
        assert _iou(in_image, in_mask) > 0.75
        moved += not torch.equal(out_masks, masks)
    assert moved >= 5


def test_flips_move_mask_and_image_identically() -> None:
    augment = build_augmentation(AugmentationConfig(hflip=1.0, vflip=1.0), SIZE)
    image, masks = _square_pair()
    out_image, out_masks = augment(image, masks)
    assert torch.equal(out_image, image.flip(-1).flip(-2))
    assert torch.equal(out_masks, masks.flip(-1).flip(-2))


def test_colour_operations_leave_masks_untouched() -> None:
    config = AugmentationConfig(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1, channel_shift=0.2)
    augment = build_augmentation(config, SIZE)
    image, masks = _square_pair()
    image[0] += 15  # some colour for saturation and hue to act on
    torch.manual_seed(1)
    changed = 0
    for _ in range(5):
        out_image, out_masks = augment(image, masks)
        assert torch.equal(out_masks, masks)
        changed += not torch.equal(out_image, image)
    assert changed == 5


def test_presets_and_overrides() -> None:
    assert AugmentationConfig.from_preset("sunet") == AugmentationConfig(preset="sunet")
    u2net = AugmentationConfig.from_preset("u2net", rotation=45.0)
    assert u2net.rotation == 45.0 and u2net.scale == (0.6, 1.4)
    assert build_augmentation(AugmentationConfig.from_preset("none"), SIZE).is_identity
    assert set(PRESETS) >= {"sunet", "mtunet", "u2net", "tian", "ellg"}
    with pytest.raises(ValueError, match="unknown augmentation preset"):
        AugmentationConfig.from_preset("imagenet")


def test_image_without_masks() -> None:
    augment = build_augmentation(AugmentationConfig.from_preset("u2net"), SIZE)
    out_image, out_masks = augment(_square_pair()[0], None)
    assert out_masks is None and out_image.shape == (3, SIZE, SIZE)
