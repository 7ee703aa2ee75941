"""Batched prediction over a ``FundusDataset`` and the validation / test metrics computed from it.

Used by the training loop (validation), config-based ``drscreen evaluate`` and the MTUnet
pseudo-mask stage. The probabilities themselves come from the inference core
(``drscreen.inference.Predictor``); this module feeds it the engine's cached, sharded batches.
Under DDP each rank predicts its shard; ``gather_predictions`` joins them on every rank and the
metrics (``drscreen.metrics``) are computed once, on rank 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from drscreen.data import Sample
from drscreen.engine.dataset import Batch, FundusDataset, collate_examples, worker_init
from drscreen.engine.distributed import DistContext, all_gather_objects, all_reduce_sum
from drscreen.engine.samplers import ShardSampler
from drscreen.grading import decode_grades
from drscreen.inference import LESION_LEVELS, BatchProbabilities, Predictor, probability_rows, quantise_probabilities
from drscreen.metrics import grading_metrics, joint_accuracy, lesion_metrics, referable_metrics


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


def iterate_probabilities(
    predictor: Predictor, loader: Iterable[Batch]
) -> Iterator[tuple[Batch, BatchProbabilities]]:
    """(batch, probabilities) pairs over ``loader``: ``predictor.probabilities`` of each batch."""
    for batch in loader:
        yield batch, predictor.probabilities(batch.images)


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


def predict(
    predictor: Predictor,
    dataset: FundusDataset,
    *,
    workers: int,
    context: DistContext,
    loss_fn: nn.Module | None = None,
    progress: Any = None,
) -> Predictions:
    """Predict every sample of ``dataset`` with ``predictor`` (sharded over ranks, gathered on every rank).

    ``progress``: optional callable wrapping the loader (a tqdm factory on rank 0). The loss, when
    ``loss_fn`` is given, is computed on the predictor's (TTA-averaged) output.
    """
    loader = eval_loader(dataset, predictor.settings.batch_size, workers, context)
    records: list[tuple[int, np.ndarray | None, np.ndarray | None]] = []
    lesions: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    loss_sum = torch.zeros(2, dtype=torch.float64)
    batches = progress(loader) if progress is not None else loader
    activation = predictor.backend.lesion_activation
    for batch, probs in iterate_probabilities(predictor, batches):
        dr, dme = probability_rows(probs.dr), probability_rows(probs.dme)
        indices = batch.indices.tolist()
        for row, index in enumerate(indices):
            records.append((index, None if dr is None else dr[row], None if dme is None else dme[row]))
        targets = batch.targets
        if loss_fn is not None:
            with torch.no_grad():
                loss, _ = loss_fn(probs.output, targets.to(context.device), activation)
            loss_sum += torch.tensor([float(loss) * len(indices), len(indices)], dtype=torch.float64)
        if probs.lesions is not None and targets.lesion_masks is not None:
            quantised = quantise_probabilities(probs.lesions).cpu().numpy()
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
    return np.stack(rows)  # type: ignore[arg-type]


def compute_metrics(
    predictions: Predictions,
    samples: Sequence[Sample],
    lesion_classes: Sequence[str],
    *,
    n_bootstrap: int = 0,
    seed: int = 0,
    dr_decoding: str = "argmax",
    referable_threshold: float = 0.5,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Metrics of ``predictions`` against the labels of ``samples`` (indexed like the dataset).

    Each task is scored on the samples that carry its label; the predicted DR grade is read with
    ``dr_decoding`` (``drscreen.grading.decode_grades``), the DME grade by arg-max; referable
    sensitivity and specificity at ``referable_threshold`` (a model's operating point). Returns
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
            threshold=referable_threshold, n_bootstrap=n_bootstrap, seed=seed,
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
