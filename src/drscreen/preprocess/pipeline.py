"""The one preprocessing path shared by training, evaluation, the CLI and the server.

``Preprocessor(config).prepare(image)`` detects the field of view, crops a square around it (or
pads the whole image to a square), resizes it, blackens what lies outside the FOV, applies the
configured enhancement, normalises for the backbone and runs the quality gate. The returned
:class:`PreparedImage` keeps the :class:`CropGeometry`, so that masks and heatmaps computed on the
crop map back onto the original photo, and ``prepare_mask`` brings ground-truth masks into the
same geometry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np
import torch

from drscreen.preprocess.enhance import (
    BEN_GRAHAM_SIGMA_FRACTION,
    CLAHE_CLIP_LIMIT,
    ben_graham,
    ben_graham_normalised,
    clahe,
)
from drscreen.preprocess.fov import FieldOfView, detect_fov
from drscreen.preprocess.geometry import CropGeometry
from drscreen.preprocess.normalization import IMAGENET, NORMALIZATIONS, Normalization
from drscreen.preprocess.quality import QualityReport, QualityThresholds, assess_quality
from drscreen.preprocess.resample import crop_resized

Enhancement = Literal["none", "clahe", "ben_graham", "ben_graham_normalised"]
ENHANCEMENTS: tuple[str, ...] = ("none", "clahe", "ben_graham", "ben_graham_normalised")


@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocessing settings; plain and serialisable (``to_dict`` / ``from_dict``).

    Attributes:
        size: side ``S`` of the square network input, px.
        enhancement: ``"none"``, ``"clahe"`` (U²-Net paper), ``"ben_graham"`` (fine-grained paper)
            or ``"ben_graham_normalised"`` (Ben Graham with a fixed per-channel contrast: the
            photograph path of drscreen's default model, docs/preprocessing.md).
        normalization: per-channel mean/std of the backbone (``model.normalization``).
        crop_to_fov: crop the square around the detected FOV; otherwise (or when no FOV is
            found) the whole image is zero-padded to a square.
        fov_margin: widen the FOV crop by this fraction of the FOV radius on each side.
        mask_outside_fov: set pixels outside the FOV to black (text, reflections, padding noise).
        quality_gate: assess image quality (``PreparedImage.quality``; None when off).
        clahe_clip_limit: CLAHE clip limit.
        clahe_tiles: CLAHE tiles per side of the crop.
        ben_graham_sigma_fraction: Ben Graham's blur sigma as a fraction of the FOV radius.
        quality_thresholds: limits of the quality gate.
    """

    size: int = 512
    enhancement: Enhancement = "none"
    normalization: Normalization = IMAGENET
    crop_to_fov: bool = True
    fov_margin: float = 0.0
    mask_outside_fov: bool = True
    quality_gate: bool = True
    clahe_clip_limit: float = CLAHE_CLIP_LIMIT
    clahe_tiles: int = 8
    ben_graham_sigma_fraction: float = BEN_GRAHAM_SIGMA_FRACTION
    quality_thresholds: QualityThresholds = field(default_factory=QualityThresholds)

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"size must be at least 8 px, got {self.size}")
        if self.enhancement not in ENHANCEMENTS:
            raise ValueError(f"enhancement must be one of {ENHANCEMENTS}, got {self.enhancement!r}")
        if self.fov_margin < 0 or self.clahe_tiles < 1 or self.ben_graham_sigma_fraction <= 0:
            raise ValueError("fov_margin must be >= 0, clahe_tiles >= 1 and ben_graham_sigma_fraction > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-friendly form; ``from_dict`` reads it back."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["normalization"] = {"mean": list(self.normalization.mean), "std": list(self.normalization.std)}
        data["quality_thresholds"] = asdict(self.quality_thresholds)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessConfig:
        """Settings from a mapping; missing keys take their defaults, unknown keys are an error.

        ``normalization`` may be a name (``"imagenet"``, ``"half"``), a ``{"mean", "std"}`` mapping
        or a :class:`Normalization`; ``quality_thresholds`` a mapping of some of its fields.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown preprocess settings {sorted(unknown)}; known: {sorted(known)}")
        values = dict(data)
        if "normalization" in values:
            values["normalization"] = _normalization(values["normalization"])
        if isinstance(values.get("quality_thresholds"), Mapping):
            values["quality_thresholds"] = QualityThresholds(**values["quality_thresholds"])
        return cls(**values)

    @classmethod
    def for_model(cls, settings: Mapping[str, Any], model_normalization: Any) -> PreprocessConfig:
        """``from_dict(settings)`` with the model's input normalisation (``model.normalization``)
        unless ``settings`` name one: how training, evaluation and packed models prepare inputs."""
        return cls.from_dict({"normalization": model_normalization, **settings})


def _normalization(value: str | Mapping[str, Any] | Normalization) -> Normalization:
    if isinstance(value, Normalization):
        return value
    if isinstance(value, str):
        if value.lower() not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {value!r}; known: {sorted(NORMALIZATIONS)}")
        return NORMALIZATIONS[value.lower()]
    mean, std = (tuple(float(v) for v in value[key]) for key in ("mean", "std"))
    if len(mean) != 3 or len(std) != 3:
        raise ValueError("normalization mean and std need 3 values each")
    return Normalization(mean=mean, std=std)  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class PreparedImage:
    """One image prepared for a network.

    Attributes:
        tensor: (3, S, S) float32, normalised network input.
        display: (S, S, 3) uint8 RGB, the same image before normalisation (cropped, resized,
            enhanced): what the network sees, for augmentation, caching and display.
        geometry: maps the crop to the original image and back.
        fov: the field of view in the original image.
        fov_mask: (S, S) bool, the field of view in the crop.
        quality: the quality gate's report, or None when the gate is off.
    """

    tensor: torch.Tensor
    display: np.ndarray
    geometry: CropGeometry
    fov: FieldOfView
    fov_mask: np.ndarray
    quality: QualityReport | None

    @property
    def usable(self) -> bool:
        """False only when the quality gate ran and found an issue."""
        return self.quality is None or self.quality.usable


class Preprocessor:
    """Applies a :class:`PreprocessConfig`. Stateless apart from the config; safe to share."""

    def __init__(self, config: PreprocessConfig | None = None) -> None:
        self.config = config or PreprocessConfig()

    def prepare(self, image: np.ndarray, fov: FieldOfView | None = None) -> PreparedImage:
        """Prepare ``image`` (H, W, 3) uint8 RGB. Never drops an image: check ``usable``.

        ``fov``: the field of view already detected on this very image (another model's
        preparation of it); None detects it.

        Memory stays within a few times the image's own size plus the (S, S) output, whatever the
        aspect ratio: a large padded square is never built at full resolution (``crop_resized``).
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        cfg = self.config
        if fov is None:
            fov = detect_fov(image)
        elif fov.image_size != image.shape[:2]:
            raise ValueError(f"the field of view is of a {fov.image_size} image, not of this {image.shape[:2]} one")
        if cfg.crop_to_fov and fov.found:
            geometry = CropGeometry.around_fov(fov, cfg.size, margin=cfg.fov_margin)
        else:
            geometry = CropGeometry.whole_image(*image.shape[:2], output_size=cfg.size)
        crop = crop_resized(geometry, image, "area")
        fov_mask = crop_resized(geometry, fov.mask, "linear")
        if cfg.mask_outside_fov and fov.found:
            crop[~fov_mask] = 0
        display = self._enhance(crop, fov_mask, fov.radius * geometry.scale if fov.found else cfg.size / 2)
        scaled = torch.from_numpy(np.ascontiguousarray(display)).permute(2, 0, 1).float().div_(255.0)
        quality = assess_quality(image, fov, cfg.quality_thresholds) if cfg.quality_gate else None
        return PreparedImage(
            tensor=cfg.normalization(scaled),
            display=display,
            geometry=geometry,
            fov=fov,
            fov_mask=fov_mask,
            quality=quality,
        )

    def prepare_mask(
        self,
        mask: np.ndarray,
        geometry: CropGeometry,
        interpolation: Literal["area", "nearest"] = "area",
        threshold: float | None = 0.5,
    ) -> np.ndarray:
        """Bring a mask of the original image, (H, W) bool or float in [0, 1], into the crop: (S, S).

        With ``"area"`` each output pixel gets the fraction of it the mask covers; a bool mask is
        then thresholded at ``threshold`` (None returns the float32 coverage: soft targets that
        keep lesions smaller than an output pixel, such as microaneurysms after a strong
        downscale). Float masks are returned as float32 coverage.
        """
        if mask.ndim != 2 or mask.shape != geometry.original_size:
            raise ValueError(f"mask is {mask.shape}, expected {geometry.original_size}")
        if interpolation == "nearest":
            return geometry.apply(mask, "nearest")
        coverage = geometry.apply(mask.astype(np.float32), interpolation)
        if mask.dtype != np.bool_ or threshold is None:
            return np.clip(coverage, 0.0, 1.0)
        return coverage >= threshold

    def _enhance(self, crop: np.ndarray, fov_mask: np.ndarray, radius: float) -> np.ndarray:
        """Apply the configured enhancement to the (S, S, 3) uint8 crop."""
        cfg = self.config
        if cfg.enhancement == "clahe":
            tiles = (cfg.clahe_tiles, cfg.clahe_tiles)
            return clahe(crop, cfg.clahe_clip_limit, tiles, mask=fov_mask if cfg.mask_outside_fov else None)
        if cfg.enhancement == "ben_graham":
            mask = fov_mask if cfg.mask_outside_fov else None
            return ben_graham(crop, mask, radius=radius, sigma_fraction=cfg.ben_graham_sigma_fraction)
        if cfg.enhancement == "ben_graham_normalised":
            mask = fov_mask if cfg.mask_outside_fov else None
            return ben_graham_normalised(crop, mask, radius=radius, sigma_fraction=cfg.ben_graham_sigma_fraction)
        return crop
