"""``drscreen export``: a packed model as an ONNX or TorchScript file (``drscreen.export``).

Light module (argparse only): torch, ONNX and the models are imported when the command runs.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``export`` sub-command."""
    parser = subparsers.add_parser(
        "export",
        help="export a packed model to ONNX or TorchScript (dynamic batch, metadata inside the file)",
        description="Write a packed model (default: the shipped one) as an ONNX or TorchScript file whose "
        "outputs are the model's named outputs (dr_logits, dme_logits, lesion_logits, ...) and which "
        "carries the packed preprocessing, grade decoding and model card data, so that it serves alone "
        "(Predictor.from_onnx). --int8 quantises an ONNX file (static int8, for the U²-XS-Net lesion "
        "segmenter; the grader stays fp32: docs/performance.md).",
    )
    parser.add_argument("--format", required=True, choices=("onnx", "torchscript"), help="file format")
    parser.add_argument("--model", metavar="PACKED", help="packed model file (default: the shipped default model)")
    parser.add_argument("--out", required=True, help="file to write (e.g. model.onnx)")
    parser.add_argument(
        "--static-batch", action="store_true", help="ONNX only: fix the batch size to 1 (default: dynamic batch axis)"
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="ONNX only: static int8 quantisation calibrated on synthetic fundus images (the U²-XS-Net lesion "
        "segmenter at about 0.76 of the fp32 latency with lesion / optic-disc AUPR level with fp32; "
        "docs/performance.md)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from drscreen.export import export_model
    from drscreen.models import load_pretrained

    for flag in ("static_batch", "int8"):
        if args.format != "onnx" and getattr(args, flag):
            raise SystemExit(f"drscreen export: --{flag.replace('_', '-')} applies to --format onnx only")
    metadata = export_model(
        args.model or load_pretrained(), args.out, args.format, dynamic_batch=not args.static_batch, int8=args.int8
    )
    out = Path(args.out)
    print(
        f"exported {metadata.model} ({args.format}{', int8' if args.int8 else ''}) -> {out} "
        f"({out.stat().st_size / 2**20:.1f} MiB); input images (B, 3, {metadata.input_size}, {metadata.input_size}); "
        f"outputs {', '.join(metadata.outputs)}"
    )
    return 0
