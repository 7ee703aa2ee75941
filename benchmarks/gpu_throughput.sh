#!/usr/bin/env bash
# GPU throughput check for a session with a lent GPU (H100/H200), in one go (about 5 minutes):
#   bash benchmarks/gpu_throughput.sh [OUT_DIR]        (default: $OUT, else benchmarks/results)
# Measures, on generated 4752x3168 JPEGs (as EyePACS): nvJPEG decode (full, and reduced on the GPU),
# CPU decode with DCT scaling in all cores, the model alone (bf16 autocast, channels-last, batch 256
# at 224 px), and `drscreen screen --device cuda --amp bf16 --channels-last` end to end (photographs/s,
# files to a written folder) with nvJPEG decoding and, for comparison, with the CPU workers decoding.
# Writes gpu_throughput.json and gpu_throughput.md. Needs python with torch (CUDA) and torchvision;
# drscreen runs from src/ (no install, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-benchmarks/results}}"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT_DIR"
DEVICE="${DEVICE:-cuda}"  # DEVICE=cpu N_PHOTOS=8 MODEL_BATCH=4 checks this script without a GPU
export DEVICE
if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; else echo "no GPU (dry run on $DEVICE)"; fi | tee "$WORK/gpu.txt"
N_PHOTOS="${N_PHOTOS:-1024}"
"$PYTHON" - "$WORK" "$N_PHOTOS" <<'PY'
import sys, time, cv2, numpy as np
from pathlib import Path
from drscreen.synth import generate_fundus
work, count = Path(sys.argv[1]) / "photos", int(sys.argv[2])
work.mkdir()
frames = []
for seed in range(16):  # 16 distinct photographs, copied to `count` files
    fundus = cv2.resize(generate_fundus(seed=seed, size=1024).image, (3168, 3168), interpolation=cv2.INTER_CUBIC)
    frame = np.zeros((3168, 4752, 3), np.uint8); frame[:, 792:792 + 3168] = fundus
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    frames.append(data.tobytes())
for index in range(count):
    (work / f"p{index:04d}.jpg").write_bytes(frames[index % 16])
print(f"wrote {count} photographs")
PY
cat > "$WORK/measure.py" <<'PY'
import json, os, sys, time, subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import torch
from drscreen.io.draft import read_reduced
from drscreen.screening.gpu import decode_reduced
from drscreen.inference import Predictor


if __name__ == "__main__":
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    paths = sorted((work / "photos").glob("*.jpg"))
    result = {"gpu": (work / "gpu.txt").read_text().strip(), "cpu_cores": os.cpu_count(), "torch": torch.__version__,
              "photographs": len(paths)}

    device = os.environ["DEVICE"]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    batch_size = int(os.environ.get("MODEL_BATCH", "256"))

    def per_second(function, count):
        sync(); started = time.perf_counter(); function(); sync()
        return round(count / (time.perf_counter() - started), 1)

    from torchvision.io import decode_jpeg, read_file
    encoded = [read_file(str(p)) for p in paths]
    decode_jpeg(encoded[:8], device=device)
    result["nvjpeg_full_decode_per_s"] = per_second(lambda: [decode_jpeg(encoded[i:i + 64], device=device) for i in range(0, len(encoded), 64)], len(encoded))
    result["nvjpeg_decode_and_reduce_per_s"] = per_second(lambda: [decode_reduced(paths[i:i + 64], device) for i in range(0, len(paths), 64)], len(paths))
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(read_reduced, paths[:32]))
        started = time.perf_counter(); list(pool.map(read_reduced, paths, chunksize=4))
        result["cpu_reduced_decode_all_cores_per_s"] = round(len(paths) / (time.perf_counter() - started), 1)

    predictor = Predictor.from_packed(device=device, amp="bf16", channels_last=True, quality_gate=True, batch_size=batch_size)
    for size in (224, 512):
        batch = torch.randn(batch_size, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
        predictor.probabilities(batch)
        result[f"model_bf16_channels_last_{size}px_images_per_s"] = per_second(lambda: [predictor.probabilities(batch) for _ in range(5)], 5 * batch_size)

    from drscreen.report import screen
    from drscreen.screening import Screener
    # End to end in this process after a warm-up (model load and the workers' fork server not timed):
    # JPEG decoding on the device (nvJPEG, `--jpeg-decode auto` on a GPU) and, for comparison, in the
    # CPU workers (`--jpeg-decode cpu`); the workers prepare every photograph in both.
    cores = os.cpu_count()
    runs = ((False, len(paths), "device", "end_to_end_per_s"), (False, len(paths), "cpu", "end_to_end_cpu_decode_per_s"),
            (True, min(64, len(paths)), "device", "end_to_end_saliency_per_s"))
    for explain, count, decode, label in runs:
        screener = Screener(explain=explain, device=device, amp="bf16", batch_size=batch_size, channels_last=True,
                            jpeg_decode=decode)
        screen(paths[:32], work / f"warm_{label}", screener=screener, workers=cores, progress=False)
        started = time.perf_counter()
        screen(paths[:count], work / f"out_{label}", screener=screener, workers=cores, progress=False)
        result[label] = round(count / (time.perf_counter() - started), 1)
    result["end_to_end_command"] = (f"drscreen screen PHOTOS --out OUT --device cuda --amp bf16 --channels-last "
                                    f"--batch-size 256 --workers {cores} [--jpeg-decode cpu] [--no-explain]")
    result["ratio_end_to_end_to_model_224"] = round(result["end_to_end_per_s"] / result["model_bf16_channels_last_224px_images_per_s"], 3)
    (out / "gpu_throughput.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# GPU screening throughput", "", f"GPU: {result['gpu']}; {result['cpu_cores']} CPU cores; torch {result['torch']}.",
             "Command: `bash benchmarks/gpu_throughput.sh`", "", "| measure | per second |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in result.items() if key.endswith("per_s") or key.startswith("ratio")]
    (out / "gpu_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
PY
"$PYTHON" "$WORK/measure.py" "$WORK" "$OUT_DIR"
