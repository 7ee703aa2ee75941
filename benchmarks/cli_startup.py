"""Start-up time of ``drscreen --help`` against ``python -c pass`` on the same machine.

Usage: python benchmarks/cli_startup.py [--runs 9]
Runs each command ``--runs`` times in turn (interleaved, so machine load hits both alike) and
prints the median wall time of each, their difference and their ratio; writes
benchmarks/results/cli_startup.json and cli_startup.md. The 1-minute load average is recorded:
on a shared machine every wall time grows with other people's load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def drscreen_command() -> list[str]:
    """The installed ``drscreen`` script next to this interpreter, else ``python -m drscreen.cli``."""
    script = Path(sys.executable).parent / "drscreen"
    if script.is_file():
        return [str(script)]
    found = shutil.which("drscreen")
    return [found] if found else [sys.executable, "-m", "drscreen.cli"]


def wall_seconds(command: list[str]) -> float:
    """Wall time of one run of ``command`` (output discarded), s."""
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each command (default 9)")
    args = parser.parse_args()
    commands = {"python -c pass": [sys.executable, "-c", "pass"], "drscreen --help": [*drscreen_command(), "--help"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    load = os.getloadavg()[0]
    for _ in range(args.runs):
        for name, command in commands.items():
            times[name].append(wall_seconds(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["drscreen --help"] / medians["python -c pass"]
    result = {
        "runs": args.runs, "load_average_1min": load, "python": sys.version.split()[0],
        "median_seconds": medians, "ratio": ratio, "seconds": times,
    }  # fmt: skip
    lines = [
        "| command | median wall time (s) |",
        "|---|---:|",
        *(f"| `{name}` | {value:.3f} |" for name, value in medians.items()),
        "",
        f"`drscreen --help` / `python -c pass`: {ratio:.1f}x "
        f"(+{medians['drscreen --help'] - medians['python -c pass']:.3f} s); "
        f"median of {args.runs} interleaved runs, 1-min load average {load:.1f}, Python {result['python']}.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli_startup.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "cli_startup.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
