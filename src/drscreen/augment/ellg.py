"""ELLG lesion generation: new lesion images from saliency maps of correctly graded photographs.

Lin et al., "Explainable lesion learning and generation for diabetic retinopathy detection"
(ELLG), make extra training images without any lesion annotation. For a photograph the network
grades correctly, its GMSM saliency map says where the evidence lies; those regions are cut
out, re-toned and pasted, half transparent, into another correctly graded photograph (usually a
healthy one), whose label becomes the same mix of the two labels. Steps, as implemented here:

1. **Patches** (eq. 4): min-max normalise the map to [0, 1] and keep the pixels above a
   threshold ``τ`` drawn uniformly from ``[0.5, 0.8]`` for each generated image. The paper
   masks the photograph with that binary map; since it then shifts "single" patches, a patch
   here is one 8-connected component of the map, with its pixel mask, bounding box and the
   photograph's pixels under the mask (``extract_lesion_patches``).
2. **Colour transfer**: the source photograph is given the target's tone with Reinhard et al.'s
   lαβ statistics matching, measured over both fields of view (``colour.reinhard_transfer``),
   before the patches are cut.
3. **Random shifting**: each patch in turn gets uniformly drawn positions in the target until
   it lies inside the target's field of view and overlaps no patch placed before it, 100 draws
   at most; a patch that finds no place is dropped and counted (``place_patches``).
4. **Mixup** (eq. 5): under each placed patch's mask the generated pixel is
   ``r * patch + (1 - r) * target``; elsewhere the target is unchanged (``mixup_blend``). The
   paper tests "patch pixel != 0"; the explicit mask also keeps black lesion pixels.
5. **Label** (eq. 6): the severity labels mix with the same ``r``,
   ``r * l_source + (1 - r) * l_target`` (``mixed_label``), and the paper's ``classify`` maps
   the value back to a grade by the severity ranges of a regression network: grade ``g`` for
   values in ``[g - 0.5, g + 0.5)``, clipped to 0-4 (``label_to_grade``).

The paper does not give the range of the blending ratio; ``ELLGConfig.ratio_range`` defaults to
``[0.5, 1.0]`` so that the pasted lesions stay at least as strong as the background under them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np
import torch

from drscreen.augment.colour import reinhard_transfer
from drscreen.explain.saliency import normalize_maps
from drscreen.grading import NUM_DR_GRADES

#: ELLG's range of the patch threshold τ (eq. 4).
TAU_RANGE = (0.5, 0.8)
#: ELLG's number of random shifts tried per patch.
MAX_TRIES = 100
#: Severity values at which ``label_to_grade`` moves up one grade (rounding, halves up).
GRADE_THRESHOLDS = (0.5, 1.5, 2.5, 3.5)
#: ``generate_lesion_images`` gives up after this many (source, target) draws per requested image.
DRAWS_PER_IMAGE = 10


@dataclass(frozen=True, eq=False)
class LesionPatch:
    """One connected region of a thresholded saliency map, cut from its photograph.

    ``top``, ``left``: position of the bounding box in the source image, px. ``mask``: bool
    (h, w), the region inside its box. ``pixels``: uint8 (h, w, 3) RGB of the source under the
    box (zero outside ``mask``). ``saliency``: peak normalised saliency of the region.
    """

    top: int
    left: int
    mask: np.ndarray
    pixels: np.ndarray
    saliency: float

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of the bounding box, px."""
        return self.mask.shape[0], self.mask.shape[1]

    @property
    def area(self) -> int:
        """Number of pixels in the region."""
        return int(self.mask.sum())


@dataclass(frozen=True)
class Placement:
    """Patch ``index`` (into the list given to ``place_patches``) with its box at (top, left), px."""

    index: int
    top: int
    left: int


@dataclass(frozen=True)
class Placements:
    """Result of ``place_patches``: the placed patches, and the indices of those dropped."""

    placed: tuple[Placement, ...]
    dropped: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Fundus:
    """A correctly graded photograph offered to the generator.

    ``image``: uint8 (H, W, 3) RGB. ``label``: its DR severity on the 0-4 scale. ``name``: for
    provenance. ``fov_mask``: bool (H, W) field of view, ``None`` for the whole image.
    ``saliency``: (H, W) map in [0, 1], needed for sources only.
    """

    image: np.ndarray
    label: float
    name: str = ""
    fov_mask: np.ndarray | None = None
    saliency: np.ndarray | None = None


class FundusPool(Protocol):
    """Photographs read by position: a list of ``Fundus``, or a pool that loads them on access."""

    def __len__(self) -> int: ...

    def __getitem__(self, position: int) -> Fundus: ...


@dataclass(frozen=True, eq=False)
class GeneratedImage:
    """A generated lesion image: uint8 (H, W, 3) ``image``, mixed severity ``label`` (eq. 6
    before ``classify``), its ``grade`` and ``provenance`` (source, target, τ, r, patch counts)."""

    image: np.ndarray
    label: float
    grade: int
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ELLGConfig:
    """Settings of the generator (defaults: the paper's values, where it states them).

    ``tau_range``: range of the patch threshold τ. ``ratio_range``: range of the blending ratio
    r (not stated in the paper). ``min_area``: smallest patch kept, px (drops one-pixel specks).
    ``max_tries``: random shifts per patch. ``colour_transfer``: apply Reinhard's transfer.
    ``grade_thresholds``: severity values where ``label_to_grade`` moves up a grade.
    """

    tau_range: tuple[float, float] = TAU_RANGE
    ratio_range: tuple[float, float] = (0.5, 1.0)
    min_area: int = 4
    max_tries: int = MAX_TRIES
    colour_transfer: bool = True
    grade_thresholds: tuple[float, ...] = GRADE_THRESHOLDS

    def __post_init__(self) -> None:
        for name in ("tau_range", "ratio_range", "grade_thresholds"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        for name in ("tau_range", "ratio_range"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high <= 1.0:
                raise ValueError(f"{name} must be (low, high) with 0 <= low <= high <= 1, got {(low, high)}")
        if self.min_area < 1 or self.max_tries < 1:
            raise ValueError("min_area and max_tries must be >= 1")
        if len(self.grade_thresholds) != NUM_DR_GRADES - 1 or list(self.grade_thresholds) != sorted(
            self.grade_thresholds
        ):
            raise ValueError(f"grade_thresholds must be {NUM_DR_GRADES - 1} increasing values")


def _check_image(image: np.ndarray, what: str) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what} must be uint8 (H, W, 3), got {image.dtype} {image.shape}")


def _check_plane(plane: np.ndarray | None, shape: tuple[int, ...], what: str) -> None:
    if plane is not None and plane.shape != shape:
        raise ValueError(f"{what} of shape {plane.shape} does not match the image {shape}")


def draw_tau(rng: np.random.Generator, tau_range: tuple[float, float] = TAU_RANGE) -> float:
    """A patch threshold τ drawn uniformly from ``tau_range``."""
    return float(rng.uniform(*tau_range))


def extract_lesion_patches(
    image: np.ndarray,
    saliency: np.ndarray,
    tau: float | None = None,
    *,
    rng: np.random.Generator | None = None,
    min_area: int = 4,
    fov_mask: np.ndarray | None = None,
) -> list[LesionPatch]:
    """ELLG eq. 4: the 8-connected regions where the normalised saliency exceeds ``tau``.

    Args:
        image: uint8 (H, W, 3) RGB photograph the map explains.
        saliency: (H, W) map; min-max normalised here (a constant map gives no patch).
        tau: threshold in [0, 1]; ``None`` draws it from ``TAU_RANGE`` with ``rng``.
        rng: random generator for ``tau`` (default: a fresh unseeded one).
        min_area: regions with fewer pixels are dropped.
        fov_mask: bool (H, W); pixels outside are never part of a patch.

    Returns:
        The patches, largest peak saliency first (ties: top-to-bottom order of the regions).
    """
    _check_image(image, "image")
    saliency = np.ascontiguousarray(saliency, dtype=np.float32)
    _check_plane(saliency, image.shape[:2], "saliency")
    _check_plane(fov_mask, image.shape[:2], "fov_mask")
    if tau is None:
        tau = draw_tau(rng if rng is not None else np.random.default_rng())
    normalised = normalize_maps(torch.from_numpy(saliency)[None])[0].numpy()
    binary = normalised > tau
    if fov_mask is not None:
        binary &= np.asarray(fov_mask, dtype=bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    patches = []
    for component in range(1, count):
        left, top, width, height, area = (int(v) for v in stats[component])
        if area < min_area:
            continue
        box = (slice(top, top + height), slice(left, left + width))
        mask = labels[box] == component
        pixels = np.where(mask[..., None], image[box], 0).astype(np.uint8)
        patches.append(LesionPatch(top, left, mask, pixels, float(normalised[box][mask].max())))
    return sorted(patches, key=lambda p: -p.saliency)


def place_patches(
    patches: Sequence[LesionPatch],
    target_shape: tuple[int, int],
    fov_mask: np.ndarray | None,
    rng: np.random.Generator,
    max_tries: int = MAX_TRIES,
) -> Placements:
    """ELLG's random shifting: positions for ``patches`` in an image of ``target_shape`` (H, W).

    Each patch in turn gets up to ``max_tries`` box positions drawn uniformly among those that
    keep the box inside the image; the first where every patch pixel lies inside ``fov_mask``
    (``None``: anywhere) and on no pixel of a patch placed before it is kept. Patches that find
    none, or are larger than the image, are dropped (their indices are returned).
    """
    height, width = target_shape
    _check_plane(fov_mask, (height, width), "fov_mask")
    inside = np.ones((height, width), bool) if fov_mask is None else np.asarray(fov_mask, dtype=bool)
    free = inside.copy()
    placed: list[Placement] = []
    dropped: list[int] = []
    for index, patch in enumerate(patches):
        h, w = patch.shape
        position = None
        if h <= height and w <= width:
            for _ in range(max_tries):
                top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
                if free[top : top + h, left : left + w][patch.mask].all():
                    position = (top, left)
                    break
        if position is None:
            dropped.append(index)
            continue
        top, left = position
        free[top : top + h, left : left + w][patch.mask] = False
        placed.append(Placement(index, top, left))
    return Placements(tuple(placed), tuple(dropped))


def mixup_blend(target: np.ndarray, patch: LesionPatch, placement: Placement, ratio: float) -> np.ndarray:
    """ELLG eq. 5: ``r * patch + (1 - r) * target`` under the placed patch's mask; uint8 copy.

    Args:
        target: uint8 (H, W, 3) RGB image receiving the patch.
        patch: the (colour-transferred) patch.
        placement: where its box goes (``placement.index`` is not used here).
        ratio: blending ratio r in [0, 1] (1: the patch replaces the target).
    """
    _check_image(target, "target")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    h, w = patch.shape
    top, left = placement.top, placement.left
    if top < 0 or left < 0 or top + h > target.shape[0] or left + w > target.shape[1]:
        raise ValueError(f"a {h}x{w} patch at ({top}, {left}) leaves the {target.shape[:2]} image")
    out = target.copy()
    region = out[top : top + h, left : left + w]
    mixed = ratio * patch.pixels[patch.mask].astype(np.float64) + (1.0 - ratio) * region[patch.mask]
    region[patch.mask] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out


def mixed_label(label_target: float, label_source: float, ratio: float) -> float:
    """ELLG eq. 6 before ``classify``: ``ratio * label_source + (1 - ratio) * label_target``."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must be in [0, 1], got {ratio}")
    return ratio * float(label_source) + (1.0 - ratio) * float(label_target)


def label_to_grade(value: float, thresholds: Sequence[float] = GRADE_THRESHOLDS) -> int:
    """ELLG's ``classify``: the DR grade whose severity range holds ``value``.

    Grade ``g`` for ``thresholds[g - 1] <= value < thresholds[g]``, i.e. by default rounding
    with halves going up (1.49 -> 1, 1.5 -> 2), and 0 or 4 beyond the ends of the scale.
    """
    return int(np.searchsorted(np.asarray(thresholds, dtype=np.float64), float(value), side="right"))


def generate_one(
    source: Fundus, target: Fundus, rng: np.random.Generator, config: ELLGConfig
) -> GeneratedImage | None:
    """Blend the lesion patches of ``source`` into ``target`` (steps 1-5 of the module doc).

    Draws τ, r and the patch positions from ``rng``. Returns ``None`` when no patch could be
    placed (nothing was added, so the mixed label would be wrong).
    """
    if source.saliency is None:
        raise ValueError(f"source {source.name!r} has no saliency map")
    _check_image(source.image, "source image")
    _check_image(target.image, "target image")
    tau = draw_tau(rng, config.tau_range)
    ratio = float(rng.uniform(*config.ratio_range))
    toned = (
        reinhard_transfer(source.image, target.image, source.fov_mask, target.fov_mask)
        if config.colour_transfer
        else source.image
    )
    patches = extract_lesion_patches(
        toned, source.saliency, tau, min_area=config.min_area, fov_mask=source.fov_mask
    )
    placements = place_patches(patches, target.image.shape[:2], target.fov_mask, rng, config.max_tries)
    if not placements.placed:
        return None
    image = target.image
    for placement in placements.placed:
        image = mixup_blend(image, patches[placement.index], placement, ratio)
    label = mixed_label(target.label, source.label, ratio)
    provenance = {
        "source": source.name,
        "target": target.name,
        "tau": tau,
        "ratio": ratio,
        "label_source": float(source.label),
        "label_target": float(target.label),
        "patches": len(patches),
        "placed": len(placements.placed),
        "dropped": len(placements.dropped),
    }
    return GeneratedImage(image, label, label_to_grade(label, config.grade_thresholds), provenance)


def generate_lesion_images(
    sources: FundusPool,
    targets: FundusPool,
    n: int,
    rng: np.random.Generator,
    config: ELLGConfig | None = None,
) -> list[GeneratedImage]:
    """``n`` ELLG images, each from a uniformly drawn (source, target) pair (``generate_one``).

    ``sources`` need saliency maps; both are only indexed, so they may load images on access.
    A draw whose patches find no place yields nothing and another pair is drawn; after
    ``DRAWS_PER_IMAGE * n`` draws the images made so far are returned. Deterministic for a
    given ``rng`` state.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n and (not sources or not targets):
        raise ValueError("ELLG generation needs at least one source and one target image")
    config = config or ELLGConfig()
    images: list[GeneratedImage] = []
    for _ in range(DRAWS_PER_IMAGE * n):
        if len(images) == n:
            break
        source = sources[int(rng.integers(len(sources)))]
        target = targets[int(rng.integers(len(targets)))]
        generated = generate_one(source, target, rng, config)
        if generated is not None:
            images.append(generated)
    return images
