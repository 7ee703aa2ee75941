"""The multi-task training loss over ``ModelOutput`` and ``TaskTargets``, with paper presets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from drscreen.losses.classification import RegressionLoss
from drscreen.losses.registry import create_loss, register_loss
from drscreen.losses.segmentation import DeepSupervision, LesionActivation
from drscreen.losses.targets import TaskTargets

if TYPE_CHECKING:  # only for annotations: the loss package does not import the model zoo
    from drscreen.models.output import ModelOutput

#: Per-paper settings for ``create_loss("multitask", preset=...)``.
MULTITASK_PRESETS: dict[str, dict[str, Any]] = {
    # Tu et al., SUNet: L = L_R + 1.0 L_DR + 0.5 L_DME, cross-entropy everywhere.
    "sunet": {},
    # Foo et al., MTUnet: L_M = L_B + 1.0 L_C (DR only; BCE on the softmax lesion map).
    "mtunet": {"dme_loss": None},
    # Siebert & Rostalski, U²-Net: segmentation only, fBCE + Dice with deep supervision.
    "u2net": {"dr_loss": None, "dme_loss": None, "lesion_loss": "focal_bce_dice"},
    # Tian et al.: 0.5 SoftTriple + 0.5 focal loss on SORD soft labels (give metric_config["dim"]).
    "tian": {
        "dr_loss": "sord",
        "dr_config": {"gamma": 2.0},
        "dr_weight": 0.5,
        "dme_loss": None,
        "lesion_loss": None,
        "metric_loss": "softtriple",
        "metric_weight": 0.5,
    },
    # Lin et al., ELLG (o_O net): regression of the DR score.
    "ellg": {"dr_loss": "regression", "dme_loss": None, "lesion_loss": None},
}


def _graph_zero(reference: Tensor) -> Tensor:
    """A scalar 0 on ``reference``'s graph, so ``backward`` runs and reaches its parameters."""
    return reference.sum() * 0.0


class MultiTaskLoss(nn.Module):
    """``L = w_R L_R + alpha L_DR + beta L_DME + w_M L_metric`` with missing labels skipped.

    Follows Tu et al.'s SUNet objective (defaults: ``w_R = 1``, ``alpha = 1``, ``beta = 0.5``,
    cross-entropy grading, ``L_R = 0`` for images without lesion masks) and generalises it so
    the other papers are settings (see ``MULTITASK_PRESETS``). Each term is the mean over the
    samples of the batch that carry its label (DR >= 0, DME >= 0, ``has_lesion_masks``); a term
    with no labelled sample in the batch is a graph-connected 0. A term is off when its loss
    name is ``None`` or its weight is 0; an enabled term whose model output is ``None`` is an
    error. Loss parameters (SoftTriple centres) belong in the optimiser.

    - DR: ``dr_loss`` on ``output.dr_logits`` (B, 5) against ``targets.dr``; a ``"regression"``
      loss reads ``output.dr_score`` (B,) against ``targets.dr_score`` instead.
    - DME: ``dme_loss`` on ``output.dme_logits`` (B, 3) against ``targets.dme``.
    - Lesions: ``lesion_loss`` on ``output.lesion_logits`` (B, C', H, W) against
      ``targets.lesion_masks``; with ``deep_supervision`` the model's ``side_outputs`` are
      scored too, averaged with the main map (``DeepSupervision``).
    - Metric: ``metric_loss`` (SoftTriple) on ``output.embedding`` (B, D) against ``targets.dr``.

    ``forward`` returns ``(total, parts)``: ``parts`` maps ``"dr"``, ``"dme"``, ``"lesion"``,
    ``"metric"`` (enabled terms only, unweighted) and ``"total"`` to detached scalars for logging.
    """

    def __init__(
        self,
        dr_loss: str | None = "cross_entropy",
        dr_config: dict[str, Any] | None = None,
        dr_weight: float = 1.0,
        dme_loss: str | None = "cross_entropy",
        dme_config: dict[str, Any] | None = None,
        dme_weight: float = 0.5,
        lesion_loss: str | None = "lesion_ce",
        lesion_config: dict[str, Any] | None = None,
        lesion_weight: float = 1.0,
        deep_supervision: bool = True,
        metric_loss: str | None = None,
        metric_config: dict[str, Any] | None = None,
        metric_weight: float = 0.0,
    ) -> None:
        super().__init__()

        def build(
            name: str | None, config: dict[str, Any] | None, weight: float
        ) -> nn.Module | None:
            if name is None or weight == 0:
                return None
            return create_loss(name, **(config or {}))

        if metric_loss is not None and metric_weight != 0 and "dim" not in (metric_config or {}):
            raise ValueError("the metric term needs metric_config={'dim': <model embedding size>}")
        self.dr = build(dr_loss, dr_config, dr_weight)
        self.dme = build(dme_loss, dme_config, dme_weight)
        lesion = build(lesion_loss, lesion_config, lesion_weight)
        self.lesion = None if lesion is None else DeepSupervision(lesion)
        self.metric = build(metric_loss, metric_config, metric_weight)
        self.weights = {
            "dr": dr_weight,
            "dme": dme_weight,
            "lesion": lesion_weight,
            "metric": metric_weight,
        }
        self.deep_supervision = deep_supervision

    @staticmethod
    def _require(value: Tensor | None, field: str, term: str) -> Tensor:
        if value is None:
            raise ValueError(f"the {term} loss term is enabled but the model output has no {field}")
        return value

    @staticmethod
    def _grading_term(
        loss: nn.Module, prediction: Tensor, labels: Tensor, target: Tensor
    ) -> Tensor:
        """``loss`` over the samples whose ``labels`` are not missing (a graph 0 when none)."""
        keep = labels >= 0
        if not bool(keep.any()):
            return _graph_zero(prediction)
        return loss(prediction[keep], target[keep])

    def forward(
        self,
        output: ModelOutput,
        targets: TaskTargets,
        lesion_activation: LesionActivation = "sigmoid",
    ) -> tuple[Tensor, dict[str, Tensor]]:
        parts: dict[str, Tensor] = {}
        if self.dr is not None:
            if isinstance(self.dr, RegressionLoss):
                score = self._require(output.dr_score, "dr_score", "DR")
                parts["dr"] = self._grading_term(self.dr, score, targets.dr, targets.dr_score)
            else:
                logits = self._require(output.dr_logits, "dr_logits", "DR")
                parts["dr"] = self._grading_term(self.dr, logits, targets.dr, targets.dr)
        if self.dme is not None:
            logits = self._require(output.dme_logits, "dme_logits", "DME")
            parts["dme"] = self._grading_term(self.dme, logits, targets.dme, targets.dme)
        if self.metric is not None:
            embedding = self._require(output.embedding, "embedding", "metric")
            parts["metric"] = self._grading_term(self.metric, embedding, targets.dr, targets.dr)
        if self.lesion is not None:
            parts["lesion"] = self._lesion_term(self.lesion, output, targets, lesion_activation)

        if not parts:
            raise ValueError("every loss term is disabled")
        total = torch.stack([self.weights[name] * value for name, value in parts.items()]).sum()
        logged = {name: value.detach() for name, value in parts.items()}
        logged["total"] = total.detach()
        return total, logged

    def _lesion_term(
        self,
        loss: DeepSupervision,
        output: ModelOutput,
        targets: TaskTargets,
        activation: LesionActivation,
    ) -> Tensor:
        logits = self._require(output.lesion_logits, "lesion_logits", "lesion")
        keep = targets.has_lesion_masks
        if targets.lesion_masks is None or keep is None or not bool(keep.any()):
            return _graph_zero(logits)
        maps = [logits]
        if self.deep_supervision and output.side_outputs:
            maps.extend(output.side_outputs)
        return loss([m[keep] for m in maps], targets.lesion_masks[keep], activation)


@register_loss(
    "multitask",
    paper="Tu et al., SUNet (eq. 5); presets for MTUnet, U²-Net, Tian et al., ELLG",
    description="w_R L_R + alpha L_DR + beta L_DME (+ w_M SoftTriple), missing labels skipped",
)
def multitask(preset: str = "sunet", **overrides: Any) -> MultiTaskLoss:
    """Build a ``MultiTaskLoss`` from a paper preset (``MULTITASK_PRESETS``) and overrides.

    ``*_config`` overrides are merged into the preset's dictionaries, other keys replace them,
    e.g. ``multitask("tian", metric_config={"dim": 256})``.

    Shapes: ``forward(output: ModelOutput, targets: TaskTargets, lesion_activation)`` with the
    fields described on ``MultiTaskLoss``; returns ``(total scalar, parts dict)``.
    """
    try:
        settings = dict(MULTITASK_PRESETS[preset])
    except KeyError:
        known = ", ".join(MULTITASK_PRESETS)
        raise KeyError(f"unknown multitask preset {preset!r}; known: {known}") from None
    for key, value in overrides.items():
        if key.endswith("_config") and isinstance(value, dict):
            settings[key] = {**settings.get(key, {}), **value}
        else:
            settings[key] = value
    return MultiTaskLoss(**settings)
