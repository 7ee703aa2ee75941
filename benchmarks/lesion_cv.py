"""Lesion segmenter on real lesions: 5-fold cross-validation over the 30 real IDRiD images.

    python benchmarks/lesion_cv.py --data-root ../shared/data --out benchmarks/results/real
    python benchmarks/lesion_cv.py --config configs/lesion_decoder.yaml

Trains a lesion model with the engine (``drscreen.engine.train`` on a config, no second
training loop) on synthetic images of the project's generator plus the real images of
``idrid-seg-subset``, whose lesion classes are known only through their union
(``data.lesion_union`` and the ``lesion_union`` loss). The model, preprocessing, augmentation,
loss and optimiser are a recipe: by default ``U2NET_RECIPE`` (``u2net_xs``: MA, HE, EX, SE and
the optic disc, 512 px, CLAHE, from scratch), else the ``--config`` engine config (e.g.
``configs/lesion_decoder.yaml``: the shipped grader's own decoder fine-tuned at 512 px); this
script sets the training sources, the cache and the run folder of every training:

1. the burnt-in green optic-disc contour is removed from every real image
   (``drscreen.data.contour.write_contour_free_subset``); training and evaluation read only
   the cleaned copy;
2. folds by image (``patient_kfold``, each image its own patient): per fold a folder with the
   24 training images (links), and a copy of the synthetic training images toned like those
   24 (``drscreen.augment.realism``: Reinhard colour transfer, camera JPEG); the 6 held-out
   images are never trained on, nor used as colour references, in their fold;
3. each fold's model scores its 6 held-out images through the inference ``Predictor`` on the
   photograph path, maps are taken back to the original image geometry and scored inside the
   field of view: any-lesion AUPR (maximum of the four lesion maps against the union mask) and
   optic-disc AUPR, per fold and pooled over all 30; the shipped model
   (``load_pretrained()``) is scored the same way as the baseline row, and again at the
   recipe's input size when that differs from the shipped one;
4. ``--final``: the same recipe on all 30 real images; its per-class AUPR on the synthetic test
   images (SYNTHETIC: no real per-class masks exist here) comes from the engine's test part;
5. ``--thresholds T ...``: no training (the fold runs must exist) and no AUPR tables: the same
   out-of-fold maps of the fold models and of the shipped model at its own size, scored at
   fixed probability thresholds (pooled any-lesion precision, recall, Dice, predicted and true
   lesion pixel share, the threshold of the best pooled Dice; optic-disc Dice, and the disc
   centre that the screening landmarks (``locate_landmarks``) find on the map against the disc
   mask's centroid). Writes ``<out>/lesion_threshold.json`` and ``<out>/lesion_threshold.md``.

Writes ``<out>/lesion_cv.json`` (``<out>/lesion_cv_<config stem>.json`` with ``--config``) and
``<out>/lesion_cv.md``, the tables of every ``lesion_cv*.json`` there; the runs live under
``--work`` (named ``<config stem>-fold<i>`` / ``-final`` with ``--config``), with (``--final``)
``<work>/lesion_model_info.yaml`` (``<work>/<config stem>-lesion_model_info.yaml``): ``--info``
plus the measured metrics, for ``drscreen model pack --info``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from landmarks import mask_disc
from machine_info import command_line, machine

from drscreen.augment.realism import load_references, recolour_files
from drscreen.data import LESION_UNION, Sample, load_dataset
from drscreen.data.contour import write_contour_free_subset
from drscreen.data.splits import patient_kfold
from drscreen.engine import train
from drscreen.engine.config import config_from_dict, set_value
from drscreen.engine.runs import write_json
from drscreen.engine.trainer import build_model
from drscreen.experiments import training_seconds
from drscreen.grading import SEGMENTATION_CLASSES, SEGMENTATION_LESIONS
from drscreen.inference import Predictor
from drscreen.io import read_image, read_mask
from drscreen.metrics.segmentation import pooled_aupr, pooled_counts
from drscreen.models import load_checkpoint
from drscreen.preprocess import PreprocessConfig
from drscreen.screening.landmarks import locate_landmarks
from drscreen.synth.writers import write_dataset

log = logging.getLogger("lesion_cv")

#: The default recipe: ``u2net_xs`` from scratch (the engine config without data sources, cache
#: and run; ``data.preprocess`` is also the photograph preprocessing at inference).
U2NET_RECIPE: dict[str, Any] = {
    "data": {
        "preprocess": {"size": 512, "crop_to_fov": True, "enhancement": "clahe"},
        "augmentation": {"preset": "u2net", "patch": 256},
        "lesion_union": True,
    },
    "model": {"name": "u2net_xs", "kwargs": {"lesions": list(SEGMENTATION_CLASSES)}},
    "loss": {"name": "multitask", "kwargs": {"preset": "u2net", "lesion_loss": LESION_UNION}},
    "optim": {
        "name": "adam", "lr": 3e-3, "weight_decay": 1e-4, "schedule": "cosine",
        "warmup_epochs": 0.5, "epochs": 8, "batch_size": 8,
    },
    "train": {"monitor": "lesion_aupr", "amp": "bf16", "progress": False, "channels_last": True, "seed": 0},
}  # fmt: skip
#: Command-line options that override the recipe when given: option -> dotted config key.
RECIPE_OPTIONS = {
    "epochs": "optim.epochs", "patch": "data.augmentation.patch", "batch_size": "optim.batch_size",
    "lr": "optim.lr", "amp": "train.amp", "seed": "train.seed",
}  # fmt: skip
#: Histogram thresholds of the pooled AUPR (``pooled_aupr(bins=...)``): steps of 1/4096.
AUPR_BINS = 4097
SUBSET = "idrid-seg-subset"
SYNTH_SEGMENTATION = Path("A. Segmentation") / "1. Original Images"


@dataclasses.dataclass(frozen=True)
class Fold:
    """One cross-validation fold: the real images it trains on and the ones it holds out."""

    index: int
    train: tuple[str, ...]
    test: tuple[str, ...]


def fold_plan(samples: list[Sample], k: int = 5, seed: int = 0) -> list[Fold]:
    """``k`` folds by image: every image held out exactly once, never trained on in its fold."""
    folds = patient_kfold(samples, k, seed=seed, stratify=False)
    return [
        Fold(i, tuple(sorted(s.id for s in train_part)), tuple(sorted(s.id for s in test_part)))
        for i, (train_part, test_part) in enumerate(folds)
    ]


def link_subset(clean: Path, ids: tuple[str, ...], out: Path) -> Path:
    """A ``idrid-seg-subset`` folder at ``out`` holding only the images ``ids`` (symbolic links)."""
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir()
    for stem in ids:
        (out / "images" / f"{stem}.png").symlink_to((clean / "images" / f"{stem}.png").resolve())
        for mask in (clean / "masks").glob(f"{stem}_*"):
            (out / "masks" / mask.name).symlink_to(mask.resolve())
    return out


def toned_synth(base: Path, references: list[Path], out: Path, seed: int) -> Path:
    """A copy of the synthetic IDRiD segmentation part at ``out``, images toned like ``references``."""
    done = out / "toned.json"
    if done.is_file():
        return out
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(base / "A. Segmentation", out / "A. Segmentation")
    images = sorted((out / SYNTH_SEGMENTATION).rglob("*.jpg"))
    chosen = recolour_files([(p, p) for p in images], load_references(references), seed=seed)
    done.write_text(json.dumps({p.name: references[i].stem for p, i in zip(images, chosen, strict=True)}, indent=1))
    return out


def recipe(args: argparse.Namespace) -> dict[str, Any]:
    """The training recipe: ``--config`` (else ``U2NET_RECIPE``) with the recipe options given."""
    raw = yaml.safe_load(args.config.read_text(encoding="utf-8")) if args.config else U2NET_RECIPE
    settings = {**RECIPE_OPTIONS, "device": "train.device", "workers": "train.workers"}
    for option, key in settings.items():
        value = getattr(args, option)
        if value is not None:
            raw = set_value(raw, key, value)
    return raw


def train_config(name: str, work: Path, real: Path, synth: Path, base: dict[str, Any], *, test: bool) -> dict[str, Any]:
    """The engine config of one training run (``drscreen train`` reads the same keys): the
    recipe ``base`` with the real and synthetic training sources, the cache and the run folder."""
    config = set_value(base, "data.train", [
        {"name": SUBSET, "root": str(real)},
        {"name": "idrid-segmentation", "root": str(synth), "split": "train"},
    ])  # fmt: skip
    config = set_value(config, "data.cache", {"dir": str(work / "cache")})
    if test:
        config = set_value(config, "data.test", [{"name": "idrid-segmentation", "root": str(synth), "split": "test"}])
    return set_value(config, "run", {"name": name, "dir": str(work / "runs")})


def finished_checkpoint(config: dict[str, Any]) -> Path | None:
    """The last checkpoint of ``config``'s run when that run finished (its ``metrics.json``
    exists), else ``None``."""
    run = config_from_dict(config).run.path
    return run / "checkpoints" / "last.pt" if (run / "metrics.json").is_file() else None


def train_run(config: dict[str, Any]) -> Path:
    """Train ``config`` with the engine (resuming a run that stopped); returns its last checkpoint."""
    finished = finished_checkpoint(config)
    if finished is not None:
        return finished
    cfg = config_from_dict(config)
    last = cfg.run.path / "checkpoints" / "last.pt"
    train(cfg, resume=last.is_file())
    return last


def lesion_predictor(config: dict[str, Any], checkpoint: Path, device: str) -> Predictor:
    """The inference ``Predictor`` of a trained run on the photograph path (no quality gate)."""
    cfg = config_from_dict(config)
    model = load_checkpoint(build_model(dataclasses.replace(cfg.model, checkpoint=None)), checkpoint)
    preprocess = PreprocessConfig.for_model(
        {**config["data"]["preprocess"], "quality_gate": False}, model.normalization
    )
    return Predictor.from_model(model, preprocess, device=device, batch_size=2, grade_ungradable=True)


@dataclasses.dataclass
class ImageMaps:
    """One image's scores and truth inside its field of view (1-D, original geometry)."""

    lesion: np.ndarray
    union: np.ndarray
    disc: np.ndarray
    disc_truth: np.ndarray
    #: ``score_images(landmarks=True)``: the disc that ``locate_landmarks`` finds on the crop's
    #: OD map (x, y original px; its source, "model" or "image"), and the disc mask's centroid
    #: (x, y original px) and equivalent diameter (px).
    disc_center: tuple[float, float] | None = None
    disc_source: str | None = None
    disc_truth_center: tuple[float, float] | None = None
    disc_truth_diameter: float | None = None


def score_images(
    predictor: Predictor,
    samples: list[Sample],
    fov_from: dict[str, np.ndarray] | None = None,
    landmarks: bool = False,
) -> dict[str, ImageMaps]:
    """Per image: any-lesion (max of the four lesion maps) and optic-disc probabilities in the
    original geometry, inside the field of view (``fov_from[id]`` when given, else the
    predictor's own), with the union and disc masks; ``landmarks``: also the disc that the
    screening landmarks find on the predictor's OD map, and the disc mask's centroid."""
    classes = predictor.lesion_classes
    lesion_rows = [classes.index(c) for c in SEGMENTATION_LESIONS]
    disc_row = classes.index("OD")
    scores: dict[str, ImageMaps] = {}
    for sample, outcome in zip(samples, predictor.predict_files([s.image_path for s in samples]), strict=True):
        if outcome.prediction is None:
            raise RuntimeError(f"{sample.id}: {outcome.error}")
        prediction = outcome.prediction
        probs = prediction.lesion_probs_original()
        assert probs is not None and sample.lesion_masks is not None
        if fov_from is not None:
            fov = fov_from[sample.id]
        else:
            fov = prediction.prepared.geometry.to_original(prediction.prepared.fov_mask, "nearest")
        union_path, disc_path = sample.lesion_masks[LESION_UNION], sample.lesion_masks["OD"]
        union = read_mask(union_path) if union_path is not None else np.zeros(fov.shape, bool)
        disc = read_mask(disc_path) if disc_path is not None else np.zeros(fov.shape, bool)
        scores[sample.id] = ImageMaps(
            lesion=probs[lesion_rows].max(axis=0)[fov].astype(np.float16),
            union=np.asarray(union, bool)[fov],
            disc=probs[disc_row][fov].astype(np.float16),
            disc_truth=np.asarray(disc, bool)[fov],
        )
        if landmarks:
            prepared = prediction.prepared
            assert prediction.lesion_probs is not None
            found = locate_landmarks(prepared.display, prepared.fov_mask, prediction.lesion_probs[disc_row])
            found = found.to_original(prepared.geometry)
            truth = mask_disc(np.asarray(disc, bool))
            scores[sample.id].disc_center = found.disc_center
            scores[sample.id].disc_source = found.disc_source
            if truth is not None:
                scores[sample.id].disc_truth_center, scores[sample.id].disc_truth_diameter = truth
    return scores


def fov_masks(predictor: Predictor, samples: list[Sample]) -> dict[str, np.ndarray]:
    """The field of view of each image in the original geometry, as the lesion model's
    preprocessing finds it (one mask per image for every model scored)."""
    out = {}
    for sample in samples:
        prepared = predictor.prepare(read_image(sample.image_path))
        out[sample.id] = prepared.geometry.to_original(prepared.fov_mask, "nearest")
    return out


def auprs(maps: list[ImageMaps]) -> dict[str, float]:
    """Pooled any-lesion and optic-disc AUPR of several images."""
    return {
        "lesion_any_aupr": pooled_aupr([m.lesion for m in maps], [m.union for m in maps], bins=AUPR_BINS),
        "od_aupr": pooled_aupr([m.disc for m in maps], [m.disc_truth for m in maps], bins=AUPR_BINS),
    }


def threshold_metrics(scores: list[np.ndarray], truths: list[np.ndarray], thresholds: list[float]) -> dict[str, Any]:
    """Pooled over all pixels of all images, on the AUPR's binning (``pooled_counts(bins=AUPR_BINS)``:
    a pixel is positive at ``t`` when its probability rounded to a multiple of 1/4096 is ``t`` or
    above): precision, recall, Dice (F1) and predicted positive pixel share at each threshold
    ``t``; the true positive share; the threshold (a multiple of 1/4096, the lowest of ties)
    with the best pooled Dice."""
    pixels = sum(t.size for t in truths)
    tp_at, fp_at = pooled_counts(scores, truths, bins=AUPR_BINS)
    positives = int(tp_at[0])
    steps = AUPR_BINS - 1

    def row(threshold: float, k: int) -> dict[str, Any]:
        tp, fp = int(tp_at[k]), int(fp_at[k])
        fn = positives - tp
        return {
            "threshold": threshold, "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "recall": tp / positives if positives else float("nan"),
            "dice": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else float("nan"),
            "predicted_share": (tp + fp) / pixels,
        }  # fmt: skip

    # Bin k holds the probabilities rounding to k / 4096: positive at t from bin ceil(4096 t) on.
    rows = [row(t, min(math.ceil(t * steps), steps)) for t in thresholds]
    dice_at = 2 * tp_at / np.maximum(2 * tp_at + fp_at + (positives - tp_at), 1)
    k = int(np.argmax(dice_at))
    return {"pixels": pixels, "true_share": positives / pixels, "thresholds": rows, "best": row(k / steps, k)}


def disc_metrics(maps: list[ImageMaps], thresholds: list[float]) -> dict[str, Any]:
    """Optic disc: pooled Dice of the OD map at ``thresholds`` (and the best), and the distance
    (original px) from the disc centre that the screening landmarks find to the disc mask's
    centroid, per image, with its median, and how many discs the landmarks took from the model's
    map (the rest: the image-based fallback) and how many centres lie inside the mask's radius."""
    pixel = threshold_metrics([m.disc for m in maps], [m.disc_truth for m in maps], thresholds)
    found = [m for m in maps if m.disc_center is not None and m.disc_truth_center is not None]
    distances = [math.dist(m.disc_center, m.disc_truth_center) for m in found]  # type: ignore[arg-type]
    radii = [m.disc_truth_diameter / 2 for m in found]  # type: ignore[operator]
    return {
        "pixel": pixel,
        "centre": {
            "images": len(found),
            "median_distance_px": float(np.median(distances)) if distances else float("nan"),
            "max_distance_px": float(np.max(distances)) if distances else float("nan"),
            "median_mask_diameter_px": float(np.median([2 * r for r in radii])) if radii else float("nan"),
            "inside_mask_radius": int(sum(d <= r for d, r in zip(distances, radii, strict=True))),
            "from_model_map": sum(m.disc_source == "model" for m in found),
            "distances_px": [round(d, 1) for d in distances],
        },
    }


def threshold_markdown(result: dict[str, Any]) -> str:
    """The report of ``--thresholds``: a table per model and metric, rows = thresholds."""
    labels = result["labels"]
    lines = [
        "# Lesion and optic-disc maps at fixed thresholds: out-of-fold, 30 real IDRiD images",
        "",
        f"`{result['command']}`",
        "",
        "Each image scored by the fold model that did not train on it (the folds of "
        "`lesion_cv.py`), the shipped model on the same images; the scoring geometry of "
        "`lesion_cv.py`: original image geometry, inside the field of view, burnt-in disc contour "
        "removed. A pixel is positive from p >= threshold, p (stored as float16) rounded to a "
        "multiple of 1/4096 as for the AUPR; everything "
        "pooled over all pixels of the "
        f"{result['images']} images. Any-lesion = maximum of the MA, HE, EX, SE maps against the "
        "union mask. Best = the threshold (step 1/4096) with the highest pooled Dice.",
        "",
        "## Any lesion",
        "",
        "| model | threshold | precision | recall | Dice (F1) | predicted lesion share | true lesion share |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in labels.items():
        lesion = result["models"][key]["lesion"]
        for row, name in [*((r, fmt(r["threshold"])) for r in lesion["thresholds"]), (lesion["best"], "best")]:
            name = f"best {row['threshold']:.3f}" if name == "best" else name
            lines.append(
                f"| {label} | {name} | {fmt(row['precision'])} | {fmt(row['recall'])} | {fmt(row['dice'])} "
                f"| {row['predicted_share']:.4f} | {lesion['true_share']:.4f} |"
            )
    lines += [
        "",
        "## Optic disc",
        "",
        "Pixel Dice of the OD map at each threshold; the screening landmarks "
        "(`drscreen.screening.landmarks.locate_landmarks`) take the disc from the map's most "
        "confident blob of p >= 0.25 with a peak >= 0.5 (else an image-based finder): distance "
        "of that disc centre to the disc mask's centroid in original pixels (images about "
        "1705 x 1424).",
        "",
        "| model | " + " | ".join(f"Dice @ {fmt(t)}" for t in result["thresholds"])
        + " | best Dice | centre distance median (px) | max (px) | inside mask radius | disc from model map"
        + " | mask diameter median (px) |",
        "|---|" + "---:|" * (len(result["thresholds"]) + 6),
    ]  # fmt: skip
    for key, label in labels.items():
        disc = result["models"][key]["disc"]
        pixel, centre = disc["pixel"], disc["centre"]
        lines.append(
            f"| {label} | " + " | ".join(fmt(r["dice"]) for r in pixel["thresholds"])
            + f" | {fmt(pixel['best']['dice'])} @ {pixel['best']['threshold']:.3f}"
            + f" | {centre['median_distance_px']:.1f} | {centre['max_distance_px']:.1f}"
            + f" | {centre['inside_mask_radius']}/{centre['images']} | {centre['from_model_map']}/{centre['images']}"
            + f" | {centre['median_mask_diameter_px']:.0f} |"
        )  # fmt: skip
    lines += ["", f"Wall time: {result['seconds']:.0f} s ({machine_text(result['machine'])})", ""]
    return "\n".join(lines)


def run_machine(device: str) -> dict[str, Any]:
    """The machine of a result: ``machine_info.machine()`` and the torch device that scored."""
    return {**machine(), "device": device}


def machine_text(value: str | dict[str, Any]) -> str:
    """A result's machine for its report: CPU, torch threads and device (older results: a string)."""
    if isinstance(value, str):
        return value
    return f"{value['cpu']}, {value['torch_threads']} threads, {value['device']}"


def fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


#: Row labels of a result written before results named their rows.
DEFAULT_LABELS = {"lesion": "lesion segmenter (u2net_xs, 512 px)", "baseline": "shipped drscreen_default (224 px)"}


def markdown_section(result: dict[str, Any]) -> list[str]:
    """One result's lines: its command, a table per model (folds and pooled) and the SYNTHETIC
    per-class table of its final model."""
    folds = result["folds"]
    labels = result.get("labels", DEFAULT_LABELS)
    lines = [
        f"## {labels['lesion']}",
        "",
        f"`{result['command']}`",
        "",
        "| model | metric | "
        + " | ".join(f"fold {f['index']}" for f in folds)
        + f" | pooled ({result['pooled']['images']}) |",
        "|---|---|" + "---:|" * (len(folds) + 1),
    ]
    for key, label in labels.items():
        for metric, name in (("lesion_any_aupr", "any-lesion AUPR"), ("od_aupr", "OD AUPR")):
            cells = [fmt(f[key][metric]) for f in folds]
            lines.append(
                f"| {label} | {name} | " + " | ".join(cells) + f" | {fmt(result['pooled'][key].get(metric))} |"
            )
    seconds = [f["train_seconds"] for f in folds if f.get("train_seconds") is not None]
    if seconds:
        lines += ["", "Training time per fold (s): " + ", ".join(f"{s:.0f}" for s in seconds)]
    synthetic = result.get("final", {}).get("synthetic_test")
    if synthetic:
        size = result["recipe"].get("preprocess", {}).get("size", 512)
        lines += [
            "",
            f"SYNTHETIC per-class AUPR of the final model (all 30 real images + synthetic) on "
            f"{synthetic['images']} synthetic test images (crop geometry, {size} px): "
            "no real per-class masks exist here.",
            "",
            "| MA | HE | EX | SE | OD |",
            "|---:|---:|---:|---:|---:|",
            "| " + " | ".join(fmt(synthetic.get(f"lesion_{c}_aupr")) for c in SEGMENTATION_CLASSES) + " |",
        ]
    lines += [
        "",
        f"Recipe: {json.dumps(result['recipe'])}",
        f"Wall time: {result['seconds']:.0f} s ({machine_text(result['machine'])})",
        "",
    ]
    return lines


def markdown(results: list[dict[str, Any]]) -> str:
    """The report: what is measured, then one section per result (``markdown_section``)."""
    lines = [
        "# Lesion segmenter: 5-fold cross-validation on the 30 real IDRiD images",
        "",
        "Real images: `idrid-seg-subset` (30 IDRiD training photographs at half resolution), "
        "**optic-disc contour removed** (`drscreen.data.contour`) before training and scoring. "
        "AUPR (average precision, 4,097 thresholds) of all pixels inside the field of view in the "
        "original image geometry; any-lesion = maximum of the MA, HE, EX, SE maps against the "
        "union mask. Folds by image (the same folds for every model), 6 held out per fold.",
        "",
    ]
    for result in results:
        lines += markdown_section(result)
    return "\n".join(lines)


def result_files(out: Path) -> list[Path]:
    """The results in ``out``: ``lesion_cv.json`` (the default recipe) first, then the others."""
    return sorted(out.glob("lesion_cv*.json"), key=lambda p: (p.name != "lesion_cv.json", p.name))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/real"))
    parser.add_argument("--work", type=Path, default=Path("runs/lesion-cv"), help="synthetic data, folds, runs, cache")
    parser.add_argument(
        "--config", type=Path, help="recipe: an engine config, its sources replaced (default: U2NET_RECIPE)"
    )
    parser.add_argument("--synth-n", type=int, default=60, help="synthetic images (80 %% train, 20 %% test)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, help="recipe override: optim.epochs")
    parser.add_argument("--patch", type=int, help="recipe override: training patch side (px of the input)")
    parser.add_argument("--batch-size", type=int, help="recipe override: optim.batch_size")
    parser.add_argument("--lr", type=float, help="recipe override: optim.lr")
    parser.add_argument("--amp", help="recipe override: train.amp")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=0, help="data-loader workers (0: in the training process)")
    parser.add_argument("--seed", type=int, default=0, help="fold plan and train.seed")
    parser.add_argument("--only-folds", type=int, nargs="*", help="train and score these folds only")
    parser.add_argument("--final", action="store_true", help="also train the final model on all 30 images")
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        help="no training: score the existing fold runs and the shipped model at these thresholds "
        "(writes <out>/lesion_threshold.json and .md instead of the AUPR results)",
    )
    parser.add_argument(
        "--info",
        type=Path,
        default=Path("configs/lesion_model_info.yaml"),
        help="model-info YAML that <work>/lesion_model_info.yaml extends with the metrics",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    start = time.perf_counter()
    source = args.data_root / SUBSET
    if not source.is_dir():
        print(f"{source} not found: nothing to do", file=sys.stderr)
        return 2
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    clean = work / "idrid-seg-subset-clean"
    # --thresholds trains nothing: it reads the cleaned copy as it is (written when missing) and
    # no synthetic data.
    contour_pixels = None if args.thresholds and clean.is_dir() else write_contour_free_subset(source, clean)
    samples = load_dataset(SUBSET, clean)
    by_id = {s.id: s for s in samples}
    synth = work / "synth"
    if not args.thresholds and not (synth / "synth_truth.csv").is_file():
        write_dataset(synth, args.synth_n, 512, seed=21, progress=False)
    device = (
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    base = recipe(args)
    runs = f"{args.config.stem}-" if args.config else ""
    size = int(base["data"]["preprocess"]["size"])

    baseline = Predictor.from_packed(quality_gate=False, grade_ungradable=True)
    shipped = baseline.packed.info["name"] if baseline.packed is not None else "default"
    lesion_label = f"{args.config.stem} ({base['model']['name']}, {size} px)" if args.config else None
    labels = {
        "lesion": lesion_label or DEFAULT_LABELS["lesion"],
        "baseline": f"shipped {shipped} ({baseline.preprocessor.config.size} px)",
    }
    predictors = {"baseline": baseline}
    if size != baseline.preprocessor.config.size and not args.thresholds:
        labels["baseline_input"] = f"shipped {shipped} ({size} px input)"
        predictors["baseline_input"] = Predictor(
            baseline.backend, dataclasses.replace(baseline.preprocessor.config, size=size), baseline.settings,
            packed=baseline.packed,
        )  # fmt: skip
    plan = fold_plan(samples, args.folds, seed=args.seed)
    fold_results: list[dict[str, Any]] = []
    maps: dict[str, dict[str, ImageMaps]] = {key: {} for key in labels}
    for fold in plan:
        if args.only_folds is not None and fold.index not in args.only_folds:
            continue
        fold_dir = work / f"fold{fold.index}"
        if args.thresholds:  # scoring only: the fold's run and its data folders exist
            real, toned = fold_dir / "real", fold_dir / "synth"
        else:
            real = link_subset(clean, fold.train, fold_dir / "real")
            toned = toned_synth(synth, [by_id[i].image_path for i in fold.train], fold_dir / "synth", seed=fold.index)
        config = train_config(f"{runs}fold{fold.index}", work, real, toned, base, test=False)
        if args.thresholds:
            finished = finished_checkpoint(config)
            if finished is None:
                run = config_from_dict(config).run.path
                print(f"{run} has not finished: train the folds first (without --thresholds)", file=sys.stderr)
                return 2
            checkpoint = finished
        else:
            checkpoint = train_run(config)
        predictor = lesion_predictor(config, checkpoint, device)
        held_out = [by_id[i] for i in fold.test]
        fovs = fov_masks(predictor, held_out)
        row: dict[str, Any] = {
            "index": fold.index, "held_out": list(fold.test), "train_seconds": training_seconds(checkpoint.parents[1]),
        }  # fmt: skip
        for key, scorer in {"lesion": predictor, **predictors}.items():
            scores = score_images(scorer, held_out, fovs, landmarks=bool(args.thresholds))
            maps[key].update(scores)
            if not args.thresholds:
                row[key] = auprs(list(scores.values()))
        log.info("fold %d: %s", fold.index, row)
        fold_results.append(row)

    if args.thresholds:
        return write_thresholds(args, argv, labels, maps, device, start)
    config_summary = {key: base[key] for key in ("model", "loss", "optim")}
    result: dict[str, Any] = {
        "command": command_line(argv, script="benchmarks/lesion_cv.py"),
        "labels": labels,
        "recipe": {
            "config": str(args.config) if args.config else "U2NET_RECIPE",
            "outputs": list(SEGMENTATION_CLASSES),
            "preprocess": base["data"]["preprocess"],
            "augmentation": base["data"]["augmentation"],
            "synthetic_images": args.synth_n,
            **config_summary,
        },
        "contour_pixels_inpainted": contour_pixels,
        "folds": fold_results,
        "pooled": {
            "images": len(maps["lesion"]),
            **{key: auprs(list(found.values())) if found else {} for key, found in maps.items()},
        },
    }
    if args.final:
        toned = toned_synth(synth, [s.image_path for s in samples], work / "final" / "synth", seed=100)
        config = train_config(f"{runs}final", work, clean, toned, base, test=True)
        checkpoint = train_run(config)
        metrics = json.loads((checkpoint.parents[1] / "metrics.json").read_text())
        test = metrics.get("test", {})
        result["final"] = {
            "checkpoint": str(checkpoint), "train_seconds": training_seconds(checkpoint.parents[1]),
            "synthetic_test": {
                "images": len(load_dataset("idrid-segmentation", toned, split="test")),
                **{k: v for k, v in test.items() if k.startswith("lesion_")},
            },
        }  # fmt: skip
    result["seconds"] = time.perf_counter() - start
    result["machine"] = run_machine(device)
    if args.final and args.info.is_file():
        info = yaml.safe_load(args.info.read_text(encoding="utf-8"))
        info["metrics"] = {
            "real_cv": {"images": result["pooled"]["images"], "folds": len(result["folds"]),
                        "pooled": result["pooled"]["lesion"], "baseline_pooled": result["pooled"]["baseline"],
                        "geometry": "original image, inside the field of view; contour removed"},
            "synthetic_test": result["final"]["synthetic_test"],
        }  # fmt: skip
        (work / f"{runs}lesion_model_info.yaml").write_text(yaml.safe_dump(info, sort_keys=False, allow_unicode=True))
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"lesion_cv_{args.config.stem}.json" if args.config else "lesion_cv.json"
    write_json(result, args.out / name)
    report = markdown([json.loads(p.read_text()) for p in result_files(args.out)])
    (args.out / "lesion_cv.md").write_text(report)
    print(report)
    return 0


def write_thresholds(
    args: argparse.Namespace,
    argv: list[str] | None,
    labels: dict[str, str],
    maps: dict[str, dict[str, ImageMaps]],
    device: str,
    start: float,
) -> int:
    """``--thresholds``: the out-of-fold ``maps`` scored at the thresholds, written to
    ``<out>/lesion_threshold.json`` and ``.md``."""
    thresholds = list(args.thresholds)
    models = {}
    for key, found in maps.items():
        images = list(found.values())
        models[key] = {
            "lesion": threshold_metrics([m.lesion for m in images], [m.union for m in images], thresholds),
            "disc": disc_metrics(images, thresholds),
        }
    result = {
        "command": command_line(argv, script="benchmarks/lesion_cv.py"),
        "labels": labels,
        "images": len(maps["lesion"]),
        "thresholds": thresholds,
        "config": str(args.config) if args.config else "U2NET_RECIPE",
        "models": models,
        "seconds": time.perf_counter() - start,
        "machine": run_machine(device),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(result, args.out / "lesion_threshold.json")
    report = threshold_markdown(result)
    (args.out / "lesion_threshold.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
