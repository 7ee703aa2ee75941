"""Single-photograph latency of the shipped model, PyTorch vs ONNX Runtime vs OpenVINO, on this machine.

For each runtime (PyTorch fp32, PyTorch with bf16 autocast, ONNX Runtime fp32 and OpenVINO fp32
and bf16 on the ``drscreen export`` file), one full-resolution JPEG goes 50 times through the steps of
``Predictor.predict_files``, the production single-photograph path: ``read_reduced`` (decode at
the reduced size), ``prepare_photograph`` (the packed photograph preprocessing and quality gate)
and ``predict_prepared`` (the network, probabilities, grade and referral); p50 / p95 of the whole
and the median of each stage (checked once against ``predict_files`` itself). Runs are
interleaved (one run of each runtime in turn), so that the load of a shared machine falls on
every runtime alike and their ratios stay meaningful. Then model-only
images/s at batch 32 (the backend's forward on prepared inputs, median of 3 timed batches after
one warm-up), and the U²-XS-Net of the mobile paper (default configuration, random weights:
speed does not depend on them) at 512 px, model only, batch 1, 20 interleaved runs: PyTorch fp32,
bf16 autocast, bf16 autocast with channels-last weights, ONNX Runtime fp32 (the
``drscreen export`` file in the session ``OnnxBackend`` creates, and for comparison in a session
with ONNX Runtime's default options), ONNX Runtime int8 (``drscreen export --int8``: static
QDQ quantisation calibrated on synthetic fundus images), and OpenVINO (``OpenVinoBackend``) fp32,
bf16 and int8 (the same two files). Last, the shipped lesion model (``drscreen_lesions.pt``, 512
px, model only, batch 1) on the same runtimes.

The photograph is the largest of ``<data-root>/fullres-samples/eyepacs`` (4928 x 3264 EyePACS
JPEG) or, when that folder is absent, a generated synthetic fundus of that size (JPEG q95).

Usage::

    python benchmarks/latency.py [--data-root ../shared/data] [--runs 50] [--model-runs 20]
                                 [--out benchmarks/results/latency]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime
import torch
from machine_info import command_line, machine

from drscreen.engine.runs import write_json
from drscreen.export import export_model
from drscreen.inference import OnnxBackend, OpenVinoBackend, Predictor, TorchBackend
from drscreen.io import read_image
from drscreen.io.draft import read_reduced
from drscreen.models import create_model, load_pretrained
from drscreen.models.pretrained import DEFAULT_LESION_MODEL_FILE
from drscreen.preprocess.photograph import prepare_photograph
from drscreen.synth import generate_fundus

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: Size of the generated stand-in photograph (the largest EyePACS originals), px (width, height).
PHOTO_SIZE = (4928, 3264)
#: Batch size of the model-only throughput.
BATCH = 32
#: Input side of the U²-XS-Net latency, px (the mobile paper's resolution).
U2XS_SIZE = 512
#: A network forward on (B, 3, S, S) inputs (a backend or ``Predictor.forward``).
Forward = Callable[[torch.Tensor], Any]


def photograph(data_root: Path, scratch: Path) -> tuple[Path, str]:
    """The full-resolution JPEG to time and a description of it."""
    candidates = sorted((data_root / "fullres-samples" / "eyepacs").glob("*.jpeg"))
    if candidates:
        sizes = {path: cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8).shape for path in candidates}
        largest = max(candidates, key=lambda path: sizes[path][0] * sizes[path][1])
        return largest, f"EyePACS {largest.name} (real photograph)"
    width, height = PHOTO_SIZE
    fundus = cv2.resize(generate_fundus(size=1024, seed=0).image, (height, height), interpolation=cv2.INTER_CUBIC)
    canvas = np.zeros((height, width, 3), np.uint8)
    left = (width - height) // 2
    canvas[:, left : left + height] = fundus
    path = scratch / "synthetic_4928x3264.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path, "generated synthetic fundus (no real photograph found)"


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 / p95 / mean in milliseconds."""
    values = np.array(seconds) * 1000
    return {"p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95)),
            "mean_ms": float(values.mean())}  # fmt: skip


def photograph_latency(predictors: dict[str, Predictor], path: Path, runs: int) -> dict[str, dict[str, Any]]:
    """Per runtime: p50 / p95 of decode + predict, and the median of each stage (ms)."""
    stages: dict[str, dict[str, list[float]]] = {
        name: {"total": [], "decode": [], "prepare": [], "model": []} for name in predictors
    }

    def once(predictor: Predictor) -> dict[str, float]:
        start = time.perf_counter()
        photo = read_reduced(path)
        decoded = time.perf_counter()
        prepared = prepare_photograph(predictor.preprocessor.config, photo)
        ready = time.perf_counter()
        prediction = predictor.predict_prepared([prepared])[0]
        done = time.perf_counter()
        assert prediction.graded and prediction.dr_grade is not None
        return {"total": done - start, "decode": decoded - start, "prepare": ready - decoded, "model": done - ready}

    for predictor in predictors.values():  # warm-up: allocators, ONNX Runtime's first-run planning
        once(predictor)
        once(predictor)
        staged = predictor.predict_prepared([prepare_photograph(predictor.preprocessor.config, read_reduced(path))])[0]
        production = next(iter(predictor.predict_files([path]))).prediction
        assert production is not None and np.allclose(production.dr_probs, staged.dr_probs, rtol=0, atol=1e-6)
    for _ in range(runs):
        for name, predictor in predictors.items():
            for stage, value in once(predictor).items():
                stages[name][stage].append(value)
    results: dict[str, dict[str, Any]] = {}
    for name, times in stages.items():
        results[name] = percentiles(times["total"])
        for stage in ("decode", "prepare", "model"):
            results[name][f"{stage}_median_ms"] = float(np.median(times[stage]) * 1000)
    return results


def interleaved_seconds(
    forwards: dict[str, Forward], images: torch.Tensor, runs: int, warmups: int
) -> dict[str, list[float]]:
    """Seconds of each of ``runs`` forwards of ``images`` per runtime, runtimes taking turns
    (so that the load of a shared machine falls on each alike), after ``warmups`` untimed ones."""
    seconds: dict[str, list[float]] = {name: [] for name in forwards}
    for forward in forwards.values():
        for _ in range(warmups):
            forward(images)
    for _ in range(runs):
        for name, forward in forwards.items():
            start = time.perf_counter()
            forward(images)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def throughput(forwards: dict[str, Forward], batch: torch.Tensor, repeats: int = 3) -> dict[str, float]:
    """Model-only images/s per runtime: median over ``repeats`` interleaved timed forwards of ``batch``."""
    seconds = interleaved_seconds(forwards, batch, repeats, warmups=1)
    return {name: len(batch) / float(np.median(values)) for name, values in seconds.items()}


def model_latency(forwards: dict[str, Forward], images: torch.Tensor, runs: int) -> dict[str, dict[str, float]]:
    """p50 / p95 of one forward of ``images`` per runtime, interleaved runs after two warm-ups."""
    seconds = interleaved_seconds(forwards, images, runs, warmups=2)
    return {name: percentiles(values) for name, values in seconds.items()}


def openvino_backends(fp32: Path, int8: Path) -> dict[str, Forward]:
    """OpenVINO fp32 and bf16 on the fp32 export and fp32 precision on the int8 (QDQ) export."""
    return {
        "openvino fp32": OpenVinoBackend(fp32),
        "openvino bf16": OpenVinoBackend(fp32, amp="bf16"),
        "openvino int8 (the QDQ file)": OpenVinoBackend(int8),
    }


def default_session(path: Path) -> Forward:
    """A forward of the ONNX file at ``path`` in a session with ONNX Runtime's default options."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda images: session.run(None, {"images": images.numpy()})


def model_latency_rows(latency: dict[str, dict[str, float]]) -> list[str]:
    """Markdown rows of a model-only latency table: p50, p95 and p50 relative to ONNX Runtime fp32."""
    base = latency["onnxruntime fp32"]["p50_ms"]
    return [f"| {name} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['p50_ms'] / base:.2f} |"
            for name, row in latency.items()]  # fmt: skip


def markdown(results: dict[str, Any]) -> str:
    """The results as the markdown table of docs/performance.md."""
    photo, single, batch, u2xs = results["photograph"], results["single"], results["batch32"], results["u2net_xs_512"]
    base = single["torch fp32"]["p50_ms"]
    base_batch = batch["torch fp32"]
    info = results["machine"]
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores (avx512_bf16: {info['avx512_bf16']}), torch {info['torch']} "
        f"({info['torch_threads']} threads), onnxruntime {info['onnxruntime']}, openvino {info.get('openvino')}; "
        "shared with other jobs "
        f"(1-minute load average {results['load_average_1min'][0]:.1f} before, {results['load_average_1min'][1]:.1f} after).",
        f"Photograph: {photo['description']}, {photo['width']} x {photo['height']} JPEG; shipped model at "
        f"{results['input_size']} px; {results['runs']} interleaved runs per runtime of the steps of "
        "`Predictor.predict_files` (reduced decode, `prepare_photograph`, network).", "",
        f"Command: `{results['command']}`", "",
        "| runtime | photograph p50 ms | p95 ms | decode ms | prepare ms | model + probabilities ms "
        "| p50 vs torch fp32 | model-only images/s (batch 32) | vs torch fp32 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in single.items():
        lines.append(
            f"| {name} | {row['p50_ms']:.0f} | {row['p95_ms']:.0f} | {row['decode_median_ms']:.0f} "
            f"| {row['prepare_median_ms']:.0f} | {row['model_median_ms']:.0f} | {row['p50_ms'] / base:.2f} "
            f"| {batch[name]:.1f} | {batch[name] / base_batch:.2f} |"
        )
    lines += [
        "", f"U²-XS-Net (default configuration, {U2XS_SIZE} px, model only, batch 1, {results['model_runs']} interleaved "
        "runs; goal p50 <= 100 ms on 2 cores):",
        "", "| runtime | p50 ms | p95 ms | p50 vs onnxruntime fp32 |", "|---|---|---|---|",
    ]  # fmt: skip
    lines += model_latency_rows(u2xs)
    lesions = results.get("lesion_model")
    if lesions is not None:
        lines += [
            "", f"Shipped lesion model (`{lesions['file']}`, {lesions['input_size']} px, model only, batch 1, "
            f"{results['model_runs']} interleaved runs):",
            "", "| runtime | p50 ms | p95 ms | p50 vs onnxruntime fp32 |", "|---|---|---|---|",
        ]  # fmt: skip
        lines += model_latency_rows(lesions["latency"])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--runs", type=int, default=50, help="photograph runs per runtime")
    parser.add_argument("--model-runs", type=int, default=20, help="U²-XS-Net model-only runs per runtime")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency")
    args = parser.parse_args()
    command = command_line()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        photo, description = photograph(args.data_root, scratch)
        height, width = read_image(photo).shape[:2]
        packed = load_pretrained()
        export_model(packed, scratch / "default.onnx")
        predictors = {
            "torch fp32": Predictor.from_packed(),
            "torch bf16 autocast": Predictor.from_packed(amp="bf16"),
            "onnxruntime fp32": Predictor.from_onnx(scratch / "default.onnx"),
            "openvino fp32": Predictor.from_onnx(scratch / "default.onnx", runtime="openvino"),
            "openvino bf16": Predictor.from_onnx(scratch / "default.onnx", runtime="openvino", amp="bf16"),
        }
        single = photograph_latency(predictors, photo, args.runs)
        prepared = predictors["torch fp32"].prepare(read_image(photo)).tensor
        batch = prepared.expand(BATCH, -1, -1, -1).contiguous()
        batch32 = throughput({name: predictor.forward for name, predictor in predictors.items()}, batch)

        u2xs = create_model("u2net_xs").eval()
        export_model(u2xs, scratch / "u2net_xs.onnx", input_size=U2XS_SIZE)
        export_model(u2xs, scratch / "u2net_xs_int8.onnx", input_size=U2XS_SIZE, int8=True)
        u2xs_forwards = {
            "torch fp32": TorchBackend(u2xs),
            "torch bf16 autocast": TorchBackend(u2xs, amp="bf16"),
            "torch bf16 autocast, channels-last": TorchBackend(copy.deepcopy(u2xs), amp="bf16", channels_last=True),
            "onnxruntime fp32": OnnxBackend(scratch / "u2net_xs.onnx"),
            "onnxruntime fp32, default session options": default_session(scratch / "u2net_xs.onnx"),
            "onnxruntime int8 (static, QDQ)": OnnxBackend(scratch / "u2net_xs_int8.onnx"),
            **openvino_backends(scratch / "u2net_xs.onnx", scratch / "u2net_xs_int8.onnx"),
        }
        u2xs_latency = model_latency(u2xs_forwards, torch.randn(1, 3, U2XS_SIZE, U2XS_SIZE), args.model_runs)

        lesion_model = load_pretrained(DEFAULT_LESION_MODEL_FILE)
        lesion_size = lesion_model.preprocess.size
        export_model(lesion_model, scratch / "lesions.onnx")
        export_model(lesion_model, scratch / "lesions_int8.onnx", int8=True)
        lesion_forwards = {
            "torch fp32": TorchBackend(lesion_model.model),
            "torch bf16 autocast, channels-last": TorchBackend(
                copy.deepcopy(lesion_model.model), amp="bf16", channels_last=True
            ),
            "onnxruntime fp32": OnnxBackend(scratch / "lesions.onnx"),
            "onnxruntime int8 (static, QDQ)": OnnxBackend(scratch / "lesions_int8.onnx"),
            **openvino_backends(scratch / "lesions.onnx", scratch / "lesions_int8.onnx"),
        }
        lesion_latency = model_latency(lesion_forwards, torch.randn(1, 3, lesion_size, lesion_size), args.model_runs)

    results = {
        "command": command, "machine": machine(), "load_average_1min": [load_before, os.getloadavg()[0]],
        "runs": args.runs, "model_runs": args.model_runs, "input_size": packed.preprocess.size,
        "photograph": {"description": description, "width": width, "height": height},
        "single": single, "batch32": batch32, "u2net_xs_512": u2xs_latency,
        "lesion_model": {"file": DEFAULT_LESION_MODEL_FILE.name, "input_size": lesion_size, "latency": lesion_latency},
    }  # fmt: skip
    write_json(results, args.out.with_suffix(".json"))
    table = markdown(results)
    args.out.with_suffix(".md").write_text(f"# Single-photograph latency\n\n{table}", encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
