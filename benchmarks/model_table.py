"""Parameters, FLOPs and outputs of every registered model at its default (paper) configuration;
with ``--device cuda`` also inference throughput and peak GPU memory.

Writes ``model_table.json`` and ``model_table.md`` into ``--out`` (default
``benchmarks/results``). Parameters, FLOPs and output shapes are measured the same way on every
machine: the model is built and run on the ``meta`` device (shapes only, no memory, no
arithmetic; the CPU, or ``--device``, when that fails) and ``torch.utils.flop_counter`` counts
2 x multiply-adds of convolutions and matrix products for one (1, 3, S, S) image; normalisation
layers, activations, pooling and interpolation are not counted.

With ``--device cuda`` each model is then built for real on the GPU, in eval mode, and timed on
(``--batch``, 3, S, S) random images under ``torch.autocast`` (bf16 where the GPU supports it,
else fp16; ``--dtype`` to choose) and ``torch.inference_mode``: ``--warmup`` forward passes,
then ``--iters`` timed ones between two ``torch.cuda.synchronize()`` calls. Throughput is
images per second over the timed passes (``cudnn.benchmark`` on, so warm-up also picks the
kernels); peak memory is ``torch.cuda.max_memory_allocated`` over warm-up and timing, weights
included. On the CPU those two columns are left out.

Usage::

    python benchmarks/model_table.py                      # CPU: parameters, FLOPs, outputs
    python benchmarks/model_table.py --device cuda --out benchmarks/results/gpu
    python benchmarks/model_table.py --models sunet mtunet --size 448
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from drscreen.models import DRModel, ModelOutput, create_model, list_models
from drscreen.models.registry import MODELS

RESULTS = Path(__file__).resolve().parent / "results"
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


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


def profile(name: str, size: int, fallback_device: str) -> dict[str, Any]:
    """Parameters, FLOPs and outputs of the registered model ``name`` at its default config."""
    try:
        with torch.device("meta"):
            model = create_model(name)
        flops, outputs = measure(model, size, "meta")
        device = "meta"
    except (NotImplementedError, RuntimeError):
        model = create_model(name).to(fallback_device)
        flops, outputs = measure(model, size, fallback_device)
        device = fallback_device
    params = sum(p.numel() for p in model.parameters())
    meta = MODELS.get(name).metadata
    return {
        "model": name,
        "paper": meta.get("paper"),
        "description": meta.get("description"),
        "params": params,
        "params_m": round(params / 1e6, 3),
        "fp16_mb": round(2 * params / 2**20, 1),
        "gflops": round(flops / 1e9, 2),
        "outputs": outputs,
        "measured_on": device,
    }


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(
    name: str,
    size: int,
    batch: int,
    dtype: torch.dtype,
    warmup: int,
    iters: int,
    device: torch.device,
) -> dict[str, Any]:
    """Images/s and peak memory of the model's default config in eval mode under autocast."""
    model = create_model(name).to(device).eval()
    images = torch.randn(batch, 3, size, size, device=device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype):
            for _ in range(warmup):
                model(images)
            synchronize(device)
            start = time.perf_counter()
            for _ in range(iters):
                model(images)
            synchronize(device)
            seconds = time.perf_counter() - start
    except torch.OutOfMemoryError:
        return {"images_per_s": None, "peak_mem_gib": None, "error": "out of memory"}
    finally:
        del model, images
        if cuda:
            torch.cuda.empty_cache()
    result: dict[str, Any] = {"images_per_s": round(batch * iters / seconds, 1)}
    if cuda:
        result["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return result


def markdown(setup: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table, with the setup and command under it."""
    size = setup["size"]
    timed = setup.get("throughput") is not None
    header = ["model", "paper", "params (M)", "fp16 (MB)", f"GFLOPs @{size}²"]
    align = ["---", "---", "---:", "---:", "---:"]
    if timed:
        header += ["images/s", "peak GPU mem (GiB)"]
        align += ["---:", "---:"]
    lines = ["| " + " | ".join([*header, "outputs"]) + " |", "|" + "|".join([*align, "---"]) + "|"]
    for row in rows:
        outputs = ", ".join(
            f"{key} {tuple(shape)}" if key != "side_outputs" else f"{key} ×{len(shape)}"
            for key, shape in row["outputs"].items()
        )
        cells = [
            f"`{row['model']}`",
            row["paper"] or "drscreen",
            f"{row['params_m']:.2f}",
            f"{row['fp16_mb']:.1f}",
            f"{row['gflops']:.2f}",
        ]
        if timed:
            speed, memory = row.get("images_per_s"), row.get("peak_mem_gib")
            cells += [
                "OOM" if speed is None else f"{speed:.1f}",
                "OOM" if memory is None else f"{memory:.2f}",
            ]
        lines.append("| " + " | ".join([*cells, outputs]) + " |")
    notes = [
        "",
        f"GFLOPs = 2 × multiply-adds of convolutions and matrix products for one {size}×{size} "
        "image (torch.utils.flop_counter); default (paper) configuration of each model.",
    ]
    if timed:
        t = setup["throughput"]
        notes.append(
            f"Throughput: {t['device_name']}, batch {t['batch']} at {size}×{size}, "
            f"{t['dtype']} autocast, eval mode, inference_mode, cudnn.benchmark, {t['warmup']} "
            f"warm-up and {t['iters']} timed forward passes (synchronised); peak memory = "
            "torch.cuda.max_memory_allocated, weights included."
        )
    notes.append(f"Command: `{setup['command']}`")
    return "\n".join(lines) + "\n" + "\n".join(notes) + "\n"


def resolve_dtype(choice: str, device: torch.device) -> torch.dtype:
    """``bf16`` / ``fp16``; ``auto`` is bf16 where the device supports it, else fp16."""
    if choice != "auto":
        return DTYPES[choice]
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="square input side in pixels")
    parser.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the two result files")
    parser.add_argument(
        "--device", default="cpu", help="cpu, or cuda / cuda:N for throughput and peak memory"
    )
    parser.add_argument("--batch", type=int, default=16, help="throughput batch size")
    parser.add_argument("--dtype", choices=["auto", *DTYPES], default="auto", help="autocast dtype")
    parser.add_argument("--warmup", type=int, default=10, help="untimed forward passes")
    parser.add_argument("--iters", type=int, default=30, help="timed forward passes")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available")
    names = args.models or list_models()
    setup: dict[str, Any] = {
        "command": shlex.join(["python", "benchmarks/model_table.py", *sys.argv[1:]]),
        "size": args.size,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "throughput": None,
    }
    dtype = resolve_dtype(args.dtype, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its kernels
        setup["throughput"] = {
            "device_name": torch.cuda.get_device_name(device),
            "batch": args.batch,
            "dtype": {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype],
            "warmup": args.warmup,
            "iters": args.iters,
        }
    rows = []
    for name in names:
        row = profile(name, args.size, args.device)
        if device.type == "cuda":
            row |= throughput(
                name, args.size, args.batch, dtype, args.warmup, args.iters, device
            )
        rows.append(row)
        print(f"{name}: done", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"setup": setup, "models": rows}
    (args.out / "model_table.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(setup, rows)
    (args.out / "model_table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
