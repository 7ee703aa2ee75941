"""How well saliency maps point at lesions: pointing game, saliency mass inside lesions, AUPR.

All three compare one (H, W) map in [0, 1] with a bool (H, W) lesion mask of the same grid (for
drscreen's benchmarks: the network-input crop) and are undefined for an image without lesions,
which the aggregate (``score_maps``, ``faithfulness_table``) leaves out and counts.

* **Pointing game** (after Zhang et al., "Top-down neural attention by excitation backprop",
  ECCV 2016): a hit when the map's maximum lies on a lesion, up to a tolerance radius of
  ``POINTING_TOLERANCE`` = 1/64 of the map's longer side (8 px on a 512 px input: half of a
  stride-16 feature cell; lesions such as microaneurysms are only a few pixels wide, and the
  maps are upsampled from coarse layers). When several pixels share the maximum, all of them
  must be within the tolerance, so a constant map only hits when lesions cover the image.
* **Saliency mass inside lesions**: the share of the map's total value that lies on lesion
  pixels. A map that spreads evenly scores the lesions' share of the image.
* **Saliency AUPR**: the map used as a pixel-wise lesion detector, scored by
  ``drscreen.metrics.pooled_aupr`` (average precision, its default). A constant map scores the
  lesions' pixel share.

A constant map (normalised saliency maps of no evidence are all zero) carries no location; all
three metrics give it the value of an evenly spread map, so it never looks better than chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from drscreen.explain.saliency import CAMNotApplicableError, create_saliency
from drscreen.explain.targets import Target
from drscreen.metrics import pooled_aupr
from drscreen.models.base import DRModel

#: Pointing-game tolerance radius as a fraction of the map's longer side (8 px at 512 px).
POINTING_TOLERANCE = 1 / 64
#: Reference maps of ``saliency_maps``: i.i.d. uniform noise (chance for the pointing game) and a
#: constant map (chance for mass and AUPR).
BASELINES = ("random", "uniform")
#: Default methods of ``faithfulness_table``: the four saliency methods and the two baselines.
DEFAULT_METHODS = ("cam", "gradcam", "gradcam++", "gmsm", *BASELINES)


def _pair(saliency: np.ndarray, lesion_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checked float64 map in [0, 1] and bool mask of the same (H, W) shape."""
    values = np.asarray(saliency, dtype=np.float64)
    mask = np.asarray(lesion_mask, dtype=bool)
    if values.ndim != 2 or values.shape != mask.shape:
        raise ValueError(f"saliency {values.shape} and lesion mask {mask.shape} must be equal (H, W) shapes")
    if not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
        raise ValueError("saliency values must lie in [0, 1]")
    if not mask.any():
        raise ValueError("the lesion mask is empty: faithfulness is undefined without lesions")
    return values, mask


def is_constant(saliency: np.ndarray) -> bool:
    """Whether a map has one value everywhere (no location information)."""
    values = np.asarray(saliency)
    return bool(values.max() == values.min())


def pointing_game(saliency: np.ndarray, lesion_mask: np.ndarray, tolerance: float = POINTING_TOLERANCE) -> bool:
    """Whether every maximal pixel of ``saliency`` lies within ``tolerance * max(H, W)`` px
    (Euclidean) of a lesion pixel. Maps (H, W) in [0, 1], mask bool (H, W), non-empty."""
    values, mask = _pair(saliency, lesion_mask)
    radius = tolerance * max(mask.shape)
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return bool((distance[values == values.max()] <= radius).all())


def saliency_mass_inside(saliency: np.ndarray, lesion_mask: np.ndarray) -> float:
    """Share in [0, 1] of the map's total on lesion pixels (an all-zero map: the lesion area share)."""
    values, mask = _pair(saliency, lesion_mask)
    total = values.sum()
    return float(values[mask].sum() / total) if total > 0 else float(mask.mean())


def saliency_aupr(saliency: np.ndarray, lesion_mask: np.ndarray) -> float:
    """Average precision of the map as a pixel lesion detector (``pooled_aupr`` on one image)."""
    values, mask = _pair(saliency, lesion_mask)
    return pooled_aupr([values], [mask])


def saliency_maps(
    model: DRModel | None,
    images: Tensor,
    method: str,
    target: Target | None = None,
    *,
    batch_size: int = 8,
    seed: int = 0,
    **kwargs: Any,
) -> np.ndarray:
    """(N, H, W) float32 maps in [0, 1] of ``method`` for normalised ``images`` (N, 3, H, W).

    ``method``: a registered saliency method (``create_saliency(method, model, **kwargs)``, run
    in batches of ``batch_size``), or a baseline: ``"random"`` (uniform noise from ``seed``) or
    ``"uniform"`` (all ones; no model needed). Raises ``CAMNotApplicableError`` as CAM does.
    """
    shape = (images.shape[0], *images.shape[-2:])
    if method == "uniform" or not len(images):
        return np.ones(shape, np.float32)
    if method == "random":
        return np.random.default_rng(seed).random(shape, dtype=np.float32)
    if model is None:
        raise ValueError(f"saliency method {method!r} needs a model")
    explainer = create_saliency(method, model, **kwargs)
    return np.concatenate(
        [explainer(images[i : i + batch_size], target).cpu().numpy() for i in range(0, len(images), batch_size)]
    ).astype(np.float32)


def score_maps(
    maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], tolerance: float = POINTING_TOLERANCE
) -> dict[str, Any]:
    """Faithfulness of maps (H, W) against bool lesion masks (H, W), image by image.

    Returns ``pointing``, ``mass_inside`` and ``aupr`` (means over the images with a lesion),
    ``aupr_pooled`` (``pooled_aupr`` over all their pixels together), ``n_images`` (images
    scored), ``n_without_lesion`` (left out) and ``n_constant`` (scored maps with one value).
    Means are NaN when no image has a lesion.
    """
    if len(maps) != len(masks):
        raise ValueError(f"{len(maps)} maps but {len(masks)} masks")
    kept = [(np.asarray(s), np.asarray(m, dtype=bool)) for s, m in zip(maps, masks) if np.any(m)]
    row: dict[str, Any] = {
        "n_images": len(kept),
        "n_without_lesion": len(maps) - len(kept),
        "n_constant": sum(is_constant(s) for s, _ in kept),
    }
    if not kept:
        return {"pointing": np.nan, "mass_inside": np.nan, "aupr": np.nan, "aupr_pooled": np.nan, **row}
    return {
        "pointing": float(np.mean([pointing_game(s, m, tolerance) for s, m in kept])),
        "mass_inside": float(np.mean([saliency_mass_inside(s, m) for s, m in kept])),
        "aupr": float(np.mean([saliency_aupr(s, m) for s, m in kept])),
        "aupr_pooled": pooled_aupr([s for s, _ in kept], [m for _, m in kept]),
        **row,
    }


def faithfulness_table(
    model: DRModel | None,
    images: Tensor,
    masks: np.ndarray | Sequence[np.ndarray],
    methods: Sequence[str] = DEFAULT_METHODS,
    target: Target | None = None,
    *,
    tolerance: float = POINTING_TOLERANCE,
    batch_size: int = 8,
    seed: int = 0,
    method_kwargs: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """``score_maps`` of each method on ``images`` (N, 3, H, W, normalised for the model).

    Args:
        model: the model explained (``None`` allowed when only baselines are asked for).
        images: network inputs; maps come out in their (H, W) grid.
        masks: N bool (H, W) lesion masks in the same grid.
        methods: saliency method or baseline names (``saliency_maps``).
        target: the explained score (default: ``targets.default_target``).
        tolerance: pointing-game radius as a fraction of the longer side.
        batch_size, seed: as ``saliency_maps``.
        method_kwargs: method name -> extra arguments (e.g. ``{"gmsm": {"gate": 0.0}}``).

    Returns:
        method -> ``score_maps`` row; where CAM does not apply to the model, the row is
        ``{"error": <reason>}``. Images without lesions are not explained at all.
    """
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    with_lesion = [i for i, m in enumerate(masks) if np.any(m)]
    chosen = images[torch.as_tensor(with_lesion, dtype=torch.long)]
    chosen_masks = [np.asarray(masks[i], dtype=bool) for i in with_lesion]
    table: dict[str, dict[str, Any]] = {}
    for name in methods:
        try:
            maps = saliency_maps(
                model, chosen, name, target, batch_size=batch_size, seed=seed, **(method_kwargs or {}).get(name, {})
            )
        except CAMNotApplicableError as error:
            table[name] = {"error": str(error)}
            continue
        row = score_maps(list(maps), chosen_masks, tolerance)
        row["n_without_lesion"] = len(masks) - len(with_lesion)
        table[name] = row
    return table
