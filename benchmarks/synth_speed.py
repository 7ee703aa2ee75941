"""Speed of the synthetic fundus generator: N images written to disk with W worker processes.

Usage: python benchmarks/synth_speed.py [--n 100] [--size 512] [--workers 2] [--layout idrid]
Writes benchmarks/results/synth_speed.json and synth_speed.md. The target (issue) is 100 images
at 512 px in under 30 s on 2 cores. The 1-minute load average before the run and the CPU time of all
processes are recorded too: on a shared machine the wall time grows with other people's load, the
CPU time does not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from drscreen.synth.writers import LAYOUTS, read_truth, write_dataset

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--layout", choices=LAYOUTS, default="idrid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="", help="free text recorded with the result (which machine, ...)")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_start = time.process_time()
        write_dataset(tmp, args.n, args.size, args.seed, args.layout, workers=args.workers, progress=False)
        seconds = time.perf_counter() - start
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_seconds = (
            time.process_time() - cpu_start
            + children.ru_utime - children_before.ru_utime
            + children.ru_stime - children_before.ru_stime
        )
        rows = read_truth(tmp)
        disk_bytes = sum(path.stat().st_size for path in Path(tmp).rglob("*") if path.is_file())
    result = {
        "benchmark": "synth_speed",
        "command": (
            f"python benchmarks/synth_speed.py --n {args.n} --size {args.size} "
            f"--workers {args.workers} --layout {args.layout} --seed {args.seed}"
        ),
        "n_images": len(rows),
        "size_px": args.size,
        "layout": args.layout,
        "workers": args.workers,
        "wall_seconds": round(seconds, 2),
        "images_per_second": round(len(rows) / seconds, 2),
        "ms_per_image_wall": round(1000 * seconds / len(rows), 1),
        "cpu_seconds_all_processes": round(cpu_seconds, 2),
        "cpu_ms_per_image": round(1000 * cpu_seconds / len(rows), 1),
        "wall_seconds_if_cores_were_free": round(cpu_seconds / args.workers, 2),
        "target_seconds": 30.0 * args.n / 100 if args.size == 512 else None,
        "cpu_cores_available": len(os.sched_getaffinity(0)),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "load_average_1min_before": round(load_before, 2),
        "dataset_megabytes": round(disk_bytes / 1e6, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "note": "synthetic data; wall time includes worker start-up, rendering and writing every file",
        "machine_note": args.note,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "synth_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    rows_md = "\n".join(f"| {key} | {value} |" for key, value in result.items() if key != "benchmark")
    (RESULTS / "synth_speed.md").write_text(
        "# Synthetic fundus generator speed (synthetic data)\n\n| measure | value |\n|---|---|\n" + rows_md + "\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
