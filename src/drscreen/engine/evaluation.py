"""``drscreen evaluate``: score a model on labelled images through the inference core.

Two ways in, one way through (``drscreen.inference.Predictor``; no trainer is built):

* ``evaluate(config, checkpoint)``: a run's checkpoint on one part of its configured data, with
  the run's preprocessing, cache, precision and grade decoding;
* ``evaluate_packed(model, dataset, root)``: a packed model (default: the shipped one) on any
  dataset adapter (``drscreen data list``), including a plain ``folder`` or ``csv``. Unreadable
  images are reported in ``errors.csv`` and skipped; the others are scored.

Both write, into an output folder created before any work starts: ``metrics.json`` (the full
``drscreen.metrics`` results with bootstrap intervals), ``predictions.csv`` (one row per image:
id, true grades, probabilities, predicted grades, referable score) and ``confusion_dr.png`` /
``confusion_dme.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from drscreen.data import Sample, load_dataset
from drscreen.engine.config import ExperimentConfig
from drscreen.engine.dataset import FundusDataset, PreparedCache
from drscreen.engine.distributed import init_distributed, shutdown_distributed
from drscreen.engine.inference import Predictions, compute_metrics, predict
from drscreen.engine.parts import load_parts
from drscreen.engine.runs import write_json
from drscreen.engine.trainer import build_model
from drscreen.grading import DME_GRADE_NAMES, DR_GRADE_NAMES, decode_grades, referable_scores
from drscreen.inference import Predictor
from drscreen.metrics import plot_confusion_matrix
from drscreen.models import load_checkpoint
from drscreen.preprocess import PreprocessConfig, Preprocessor

log = logging.getLogger(__name__)


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
        if context.is_main:
            out.mkdir(parents=True, exist_ok=True)
        model = load_checkpoint(build_model(dataclasses.replace(config.model, checkpoint=None)), checkpoint)
        preprocess = PreprocessConfig.for_model(config.data.preprocess, model.normalization)
        predictor = Predictor.from_model(
            model, preprocess, device=context.device, amp=config.train.amp,
            channels_last=config.train.channels_last, dr_decoding=dr_decoding, tta=tta,
            batch_size=config.optim.batch_size,
        )  # fmt: skip
        cache = PreparedCache(config.data.cache.dir, preprocess) if config.data.cache.enabled else None
        preprocessor = Preprocessor(preprocess)
        dataset = FundusDataset(samples, preprocessor, model.lesion_classes, preprocess.normalization, cache=cache)
        progress = _progress_bar(f"evaluate {split}", context.is_main and config.train.progress)
        predictions = predict(predictor, dataset, workers=config.train.workers, context=context, progress=progress)
        meta = {"checkpoint": str(checkpoint), "split": split}
        results = _score_and_write(predictions, samples, predictor, out, meta, n_bootstrap, config.train.seed,
                                   write=context.is_main)  # fmt: skip
        return results
    finally:
        shutdown_distributed(context)


def evaluate_packed(
    dataset: str,
    root: str | Path,
    out_dir: str | Path,
    *,
    model: str | Path | None = None,
    split: str | None = None,
    dataset_options: dict[str, Any] | None = None,
    inputs: str = "photograph",
    n_bootstrap: int = 1000,
    tta: str = "none",
    device: str = "cpu",
    amp: str = "fp32",
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate the packed ``model`` (default: the shipped one) on ``dataset`` at ``root``.

    ``inputs``: ``"photograph"`` (the packed photograph preprocessing, what screening uses) or
    ``"training"`` (inputs prepared like the model's training images). The quality gate is left
    as packed, so that every labelled image is scored. Unreadable images go to
    ``out_dir/errors.csv`` (file, reason code, message) and are skipped. Returns the metrics.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples = load_dataset(dataset, root, split, **(dataset_options or {}))
    if not samples:
        raise ValueError(f"{dataset} at {root}: no images{'' if split is None else f' in split {split!r}'}")
    predictor = Predictor.from_packed(
        model, inputs=inputs, device=device, amp=amp, tta=tta, batch_size=batch_size, lesions=False,
        grade_ungradable=True,
    )  # fmt: skip
    by_path = {s.image_path: i for i, s in enumerate(samples)}
    scored: list[int] = []
    dr_rows: list[np.ndarray] = []
    dme_rows: list[np.ndarray] = []
    errors: list[tuple[str, str, str]] = []
    outcomes = predictor.predict_files(s.image_path for s in samples)
    for outcome in _progress_bar(f"evaluate {dataset}", progress)(outcomes, total=len(samples)):
        if outcome.error is not None:
            errors.append((str(outcome.path), outcome.error.code, outcome.error.reason))
            log.warning("skipped %s: %s", outcome.path, outcome.error)
            continue
        assert outcome.prediction is not None
        scored.append(by_path[outcome.path])
        if outcome.prediction.dr_probs is not None:
            dr_rows.append(outcome.prediction.dr_probs)
        if outcome.prediction.dme_probs is not None:
            dme_rows.append(outcome.prediction.dme_probs)
    _write_errors(errors, out / "errors.csv")
    if not scored:
        raise ValueError(f"{dataset} at {root}: none of the {len(samples)} images could be read (see {out / 'errors.csv'})")
    predictions = Predictions(
        indices=np.array(scored, dtype=np.int64),
        dr_probs=np.stack(dr_rows) if dr_rows else None,
        dme_probs=np.stack(dme_rows) if dme_rows else None,
    )
    meta = {
        "model": str(model) if model is not None else "shipped default model",
        "model_info": {k: predictor.packed.info.get(k) for k in ("name", "version")} if predictor.packed else {},
        "dataset": dataset, "root": str(root), "split": split, "inputs": inputs,
        "n_unreadable": len(errors),
    }  # fmt: skip
    return _score_and_write(predictions, samples, predictor, out, meta, n_bootstrap, seed, write=True)


def _score_and_write(
    predictions: Predictions,
    samples: list[Sample],
    predictor: Predictor,
    out: Path,
    meta: dict[str, Any],
    n_bootstrap: int,
    seed: int,
    *,
    write: bool,
) -> dict[str, Any]:
    settings = predictor.settings
    flat, full = compute_metrics(
        predictions, samples, predictor.lesion_classes, n_bootstrap=n_bootstrap, seed=seed,
        dr_decoding=settings.dr_decoding, referable_threshold=settings.operating_point.threshold,
    )  # fmt: skip
    results = {
        **meta, "tta": settings.tta, "dr_decoding": settings.dr_decoding,
        "n_images": len(predictions.indices), "operating_point": settings.to_dict()["operating_point"],
        "summary": flat, **full,
    }  # fmt: skip
    if write:
        write_json(results, out / "metrics.json")
        write_predictions(predictions, samples, out / "predictions.csv", settings.dr_decoding)
        for task in ("dr", "dme"):
            if task in full:
                plot_confusion_matrix(
                    full[task]["confusion_matrix"], None, out / f"confusion_{task}.png",
                    title=f"{task.upper()} grade ({full[task]['n']} images)",
                )  # fmt: skip
    return results


def _progress_bar(description: str, enabled: bool) -> Callable[..., Iterable[Any]]:
    def wrap(iterable: Iterable[Any], total: int | None = None) -> Iterable[Any]:
        return tqdm(iterable, desc=description, total=total, leave=False, disable=not enabled, dynamic_ncols=True)

    return wrap


def _write_errors(errors: list[tuple[str, str, str]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "reason", "message"])
        writer.writerows(errors)


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
