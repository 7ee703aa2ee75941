"""Which saliency method should be drscreen's default explanation: measured on real photographs.

The shipped model (``drscreen.models.load_pretrained()``) explains the 30 real IDRiD photographs
of ``<data-root>/idrid-seg-subset``, prepared exactly as a user's photograph is
(``photograph_preprocess``) with the quality gate on; only photographs that pass the gate and
have a lesion are scored (the counts are reported). Every method (CAM, Grad-CAM, Grad-CAM++,
GMSM with each ``--gates`` value) is run for every score in ``EXPLANATION_TARGETS``, one
photograph at a time (as the screening command does), and scored against the union-of-lesion
mask with ``drscreen.explain.faithfulness`` (pointing game, saliency mass inside lesions, AUPR).
Also per row: degenerate maps (``is_degenerate``: not finite or one value everywhere, e.g. all
zero) and the mean wall-clock time per map. A last row runs ``explain_default`` itself (the
default with its fallbacks) and counts its fallbacks. Degenerate maps are also counted on the
full-resolution camera originals of ``<data-root>/fullres-samples`` (EyePACS and APTOS, mostly
healthy eyes, no lesion masks) that pass the quality gate.

The selection rule, applied to the rows and reported: among rows without a degenerate map (on
either set of photographs), the
highest pointing-game rate, ties broken by the per-image AUPR. The output says whether
``DEFAULT_EXPLANATION`` is the rule's pick.

Usage (a few minutes on one CPU thread)::

    python benchmarks/explanation_default.py
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drscreen.data import read_seg_subset
from drscreen.explain import POINTING_TOLERANCE, saliency_maps, score_maps
from drscreen.explain.default import (
    DEFAULT_EXPLANATION,
    EXPLANATION_TARGETS,
    FALLBACK_EXPLANATIONS,
    ExplanationMethod,
    explain_default,
    is_degenerate,
)
from drscreen.io import read_image
from drscreen.models import load_pretrained
from drscreen.models.base import DRModel
from drscreen.preprocess import PreprocessConfig, Preprocessor

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
METRICS = (
    ("pointing", "pointing game"),
    ("mass_inside", "mass inside"),
    ("aupr", "AUPR (mean/image)"),
    ("aupr_pooled", "AUPR (pooled)"),
)


def photographs(preprocessor: Preprocessor, root: Path) -> tuple[torch.Tensor, list[np.ndarray], list[str], list[bool]]:
    """Network inputs (N, 3, S, S), union-of-lesion masks (S, S) bool in the same crop (any
    coverage counts), image names and the quality gate's verdicts of the IDRiD subset."""
    tensors, masks, names, usable = [], [], [], []
    for sample, image, union in read_seg_subset(root):
        prepared = preprocessor.prepare(image)
        tensors.append(prepared.tensor)
        masks.append(preprocessor.prepare_mask(union, prepared.geometry, threshold=None) > 0)
        names.append(sample.id)
        usable.append(prepared.usable)
    return torch.stack(tensors), masks, names, usable


def camera_originals(preprocessor: Preprocessor, root: Path) -> torch.Tensor:
    """Network inputs (N, 3, S, S) of the photographs under ``root`` that pass the quality gate."""
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpeg", ".jpg"))
    prepared = [preprocessor.prepare(read_image(path)) for path in paths]
    return torch.stack([p.tensor for p in prepared if p.usable]) if any(p.usable for p in prepared) else torch.empty(0)


def candidates(gates: list[float]) -> list[ExplanationMethod]:
    """Every method for every target; GMSM once per gate."""
    rows = []
    for target in EXPLANATION_TARGETS:
        for method in ("cam", "gradcam", "gradcam++"):
            rows.append(ExplanationMethod(method, target))
        rows += [ExplanationMethod("gmsm", target, (("gate", gate),)) for gate in gates]
    return rows


def measure(maps: list[np.ndarray], seconds: list[float], masks: list[np.ndarray]) -> dict[str, Any]:
    """``score_maps`` row plus degenerate-map count and mean seconds per map."""
    row = score_maps(maps, masks)
    row["n_degenerate"] = sum(is_degenerate(m) for m in maps)
    row["seconds_per_map"] = float(np.mean(seconds)) if seconds else 0.0
    return row


def run_method(model: DRModel, images: torch.Tensor, entry: ExplanationMethod) -> tuple[list[np.ndarray], list[float]]:
    """Maps (S, S) of one method, one image at a time, and the seconds each took."""
    maps, seconds = [], []
    for image in images:
        started = time.perf_counter()
        target = EXPLANATION_TARGETS[entry.target]
        maps.append(saliency_maps(model, image[None], entry.method, target, **dict(entry.settings))[0])
        seconds.append(time.perf_counter() - started)
    return maps, seconds


def run_default(model: DRModel, images: torch.Tensor) -> tuple[list[np.ndarray], list[float], list[dict[str, Any]]]:
    """``explain_default`` on each image: maps, seconds and the records (without maps)."""
    maps, seconds, records = [], [], []
    for image in images:
        started = time.perf_counter()
        explanation = explain_default(model, image)
        seconds.append(time.perf_counter() - started)
        maps.append(explanation.map)
        records.append(explanation.to_dict())
    return maps, seconds, records


def rule_pick(rows: dict[str, dict[str, Any]], labels: list[str]) -> str:
    """The selection rule: no degenerate map (IDRiD and camera originals), then highest pointing,
    then highest AUPR."""
    eligible = [label for label in labels if rows[label]["n_degenerate"] == rows[label]["n_degenerate_camera"] == 0]
    return max(eligible, key=lambda label: (rows[label]["pointing"], rows[label]["aupr"]))


def cell(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def markdown(result: dict[str, Any]) -> str:
    setup = result["setup"]
    head = ["method", "target", *(t for _, t in METRICS), "degenerate (IDRiD)", "degenerate (camera originals)",
            "ms / map"]
    lines = [
        "# Default explanation: saliency faithfulness of the shipped model on real photographs",
        "",
        f"Shipped model `{setup['model']}` ({setup['weights']}), photographs prepared with its "
        f"`photograph_preprocess` ({setup['preprocess']}) and the quality gate on: "
        f"{setup['n_usable']} of {setup['n_photographs']} IDRiD photographs pass the gate, "
        f"{setup['n_scored']} of them have a lesion and are scored against the union-of-lesion mask. "
        f"Pointing tolerance {setup['tolerance_px']:.1f} px. Maps one photograph at a time on "
        f"{setup['threads']} CPU thread(s) of a shared machine (wall clock). Degenerate maps are also counted on "
        f"the {setup['n_camera']} full-resolution camera originals of `fullres-samples` that pass the gate "
        "(no lesion masks; mostly healthy eyes).",
        f"Command: `{setup['command']}`",
        "",
        "| " + " | ".join(head) + " |",
        "|---|---|" + "---:|" * (len(head) - 2),
    ]
    for label, row in result["rows"].items():
        method, target = row["method"], row["target"]
        values = [cell(row[key]) for key, _ in METRICS]
        lines.append(
            f"| {method} | {target} | " + " | ".join(values)
            + f" | {row['n_degenerate']} / {row['n_images']} | {row.get('n_degenerate_camera', '-')} / "
            f"{setup['n_camera']} | {row['seconds_per_map'] * 1000:.0f} |"
        )
    choice = result["choice"]
    lines += [
        "",
        "Reference rows: `random` = i.i.d. uniform noise (chance level of the pointing game), `uniform` = a "
        "constant map (chance level of mass and AUPR: the lesions' pixel share; counted as degenerate).",
        "",
        "Selection rule (no degenerate map on either set, then pointing game, then AUPR) picks: "
        f"`{choice['rule_pick']}`. "
        f"`DEFAULT_EXPLANATION`: `{choice['default']}` (matches the rule: {choice['matches_rule']}). "
        f"Fallbacks in order: {', '.join(f'`{f}`' for f in choice['fallbacks'])}. "
        f"`explain_default` fell back on {choice['n_fallback']} and returned a degenerate map on "
        f"{choice['n_degenerate']} of {setup['n_scored']} IDRiD photographs; it fell back on "
        f"{choice['n_fallback_camera']} of the {setup['n_camera']} camera originals.",
        "",
        "Caveat: every image of this subset carries a green optic-disc contour burnt in by its source, and "
        "its masks merge the four lesion classes from a lossy copy (rough edges).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--gates", type=float, nargs="+", default=[0.0, 1.0], help="GMSM gates t (paper: 1.0)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random reference maps")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="faithfulness_explanation_default", help="base name of the result files")
    args = parser.parse_args()
    root = args.data_root / "idrid-seg-subset"
    if not (root / "images").is_dir():
        sys.exit(f"{root} not found: this benchmark needs the real IDRiD subset")
    torch.set_num_threads(args.threads)

    pretrained = load_pretrained()
    model = pretrained.model.eval()
    config = PreprocessConfig.from_dict({**pretrained.photograph_preprocess.to_dict(), "quality_gate": True})
    images, masks, names, usable = photographs(Preprocessor(config), root)
    keep = [i for i, ok in enumerate(usable) if ok and masks[i].any()]
    images, masks = images[keep], [masks[i] for i in keep]
    camera = camera_originals(Preprocessor(config), args.data_root / "fullres-samples")

    rows: dict[str, dict[str, Any]] = {}
    entries = candidates(args.gates)
    for entry in entries:
        maps, seconds = run_method(model, images, entry)
        key = f"{entry.label} [{entry.target}]"
        rows[key] = {"method": entry.label, "target": entry.target, **measure(maps, seconds, masks)}
        rows[key]["n_degenerate_camera"] = sum(is_degenerate(m) for m in run_method(model, camera, entry)[0])
        print(f"{key}: pointing {rows[key]['pointing']:.3f}, degenerate {rows[key]['n_degenerate']}", file=sys.stderr)
    for baseline in ("random", "uniform"):
        maps = list(saliency_maps(None, images, baseline, seed=args.seed))
        rows[baseline] = {"method": baseline, "target": "-", **measure(maps, [], masks)}
    maps, seconds, records = run_default(model, images)
    rows["explain_default"] = {"method": "explain_default (with fallbacks)", "target": DEFAULT_EXPLANATION.target,
                               **measure(maps, seconds, masks)}
    camera_records = run_default(model, camera)[2]
    rows["explain_default"]["n_degenerate_camera"] = sum(r["degenerate"] for r in camera_records)

    labels = [f"{e.label} [{e.target}]" for e in entries]
    pick = rule_pick(rows, labels)
    default_key = f"{DEFAULT_EXPLANATION.label} [{DEFAULT_EXPLANATION.target}]"
    result = {
        "setup": {
            "command": shlex.join(["python", "benchmarks/explanation_default.py", *sys.argv[1:]]),
            "model": pretrained.info.get("name", type(model).__name__),
            "weights": "drscreen.models.load_pretrained()",
            "preprocess": ", ".join(f"{k}={v}" for k, v in config.to_dict().items()
                                    if k in ("size", "enhancement", "crop_to_fov", "quality_gate")),
            "n_photographs": len(usable), "n_usable": sum(usable), "n_scored": len(keep),
            "scored_images": [names[i] for i in keep], "n_camera": len(camera),
            "tolerance_px": POINTING_TOLERANCE * images.shape[-1], "threads": args.threads, "gates": args.gates,
            "torch": torch.__version__, "python": platform.python_version(),
        },
        "rows": rows,
        "choice": {
            "rule_pick": pick, "default": default_key, "matches_rule": pick == default_key,
            "fallbacks": [f"{e.label} [{e.target}]" for e in FALLBACK_EXPLANATIONS],
            "n_fallback": sum(r["fallback"] for r in records), "n_degenerate": sum(r["degenerate"] for r in records),
            "n_fallback_camera": sum(r["fallback"] for r in camera_records),
        },
        "explain_default_records": dict(zip([names[i] for i in keep], records)),
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
