"""Evaluate a checkpoint on one part of the configured data (``drscreen evaluate``).

Writes ``metrics.json`` (the full ``drscreen.metrics`` results with bootstrap intervals),
``predictions.csv`` (one row per image: id, true grades, probabilities, predicted grades) and
``confusion_dr.png`` / ``confusion_dme.png``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from drscreen.data import Sample
from drscreen.engine.checkpoint import read_checkpoint
from drscreen.engine.config import ExperimentConfig
from drscreen.engine.distributed import init_distributed, shutdown_distributed
from drscreen.engine.inference import Predictions, compute_metrics
from drscreen.engine.schedules import load_parts, write_json
from drscreen.engine.trainer import Trainer
from drscreen.grading import DME_GRADE_NAMES, DR_GRADE_NAMES
from drscreen.metrics import decode_grades, plot_confusion_matrix, referable_scores


def default_checkpoint(config: ExperimentConfig) -> Path:
    """The run's ``best.pt``, else its ``last.pt``."""
    folder = config.run.path / "checkpoints"
    best = folder / "best.pt"
    return best if best.is_file() else folder / "last.pt"


def evaluate(
    config: ExperimentConfig,
    checkpoint: str | Path | None = None,
    *,
    split: str = "test",
    out_dir: str | Path | None = None,
    n_bootstrap: int = 1000,
    tta: str = "none",
    dr_decoding: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` (default ``default_checkpoint``) on the ``split`` part of the data.

    ``out_dir`` defaults to ``<run folder>/eval-<split>``. ``tta``: test-time augmentation
    (``"flips"``: outputs averaged over the four flips). ``dr_decoding``: how the DR grade is
    read from its probabilities (default: the config's ``model.dr_decoding``). Returns the
    metrics written to ``metrics.json`` (on every rank when run under torchrun; rank 0 writes
    the files).
    """
    checkpoint = Path(checkpoint) if checkpoint is not None else default_checkpoint(config)
    dr_decoding = dr_decoding or config.model.dr_decoding
    out = Path(out_dir) if out_dir is not None else config.run.path / f"eval-{split}"
    context = init_distributed(config.train.device)
    try:
        samples = load_parts(config.data)[split]
        if not samples:
            raise ValueError(f"no {split} samples: configure data.{split} (or data.val_fraction for val)")
        trainer = Trainer(config, context, out)
        trainer.model.load_state_dict(read_checkpoint(checkpoint)["model"])
        dataset = trainer.dataset(samples, train=False)
        predictions = trainer.predict(dataset, description=f"evaluate {split}", tta=tta)
        flat, full = compute_metrics(
            predictions, samples, trainer.model.lesion_classes,
            n_bootstrap=n_bootstrap, seed=config.train.seed, dr_decoding=dr_decoding,
        )  # fmt: skip
        results = {
            "checkpoint": str(checkpoint), "split": split, "tta": tta, "dr_decoding": dr_decoding,
            "n_images": len(samples), "summary": flat, **full,
        }  # fmt: skip
        if context.is_main:
            out.mkdir(parents=True, exist_ok=True)
            write_json(results, out / "metrics.json")
            write_predictions(predictions, samples, out / "predictions.csv", dr_decoding)
            for task in ("dr", "dme"):
                if task in full:
                    plot_confusion_matrix(
                        full[task]["confusion_matrix"], None, out / f"confusion_{task}.png",
                        title=f"{task.upper()} grade, {split} ({full[task]['n']} images)",
                    )  # fmt: skip
        trainer.close()
        return results
    finally:
        shutdown_distributed(context)


def write_predictions(
    predictions: Predictions, samples: list[Sample], path: Path, dr_decoding: str = "argmax"
) -> None:
    """One CSV row per image: dataset, id, true and predicted grades (DR read with
    ``dr_decoding``), grade probabilities and the referable-disease score (empty cells where a
    label or head is missing)."""
    dr, dme = predictions.dr_probs, predictions.dme_probs
    columns = ["dataset", "id", "dr_true", "dme_true"]
    if dr is not None:
        columns += ["dr_pred", *[f"dr_prob_{g}" for g in DR_GRADE_NAMES], "referable_score"]
    if dme is not None:
        columns += ["dme_pred", *[f"dme_prob_{g}" for g in DME_GRADE_NAMES]]
    referable = None if dr is None else referable_scores(dr, dme)
    dr_pred = None if dr is None else decode_grades(dr, dr_decoding)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        for row, index in enumerate(predictions.indices):
            sample = samples[int(index)]
            cells: list[Any] = [sample.dataset, sample.id, _cell(sample.dr_grade), _cell(sample.dme_grade)]
            if dr is not None and referable is not None and dr_pred is not None:
                cells += [int(dr_pred[row]), *_probabilities(dr[row]), f"{referable[row]:.6f}"]
            if dme is not None:
                cells += [int(np.argmax(dme[row])), *_probabilities(dme[row])]
            writer.writerow(cells)


def _cell(value: int | None) -> str:
    return "" if value is None else str(value)


def _probabilities(values: np.ndarray) -> list[str]:
    return [f"{v:.6f}" for v in values]
