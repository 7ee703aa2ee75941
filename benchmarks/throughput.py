"""Throughput of screening on this machine: decode, model, end to end, and where the time goes.

In one run, on full-resolution JPEG photographs generated from ``drscreen.synth`` (a square
fundus upscaled to the height of a camera frame and padded to 3:2, sizes as in
``../shared/data/fullres-samples``: 2592x1944 to 4928x3264) and on the real photographs of
``--real`` (skipped when absent):

* decode only, one process: full decode (``read_image``) and reduced decode (``read_reduced``:
  DCT scaling), photographs/s;
* model only: ``Predictor.probabilities`` on prepared batches of ``--model-batch``, fp32 and bf16
  (bf16 only where the CPU has AVX-512 BF16 or AMX), images/s;
* end to end: ``drscreen.report.screen`` from files to a written result folder, without and with
  saliency maps, photographs/s, and its ratio to model-only in the same precision; these runs
  use the grading model alone (``lesion_model=None``), as model-only does, and one more run, fp32
  without saliency, adds the shipped lesion model (``screen``'s default: a second network at
  512 px on every gradable photograph), and one more runs both networks on OpenVINO in bf16
  (``runtime="openvino", amp="bf16"``: the fastest CPU choice, docs/performance.md);
* the upper bound of that ratio on this machine given the reduced decode alone (``ratio_bound``:
  the network turns all ``n`` cores into its rate, so a photograph's decode, ``t_decode`` seconds
  on one core, takes ``t_decode / n`` from it: ``t_model / (t_model + t_decode / n)`` with
  ``t_model`` = 1 / model images/s);
* agreement: grades and quality-gate outcomes of the reduced path against a full decode, of
  bf16 against fp32, and of the OpenVINO bf16 run against PyTorch fp32 (both with the lesion model;
  lesion findings too);
* a cProfile of the end-to-end path in one process (``workers=0``), summed by stage.

Usage: ``python benchmarks/throughput.py [--generated 48] [--real ../shared/data/fullres-samples]``.
Writes ``throughput.json`` and ``throughput.md`` into ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from machine_info import machine

from drscreen.inference import Predictor
from drscreen.io import read_image
from drscreen.io.draft import read_reduced
from drscreen.report import iter_results, screen
from drscreen.report.folder import ScreeningFolder
from drscreen.report.overlays import DISPLAY_SIZE
from drscreen.screening import Screener, ScreeningInput, collect_inputs
from drscreen.screening.batch import default_workers, load_photograph
from drscreen.screening.screener import content_sha256
from drscreen.synth import generate_fundus

REPO_ROOT = Path(__file__).resolve().parents[1]
#: (width, height) of the generated photographs, cycled (the cameras of the full-resolution samples).
FRAME_SIZES: tuple[tuple[int, int], ...] = ((2592, 1944), (3888, 2592), (4752, 3168), (4928, 3264))
#: Profile stages: a label and the function whose cumulative time it is (file suffix, function name).
STAGES: tuple[tuple[str, str, str], ...] = (
    ("hash the file (SHA-256)", "screening/screener.py", "content_sha256"),
    ("decode (reduced)", "io/draft.py", "read_reduced"),
    ("prepare: FOV, crop, enhancement, quality gate", "preprocess/pipeline.py", "prepare"),
    ("  of which FOV detection", "preprocess/fov.py", "detect_fov"),
    ("  of which quality gate", "preprocess/quality.py", "assess_quality"),
    ("model (forward, probabilities)", "inference/predictor.py", "predict_prepared"),
    ("landmarks", "screening/landmarks.py", "locate_landmarks"),
    ("region findings", "screening/findings.py", "lesion_findings"),
    ("explanation (saliency)", "explain/default.py", "explain_default"),
    ("write preview, overlays, JSON", "report/folder.py", "write_image"),
)


def generate_photographs(folder: Path, count: int) -> list[Path]:
    """``count`` JPEG photographs (quality 90) at the camera sizes of ``FRAME_SIZES``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        width, height = FRAME_SIZES[index % len(FRAME_SIZES)]
        fundus = cv2.resize(
            generate_fundus(seed=index, size=1024).image, (height, height), interpolation=cv2.INTER_CUBIC
        )
        frame = np.zeros((height, width, 3), np.uint8)
        left = (width - height) // 2
        frame[:, left : left + height] = fundus
        path = folder / f"gen_{index:03d}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def real_photographs(folder: Path | None, copies: int, scratch: Path) -> list[Path]:
    """The real photographs (JPEG and PNG) of ``folder``, each copied ``copies`` times under new names."""
    if folder is None or not folder.is_dir():
        return []
    originals = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    scratch.mkdir(parents=True, exist_ok=True)
    paths = []
    for copy in range(copies):
        for original in originals:
            target = scratch / f"{original.parent.name}_{original.stem}_{copy}{original.suffix}"
            shutil.copyfile(original, target)
            paths.append(target)
    return paths


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2)


def decode_rates(paths: Sequence[Path]) -> dict[str, float]:
    """Photographs/s of a full and of a reduced decode, one process."""
    rates = {}
    for name, read in (("full", read_image), ("reduced", read_reduced)):
        started = time.perf_counter()
        for path in paths:
            read(path)
        rates[name] = rate(len(paths), time.perf_counter() - started)
    return rates


def model_rate(predictor: Predictor, batch: torch.Tensor, repeats: int) -> float:
    """Images/s of ``predictor.probabilities`` on ``batch`` (after one warm-up forward)."""
    predictor.probabilities(batch)
    started = time.perf_counter()
    for _ in range(repeats):
        predictor.probabilities(batch)
    return rate(repeats * len(batch), time.perf_counter() - started)


def ratio_bound(model_per_s: float, decode_per_s: float, cores: int) -> float:
    """Largest end-to-end / model-only ratio on ``cores`` cores when every photograph must be
    decoded (``decode_per_s`` on one core) and the network alone runs at ``model_per_s`` on all
    of them: ``t_model / (t_model + t_decode / cores)``."""
    t_model, t_decode = 1.0 / model_per_s, 1.0 / decode_per_s
    return round(t_model / (t_model + t_decode / cores), 3)


def end_to_end(paths: Sequence[Path], out: Path, screener: Screener, workers: int) -> float:
    """Photographs/s of ``drscreen.report.screen`` from the files to a written folder."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    summary = screen(list(paths), out, screener=screener, workers=workers, progress=False)
    seconds = time.perf_counter() - started
    assert summary.n_unreadable == 0, summary.errors
    return rate(len(paths), seconds)


def findings(result: Any) -> list[tuple[str, str]]:
    """The (lesion code, region) of each of an ``ImageResult``'s lesion findings, in order."""
    return [(finding.code, finding.region) for finding in result.lesions]


def agreement(first: Path, second: Path) -> dict[str, Any]:
    """How the results of two folders of the same photographs agree (DR grade, gate, probabilities)."""
    a = {r.id: r for r in iter_results(first)}
    b = {r.id: r for r in iter_results(second)}
    both_graded = [i for i in a if a[i].dr is not None and b[i].dr is not None]
    return {
        "photographs": len(a),
        "same_status": sum(a[i].status == b[i].status for i in a),
        "same_dr_grade": sum(a[i].dr.grade == b[i].dr.grade for i in both_graded),  # type: ignore[union-attr]
        "graded_by_both": len(both_graded),
        "same_lesion_findings": sum(findings(a[i]) == findings(b[i]) for i in both_graded),
        "max_dr_probability_difference": round(max((float(np.abs(np.subtract(a[i].dr.probabilities,  # type: ignore[union-attr]
                                                 b[i].dr.probabilities)).max()) for i in both_graded), default=0.0), 6),  # type: ignore[union-attr]
    }  # fmt: skip


def full_decode_agreement(paths: Sequence[Path], screener: Screener) -> dict[str, Any]:
    """Quality gate and DR grade of the reduced path against a full decode (``read_image`` +
    ``Predictor.prepare``, the path of ``Predictor.predict_files``)."""
    predictor = screener.predictor
    config = predictor.preprocessor.config
    same_gate = same_grade = graded = 0
    largest = 0.0
    for path in paths:
        full = predictor.predict_prepared([predictor.prepare(read_image(path))])[0]
        loaded = load_photograph(ScreeningInput(id=path.stem, path=path), config, content_sha256)
        reduced = predictor.predict_prepared([loaded.prepared])[0]  # type: ignore[union-attr]
        same_gate += full.graded == reduced.graded
        if full.graded and reduced.graded:
            graded += 1
            same_grade += full.dr_grade == reduced.dr_grade
            largest = max(largest, float(np.abs(full.dr_probs - reduced.dr_probs).max()))  # type: ignore[operator]
    return {"photographs": len(paths), "same_gate_outcome": same_gate, "graded_by_both": graded,
            "same_dr_grade": same_grade, "max_dr_probability_difference": round(largest, 6)}  # fmt: skip


def profile_stages(paths: Sequence[Path], out: Path, screener: Screener) -> dict[str, Any]:
    """cProfile of screening and writing in one thread (``workers=0``; ``screen`` writes on a
    second thread, which cProfile would not see): cumulative seconds per photograph by stage."""
    shutil.rmtree(out, ignore_errors=True)
    folder = ScreeningFolder(out, DISPLAY_SIZE)
    records = list(collect_inputs(list(paths)))

    def screen_and_write() -> None:
        for outcome in screener.screen(records, workers=0):
            folder.write_image(outcome, screener.lesion_threshold)  # type: ignore[arg-type]

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.runcall(screen_and_write)
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    stages = {}
    for label, file_suffix, function in STAGES:
        seconds = sum(
            entry[3] for (file, _, name), entry in stats.items() if file.endswith(file_suffix) and name == function
        )
        stages[label] = round(seconds / len(paths), 4)
    return {"photographs": len(paths), "seconds_per_photograph": round(total / len(paths), 4), "stages": stages}


def timed(label: str, function: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = function()
    print(f"{label}: {value} ({time.perf_counter() - started:.1f} s)", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=48, help="generated photographs (default 48)")
    parser.add_argument("--real", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "fullres-samples")
    parser.add_argument("--real-copies", type=int, default=3, help="each real photograph screened this many times")
    parser.add_argument("--saliency", type=int, default=12, help="photographs screened with saliency maps")
    parser.add_argument("--model-batch", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16, help="batch size of the end-to-end runs")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    command = "python benchmarks/throughput.py " + " ".join(sys.argv[1:])
    info = {**machine(), "load_average_at_start": os.getloadavg()[0]}
    print(info, flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="drscreen-throughput-"))
    try:
        sets = {"generated": generate_photographs(scratch / "generated", args.generated)}
        real = real_photographs(args.real, args.real_copies, scratch / "real")
        if real:
            sets["real"] = real
        precisions = ["fp32", "bf16"] if info["avx512_bf16"] or info["amx_bf16"] else ["fp32"]
        screeners = {
            amp: Screener(explain=False, amp=amp, batch_size=args.batch_size, lesion_model=None) for amp in precisions
        }
        explaining = Screener(explain=True, amp="fp32", batch_size=args.batch_size, lesion_model=None)
        with_lesion_model = Screener(explain=False, amp="fp32", batch_size=args.batch_size)
        openvino_bf16 = Screener(explain=False, runtime="openvino", amp="bf16", batch_size=args.batch_size)
        config = screeners["fp32"].predictor.preprocessor.config
        # Warm up: the workers' fork server, the model's first forwards.
        screen(
            sets["generated"][:3], scratch / "warmup", screener=screeners["fp32"], workers=args.workers, progress=False
        )
        prepared = [
            load_photograph(ScreeningInput(id=p.stem, path=p), config, content_sha256) for p in sets["generated"][:8]
        ]
        batch = torch.stack([p.prepared.tensor for p in prepared] * (args.model_batch // 8 + 1))[: args.model_batch]  # type: ignore[union-attr]
        results: dict[str, Any] = {
            "machine": info,
            "command": command,
            "workers": args.workers,
            "batch_size": args.batch_size,
            "model_batch": args.model_batch,
            "sets": {},
        }
        model = {
            amp: timed(f"model {amp}", lambda amp=amp: model_rate(screeners[amp].predictor, batch, 3))
            for amp in precisions
        }
        results["model_images_per_s"] = model
        for name, paths in sets.items():
            row: dict[str, Any] = {"photographs": len(paths)}
            row["decode_per_s"] = timed(
                f"{name} decode", lambda paths=paths: decode_rates(paths[: min(len(paths), 16)])
            )
            for amp in precisions:
                out = scratch / f"out_{name}_{amp}"
                speed = timed(
                    f"{name} end to end {amp}",
                    lambda amp=amp, out=out, paths=paths: end_to_end(paths, out, screeners[amp], args.workers),
                )
                row[f"end_to_end_{amp}_per_s"] = speed
                row[f"ratio_{amp}"] = round(speed / model[amp], 3)
                row[f"ratio_bound_{amp}"] = ratio_bound(model[amp], row["decode_per_s"]["reduced"], info["cores"])
            row["end_to_end_fp32_lesion_model_per_s"] = timed(
                f"{name} end to end with the lesion model",
                lambda p=paths, n=name: end_to_end(p, scratch / f"out_{n}_lesions", with_lesion_model, args.workers),
            )  # fmt: skip
            row["end_to_end_openvino_bf16_lesion_model_per_s"] = timed(
                f"{name} end to end with the lesion model, OpenVINO bf16",
                lambda p=paths, n=name: end_to_end(p, scratch / f"out_{n}_openvino", openvino_bf16, args.workers),
            )  # fmt: skip
            row["openvino_bf16_vs_torch_fp32"] = agreement(
                scratch / f"out_{name}_lesions", scratch / f"out_{name}_openvino"
            )
            saliency_paths = paths[: args.saliency]
            row["end_to_end_saliency_fp32_per_s"] = timed(
                f"{name} end to end with saliency",
                lambda p=saliency_paths, n=name: end_to_end(p, scratch / f"out_{n}_saliency", explaining, args.workers),
            )  # fmt: skip
            if "bf16" in precisions:
                row["bf16_vs_fp32"] = agreement(scratch / f"out_{name}_fp32", scratch / f"out_{name}_bf16")
            results["sets"][name] = row
        if real:
            originals = sorted({p for p in real if p.stem.endswith("_0")})
            results["reduced_vs_full_decode_real"] = timed(
                "agreement", lambda: full_decode_agreement(originals, screeners["fp32"])
            )
        results["profile_one_process_fp32"] = timed(
            "profile", lambda: profile_stages(sets["generated"][:8], scratch / "profile", screeners["fp32"])
        )
        results["profile_one_process_saliency"] = timed(
            "profile saliency", lambda: profile_stages(sets["generated"][:4], scratch / "profile_saliency", explaining)
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["load_average_at_end"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "throughput.md").write_text(markdown(results))
    print(markdown(results))


def markdown(results: dict[str, Any]) -> str:
    """The tables of ``throughput.md``."""
    info = results["machine"]
    lines = [
        "# Screening throughput",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores (shared; 1-minute load average "
        f"{info['load_average_at_start']:.1f} at start, {results['load_average_at_end']:.1f} at end), "
        f"torch {info['torch']} ({info['torch_cpu_capability']}, {info['torch_threads']} threads), "
        f"AVX-512 BF16: {info['avx512_bf16']}, AMX: {info['amx_bf16']}.",
        f"Command: `{results['command']}`; end to end with {results['workers']} worker processes, batch "
        f"{results['batch_size']}; model only at batch {results['model_batch']}.",
        "",
        "| set | photographs | decode full /s | decode reduced /s | model fp32 img/s | end to end fp32 /s | ratio fp32 "
        "| upper bound fp32 | model bf16 img/s | end to end bf16 /s | ratio bf16 | upper bound bf16 "
        "| end to end with saliency (fp32) /s | end to end with the lesion model (fp32) /s "
        "| end to end with the lesion model, OpenVINO bf16 /s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    model = results["model_images_per_s"]
    for name, row in results["sets"].items():
        lines.append(
            f"| {name} | {row['photographs']} | {row['decode_per_s']['full']} | {row['decode_per_s']['reduced']} "
            f"| {model['fp32']} | {row['end_to_end_fp32_per_s']} | {row['ratio_fp32']} | {row['ratio_bound_fp32']} "
            f"| {model.get('bf16', '-')} | {row.get('end_to_end_bf16_per_s', '-')} | {row.get('ratio_bf16', '-')} "
            f"| {row.get('ratio_bound_bf16', '-')} | {row['end_to_end_saliency_fp32_per_s']} "
            f"| {row.get('end_to_end_fp32_lesion_model_per_s', '-')} "
            f"| {row.get('end_to_end_openvino_bf16_lesion_model_per_s', '-')} |"
        )
    lines += [
        "",
        "Upper bound: t_model / (t_model + t_decode / n), t_model = 1 / model images/s, t_decode = 1 / decode "
        f"reduced /s (one core), n = {info['cores']} cores: the best end to end / model-only ratio when decoding "
        "is the only work besides the network.",
        "",
        "GPU (H100/H200): not measured: no GPU lent to this session (`benchmarks/gpu_throughput.sh` is ready).",
        "",
    ]
    for name, row in results["sets"].items():
        if "bf16_vs_fp32" in row:
            lines.append(f"bf16 against fp32, {name}: {json.dumps(row['bf16_vs_fp32'])}")
        if "openvino_bf16_vs_torch_fp32" in row:
            lines.append(f"OpenVINO bf16 against PyTorch fp32, both with the lesion model, {name}: "
                         f"{json.dumps(row['openvino_bf16_vs_torch_fp32'])}")  # fmt: skip
    if "reduced_vs_full_decode_real" in results:
        lines.append(
            f"Reduced against full decode, real photographs: {json.dumps(results['reduced_vs_full_decode_real'])}"
        )
    for key in ("profile_one_process_fp32", "profile_one_process_saliency"):
        profile = results[key]
        title = (
            f"Profile ({key}, {profile['photographs']} generated photographs, one process, cProfile): "
            f"{profile['seconds_per_photograph']} s per photograph"
        )
        lines += ["", title, "", "| stage | s per photograph |", "|---|---|"]
        lines += [f"| {label} | {seconds} |" for label, seconds in profile["stages"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
