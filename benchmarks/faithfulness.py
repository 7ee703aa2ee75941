"""How well CAM, Grad-CAM, Grad-CAM++ and GMSM point at lesions, against random and uniform maps.

For one model (a checkpoint, or an untrained model, which the output then says in capitals) the
script computes each method's saliency maps on

(a) synthetic fundus images (``drscreen.synth.generate_fundus``, DR grades 1-4 in turn, so every
    image has lesions) whose per-class lesion masks are exact by construction, and
(b) the real IDRiD subset in ``<data-root>/idrid-seg-subset`` (union-of-lesion masks; skipped
    with a note when the folder is absent),

and scores them with ``drscreen.explain.faithfulness`` (pointing game, saliency mass inside
lesions, per-image and pooled AUPR) against the union of the lesion masks, and on the synthetic
set also against each lesion class. Two reference rows give the numbers context: ``random``
(i.i.d. uniform noise: chance for the pointing game) and ``uniform`` (a constant map: chance for
the mass and the AUPR, i.e. the lesions' pixel share).

Maps and masks are compared in the network-input grid: each photograph goes through
``drscreen.preprocess.Preprocessor`` (FOV crop, resize to ``--size``, ``--enhancement``) and its
masks are brought into the same crop, where a pixel counts as lesion when any part of it is
covered (so microaneurysms survive the downscaling). Writes ``<name>.json`` and ``<name>.md``
into ``--out``.

Usage::

    # the run in this repository: untrained tiny default model, proves the script works
    python benchmarks/faithfulness.py --model drscreen_effnet --tiny --size 256
    # a trained model (e.g. SUNet with and without the lesion regulariser), one command each
    python benchmarks/faithfulness.py --model sunet --checkpoint runs/sunet/checkpoints/best.pt \\
        --size 512 --device cuda --name faithfulness_sunet
"""

from __future__ import annotations

import argparse
import math
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from drscreen.data import LESION_UNION, read_seg_subset
from drscreen.engine.runs import write_json
from drscreen.explain import (
    POINTING_TOLERANCE,
    CAMNotApplicableError,
    ReferableTarget,
    RegressionTarget,
    Target,
    saliency_maps,
    score_maps,
)
from drscreen.explain.faithfulness import DEFAULT_METHODS
from drscreen.models import DRModel, create_model
from drscreen.models.registry import MODELS
from drscreen.preprocess import PreprocessConfig, Preprocessor
from drscreen.synth import generate_fundus
from drscreen.synth.generator import MIN_SIZE

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: Lesion classes of the synthetic masks that the union and the per-class tables use (not OD).
SYNTH_LESIONS = ("MA", "HE", "EX", "SE", "NV")
TARGETS: dict[str, Target | None] = {"default": None, "referable": ReferableTarget(), "regression": RegressionTarget()}
COLUMNS = (
    ("pointing", "pointing game"),
    ("mass_inside", "mass inside"),
    ("aupr", "AUPR (mean/image)"),
    ("aupr_pooled", "AUPR (pooled)"),
)

Photos = tuple[torch.Tensor, dict[str, list[np.ndarray]]]


def build_model(args: argparse.Namespace) -> tuple[DRModel, str]:
    """The model on ``args.device`` in eval mode, and a description of its weights."""
    kwargs = dict(MODELS.get(args.model).metadata.get("tiny", {})) if args.tiny else {}
    kwargs.update(yaml.safe_load(args.model_kwargs) or {})
    torch.manual_seed(args.seed)
    model = create_model(args.model, checkpoint=args.checkpoint, **kwargs).to(args.device).eval()
    if args.checkpoint:
        return model, f"checkpoint {args.checkpoint}"
    pretrained = " (ImageNet encoder weights only)" if kwargs.get("pretrained") else ""
    return model, f"UNTRAINED: random initialisation, seed {args.seed}{pretrained}"


def in_crop(preprocessor: Preprocessor, image: np.ndarray, masks: dict[str, np.ndarray]) -> tuple[torch.Tensor, dict]:
    """Network input (3, S, S) of ``image`` and its masks in the same crop (any coverage counts)."""
    prepared = preprocessor.prepare(image)
    cropped = {code: preprocessor.prepare_mask(m, prepared.geometry, threshold=None) > 0 for code, m in masks.items()}
    return prepared.tensor, cropped


def synthetic_set(preprocessor: Preprocessor, count: int, size: int, seed: int) -> Photos:
    """``count`` synthetic photographs of DR grades 1, 2, 3, 4, 1, ... with per-class and union masks."""
    tensors, masks = [], {code: [] for code in (LESION_UNION, *SYNTH_LESIONS)}
    for i in range(count):
        fundus = generate_fundus(seed + i, max(size, MIN_SIZE), target_dr=1 + i % 4)
        lesions = {code: fundus.masks[code] for code in SYNTH_LESIONS}
        lesions[LESION_UNION] = np.logical_or.reduce(list(lesions.values()))
        tensor, cropped = in_crop(preprocessor, fundus.image, lesions)
        tensors.append(tensor)
        for code, mask in cropped.items():
            masks[code].append(mask)
    return torch.stack(tensors), masks


def idrid_set(preprocessor: Preprocessor, root: Path) -> Photos:
    """The IDRiD subset's photographs with their union-of-lesion masks (empty where absent)."""
    tensors, masks = [], []
    for _, image, union in read_seg_subset(root):
        tensor, cropped = in_crop(preprocessor, image, {LESION_UNION: union})
        tensors.append(tensor)
        masks.append(cropped[LESION_UNION])
    return torch.stack(tensors), {LESION_UNION: masks}


def method_rows(gates: list[float]) -> list[tuple[str, str, dict[str, Any]]]:
    """(row label, method, keyword arguments): every method, GMSM once per gate ``t``."""
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for method in DEFAULT_METHODS:
        if method == "gmsm":
            rows += [(f"gmsm (t = {gate:g})", method, {"gate": gate}) for gate in gates]
        else:
            rows.append((method, method, {}))
    return rows


def evaluate(model: DRModel, photos: Photos, args: argparse.Namespace) -> dict[str, Any]:
    """Maps of every method (computed once) scored against every mask set of ``photos``."""
    images, mask_sets = photos
    images = images.to(args.device)
    scores: dict[str, dict[str, Any]] = {code: {} for code in mask_sets}
    seconds: dict[str, float] = {}
    for label, method, kwargs in method_rows(args.gates):
        started = time.perf_counter()
        try:
            maps = saliency_maps(
                model, images, method, TARGETS[args.target], batch_size=args.batch_size, seed=args.seed, **kwargs
            )
        except CAMNotApplicableError as error:
            for code in mask_sets:
                scores[code][label] = {"error": str(error)}
            continue
        seconds[label] = (time.perf_counter() - started) / len(images)
        for code, masks in mask_sets.items():
            scores[code][label] = score_maps(list(maps), masks, args.tolerance)
    return {"n_images": len(images), "seconds_per_image": seconds, "scores": scores}


def cell(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown rows: one per method, the metrics, the image counts."""
    head = ["method", *(title for _, title in COLUMNS), "images", "no lesion (left out)", "constant maps"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for method, row in rows.items():
        if "error" in row:
            lines.append(f"| {method} | not applicable: {row['error'].split(';')[0]} |" + " |" * (len(head) - 2))
            continue
        values = [cell(row[key]) for key, _ in COLUMNS]
        counts = [str(row[key]) for key in ("n_images", "n_without_lesion", "n_constant")]
        lines.append("| " + " | ".join([method, *values, *counts]) + " |")
    return lines


def markdown(result: dict[str, Any]) -> str:
    setup = result["setup"]
    lines = ["# Saliency faithfulness to lesion masks", ""]
    if not setup["trained"]:
        lines += [
            "**UNTRAINED MODEL.** These numbers come from a randomly initialised network. They only "
            "show that the benchmark runs end to end; they say nothing about the methods and are not "
            "a finding. The trained comparison is pending (see docs/explainability.md).",
            "",
        ]
    lines += [
        f"Model `{setup['model']}`{' (tiny configuration)' if setup['tiny'] else ''}, settings "
        f"{setup['model_kwargs'] or 'default'}, weights: {setup['weights']}; input {setup['size']} px; target "
        f"`{setup['target']}`; enhancement `{setup['enhancement']}`; GMSM gates t = {setup['gates']}; "
        "pointing tolerance "
        f"{setup['tolerance_px']:.1f} px ({setup['tolerance']:.4f} of the side); device {setup['device']}.",
        f"Command: `{setup['command']}`",
        "",
        "Reference rows: `random` = i.i.d. uniform noise (chance level of the pointing game), `uniform` = "
        "a constant map (chance level of mass inside and AUPR: the lesions' pixel share).",
    ]
    for name, part in result["datasets"].items():
        lines += ["", f"## {part['title']}", ""]
        if "skipped" in part:
            lines.append(f"Skipped: {part['skipped']}")
            continue
        lines += table(part["scores"][LESION_UNION])
        timing = ", ".join(f"{m} {s * 1000:.0f} ms" for m, s in part["seconds_per_image"].items())
        lines += ["", f"Maps per image ({setup['device']}, wall clock on a possibly shared machine): {timing}."]
        if name == "synthetic":
            lines += ["", "Per lesion class (images without that class left out):"]
            for code in SYNTH_LESIONS:
                lines += ["", f"### {code}", "", *table(part["scores"][code])]
        if name == "idrid":
            lines += [
                "",
                "Caveat: every image of this subset carries a green optic-disc contour burnt in by its "
                "source, and its masks merge the four lesion classes from a lossy copy (rough edges).",
            ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="drscreen_effnet", help="registered model name")
    parser.add_argument("--tiny", action="store_true", help="the model's small test configuration")
    parser.add_argument("--model-kwargs", default="{}", help="YAML mapping of model settings")
    parser.add_argument("--checkpoint", type=Path, default=None, help="weights; none: untrained")
    parser.add_argument("--size", type=int, default=512, help="network input side, px")
    parser.add_argument("--synthetic", type=int, default=24, help="number of synthetic images")
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--target", choices=sorted(TARGETS), default="default", help="score explained")
    parser.add_argument(
        "--gates", type=float, nargs="+", default=[0.0, 1.0], help="GMSM gates t, one row each (paper: 1.0)"
    )
    parser.add_argument(
        "--enhancement", default="none", help="preprocessing enhancement the model was trained with (ben_graham, ...)"
    )
    parser.add_argument("--tolerance", type=float, default=POINTING_TOLERANCE, help="fraction of the side")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="faithfulness", help="base name of the result files")
    args = parser.parse_args()

    model, weights = build_model(args)
    preprocessor = Preprocessor(
        PreprocessConfig(
            size=args.size, enhancement=args.enhancement, normalization=model.normalization, quality_gate=False
        )
    )
    setup = {
        "command": shlex.join(["python", "benchmarks/faithfulness.py", *sys.argv[1:]]),
        "model": args.model, "tiny": args.tiny, "model_kwargs": yaml.safe_load(args.model_kwargs) or {},
        "weights": weights, "trained": args.checkpoint is not None, "size": args.size, "target": args.target,
        "gates": args.gates, "enhancement": args.enhancement,
        "tolerance": args.tolerance, "tolerance_px": args.tolerance * args.size,
        "device": args.device, "seed": args.seed, "torch": torch.__version__, "python": platform.python_version(),
    }  # fmt: skip
    datasets: dict[str, Any] = {}
    synthetic = synthetic_set(preprocessor, args.synthetic, args.size, args.seed)
    datasets["synthetic"] = {"title": f"Synthetic ({args.synthetic} images, exact masks)"}
    datasets["synthetic"] |= evaluate(model, synthetic, args)
    print("synthetic: done", file=sys.stderr, flush=True)
    root = args.data_root / "idrid-seg-subset"
    datasets["idrid"] = {"title": "IDRiD subset (real images, union-of-lesion masks)"}
    if (root / "images").is_dir():
        datasets["idrid"] |= evaluate(model, idrid_set(preprocessor, root), args)
        print("idrid: done", file=sys.stderr, flush=True)
    else:
        datasets["idrid"]["skipped"] = f"{root} not found"
    result = {"setup": setup, "datasets": datasets}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(result, args.out / f"{args.name}.json")
    text = markdown(result)
    (args.out / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
