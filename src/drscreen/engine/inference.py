"""Batched inference over a ``FundusDataset`` and the validation / test metrics computed from it.

Used by the training loop (validation), ``drscreen evaluate`` and the MTUnet pseudo-mask stage.
Under DDP each rank predicts its shard; ``gather_predictions`` joins them on every rank and the
metrics (``drscreen.metrics``) are computed once, on rank 0.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from drscreen.data import Sample
from drscreen.engine.dataset import Batch, FundusDataset, collate_examples, worker_init
from drscreen.engine.distributed import DistContext, all_gather_objects, all_reduce_sum
from drscreen.engine.samplers import ShardSampler
from drscreen.grading import NUM_DR_GRADES
from drscreen.metrics import decode_grades, grading_metrics, joint_accuracy, lesion_metrics, referable_metrics
from drscreen.models import ModelOutput

#: Lesion probabilities are kept as 8-bit maps; AUPR over 256 thresholds is then exact.
LESION_LEVELS = 255


def grade_probabilities(output: ModelOutput) -> tuple[Tensor | None, Tensor | None]:
    """DR (B, 5) and DME (B, 3) probabilities, float32; ``None`` where the model has no such head.

    A regression model's ``dr_score`` becomes probabilities with a triangular kernel: the two
    grades around the score share the mass by distance (score 1.3 -> 0.7 on grade 1, 0.3 on
    grade 2), so the arg-max is the rounded grade and P(DR >= 2) grows with the score.
    """
    dr = None
    if output.dr_logits is not None:
        dr = output.dr_logits.float().softmax(dim=1)
    elif output.dr_score is not None:
        grades = torch.arange(NUM_DR_GRADES, device=output.dr_score.device, dtype=torch.float32)
        score = output.dr_score.float().clamp(0, NUM_DR_GRADES - 1).unsqueeze(1)
        dr = (1.0 - (score - grades).abs()).clamp(min=0.0)
        dr = dr / dr.sum(dim=1, keepdim=True)
    dme = None if output.dme_logits is None else output.dme_logits.float().softmax(dim=1)
    return dr, dme


def lesion_probabilities(logits: Tensor, activation: str, size: tuple[int, int]) -> Tensor:
    """(B, C, *size) float32 lesion probabilities from (B, C[+1], h, w) logits.

    Logits are resized to ``size`` first; a softmax model's background channel is dropped.
    """
    logits = logits.float()
    if logits.shape[-2:] != size:
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    if activation == "softmax":
        return logits.softmax(dim=1)[:, 1:]
    return logits.sigmoid()


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """Mixed-precision context for ``dtype`` (``None``: full precision)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def eval_loader(dataset: FundusDataset, batch_size: int, workers: int, context: DistContext) -> DataLoader[Any]:
    """This rank's shard of ``dataset`` in order, unshuffled."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ShardSampler(len(dataset), context.rank, context.world_size),
        num_workers=workers,
        collate_fn=collate_examples,
        worker_init_fn=worker_init,
        pin_memory=context.device.type == "cuda",
    )


#: Test-time augmentation modes: the flips whose outputs are averaged (spatial dims flipped).
TTA_FLIPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": ((),),
    "flips": ((), (3,), (2,), (2, 3)),
}


def _flip(tensor: Tensor, dims: tuple[int, ...]) -> Tensor:
    return torch.flip(tensor, dims) if dims else tensor


def tta_forward(model: nn.Module, images: Tensor, tta: str = "none") -> ModelOutput:
    """``model(images)`` averaged over the flips of ``TTA_FLIPS[tta]``.

    Grade logits are averaged as log-probabilities (their softmax is the normalised geometric
    mean of the per-view probabilities), ``dr_score`` and ``embedding`` as values, and lesion
    logits after flipping each map back onto the input. Side outputs are dropped.
    """
    if tta not in TTA_FLIPS:
        raise ValueError(f"unknown test-time augmentation {tta!r}; known: {', '.join(TTA_FLIPS)}")
    views = TTA_FLIPS[tta]
    if len(views) == 1:
        return model(images)
    outputs = [(dims, model(_flip(images, dims))) for dims in views]

    def mean(values: list[Tensor | None]) -> Tensor | None:
        return None if values[0] is None else torch.stack(values).float().mean(dim=0)  # type: ignore[arg-type]

    def log_probs(logits: Tensor | None) -> Tensor | None:
        return None if logits is None else logits.float().log_softmax(dim=1)

    return ModelOutput(
        dr_logits=mean([log_probs(o.dr_logits) for _, o in outputs]),
        dr_score=mean([o.dr_score for _, o in outputs]),
        dme_logits=mean([log_probs(o.dme_logits) for _, o in outputs]),
        lesion_logits=mean([None if o.lesion_logits is None else _flip(o.lesion_logits, d) for d, o in outputs]),
        embedding=mean([o.embedding for _, o in outputs]),
    )


@torch.no_grad()
def iterate_outputs(
    model: nn.Module,
    loader: DataLoader[Any],
    device: torch.device,
    amp_dtype: torch.dtype | None,
    tta: str = "none",
) -> Iterator[tuple[Batch, ModelOutput]]:
    """(batch, model output) pairs over ``loader`` with the model in eval mode (``tta_forward``)."""
    was_training = model.training
    model.eval()
    try:
        for batch in loader:
            with autocast_context(device, amp_dtype):
                output = tta_forward(model, batch.images.to(device, non_blocking=True), tta)
            yield batch, output
    finally:
        model.train(was_training)


@dataclass
class Predictions:
    """Predictions for a set of samples (dataset indices ``indices``, sorted).

    ``dr_probs`` (N, 5) / ``dme_probs`` (N, 3) float64 or ``None``; ``lesions``: for the
    samples with masks, index -> ((C, S, S) uint8 probability * 255, (C, S, S) bool mask).
    ``loss``: mean training loss over the samples when a loss was given, else NaN.
    """

    indices: np.ndarray
    dr_probs: np.ndarray | None
    dme_probs: np.ndarray | None
    lesions: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    loss: float = math.nan


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: FundusDataset,
    *,
    batch_size: int,
    workers: int,
    context: DistContext,
    amp_dtype: torch.dtype | None,
    loss_fn: nn.Module | None = None,
    lesion_activation: str = "sigmoid",
    progress: Any = None,
    tta: str = "none",
) -> Predictions:
    """Predict every sample of ``dataset`` (sharded over ranks, gathered on every rank).

    ``progress``: optional callable wrapping the loader (a tqdm factory on rank 0). ``tta``: a
    key of ``TTA_FLIPS`` (the loss is then computed on the averaged output).
    """
    loader = eval_loader(dataset, batch_size, workers, context)
    records: list[tuple[int, np.ndarray | None, np.ndarray | None]] = []
    lesions: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    loss_sum = torch.zeros(2, dtype=torch.float64)
    batches = progress(loader) if progress is not None else loader
    for batch, output in iterate_outputs(model, batches, context.device, amp_dtype, tta):
        dr, dme = grade_probabilities(output)
        indices = batch.indices.tolist()
        for row, index in enumerate(indices):
            records.append((
                index,
                None if dr is None else dr[row].double().cpu().numpy(),
                None if dme is None else dme[row].double().cpu().numpy(),
            ))  # fmt: skip
        targets = batch.targets
        if loss_fn is not None:
            loss, _ = loss_fn(output, targets.to(context.device), lesion_activation)
            loss_sum += torch.tensor([float(loss) * len(indices), len(indices)], dtype=torch.float64)
        if output.lesion_logits is not None and targets.lesion_masks is not None:
            probs = lesion_probabilities(output.lesion_logits, lesion_activation, tuple(batch.images.shape[-2:]))
            quantised = (probs * LESION_LEVELS).round().to(torch.uint8).cpu().numpy()
            masks = targets.lesion_masks.bool().numpy()
            for row, index in enumerate(indices):
                if bool(targets.has_lesion_masks[row]):
                    lesions[index] = (quantised[row], masks[row])

    gathered = all_gather_objects((records, lesions), context)
    all_records = sorted((r for part, _ in gathered for r in part), key=lambda r: r[0])
    all_lesions = {k: v for _, part in gathered for k, v in part.items()}
    total = all_reduce_sum(loss_sum, context)
    return Predictions(
        indices=np.array([r[0] for r in all_records], dtype=np.int64),
        dr_probs=_stack([r[1] for r in all_records]),
        dme_probs=_stack([r[2] for r in all_records]),
        lesions=all_lesions,
        loss=float(total[0] / total[1]) if total[1] > 0 else math.nan,
    )


def _stack(rows: Sequence[np.ndarray | None]) -> np.ndarray | None:
    if not rows or rows[0] is None:
        return None
    stacked = np.stack(rows)  # type: ignore[arg-type]
    return stacked / stacked.sum(axis=1, keepdims=True)


def compute_metrics(
    predictions: Predictions,
    samples: Sequence[Sample],
    lesion_classes: Sequence[str],
    *,
    n_bootstrap: int = 0,
    seed: int = 0,
    dr_decoding: str = "argmax",
) -> tuple[dict[str, float], dict[str, Any]]:
    """Metrics of ``predictions`` against the labels of ``samples`` (indexed like the dataset).

    Each task is scored on the samples that carry its label; the predicted DR grade is read with
    ``dr_decoding`` (``drscreen.metrics.decode_grades``), the DME grade by arg-max. Returns
    ``(flat, full)``: ``flat`` maps short names (``dr_qwk``, ``dr_accuracy``, ``dr_macro_auc``, ``dme_accuracy``,
    ``dme_qwk``, ``joint_accuracy``, ``referable_auc``, ``referable_sensitivity``,
    ``referable_specificity``, ``lesion_dice``, ``lesion_aupr``, ``lesion_<code>_dice``,
    ``lesion_<code>_aupr``, ``loss``) to floats, for logging, early stopping and the choice of the
    best checkpoint; ``full`` holds the complete ``drscreen.metrics`` results (confusion
    matrices, per-grade AUCs, bootstrap intervals).
    """
    flat: dict[str, float] = {"loss": predictions.loss}
    full: dict[str, Any] = {"loss": predictions.loss}
    chosen = [samples[i] for i in predictions.indices]
    dr_true = np.array([-1 if s.dr_grade is None else s.dr_grade for s in chosen])
    dme_true = np.array([-1 if s.dme_grade is None else s.dme_grade for s in chosen])

    for task, truth, probs in (("dr", dr_true, predictions.dr_probs), ("dme", dme_true, predictions.dme_probs)):
        keep = truth >= 0
        if probs is None or not keep.any():
            continue
        decoding = dr_decoding if task == "dr" else "argmax"
        result = grading_metrics(truth[keep], probs[keep], decoding, n_bootstrap=n_bootstrap, seed=seed)
        full[task] = result
        flat.update({f"{task}_{key}": float(result[key]) for key in ("accuracy", "qwk", "macro_auc")})

    if predictions.dr_probs is not None and (dr_true >= 0).any():
        keep = dr_true >= 0
        both = predictions.dme_probs is not None and bool((dme_true[keep] >= 0).all())
        dr_pred = decode_grades(predictions.dr_probs, dr_decoding)
        if both:
            assert predictions.dme_probs is not None
            flat["joint_accuracy"] = full["joint_accuracy"] = joint_accuracy(
                dr_true[keep], dr_pred[keep], dme_true[keep], predictions.dme_probs[keep].argmax(axis=1)
            )
        result = referable_metrics(
            dr_true[keep], predictions.dr_probs[keep],
            dme_true[keep] if both else None,
            predictions.dme_probs[keep] if both else None,  # type: ignore[index]
            n_bootstrap=n_bootstrap, seed=seed,
        )  # fmt: skip
        full["referable"] = result
        flat.update({f"referable_{key}": float(result[key]) for key in ("auc", "sensitivity", "specificity")})

    if predictions.lesions:
        order = sorted(predictions.lesions)
        probs = [predictions.lesions[i][0].astype(np.float32) / LESION_LEVELS for i in order]
        masks = [predictions.lesions[i][1] for i in order]
        result = lesion_metrics(probs, masks, classes=list(lesion_classes), bins=LESION_LEVELS + 1)
        full["lesions"] = result
        flat["lesion_dice"] = result["mean"]["dice"]
        flat["lesion_aupr"] = result["mean"]["aupr"]
        for code in lesion_classes:
            flat[f"lesion_{code}_dice"] = result[code]["dice"]
            flat[f"lesion_{code}_aupr"] = result[code]["aupr"]
    return flat, full
