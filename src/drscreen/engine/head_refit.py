"""Refit a network's grading head on cached encoder features: a CPU-sized fine-tune.

On a shared CPU a full fine-tune of the encoder costs hours; the deepest encoder map of every
image, computed once (``extract_features``), lets the DR layer (``dr_head``, on the fixed pooled
embedding; with ``--train-feature-head`` the ``feature_head`` 1x1 convolution + BatchNorm too) be
retrained in minutes, with the run's data, splits and preprocessing. Training uses
source-balanced batches (``SourceBalancedSampler``) with ``data.balance_sources`` (else a plain
shuffle), logs validation per source and keeps the epoch with the best ``train.monitor``
(averaged over ``train.monitor_window`` validations) as an engine checkpoint
(``checkpoints/best.pt`` holding the whole network and the resolved config), which
``drscreen evaluate CONFIG`` and ``drscreen model pack`` read like any trained run.

``calibrate`` then fits the temperature on the validation part, chooses the referable operating
point there (sensitivity >= ``TARGET_SENSITIVITY``) and scores val and the untouched test part per
source with bootstrap intervals (``runs/<name>/card.json``, and ``model_info.yaml``: what
``drscreen model pack --info`` stores in the packed file).

    python -m drscreen.engine.head_refit features configs/grader.yaml        # runs/<name>/features/
    python -m drscreen.engine.head_refit features configs/grader.yaml --parts val test
    python -m drscreen.engine.head_refit fit configs/grader.yaml -o optim.epochs=40
    python -m drscreen.engine.head_refit calibrate configs/grader.yaml --info configs/default_model_info.yaml
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor, nn
from torch.utils.data import DataLoader

from drscreen.data import Sample
from drscreen.engine.checkpoint import save_checkpoint
from drscreen.engine.config import ExperimentConfig, config_to_dict, load_config, save_config
from drscreen.engine.dataset import FundusDataset, PreparedCache, collate_examples
from drscreen.engine.inference import Predictions, compute_metrics
from drscreen.engine.parts import load_parts
from drscreen.engine.sources import SourceBalancedSampler, per_source_metrics, sources_of, subset_predictions
from drscreen.engine.trainer import initial_model
from drscreen.grading import OperatingPoint, referable_scores
from drscreen.inference import amp_dtype_for, autocast_context
from drscreen.metrics import referable_metrics
from drscreen.metrics.calibration import apply_temperature, calibration_summary, fit_temperature, roc_curve_points
from drscreen.models import DRModel
from drscreen.preprocess import PreprocessConfig, Preprocessor

log = logging.getLogger(__name__)

#: Parts whose features are extracted, in this order.
PARTS = ("train", "val", "test")
#: Referable sensitivity the packed operating point is chosen for, on the validation part.
TARGET_SENSITIVITY = 0.90
#: Bootstrap resamples of the card's intervals.
BOOTSTRAP = 1000


class GradingHead(nn.Module):
    """``feature_head`` -> global average pool -> dropout -> ``dr_head`` of a network, on its
    deepest encoder map (B, C, h, w) -> (B, 5) DR logits.

    ``train_feature_head=False`` keeps the feature head (and its BatchNorm statistics) fixed, so
    that the pooled embedding, which the DME head also reads, does not change; only ``dr_head``
    learns, on embeddings computed once (``embed``).
    """

    def __init__(self, model: DRModel, dropout: float, *, train_feature_head: bool = False) -> None:
        super().__init__()
        self.feature_head = copy.deepcopy(model.feature_head)
        self.dropout = nn.Dropout(dropout)
        self.dr_head = copy.deepcopy(model.dr_head)
        self.train_feature_head = train_feature_head
        self.feature_head.requires_grad_(train_feature_head)

    def train(self, mode: bool = True) -> GradingHead:
        super().train(mode)
        if not self.train_feature_head:
            self.feature_head.eval()
        return self

    def embed(self, maps: Tensor) -> Tensor:
        """(B, C, h, w) maps -> (B, E) pooled embedding."""
        return self.feature_head(maps.float()).mean(dim=(2, 3))

    def classify(self, embedding: Tensor) -> Tensor:
        """(B, E) embedding -> (B, 5) DR logits."""
        return self.dr_head(self.dropout(embedding))

    def forward(self, maps: Tensor) -> Tensor:
        return self.classify(self.embed(maps))


@torch.no_grad()
def embed_all(head: GradingHead, maps: Tensor, batch_size: int = 256) -> Tensor:
    """(N, E) float32 embeddings of (N, C, h, w) cached maps (feature head in evaluation mode)."""
    head.eval()
    return torch.cat([head.embed(maps[i : i + batch_size]) for i in range(0, len(maps), batch_size)])


def part_datasets(config: ExperimentConfig, model: DRModel) -> dict[str, FundusDataset]:
    """Unaugmented datasets of the run's parts, through its preprocessing and prepared-image cache."""
    preprocessor = Preprocessor(PreprocessConfig.for_model(config.data.preprocess, model.normalization))
    cache = PreparedCache(config.data.cache.dir, preprocessor.config) if config.data.cache.enabled else None
    parts = load_parts(config.data)
    return {
        name: FundusDataset(parts[name], preprocessor, (), preprocessor.config.normalization, cache=cache)
        for name in PARTS
        if parts[name]
    }


@torch.no_grad()
def encoder_maps(model: DRModel, dataset: FundusDataset, config: ExperimentConfig, *, flip: bool = False) -> Tensor:
    """(N, C, h, w) float16 deepest encoder maps of ``dataset``, in order (``flip``: of the
    horizontally mirrored images)."""
    model.eval()
    if config.train.channels_last:
        model.to(memory_format=torch.channels_last)
    loader = DataLoader(
        dataset, batch_size=config.optim.batch_size, num_workers=config.train.workers, collate_fn=collate_examples
    )
    amp = amp_dtype_for(config.train.amp, torch.device("cpu"))
    chunks = []
    for number, batch in enumerate(loader):
        images = batch.images.flip(3) if flip else batch.images
        if config.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast_context(torch.device("cpu"), amp):
            chunks.append(model.encoder(images)[-1].half())
        log.info("features: batch %d/%d", number + 1, len(loader))
    return torch.cat(chunks)


def extract_features(
    config: ExperimentConfig, out: Path, *, flip_train: bool = False, parts: tuple[str, ...] = PARTS
) -> None:
    """Write ``<out>/<part>.pt`` ({"maps", "dr", "ids"}) for each of ``parts``, from the network of
    ``model.checkpoint``; ``flip_train`` adds ``train_flip.pt``, the mirrored training images.
    A part whose file exists is skipped. ``calibrate`` needs ``val`` and ``test`` only."""
    model = initial_model(config.model, config.train.seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, dataset in part_datasets(config, model).items():
        if name not in parts:
            continue
        jobs = [(name, False)] + ([(f"{name}_flip", True)] if flip_train and name == "train" else [])
        for file_name, flip in jobs:
            target = out / f"{file_name}.pt"
            if target.is_file():
                continue
            maps = encoder_maps(model, dataset, config, flip=flip)
            grades = torch.tensor([-1 if s.dr_grade is None else s.dr_grade for s in dataset.samples])
            torch.save({"maps": maps, "dr": grades, "ids": [s.id for s in dataset.samples]}, target)


@torch.no_grad()
def head_predictions(
    head: GradingHead, inputs: Tensor, *, embedded: bool = False, batch_size: int = 256
) -> Predictions:
    """Softmax DR probabilities (N, 5) float64 of ``head`` on cached maps (or, ``embedded``, on
    their embeddings), as engine ``Predictions``."""
    head.eval()
    forward = head.classify if embedded else head
    logits = torch.cat([forward(inputs[i : i + batch_size].float()) for i in range(0, len(inputs), batch_size)])
    probs = logits.double().softmax(dim=1).numpy()
    return Predictions(indices=np.arange(len(inputs)), dr_probs=probs, dme_probs=None)


def fit_head(
    config: ExperimentConfig, features: Path, run_dir: Path, *, dropout: float = 0.3, train_feature_head: bool = False
) -> dict[str, float]:
    """Train the grading head on cached features of the DR-graded training images (module
    docstring); returns the best validation metrics. Writes ``checkpoints/best.pt``, ``log.csv``
    and ``config.yaml`` under ``run_dir``."""
    torch.manual_seed(config.train.seed)
    model = initial_model(config.model, config.train.seed)
    parts = load_parts(config.data)
    cached = {name: torch.load(features / f"{name}.pt", weights_only=True) for name in ("train", "val")}
    flipped = features / "train_flip.pt"
    train_maps = cached["train"]["maps"]
    train_grades = cached["train"]["dr"]
    samples: list[Sample] = list(parts["train"])
    if flipped.is_file():
        train_maps = torch.cat([train_maps, torch.load(flipped, weights_only=True)["maps"]])
        train_grades = torch.cat([train_grades, train_grades])
        samples = samples + samples
    graded = train_grades >= 0
    train_maps, train_grades = train_maps[graded], train_grades[graded]
    samples = [sample for sample, keep in zip(samples, graded.tolist(), strict=True) if keep]
    head = GradingHead(model, dropout, train_feature_head=train_feature_head)
    embedded = not train_feature_head
    train_inputs = embed_all(head, train_maps) if embedded else train_maps
    val_inputs = embed_all(head, cached["val"]["maps"]) if embedded else cached["val"]["maps"]
    optim = config.optim
    trainable = [p for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=optim.lr, weight_decay=optim.weight_decay)
    sampler = SourceBalancedSampler(samples, seed=config.train.seed) if config.data.balance_sources else None
    steps_per_epoch = len(samples) // optim.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=optim.lr, total_steps=optim.epochs * steps_per_epoch,
        pct_start=min(0.3, optim.warmup_epochs / optim.epochs), anneal_strategy="cos",
    )  # fmt: skip
    criterion = nn.CrossEntropyLoss()
    decoding = config.model.dr_decoding
    monitor, window = config.train.monitor, config.train.monitor_window
    recent: list[float] = []
    best: dict[str, Any] = {"value": -math.inf}
    rows: list[dict[str, Any]] = []
    for epoch in range(optim.epochs):
        if sampler is None:
            order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(config.train.seed + epoch))
        else:
            sampler.set_epoch(epoch)
            order = torch.tensor(list(sampler))
        head.train()
        losses = []
        for step in range(steps_per_epoch):
            batch = order[step * optim.batch_size : (step + 1) * optim.batch_size]
            inputs = train_inputs[batch].float()
            loss = criterion(head.classify(inputs) if embedded else head(inputs), train_grades[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if optim.grad_clip is not None:
                nn.utils.clip_grad_norm_(trainable, optim.grad_clip)
            optimizer.step()
            schedule.step()
            losses.append(float(loss))
        predictions = head_predictions(head, val_inputs, embedded=embedded)
        metrics, _ = compute_metrics(predictions, parts["val"], (), dr_decoding=decoding)
        metrics.update(per_source_metrics(predictions, parts["val"], (), dr_decoding=decoding))
        recent = [*recent, metrics[monitor]][-window:]
        value = float(np.mean(recent))
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), f"val_{monitor}_window": value}
        row.update({f"val_{key}": metrics[key] for key in sorted(metrics) if key != "loss"})
        rows.append(row)
        log.info(
            "epoch %d: loss %.4f | %s", epoch + 1, row["train_loss"],
            " | ".join(f"{k} {metrics[k]:.3f}" for k in sorted(metrics) if k.endswith(("dr_qwk", "referable_auc"))),
        )  # fmt: skip
        if value > best["value"] and epoch + 1 >= window:
            best = {"value": value, "epoch": epoch + 1, "metrics": metrics, "head": copy.deepcopy(head.state_dict())}
    head.load_state_dict(best["head"])
    state = model.state_dict()
    state.update({f"feature_head.{k}": v for k, v in head.feature_head.state_dict().items()})
    state.update({f"dr_head.{k}": v for k, v in head.dr_head.state_dict().items()})
    run_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        {"model": state, "stage": "head_refit", "epoch": best["epoch"], "metrics": best["metrics"],
         "config": config_to_dict(config)},
        run_dir / "checkpoints" / "best.pt",
    )  # fmt: skip
    save_config(config, run_dir / "config.yaml")
    with (run_dir / "log.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    log.info("best epoch %d: %s %.4f", best["epoch"], monitor, best["value"])
    return dict(best["metrics"])


def checkpoint_predictions(config: ExperimentConfig, features: Path, part: str) -> Predictions:
    """DR probabilities of the run's ``checkpoints/best.pt`` grading head on a cached part."""
    model = initial_model(config.model, config.train.seed)
    state = torch.load(config.run.path / "checkpoints" / "best.pt", weights_only=True)["model"]
    model.load_state_dict(state)
    head = GradingHead(model, dropout=0.0)
    return head_predictions(head, torch.load(features / f"{part}.pt", weights_only=True)["maps"])


def score_part(
    predictions: Predictions, samples: list[Sample], point: OperatingPoint, decoding: str
) -> dict[str, dict[str, Any]]:
    """Per source (and ``all``): DR QWK and accuracy, referable AUC, and sensitivity and
    specificity at ``point``, each with its bootstrap interval."""
    groups = {"all": list(range(len(samples))), **sources_of(samples)}
    scores: dict[str, dict[str, Any]] = {}
    for source, indices in groups.items():
        subset = subset_predictions(predictions, indices)
        part_samples = [samples[i] for i in subset.indices]
        truth = np.array([s.dr_grade for s in part_samples])
        _, full = compute_metrics(
            Predictions(indices=np.arange(len(part_samples)), dr_probs=subset.dr_probs, dme_probs=None),
            part_samples, (), n_bootstrap=BOOTSTRAP, dr_decoding=decoding,
        )  # fmt: skip
        assert subset.dr_probs is not None
        referable = referable_metrics(truth, subset.dr_probs, threshold=point.threshold, n_bootstrap=BOOTSTRAP)
        scores[source] = {
            "n_images": len(part_samples),
            "n_referable": int(referable["n_referable"]),
            "dr_qwk": full["dr"]["qwk"], "dr_qwk_ci": list(full["dr"]["qwk_ci"]),
            "dr_accuracy": full["dr"]["accuracy"], "dr_accuracy_ci": list(full["dr"]["accuracy_ci"]),
            **{f"referable_{k}{suffix}": (list(referable[k + suffix]) if suffix else referable[k])
               for k in ("auc", "sensitivity", "specificity") for suffix in ("", "_ci")},
        }  # fmt: skip
    return scores


def calibrate(config: ExperimentConfig, features: Path, base_info: dict[str, Any]) -> dict[str, Any]:
    """Temperature, operating point and the per-source card of the run's best checkpoint
    (module docstring); writes ``card.json`` and ``model_info.yaml`` in the run folder."""
    parts = load_parts(config.data)
    decoding = config.model.dr_decoding
    raw = {part: checkpoint_predictions(config, features, part) for part in ("val", "test")}
    val_grades = np.array([s.dr_grade for s in parts["val"]])
    temperature = fit_temperature(raw["val"].dr_probs, val_grades)
    calibrated = {
        part: Predictions(indices=p.indices, dr_probs=apply_temperature(p.dr_probs, temperature), dme_probs=None)
        for part, p in raw.items()
    }
    curve = roc_curve_points(referable_scores(calibrated["val"].dr_probs), val_grades >= 2)
    sources = " + ".join(sources_of(parts["val"]))  # the datasets' adapter names
    point = replace(
        OperatingPoint.for_sensitivity(curve, TARGET_SENSITIVITY),
        source=f"referable sensitivity >= {TARGET_SENSITIVITY:.2f} on the validation part "
        f"({len(val_grades)} images: {sources}), temperature-scaled",
    )
    card = {
        "temperature": temperature,
        "dr_decoding": decoding,
        "operating_point": {"threshold": point.threshold, "source": point.source,
                            "sensitivity": point.sensitivity, "specificity": point.specificity},
        "calibration": {
            part: calibration_summary(raw[part].dr_probs, np.array([s.dr_grade for s in parts[part]]), temperature)
            for part in ("val", "test")
        },
        "metrics": {part: score_part(calibrated[part], parts[part], point, decoding) for part in ("val", "test")},
    }  # fmt: skip
    run_dir = config.run.path
    (run_dir / "card.json").write_text(json.dumps(card, indent=2))
    info = {**base_info, **{k: card[k] for k in ("temperature", "operating_point", "calibration", "metrics")}}
    info["referable_curve"] = curve
    (run_dir / "model_info.yaml").write_text(yaml.safe_dump(info, sort_keys=False, allow_unicode=True))
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description="Refit a grading head on cached encoder features.")
    parser.add_argument("command", choices=("features", "fit", "calibrate"))
    parser.add_argument("config", type=Path)
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--flip-train", action="store_true", help="features: also the mirrored training images")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="features: which parts")
    parser.add_argument("--info", type=Path, help="calibrate: model-card metadata YAML to extend")
    parser.add_argument(
        "--train-feature-head", action="store_true",
        help="fit: train the 1x1 feature convolution too (changes the embedding the DME head reads)",
    )  # fmt: skip
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = load_config(args.config, args.override)
    features = config.run.path / "features"
    if args.command == "features":
        extract_features(config, features, flip_train=args.flip_train, parts=tuple(args.parts))
    elif args.command == "fit":
        fit_head(config, features, config.run.path, train_feature_head=args.train_feature_head)
    else:
        base = yaml.safe_load(args.info.read_text(encoding="utf-8")) if args.info else {}
        card = calibrate(config, features, base)
        print(json.dumps({k: card[k] for k in ("temperature", "operating_point", "calibration")}, indent=2))


if __name__ == "__main__":
    main()
