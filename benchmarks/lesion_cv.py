"""Lesion segmenter on real lesions: 5-fold cross-validation over the 30 real IDRiD images.

    python benchmarks/lesion_cv.py --data-root ../shared/data --out benchmarks/results/real

Trains ``u2net_xs`` (MA, HE, EX, SE and the optic disc, 512 px, CLAHE) with the engine
(``drscreen.engine.train`` on a config, no second training loop) on synthetic images of the
project's generator plus the real images of ``idrid-seg-subset``, whose lesion classes are
known only through their union (``data.lesion_union`` and the ``lesion_union`` loss):

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
   (``load_pretrained()``) is scored the same way as the baseline row;
4. ``--final``: the same recipe on all 30 real images; its per-class AUPR on the synthetic test
   images (SYNTHETIC: no real per-class masks exist here) comes from the engine's test part.

Writes ``<out>/lesion_cv.json`` and ``<out>/lesion_cv.md``; the runs live under ``--work``, with
(``--final``) ``<work>/lesion_model_info.yaml``: ``--info`` plus the measured metrics, for
``drscreen model pack --info``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from drscreen.augment.realism import load_references, recolour_files
from drscreen.data import LESION_UNION, Sample, load_dataset
from drscreen.data.contour import write_contour_free_subset
from drscreen.data.splits import patient_kfold
from drscreen.engine import train
from drscreen.engine.config import config_from_dict
from drscreen.engine.trainer import build_model
from drscreen.experiments import training_seconds
from drscreen.grading import SEGMENTATION_CLASSES, SEGMENTATION_LESIONS
from drscreen.inference import Predictor
from drscreen.io import read_image, read_mask
from drscreen.metrics.segmentation import pooled_aupr
from drscreen.models import load_checkpoint
from drscreen.preprocess import PreprocessConfig
from drscreen.synth.writers import write_dataset

log = logging.getLogger("lesion_cv")

#: The photograph preprocessing of the lesion model (training and inference alike).
PREPROCESS: dict[str, Any] = {"size": 512, "crop_to_fov": True, "enhancement": "clahe"}
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


def train_config(
    name: str, work: Path, real: Path, synth: Path, args: argparse.Namespace, *, test: bool
) -> dict[str, Any]:
    """The engine config of one training run (``drscreen train`` reads the same keys)."""
    data: dict[str, Any] = {
        "train": [
            {"name": SUBSET, "root": str(real)},
            {"name": "idrid-segmentation", "root": str(synth), "split": "train"},
        ],
        "preprocess": PREPROCESS,
        "augmentation": {"preset": "u2net", "patch": args.patch},
        "lesion_union": True,
        "cache": {"dir": str(work / "cache")},
    }
    if test:
        data["test"] = [{"name": "idrid-segmentation", "root": str(synth), "split": "test"}]
    return {
        "data": data,
        "model": {"name": "u2net_xs", "kwargs": {"lesions": list(SEGMENTATION_CLASSES)}},
        "loss": {"name": "multitask", "kwargs": {"preset": "u2net", "lesion_loss": "lesion_union"}},
        "optim": {
            "name": "adam", "lr": args.lr, "weight_decay": 1e-4, "schedule": "cosine",
            "warmup_epochs": 0.5, "epochs": args.epochs, "batch_size": args.batch_size,
        },
        "train": {
            "monitor": "lesion_aupr", "amp": args.amp, "device": args.device, "workers": args.workers,
            "progress": False, "channels_last": True, "seed": args.seed,
        },
        "run": {"name": name, "dir": str(work / "runs")},
    }  # fmt: skip


def train_run(config: dict[str, Any]) -> Path:
    """Train ``config`` with the engine (resuming a run that stopped); returns its last checkpoint."""
    cfg = config_from_dict(config)
    last = cfg.run.path / "checkpoints" / "last.pt"
    if (cfg.run.path / "metrics.json").is_file():
        return last
    train(cfg, resume=last.is_file())
    return last


def lesion_predictor(config: dict[str, Any], checkpoint: Path, device: str) -> Predictor:
    """The inference ``Predictor`` of a trained run on the photograph path (no quality gate)."""
    cfg = config_from_dict(config)
    model = load_checkpoint(build_model(dataclasses.replace(cfg.model, checkpoint=None)), checkpoint)
    preprocess = PreprocessConfig.for_model({**PREPROCESS, "quality_gate": False}, model.normalization)
    return Predictor.from_model(model, preprocess, device=device, batch_size=2, grade_ungradable=True)


@dataclasses.dataclass
class ImageMaps:
    """One image's scores and truth inside its field of view (1-D, original geometry)."""

    lesion: np.ndarray
    union: np.ndarray
    disc: np.ndarray
    disc_truth: np.ndarray


def score_images(
    predictor: Predictor, samples: list[Sample], fov_from: dict[str, np.ndarray] | None = None
) -> dict[str, ImageMaps]:
    """Per image: any-lesion (max of the four lesion maps) and optic-disc probabilities in the
    original geometry, inside the field of view (``fov_from[id]`` when given, else the
    predictor's own), with the union and disc masks."""
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


def fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def markdown(result: dict[str, Any]) -> str:
    """The report: a table per model (folds and pooled), and the SYNTHETIC per-class table."""
    folds = result["folds"]
    lines = [
        "# Lesion segmenter: 5-fold cross-validation on the 30 real IDRiD images",
        "",
        f"`{result['command']}`",
        "",
        "Real images: `idrid-seg-subset` (30 IDRiD training photographs at half resolution), "
        "**optic-disc contour removed** (`drscreen.data.contour`) before training and scoring. "
        "AUPR (average precision, 4,097 thresholds) of all pixels inside the field of view in the "
        "original image geometry; any-lesion = maximum of the MA, HE, EX, SE maps against the "
        "union mask. Folds by image, 6 held out per fold.",
        "",
        "| model | metric | " + " | ".join(f"fold {f['index']}" for f in folds) + " | pooled (30) |",
        "|---|---|" + "---:|" * (len(folds) + 1),
    ]
    for key, label in (
        ("lesion", "lesion segmenter (u2net_xs, 512 px)"),
        ("baseline", "shipped drscreen_default (224 px)"),
    ):
        for metric, name in (("lesion_any_aupr", "any-lesion AUPR"), ("od_aupr", "OD AUPR")):
            cells = [fmt(f[key][metric]) for f in folds]
            lines.append(
                f"| {label} | {name} | " + " | ".join(cells) + f" | {fmt(result['pooled'][key].get(metric))} |"
            )
    synthetic = result.get("final", {}).get("synthetic_test")
    if synthetic:
        lines += [
            "",
            f"SYNTHETIC per-class AUPR of the final model (all 30 real images + synthetic) on "
            f"{synthetic['images']} synthetic test images (crop geometry, 512 px): no real per-class masks exist here.",
            "",
            "| MA | HE | EX | SE | OD |",
            "|---:|---:|---:|---:|---:|",
            "| " + " | ".join(fmt(synthetic.get(f"lesion_{c}_aupr")) for c in SEGMENTATION_CLASSES) + " |",
        ]
    lines += [
        "",
        f"Recipe: {json.dumps(result['recipe'])}",
        f"Wall time: {result['seconds']:.0f} s ({result['machine']})",
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/real"))
    parser.add_argument("--work", type=Path, default=Path("runs/lesion-cv"), help="synthetic data, folds, runs, cache")
    parser.add_argument("--synth-n", type=int, default=60, help="synthetic images (80 %% train, 20 %% test)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--patch", type=int, default=256, help="training patch side (px of the 512 input)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--amp", default="bf16")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=0, help="data-loader workers (0: in the training process)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only-folds", type=int, nargs="*", help="train and score these folds only")
    parser.add_argument("--final", action="store_true", help="also train the final model on all 30 images")
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
    contour_pixels = write_contour_free_subset(source, clean)
    samples = load_dataset(SUBSET, clean)
    by_id = {s.id: s for s in samples}
    synth = work / "synth"
    if not (synth / "synth_truth.csv").is_file():
        write_dataset(synth, args.synth_n, 512, seed=21, progress=False)
    device = (
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )

    baseline = Predictor.from_packed(quality_gate=False, grade_ungradable=True)
    plan = fold_plan(samples, args.folds, seed=args.seed)
    fold_results, lesion_maps, baseline_maps = [], {}, {}
    for fold in plan:
        if args.only_folds is not None and fold.index not in args.only_folds:
            continue
        fold_dir = work / f"fold{fold.index}"
        real = link_subset(clean, fold.train, fold_dir / "real")
        toned = toned_synth(synth, [by_id[i].image_path for i in fold.train], fold_dir / "synth", seed=fold.index)
        config = train_config(f"fold{fold.index}", work, real, toned, args, test=False)
        checkpoint = train_run(config)
        predictor = lesion_predictor(config, checkpoint, device)
        held_out = [by_id[i] for i in fold.test]
        fovs = fov_masks(predictor, held_out)
        lesion = score_images(predictor, held_out, fovs)
        base = score_images(baseline, held_out, fovs)
        lesion_maps.update(lesion)
        baseline_maps.update(base)
        row = {
            "index": fold.index, "held_out": list(fold.test), "train_seconds": training_seconds(checkpoint.parents[1]),
            "lesion": auprs(list(lesion.values())), "baseline": auprs(list(base.values())),
        }  # fmt: skip
        log.info("fold %d: %s", fold.index, row)
        fold_results.append(row)

    result: dict[str, Any] = {
        "command": "python benchmarks/lesion_cv.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "recipe": {
            "model": "u2net_xs",
            "outputs": list(SEGMENTATION_CLASSES),
            "preprocess": PREPROCESS,
            "synthetic_images": args.synth_n,
            "epochs": args.epochs,
            "patch": args.patch,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "amp": args.amp,
            "augmentation": "u2net",
            "loss": "multitask u2net preset, lesion_loss lesion_union (focal BCE + Dice)",
        },  # fmt: skip
        "contour_pixels_inpainted": contour_pixels,
        "folds": fold_results,
        "pooled": {
            "images": len(lesion_maps),
            "lesion": auprs(list(lesion_maps.values())) if lesion_maps else {},
            "baseline": auprs(list(baseline_maps.values())) if baseline_maps else {},
        },
    }
    if args.final:
        toned = toned_synth(synth, [s.image_path for s in samples], work / "final" / "synth", seed=100)
        config = train_config("final", work, clean, toned, args, test=True)
        checkpoint = train_run(config)
        metrics = json.loads((Path(config["run"]["dir"]) / "final" / "metrics.json").read_text())
        test = metrics.get("test", {})
        result["final"] = {
            "checkpoint": str(checkpoint), "train_seconds": training_seconds(checkpoint.parents[1]),
            "synthetic_test": {
                "images": len(load_dataset("idrid-segmentation", toned, split="test")),
                **{k: v for k, v in test.items() if k.startswith("lesion_")},
            },
        }  # fmt: skip
    result["seconds"] = time.perf_counter() - start
    result["machine"] = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {device}"
    if args.final and args.info.is_file():
        info = yaml.safe_load(args.info.read_text(encoding="utf-8"))
        info["metrics"] = {
            "real_cv": {"images": result["pooled"]["images"], "folds": len(result["folds"]),
                        "pooled": result["pooled"]["lesion"], "baseline_pooled": result["pooled"]["baseline"],
                        "geometry": "original image, inside the field of view; contour removed"},
            "synthetic_test": result["final"]["synthetic_test"],
        }  # fmt: skip
        (work / "lesion_model_info.yaml").write_text(yaml.safe_dump(info, sort_keys=False, allow_unicode=True))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lesion_cv.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    (args.out / "lesion_cv.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
