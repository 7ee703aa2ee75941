"""How much lesion area a lesion map flags on healthy eyes and on diseased ones, per threshold.

The 5-fold lesion cross-validation (``benchmarks/lesion_cv.py``) has only photographs with
lesions, so it cannot tell what a finding threshold costs on healthy eyes. Here EyePACS-256
photographs of the patient-level validation and test parts (``runs/splits/eyepacs-256``, written by
``python -m drscreen.data.grader_splits``) go through the photograph path of each model; per
photograph the share of field-of-view pixels whose any-lesion probability (maximum of the MA, HE,
EX, SE maps, in the model's crop) reaches each threshold. Reported per group (DR grade 0, DR grade
>= 3): the median share and the fraction of photographs with more than ``--flagged`` of their
field of view flagged. EyePACS-256 is a 256 px derivative: the 512 px lesion model sees it
upscaled, so this is an indication, not a validation.

Usage: ``python benchmarks/lesion_healthy.py [--splits runs/splits/eyepacs-256] [--per-group 60]``.
Writes ``lesion_healthy.json`` and ``lesion_healthy.md`` into ``--out`` (default
benchmarks/results/real).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from drscreen.inference import Predictor
from drscreen.models.pretrained import DEFAULT_LESION_MODEL_FILE, DEFAULT_MODEL_FILE

REPO_ROOT = Path(__file__).resolve().parents[1]
LESION_CODES = ("MA", "HE", "EX", "SE")
THRESHOLDS = (0.25, 0.5)


def photographs(splits: Path, per_group: int) -> dict[str, list[Path]]:
    """The first ``per_group`` grade-0 photographs and every grade >= 3 photograph of the val and test parts."""
    rows = [row for part in ("val.csv", "test.csv") for row in csv.DictReader((splits / part).open())]
    images = splits / "images"
    return {
        "DR grade 0": [images / f"{row['image']}.jpeg" for row in rows if int(row["level"]) == 0][:per_group],
        "DR grade >= 3": [images / f"{row['image']}.jpeg" for row in rows if int(row["level"]) >= 3],
    }


def flagged_shares(predictor: Predictor, paths: list[Path]) -> dict[float, list[float]]:
    """Per threshold, per photograph: share of field-of-view pixels whose any-lesion probability reaches it."""
    shares: dict[float, list[float]] = {threshold: [] for threshold in THRESHOLDS}
    for outcome in predictor.predict_files(paths):
        prediction = outcome.prediction
        if prediction is None or prediction.lesion_probs is None:
            raise RuntimeError(f"{outcome.path}: no lesion maps ({outcome.error})")
        classes = list(prediction.lesion_classes)
        lesion = np.max(np.stack([prediction.lesion_probs[classes.index(code)] for code in LESION_CODES]), axis=0)
        inside = lesion[prediction.prepared.fov_mask.astype(bool)]
        for threshold in THRESHOLDS:
            shares[threshold].append(float((inside >= threshold).mean()))
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=Path, default=REPO_ROOT / "runs" / "splits" / "eyepacs-256")
    parser.add_argument("--per-group", type=int, default=60, help="grade-0 photographs (default 60)")
    parser.add_argument("--flagged", type=float, default=0.005, help="share of the FOV that counts as flagged")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "real")
    args = parser.parse_args()
    if not (args.splits / "val.csv").is_file():
        sys.exit(f"{args.splits}: no val.csv (python -m drscreen.data.grader_splits ../shared/data runs/splits)")
    groups = photographs(args.splits, args.per_group)
    models = {"shipped lesion model (512 px)": DEFAULT_LESION_MODEL_FILE,
              "grading model's own maps (224 px)": DEFAULT_MODEL_FILE}  # fmt: skip
    rows: list[dict[str, Any]] = []
    for model_name, path in models.items():
        predictor = Predictor.from_packed(path, quality_gate=False)
        for group, paths in groups.items():
            shares = flagged_shares(predictor, paths)
            for threshold, values in shares.items():
                rows.append({
                    "model": model_name, "group": group, "photographs": len(values), "threshold": threshold,
                    "median_share": round(float(np.median(values)), 4),
                    "fraction_flagged": round(float(np.mean(np.array(values) > args.flagged)), 3),
                })  # fmt: skip
                print(rows[-1], flush=True)
    command = "python benchmarks/lesion_healthy.py " + " ".join(sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lesion_healthy.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n")
    lines = [
        "# Lesion area flagged on healthy and diseased eyes (EyePACS-256)",
        "",
        f"Command: `{command.strip()}`. Any-lesion map (maximum of MA, HE, EX, SE) in the model's crop, "
        f"inside the field of view; flagged = more than {args.flagged:.1%} of the field of view at the threshold. "
        "EyePACS-256 is a 256 px derivative (upscaled for the 512 px model): an indication, not a validation.",
        "",
        "| model | group | photographs | threshold | median share of the FOV | photographs flagged |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['model']} | {r['group']} | {r['photographs']} | {r['threshold']} | {r['median_share']} "
              f"| {r['fraction_flagged']} |" for r in rows]  # fmt: skip
    (args.out / "lesion_healthy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
