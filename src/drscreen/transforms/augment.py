"""Joint image + lesion-mask augmentation (torchvision ``transforms.v2``) with per-paper presets.

Geometric operations (rotation, shift, scaling, shear, flips, resized crop) move the image and
its masks together: the image is resampled bilinearly, the masks with nearest neighbour (v2 does
this for ``tv_tensors.Mask``), and pixels moved in from outside are black (the fundus background)
in the image and background in the masks. Photometric operations (colour jitter, channel shift)
touch the image only.

What each paper states (magnitudes the paper does not give are drscreen's choice, marked *):

=========  ========================================================================================
preset     augmentation
=========  ========================================================================================
none       nothing
sunet      nothing: Tu et al. (SUNet) list no augmentation
mtunet     Foo et al. (MTUnet, Keras): random rotations, width/height shifts, shear, zoom,
           horizontal and vertical flips and channel shifts; magnitudes* 30°, ±10 %, 10°,
           0.9-1.1, p = 0.5, ±0.1 of the intensity range
u2net      Siebert & Rostalski (U²-XS-Net): rotations up to 90°, shifts of ±10 % of the side,
           scaling by ±40 % (0.6-1.4), horizontal and vertical flips with p = 0.5
tian       Tian et al.: random resized crop, random affine, horizontal and vertical flips;
           magnitudes* crop of 70-100 % of the area with aspect 0.9-1.1, 15°, ±5 %, 0.95-1.05,
           p = 0.5
ellg       nothing: Lin et al. (ELLG) add generated lesion images instead (the ``rounds`` schedule)
drscreen   drscreen's default*: 30°, ±5 % shift, 0.9-1.1 scaling, both flips (p = 0.5),
           brightness and contrast ±0.2, saturation ±0.1
=========  ========================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

#: Preset name -> the ``AugmentationConfig`` fields it sets (all others stay at their no-op default).
PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "sunet": {},
    "mtunet": {
        "rotation": 30.0, "shift": 0.1, "shear": 10.0, "scale": (0.9, 1.1),
        "hflip": 0.5, "vflip": 0.5, "channel_shift": 0.1,
    },
    "u2net": {"rotation": 90.0, "shift": 0.1, "scale": (0.6, 1.4), "hflip": 0.5, "vflip": 0.5},
    "tian": {
        "resized_crop": (0.7, 1.0), "crop_ratio": (0.9, 1.1), "rotation": 15.0, "shift": 0.05,
        "scale": (0.95, 1.05), "hflip": 0.5, "vflip": 0.5,
    },
    "ellg": {},
    "drscreen": {
        "rotation": 30.0, "shift": 0.05, "scale": (0.9, 1.1), "hflip": 0.5, "vflip": 0.5,
        "brightness": 0.2, "contrast": 0.2, "saturation": 0.1,
    },
}  # fmt: skip


@dataclass(frozen=True)
class AugmentationConfig:
    """Training augmentation. ``preset`` fills the fields it names; fields given explicitly win.

    Attributes:
        preset: a key of ``PRESETS``.
        rotation: maximum rotation in degrees (uniform in ±rotation).
        shift: maximum translation as a fraction of the side (horizontal and vertical).
        scale: (min, max) zoom factor.
        shear: maximum shear in degrees.
        hflip, vflip: probabilities of a horizontal / vertical flip.
        resized_crop: (min, max) fraction of the area of a random crop resized back to the input
            size, ``None`` for no crop; ``crop_ratio`` bounds its aspect ratio.
        brightness, contrast, saturation, hue: ``ColorJitter`` strengths (image only).
        channel_shift: maximum offset added to every channel, as a fraction of the intensity
            range (Keras' ``channel_shift_range``; image only).
        patch: side of a random square crop (image and masks) taken after the geometric
            operations, ``None`` for whole images: patch training of fully convolutional
            segmenters, which then predict whole images at the preprocessing size.
    """

    preset: str = "none"
    rotation: float = 0.0
    shift: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    shear: float = 0.0
    hflip: float = 0.0
    vflip: float = 0.0
    resized_crop: tuple[float, float] | None = None
    crop_ratio: tuple[float, float] = (1.0, 1.0)
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    channel_shift: float = 0.0
    patch: int | None = None

    @classmethod
    def from_preset(cls, preset: str = "none", **overrides: Any) -> AugmentationConfig:
        """The preset's settings with ``overrides`` on top."""
        if preset not in PRESETS:
            raise ValueError(f"unknown augmentation preset {preset!r}; known: {', '.join(PRESETS)}")
        return cls(preset=preset, **{**PRESETS[preset], **overrides})


class ChannelShift(v2.Transform):
    """Adds one random offset in ``±shift`` (fraction of the range) to every channel of the image.

    Masks and other inputs pass through unchanged.
    """

    _transformed_types = (tv_tensors.Image,)

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.shift = shift

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"offset": float(torch.empty(()).uniform_(-self.shift, self.shift))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        peak = 255.0 if inpt.dtype == torch.uint8 else 1.0
        shifted = (inpt.float() + params["offset"] * peak).clamp_(0.0, peak)
        return tv_tensors.wrap(shifted.to(inpt.dtype), like=inpt)


class JointAugmentation:
    """Callable applying one random draw of the configured transforms to an image and its masks."""

    def __init__(self, transforms: list[v2.Transform]) -> None:
        self.pipeline = v2.Compose(transforms) if transforms else None

    @property
    def is_identity(self) -> bool:
        """True when no transform is configured (inputs are returned as they are)."""
        return self.pipeline is None

    def __call__(self, image: Tensor, masks: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Augment ``image`` (3, S, S) uint8 and ``masks`` (C, S, S) uint8 or ``None``; same shapes out.

        Randomness comes from torch's global generator (seed it for reproducible draws).
        """
        if self.pipeline is None:
            return image, masks
        if masks is None:
            return self.pipeline(tv_tensors.Image(image)).as_subclass(Tensor), None
        out_image, out_masks = self.pipeline(tv_tensors.Image(image), tv_tensors.Mask(masks))
        return out_image.as_subclass(Tensor), out_masks.as_subclass(Tensor)


def build_augmentation(config: AugmentationConfig, size: int) -> JointAugmentation:
    """The transforms of ``config`` for square inputs of side ``size``, geometric first."""
    ops: list[v2.Transform] = []
    if config.resized_crop is not None:
        ops.append(
            v2.RandomResizedCrop(size, scale=config.resized_crop, ratio=config.crop_ratio, antialias=True)
        )
    if config.rotation or config.shift or config.shear or config.scale != (1.0, 1.0):
        ops.append(
            v2.RandomAffine(
                degrees=config.rotation,
                translate=(config.shift, config.shift) if config.shift else None,
                scale=config.scale if config.scale != (1.0, 1.0) else None,
                shear=config.shear or None,
                interpolation=v2.InterpolationMode.BILINEAR,
                fill=0,
            )
        )
    if config.patch is not None:
        if not 0 < config.patch <= size:
            raise ValueError(f"augmentation patch must be in 1..{size} (the input size), got {config.patch}")
        ops.append(v2.RandomCrop(config.patch))
    if config.hflip:
        ops.append(v2.RandomHorizontalFlip(config.hflip))
    if config.vflip:
        ops.append(v2.RandomVerticalFlip(config.vflip))
    if config.brightness or config.contrast or config.saturation or config.hue:
        ops.append(v2.ColorJitter(config.brightness, config.contrast, config.saturation, config.hue))
    if config.channel_shift:
        ops.append(ChannelShift(config.channel_shift))
    return JointAugmentation(ops)
