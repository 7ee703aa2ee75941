"""Where the U²-XS-Net's time goes in ONNX Runtime: a per-operator profile at 512 px, batch 1.

The ``drscreen export`` file of the U²-XS-Net of the mobile paper (default configuration, random
weights: speed does not depend on them) runs ``--runs`` times in the session ``OnnxBackend``
creates (``session_options``) with ONNX Runtime's profiler on, after two untimed runs. Reported
per run: kernel milliseconds by operator type and by the output map's resolution, the slowest
nodes with their shapes as run (the blocked NCHWc layout pads channels to its block), and the
convolutions' GFLOP as the network defines them against GFLOP as run. The profiler's own
overhead and the machine's load inflate all times alike; compare shares, not absolute values.

Usage::

    python benchmarks/u2net_xs_profile.py [--threads 2] [--runs 10] [--out benchmarks/results/u2net_xs_profile]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import torch
from machine_info import command_line, machine
from torch import nn

from drscreen.engine.runs import write_json
from drscreen.export import export_model
from drscreen.inference.onnx_backend import INPUT_NAME, session_options
from drscreen.models import create_model

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: Input side, px (the mobile paper's resolution, as in benchmarks/latency.py).
SIZE = 512
#: Slowest nodes listed.
TOP_NODES = 12


def model_conv_gflop(model: nn.Module, size: int) -> dict[int, float]:
    """GFLOP (2 x multiply-adds) of every ``Conv2d`` of ``model`` on a (1, 3, size, size) input,
    summed by output width, px."""
    gflop: dict[int, float] = defaultdict(float)

    def count(module: nn.Conv2d, _: Any, output: torch.Tensor) -> None:
        per_pixel = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        gflop[output.shape[-1]] += 2 * per_pixel * output[0].numel() / 1e9

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for handle in handles:
        handle.remove()
    return dict(gflop)


def shapes(entries: list[dict[str, list[int]]] | None) -> list[list[int]]:
    """Shapes from a profiler event's ``input_type_shape`` / ``output_type_shape``."""
    return [next(iter(entry.values())) for entry in entries or [] if entry]


def profile(path: Path, threads: int, runs: int, scratch: Path) -> dict[str, Any]:
    """Per-run kernel ms by operator and by output width, the slowest nodes and the
    convolutions' GFLOP as run, from ``runs`` profiled runs of the ONNX file at ``path``."""
    options = session_options(threads)
    options.enable_profiling = True
    options.profile_file_prefix = str(scratch / "ort_profile")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {INPUT_NAME: np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE), dtype=np.float32)}
    for _ in range(2 + runs):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    timed_runs = [event for event in events if event.get("name") == "model_run"][2:]
    run_ms = [event["dur"] / 1000 for event in timed_runs]
    by_op: dict[str, float] = defaultdict(float)
    by_width: dict[int, float] = defaultdict(float)
    nodes: dict[str, dict[str, Any]] = {}
    conv_gflop_run: dict[int, float] = defaultdict(float)
    kernels = [event for event in events if event.get("cat") == "Node" and event["name"].endswith("_kernel_time")
               and event["ts"] >= timed_runs[0]["ts"]]  # fmt: skip
    for event in kernels:
        args, ms = event["args"], event["dur"] / 1000 / runs
        outputs = shapes(args.get("output_type_shape"))
        width = outputs[0][-1] if outputs and len(outputs[0]) == 4 else 0
        by_op[args["op_name"]] += ms
        by_width[width] += ms
        name = event["name"].removesuffix("_kernel_time")
        inputs = shapes(args.get("input_type_shape"))[:2]
        node = nodes.setdefault(name, {"op": args["op_name"], "ms": 0.0, "inputs": inputs,
                                       "output": outputs[0] if outputs else []})  # fmt: skip
        node["ms"] += ms
    for node in nodes.values():
        if node["op"] == "Conv" and len(node["inputs"]) == 2 and len(node["output"]) == 4:
            out_channels, in_channels, kh, kw = node["inputs"][1]
            _, _, height, width = node["output"]
            conv_gflop_run[width] += 2 * out_channels * in_channels * kh * kw * height * width / 1e9
    kernel_ms = sum(by_op.values())
    top = sorted(nodes.items(), key=lambda item: -item[1]["ms"])[:TOP_NODES]
    return {
        "run_p50_ms": float(np.median(run_ms)), "kernel_ms": kernel_ms,
        "by_op_ms": dict(sorted(by_op.items(), key=lambda item: -item[1])),
        "by_width_ms": dict(sorted(by_width.items(), reverse=True)),
        "top_nodes": [{"name": name, **node} for name, node in top],
        "conv_gflop_as_run": dict(sorted(conv_gflop_run.items(), reverse=True)),
    }  # fmt: skip


def markdown(results: dict[str, Any]) -> str:
    """The profile as markdown tables."""
    prof, info = results["profile"], results["machine"]
    kernel = prof["kernel_ms"]
    model_gflop, run_gflop = results["conv_gflop_model"], prof["conv_gflop_as_run"]
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, onnxruntime {info['onnxruntime']}; "
        f"{results['threads']} intra-op threads; 1-minute load average {results['load_average_1min'][0]:.1f} before, "
        f"{results['load_average_1min'][1]:.1f} after. U²-XS-Net (default configuration) at {SIZE} px, batch 1, "
        f"`drscreen export` file in the `OnnxBackend` session options, {results['runs']} profiled runs "
        f"(model_run p50 {prof['run_p50_ms']:.1f} ms with the profiler on).", "",
        f"Command: `{results['command']}`", "",
        "| operator | ms / run | share |", "|---|---|---|",
        *(f"| {op} | {ms:.1f} | {ms / kernel:.0%} |" for op, ms in prof["by_op_ms"].items()),
        f"| all kernels | {kernel:.1f} | 100% |", "",
        "| output width px | ms / run | share | conv GFLOP (network) | conv GFLOP (as run) |", "|---|---|---|---|---|",
        *(f"| {width} | {ms:.1f} | {ms / kernel:.0%} | {model_gflop.get(width, 0):.2f} "
          f"| {run_gflop.get(width, 0):.2f} |" for width, ms in prof["by_width_ms"].items()),
        f"| all | {kernel:.1f} | 100% | {sum(model_gflop.values()):.2f} | {sum(run_gflop.values()):.2f} |", "",
        "| slowest nodes | operator | ms / run | inputs as run | output as run |", "|---|---|---|---|---|",
        *(f"| `{node['name']}` | {node['op']} | {node['ms']:.1f} | {node['inputs']} | {node['output']} |"
          for node in prof["top_nodes"]),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--runs", type=int, default=10, help="profiled runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "u2net_xs_profile")
    args = parser.parse_args()
    command = command_line()

    load_before = os.getloadavg()[0]
    model = create_model("u2net_xs").eval()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        export_model(model, scratch / "u2net_xs.onnx", input_size=SIZE)
        prof = profile(scratch / "u2net_xs.onnx", args.threads, args.runs, scratch)
    results = {
        "command": command, "machine": machine(), "load_average_1min": [load_before, os.getloadavg()[0]],
        "threads": args.threads, "runs": args.runs, "conv_gflop_model": model_conv_gflop(model, SIZE), "profile": prof,
    }  # fmt: skip
    write_json(results, args.out.with_suffix(".json"))
    table = markdown(results)
    args.out.with_suffix(".md").write_text(f"# U²-XS-Net profile (ONNX Runtime)\n\n{table}", encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
