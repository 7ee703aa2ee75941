"""``drscreen model pack`` / ``drscreen model info``: packed models (``drscreen.models.pretrained``).

Light module (argparse only): torch and the models are imported when a command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``model`` sub-command with its ``pack`` and ``info`` actions."""
    parser = subparsers.add_parser(
        "model",
        help="pack a trained checkpoint into a shippable model file, or show a packed model's card data",
        description="Packed models: fp16 weights + preprocessing + metadata, loaded offline by "
        "drscreen.models.load_pretrained (docs/model_card.md).",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    pack = actions.add_parser("pack", help="write a packed model file from an engine checkpoint")
    pack.add_argument("checkpoint", help="engine checkpoint (a run's checkpoints/best.pt)")
    pack.add_argument("--out", required=True, help="packed file to write")
    pack.add_argument(
        "--photograph-preprocess", default="{}", metavar="YAML",
        help="preprocessing overrides for camera photographs, e.g. '{crop_to_fov: true, enhancement: ben_graham}'",
    )  # fmt: skip
    pack.add_argument("--info", metavar="YAML_FILE", help="metadata file merged into the packed info")
    pack.add_argument(
        "--temperature", type=float, default=1.0,
        help="DR-logit calibration temperature fitted on validation data (default 1: none)",
    )  # fmt: skip
    pack.add_argument(
        "--metrics", action="append", default=[], metavar="NAME=METRICS_JSON",
        help="an evaluation's metrics.json (drscreen evaluate) stored as info.metrics.NAME (repeatable)",
    )  # fmt: skip
    pack.set_defaults(func=_run_pack)
    info = actions.add_parser("info", help="print a packed model's metadata (default: the shipped model)")
    info.add_argument("path", nargs="?", help="packed file (default: the shipped default model)")
    info.set_defaults(func=_run_info)


def metrics_record(results: dict[str, Any]) -> dict[str, Any]:
    """The card-worthy part of an evaluation's ``metrics.json``: image count, test-time
    augmentation, DR grade decoding, the summary, DR kappa and accuracy and the referable-DR
    operating point with their bootstrap intervals."""
    keys = ("split", "n_images", "tta", "dr_decoding", "summary")
    record: dict[str, Any] = {key: results[key] for key in keys if key in results}
    if "dr" in results:
        grading = results["dr"]
        record["dr"] = {key: grading[key] for key in ("qwk", "qwk_ci", "accuracy", "accuracy_ci") if key in grading}
    if "referable" in results:
        record["referable"] = results["referable"]
    return record


def _run_pack(args: argparse.Namespace) -> int:
    import yaml

    from drscreen.engine.checkpoint import read_checkpoint
    from drscreen.models.pretrained import pack_checkpoint

    info: dict[str, Any] = {}
    if args.info:
        info = yaml.safe_load(Path(args.info).read_text(encoding="utf-8")) or {}
    metrics = info.setdefault("metrics", {})
    for item in args.metrics:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"drscreen model pack: --metrics wants NAME=PATH, got {item!r}")
        metrics[name] = metrics_record(json.loads(Path(path).read_text(encoding="utf-8")))
    photograph = yaml.safe_load(args.photograph_preprocess) or {}
    out = pack_checkpoint(
        read_checkpoint(args.checkpoint), args.out,
        photograph_preprocess=photograph, info=info, temperature=args.temperature,
    )  # fmt: skip
    print(f"packed {args.checkpoint} -> {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    return 0


def _run_info(args: argparse.Namespace) -> int:
    import yaml

    from drscreen.models.pretrained import load_pretrained

    packed = load_pretrained(args.path)
    summary: dict[str, Any] = {
        "model": type(packed.model).__name__,
        "parameters": sum(p.numel() for p in packed.model.parameters()),
    }
    for name in ("preprocess", "photograph_preprocess"):
        settings = getattr(packed, name).to_dict()
        settings.pop("quality_thresholds")
        summary[name] = settings
    summary["dr_decoding"] = packed.dr_decoding
    summary["temperature"] = packed.temperature
    summary["info"] = packed.info
    print(yaml.safe_dump(summary, sort_keys=False, allow_unicode=True), end="")
    return 0
