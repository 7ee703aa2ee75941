"""Parameters, FLOPs and outputs of every registered model at its default (paper) configuration.

Writes ``benchmarks/results/model_table.json`` and ``model_table.md``. FLOPs are counted by
``torch.utils.flop_counter.FlopCounterMode`` for one (1, 3, S, S) image (S = 512 by default),
as 2 x multiply-adds of convolutions and matrix products; normalisation layers, activations,
pooling and interpolation are not counted. Models are built and run on the ``meta`` device
(shapes only, no memory, no arithmetic) and fall back to the CPU when that fails.

Usage: ``python benchmarks/model_table.py [--size 512] [--models NAME ...]``
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from drscreen.models import DRModel, ModelOutput, create_model, list_models
from drscreen.models.registry import MODELS

RESULTS = Path(__file__).resolve().parent / "results"


def output_shapes(output: ModelOutput) -> dict[str, list[Any]]:
    """Non-None fields of ``output`` -> their shapes (a list of shapes for ``side_outputs``)."""
    shapes: dict[str, list[Any]] = {}
    for field in fields(ModelOutput):
        value = getattr(output, field.name)
        if isinstance(value, torch.Tensor):
            shapes[field.name] = list(value.shape)
        elif value is not None:
            shapes[field.name] = [list(tensor.shape) for tensor in value]
    return shapes


def measure(model: DRModel, size: int, device: str) -> tuple[int, dict[str, list[Any]]]:
    """FLOPs and output shapes of one forward of a (1, 3, size, size) image on ``device``."""
    images = torch.zeros(1, 3, size, size, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        output = model.eval()(images)
    return counter.get_total_flops(), output_shapes(output)


def profile(name: str, size: int) -> dict[str, Any]:
    """One table row for the registered model ``name`` at its default configuration."""
    try:
        with torch.device("meta"):
            model = create_model(name)
        flops, outputs = measure(model, size, "meta")
        device = "meta"
    except (NotImplementedError, RuntimeError):
        model = create_model(name)
        flops, outputs = measure(model, size, "cpu")
        device = "cpu"
    params = sum(p.numel() for p in model.parameters())
    meta = MODELS.get(name).metadata
    return {
        "model": name,
        "paper": meta.get("paper"),
        "description": meta.get("description"),
        "params": params,
        "params_m": round(params / 1e6, 3),
        "fp16_mb": round(2 * params / 2**20, 1),
        f"gflops_{size}": round(flops / 1e9, 2),
        "outputs": outputs,
        "measured_on": device,
    }


def markdown(rows: list[dict[str, Any]], size: int) -> str:
    """The rows as a markdown table."""
    lines = [
        f"| model | paper | params (M) | fp16 (MB) | GFLOPs @{size}² | outputs |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        outputs = ", ".join(
            f"{key} {tuple(shape)}" if key != "side_outputs" else f"{key} ×{len(shape)}"
            for key, shape in row["outputs"].items()
        )
        paper = row["paper"] or "drscreen"
        lines.append(
            f"| `{row['model']}` | {paper} | {row['params_m']:.2f} | {row['fp16_mb']:.1f} | "
            f"{row[f'gflops_{size}']:.2f} | {outputs} |"
        )
    note = (
        f"\nGFLOPs = 2 × multiply-adds of convolutions and matrix products for one {size}×{size} "
        "image (torch.utils.flop_counter); default (paper) configuration of each model.\n"
    )
    return "\n".join(lines) + "\n" + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="square input side in pixels")
    parser.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    parser.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    args = parser.parse_args()
    rows = [profile(name, args.size) for name in args.models or list_models()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model_table.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "model_table.md").write_text(markdown(rows, args.size))
    print(markdown(rows, args.size))


if __name__ == "__main__":
    main()
