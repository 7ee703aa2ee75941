"""Class-activation saliency maps: CAM, Grad-CAM, Grad-CAM++ and GMSM.

The methods run on drscreen's own forward hooks and ``torch.autograd.grad``, not on the
``grad-cam`` package: that package requires ``opencv-python``, which cannot be installed beside
the ``opencv-python-headless`` drscreen depends on.

Every method follows the same steps for a batch of normalised images (B, 3, H, W):

1. One forward pass in eval mode (so that samples do not interact through batch statistics) with
   forward hooks recording each chosen layer's activations ``A`` (B, K, h, w).
2. The target (``drscreen.explain.targets``) turns the ``ModelOutput`` into a (B,) score ``y``.
3. ``G = dy/dA`` for every hooked layer. Summing ``y`` over the batch gives each sample's own
   gradient because eval-mode samples are independent. Nothing is accumulated in the
   parameters' ``.grad``.
4. Each method reduces ``(A, G)`` to a raw map (B, h, w): ``sum_k w_k A_k`` with its own channel
   weights ``w`` (B, K) and its own clipping.
5. Each layer's map is upsampled bilinearly to (H, W), min-max normalised to [0, 1] per image
   (a constant map becomes 0, see ``normalize_maps``) and the layers' maps are averaged.

Hooks are removed and every module's train/eval flag is restored afterwards, also on errors.
The methods, in the words of their papers' ideas:

* CAM (Zhou et al., "Learning deep features for discriminative localization", CVPR 2016): when
  a class score is a linear function of the global average of the last feature map, the
  weighted sum of that map's channels with the class's linear weights shows where the evidence
  lies. drscreen computes the weights by the gradient identity: for such a head
  ``dy/dA_k[i, j] = W_k / (h w)`` at every position, so ``w_k = sum_ij G_k[i, j]`` is exactly
  the linear weight ``W_k``. The identity only holds when ``G`` is constant over positions, which
  is checked; otherwise ``CAMNotApplicableError`` is raised (use Grad-CAM). For a target that is
  not a single logit (e.g. ``ReferableTarget``) the weights are the chain-rule mix of the
  logits' linear weights at the current input. The map is not clipped, as in the paper.
  SUNet (Tu et al.) shows CAM maps, but its classifiers (conv -> global max pool -> linear) are
  not of this form, so CAM raises there. A 1 x 1 layer passes the check trivially (its map is
  constant, hence 0).
* Grad-CAM (Selvaraju et al., ICCV 2017): ``w_k`` = spatial mean of ``G_k``; map ``ReLU(sum)``.
  With a global-average-pooling -> linear head this is ``ReLU(CAM)`` up to a positive factor.
* Grad-CAM++ (Chattopadhay et al., WACV 2018): ``w_k = sum_ij a_k[i, j] ReLU(G_k[i, j])`` with
  ``a_k[i, j] = G^2 / (2 G^2 + (sum_ab A_k[a, b]) G^3)`` (``G`` at ``[i, j]``; 0 where the
  denominator is 0). The paper derives ``a`` for ``exp(y)``, whose first derivative carries a
  positive per-image factor ``exp(y)``; drscreen drops that factor, which only scales a map.
  Map ``ReLU(sum)``.
* GMSM (Lin et al., "Explainable lesion learning and generation for diabetic retinopathy
  detection", ELLG): on a low and a high layer, Grad-CAM++ maps with the ReLU replaced by a
  gate, ``L = max(sum_k w_k A_k, t)`` (eq. 2): every value below ``t`` is raised to ``t``, so
  after normalisation weak fluctuations (e.g. the optic disc of a healthy eye) fall to 0
  instead of being stretched to visible levels. The two normalised maps are averaged (eq. 3).
  ``t`` is in the units of ``sum_k w_k A_k`` and therefore depends on the model's output scale;
  the paper uses ``t = 1`` and ``t = 0`` gives plain Grad-CAM++ per layer. A layer whose map
  lies entirely at or below ``t`` contributes zeros, and when both do, the map is all zeros
  (whose arg-max is pixel (0, 0)). For ``ReferableTarget`` (``log P``) the weighted activations
  carry the factor ``1 - P`` of its gradient, so on confidently referable photographs they fall
  far below ``t = 1``; ``ReferableLogOddsTarget`` has no such factor (``targets``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from drscreen.explain.targets import Target, TargetError, default_target
from drscreen.models.base import DRModel
from drscreen.registry import Registry

_CAM_RTOL = 1e-4
"""Relative spread of ``G`` over positions (to its largest magnitude) that CAM still accepts."""
_FLAT_RTOL = 1e-5
"""Relative range (to its largest magnitude) below which a map counts as constant."""


class CAMNotApplicableError(ValueError):
    """CAM was asked for on a model whose target does not read the layer through GAP -> linear."""


def normalize_maps(maps: Tensor) -> Tensor:
    """Min-max normalise each map of (B, H, W) to [0, 1].

    A map whose range is at most ``_FLAT_RTOL`` of its largest magnitude counts as constant and
    becomes all zeros: such a range is rounding noise (e.g. of upsampling a 1 x 1 map), which
    min-max scaling would otherwise stretch to [0, 1].
    """
    low = maps.amin(dim=(-2, -1), keepdim=True)
    span = maps.amax(dim=(-2, -1), keepdim=True) - low
    flat = span <= _FLAT_RTOL * maps.abs().amax(dim=(-2, -1), keepdim=True)
    return torch.where(flat, 0.0, (maps - low) / torch.where(flat, 1.0, span))


def fuse_maps(maps: Sequence[Tensor], size: tuple[int, int]) -> Tensor:
    """Upsample each (B, h_l, w_l) map bilinearly to ``size``, normalise, average: (B, *size)."""
    resized = [
        F.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        for m in maps
    ]
    return torch.stack([normalize_maps(m) for m in resized]).mean(dim=0)


def weighted_sum(weights: Tensor, activations: Tensor) -> Tensor:
    """``sum_k w_k A_k``: weights (B, K) and activations (B, K, h, w) -> (B, h, w)."""
    return torch.einsum("bk,bkhw->bhw", weights, activations)


def gradcam_plus_plus_weights(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM++ channel weights (B, K) from activations and gradients (B, K, h, w).

    ``w_k = sum_ij a[i, j] ReLU(G[i, j])``, ``a = G^2 / (2 G^2 + G^3 sum_ab A_k[a, b])``, with
    ``a = 0`` where that denominator is 0 (in particular where ``G = 0``).
    """
    g2 = gradients.square()
    denominator = 2 * g2 + g2 * gradients * activations.sum(dim=(2, 3), keepdim=True)
    nonzero = denominator != 0
    alpha = torch.where(nonzero, g2 / torch.where(nonzero, denominator, 1.0), 0.0)
    return (alpha * gradients.clamp_min(0)).sum(dim=(2, 3))


def _record(
    store: dict[str, Tensor], name: str, module: nn.Module, inputs: Any, output: Any
) -> Tensor:
    """Forward hook: keep layer ``name``'s output (of its last call) and pass on a copy.

    The copy keeps the recorded tensor (and its autograd node) safe from in-place operations of
    the layers after it.
    """
    if not isinstance(output, Tensor) or output.ndim != 4:
        raise TypeError(f"layer {name!r} must output a (B, K, h, w) tensor to be explained")
    store[name] = output
    return output.clone()


@contextmanager
def hooked(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, Tensor]]:
    """Eval mode plus forward hooks recording ``layers``' outputs (name -> (B, K, h, w)).

    On exit the hooks are removed and every module's train/eval flag is set back.
    """
    modes = {module: module.training for module in model.modules()}
    store: dict[str, Tensor] = {}
    handles: list[RemovableHandle] = []
    try:
        for name in layers:
            module = model.get_submodule(name)
            handles.append(module.register_forward_hook(partial(_record, store, name)))
        model.eval()
        yield store
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training


class SaliencyMethod:
    """Base of the saliency methods: hooks, gradients, upsampling, normalisation, fusion.

    Args:
        model: the model to explain, on any device.
        layers: dotted names of the layers to hook (``model.get_submodule``); default
            ``default_layers(model)`` (the contract's high layer; GMSM: low and high).

    Calling the method with images (B, 3, H, W), normalised as the model expects, and an
    optional target (default: ``targets.default_target``) returns (B, H, W) float32 maps in
    [0, 1] on the images' device. Works with or without an enclosing ``torch.no_grad``.
    """

    def __init__(self, model: DRModel, layers: Sequence[str] | None = None) -> None:
        self.model = model
        self.layers = tuple(layers) if layers is not None else self.default_layers(model)
        if not self.layers:
            raise ValueError("a saliency method needs at least one layer")
        for name in self.layers:
            try:
                model.get_submodule(name)
            except AttributeError:
                raise ValueError(f"{type(model).__name__} has no layer {name!r}") from None

    @staticmethod
    def default_layers(model: DRModel) -> tuple[str, ...]:
        """The contract's high layer (the last spatial map before the grading head)."""
        return (model.explain_layers.high,)

    def layer_map(self, activations: Tensor, gradients: Tensor) -> Tensor:
        """Raw map (B, h, w) of one layer from its activations and score gradients (B, K, h, w)."""
        raise NotImplementedError

    def __call__(self, images: Tensor, target: Target | None = None) -> Tensor:
        """Saliency maps (B, H, W) in [0, 1] of ``target`` for ``images`` (B, 3, H, W)."""
        if images.ndim != 4:
            raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images.shape)}")
        parameter = next(self.model.parameters(), None)
        device = parameter.device if parameter is not None else images.device
        with hooked(self.model, self.layers) as store, torch.enable_grad():
            x = images.to(device).detach().requires_grad_(True)
            output = self.model(x)
            score = (target or default_target(output, self.model))(output, self.model)
            if score.shape != (x.shape[0],):
                raise TargetError(
                    f"target must give one score per image, got shape {tuple(score.shape)}"
                )
            missing = [name for name in self.layers if name not in store]
            if missing:
                raise ValueError(f"layers {missing} did not run in the model's forward")
            activations = [store[name] for name in self.layers]
            gradients = torch.autograd.grad(score.sum(), activations, allow_unused=True)
        unused = [name for name, g in zip(self.layers, gradients) if g is None]
        if unused:
            raise TargetError(
                f"the target does not depend on layers {unused}; pass layers= on its output's path"
            )
        with torch.no_grad():
            maps = [
                self.layer_map(a.detach().float(), g.float())
                for a, g in zip(activations, gradients)
            ]
            return fuse_maps(maps, (images.shape[-2], images.shape[-1])).to(images.device)


class CAM(SaliencyMethod):
    """Class activation map by the gradient identity; needs a GAP -> linear head (module doc)."""

    def layer_map(self, activations: Tensor, gradients: Tensor) -> Tensor:
        spread = (gradients - gradients.mean(dim=(2, 3), keepdim=True)).abs().amax(dim=(1, 2, 3))
        scale = gradients.abs().amax(dim=(1, 2, 3))
        if bool((spread > _CAM_RTOL * scale).any()):
            raise CAMNotApplicableError(
                "CAM needs a target that reads the explained layer only through global average "
                f"pooling and a linear layer; on {type(self.model).__name__} the score's gradient "
                "varies over positions. Use 'gradcam' or 'gradcam++' instead."
            )
        return weighted_sum(gradients.sum(dim=(2, 3)), activations)


class GradCAM(SaliencyMethod):
    """Grad-CAM: channels weighted by their spatially averaged gradient, then ReLU."""

    def layer_map(self, activations: Tensor, gradients: Tensor) -> Tensor:
        return weighted_sum(gradients.mean(dim=(2, 3)), activations).clamp_min(0)


class GradCAMPlusPlus(SaliencyMethod):
    """Grad-CAM++: channels weighted by ``gradcam_plus_plus_weights``, then ReLU."""

    def layer_map(self, activations: Tensor, gradients: Tensor) -> Tensor:
        weights = gradcam_plus_plus_weights(activations, gradients)
        return weighted_sum(weights, activations).clamp_min(0)


class GMSM(SaliencyMethod):
    """Gated multi-layer saliency map (ELLG eq. 2-3) on the contract's low and high layers.

    Args:
        model, layers: as ``SaliencyMethod`` (default layers: ``(low, high)``).
        gate: ``t`` of eq. 2, in units of ``sum_k w_k A_k`` (paper: 1.0).
    """

    def __init__(
        self, model: DRModel, layers: Sequence[str] | None = None, gate: float = 1.0
    ) -> None:
        super().__init__(model, layers)
        self.gate = float(gate)

    @staticmethod
    def default_layers(model: DRModel) -> tuple[str, ...]:
        """The contract's low and high layers."""
        return (model.explain_layers.low, model.explain_layers.high)

    def layer_map(self, activations: Tensor, gradients: Tensor) -> Tensor:
        weights = gradcam_plus_plus_weights(activations, gradients)
        return weighted_sum(weights, activations).clamp_min(self.gate)


SALIENCY_METHODS: Registry[SaliencyMethod] = Registry("saliency method")
for _name, _method, _paper in (
    ("cam", CAM, "Zhou et al.: Learning deep features for discriminative localization"),
    ("gradcam", GradCAM, "Selvaraju et al.: Grad-CAM: visual explanations from deep networks"),
    (
        "gradcam++",
        GradCAMPlusPlus,
        "Chattopadhay et al.: Grad-CAM++: generalized gradient-based visual explanations",
    ),
    (
        "gmsm",
        GMSM,
        "Lin et al.: Explainable lesion learning and generation for diabetic retinopathy detection",
    ),
):
    SALIENCY_METHODS.register(_name, paper=_paper)(_method)


def create_saliency(name: str, model: DRModel, **kwargs: Any) -> SaliencyMethod:
    """Build the saliency method ``name`` (cam, gradcam, gradcam++, gmsm) for ``model``."""
    return SALIENCY_METHODS.create(name, model=model, **kwargs)


def list_saliency_methods() -> list[str]:
    """Names of every registered saliency method."""
    return SALIENCY_METHODS.names()
