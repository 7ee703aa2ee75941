"""Do the int8 export (``drscreen export --int8``) and OpenVINO keep a trained lesion model's maps?

A trained ``u2net_xs`` engine checkpoint (default: the lesion recipe's final run), or with
``--packed`` a packed lesion model (e.g. the shipped ``src/drscreen/weights/drscreen_lesions.pt``),
is exported twice, fp32 and int8 (``export_model(..., int8=True)``: static QDQ, calibrated on
synthetic fundus images), and the runtimes (PyTorch fp32, ONNX Runtime fp32 and int8, OpenVINO
fp32, bf16 and int8 on the same two files) score
the contour-free IDRiD segmentation subset on the photograph path (no quality gate), each image in
its original geometry inside the field of view the PyTorch model's preprocessing finds
(``benchmarks/lesion_cv.py``'s scoring): pooled any-lesion and optic-disc AUPR, mean per-image
Dice at 0.5, and the absolute difference of the any-lesion and disc probabilities from PyTorch
(max, 99.9th percentile, mean over all pixels).

Usage::

    python benchmarks/u2net_xs_int8.py [--checkpoint runs/lesion-cv/runs/final/checkpoints/last.pt
                                        | --packed src/drscreen/weights/drscreen_lesions.pt]
                                       [--images runs/lesion-cv/idrid-seg-subset-clean]
                                       [--out benchmarks/results/u2net_xs_int8]

The defaults are what ``bash scripts/train_lesion_segmenter.sh ../shared/data`` (the U²-XS-Net
recipe) leaves in ``runs/lesion-cv``; the script stops with that command when they are missing.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lesion_cv import SUBSET, ImageMaps, auprs, fov_masks, score_images
from machine_info import machine

from drscreen.data import load_dataset
from drscreen.engine.runs import write_json
from drscreen.export import export_model
from drscreen.inference import Predictor
from drscreen.metrics.segmentation import dice
from drscreen.models import pack_checkpoint
from drscreen.screening.findings import LESION_THRESHOLD

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: Probability threshold of the Dice scores: the one screening's findings use.
THRESHOLD = LESION_THRESHOLD


def compare(maps: dict[str, ImageMaps], reference: dict[str, ImageMaps]) -> dict[str, float]:
    """AUPRs, mean Dice at ``THRESHOLD`` and the probability differences from ``reference``."""
    images = list(maps)
    differences = np.concatenate([
        np.abs(np.concatenate([maps[i].lesion, maps[i].disc]).astype(np.float32)
               - np.concatenate([reference[i].lesion, reference[i].disc]).astype(np.float32))
        for i in images
    ])  # fmt: skip
    return {
        **auprs(list(maps.values())),
        "lesion_any_dice": float(np.mean([dice(maps[i].lesion >= THRESHOLD, maps[i].union) for i in images])),
        "od_dice": float(np.mean([dice(maps[i].disc >= THRESHOLD, maps[i].disc_truth) for i in images])),
        "prob_diff_max": float(differences.max()),
        "prob_diff_p999": float(np.quantile(differences, 0.999)),
        "prob_diff_mean": float(differences.mean()),
    }


def markdown(results: dict[str, Any]) -> str:
    """The comparison as a markdown table."""
    info = results["machine"]
    lines = [
        f"Model `{results['checkpoint']}`; {results['images']} contour-free IDRiD subset photographs "
        f"(`{results['images_root']}`), photograph path without quality gate; onnxruntime {info['onnxruntime']}, "
        f"openvino {info.get('openvino')}.", "",
        f"Command: `{results['command']}`", "",
        "| runtime | any-lesion AUPR | OD AUPR | any-lesion Dice | OD Dice | max abs prob diff vs torch "
        "| 99.9th pct | mean |", "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in results["runtimes"].items():
        lines.append(
            f"| {name} | {row['lesion_any_aupr']:.4f} | {row['od_aupr']:.4f} | {row['lesion_any_dice']:.4f} "
            f"| {row['od_dice']:.4f} | {row['prob_diff_max']:.4f} | {row['prob_diff_p999']:.4f} "
            f"| {row['prob_diff_mean']:.5f} |"
        )
    return "\n".join(lines) + "\n"


def _relative(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (no machine's absolute path)."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "runs/lesion-cv/runs/final/checkpoints/last.pt")
    parser.add_argument("--packed", type=Path, help="a packed lesion model instead of --checkpoint")
    parser.add_argument("--images", type=Path, default=REPO / "runs/lesion-cv/idrid-seg-subset-clean")
    parser.add_argument("--out", type=Path, default=RESULTS / "u2net_xs_int8")
    args = parser.parse_args()
    command = "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0])), *sys.argv[1:]])
    model_file = args.packed or args.checkpoint
    for needed in (model_file, args.images):
        if not needed.exists():
            sys.exit(f"{needed}: missing; bash scripts/train_lesion_segmenter.sh ../shared/data writes it")

    samples = load_dataset(SUBSET, args.images)
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        if args.packed is not None:
            packed = args.packed
        else:
            checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
            packed = pack_checkpoint(checkpoint, scratch / "lesions.pt")
        export_model(packed, scratch / "fp32.onnx")
        export_model(packed, scratch / "int8.onnx", int8=True)
        predictors = {
            "torch fp32": Predictor.from_packed(packed, quality_gate=False),
            "onnxruntime fp32": Predictor.from_onnx(scratch / "fp32.onnx", quality_gate=False),
            "onnxruntime int8": Predictor.from_onnx(scratch / "int8.onnx", quality_gate=False),
            "openvino fp32": Predictor.from_onnx(scratch / "fp32.onnx", quality_gate=False, runtime="openvino"),
            "openvino bf16": Predictor.from_onnx(scratch / "fp32.onnx", quality_gate=False, runtime="openvino",
                                                 amp="bf16"),
            "openvino int8": Predictor.from_onnx(scratch / "int8.onnx", quality_gate=False, runtime="openvino"),
        }  # fmt: skip
        fov = fov_masks(predictors["torch fp32"], samples)
        maps = {name: score_images(predictor, samples, fov) for name, predictor in predictors.items()}
    results = {
        "command": command, "machine": machine(), "load_average_1min": os.getloadavg()[0],
        "checkpoint": _relative(model_file), "images_root": _relative(args.images), "images": len(samples),
        "runtimes": {name: compare(found, maps["torch fp32"]) for name, found in maps.items()},
    }  # fmt: skip
    write_json(results, args.out.with_suffix(".json"))
    table = markdown(results)
    args.out.with_suffix(".md").write_text(f"# U²-XS-Net int8 export parity\n\n{table}", encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
