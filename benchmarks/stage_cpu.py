"""CPU time of each screening stage outside the network, per photograph, on one thread.

The throughput benchmark's wall-clock profile moves with whatever else runs on a shared machine;
CPU time on one thread (``time.process_time``, the least of ``--repeats`` runs per photograph,
averaged over the photographs) moves much less, so two versions of the code can be compared one
after the other. Photographs: the first ``--photographs`` generated camera frames of
``benchmarks/throughput.py`` (JPEG, 2592 x 1944 to 4928 x 3264). Stages: reduced decode
(``read_reduced``), ``prepare_photograph`` (of which ``detect_fov`` and ``assess_quality`` on the
reduced image), landmarks (``locate_landmarks`` on the prepared crop) and writing the preview,
overlay layers and JSON (``ScreeningFolder.write_image``).

It times the ``drscreen`` it imports: ``PYTHONPATH=<other checkout>/src python
benchmarks/stage_cpu.py --out DIR`` times another version.

Usage: ``python benchmarks/stage_cpu.py [--photographs 8] [--repeats 5] [--out benchmarks/results]``.
Writes ``stage_cpu.json`` and ``stage_cpu.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import torch
from throughput import generate_photographs

import drscreen
from drscreen.io.draft import read_reduced
from drscreen.preprocess import assess_quality, detect_fov
from drscreen.preprocess.photograph import prepare_photograph
from drscreen.report.folder import ScreeningFolder
from drscreen.report.overlays import DISPLAY_SIZE
from drscreen.screening import ScreenedImage, Screener, collect_inputs
from drscreen.screening.landmarks import locate_landmarks

REPO_ROOT = Path(__file__).resolve().parents[1]
Item = TypeVar("Item")


def cpu_ms(function: Callable[[Item], Any], items: Sequence[Item], repeats: int) -> float:
    """Mean over ``items`` of the least CPU time (ms) of ``repeats`` calls ``function(item)``."""
    least = []
    for item in items:
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            function(item)
            best = min(best, time.process_time() - start)
        least.append(best)
    return round(float(np.mean(least)) * 1000, 2)


def disc_map(screened: ScreenedImage) -> np.ndarray | None:
    """The optic-disc probability map the screener gives the landmarks, or None."""
    if screened.lesion_probs is None or "OD" not in screened.lesion_classes:
        return None
    return screened.lesion_probs[screened.lesion_classes.index("OD")]


def package_location(package: Path) -> str:
    """Where the timed ``drscreen`` package lives, with no machine's absolute path: relative to this
    repository (``src/drscreen``), or, from another checkout, from the folder that holds it
    (``<checkout>/src/drscreen``)."""
    package = package.resolve()
    if package.is_relative_to(REPO_ROOT):
        return package.relative_to(REPO_ROOT).as_posix()
    return package.relative_to(package.parents[2]).as_posix()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photographs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="drscreen-stage-cpu-") as scratch_dir:
        scratch = Path(scratch_dir)
        paths = generate_photographs(scratch / "photos", args.photographs)
        screener = Screener(explain=False, lesion_model=None)  # the grading model's own maps, one preparation
        config = screener.predictor.preprocessor.config
        screened = [o for o in screener.screen(list(collect_inputs(paths)), workers=0) if isinstance(o, ScreenedImage)]
        folder = ScreeningFolder(scratch / "out", DISPLAY_SIZE)
        photos = [read_reduced(path) for path in paths]
        fovs = [detect_fov(photo.image) for photo in photos]
        pairs = list(zip(photos, fovs))
        stages = {
            "decode (reduced)": cpu_ms(read_reduced, paths, args.repeats),
            "prepare_photograph": cpu_ms(lambda photo: prepare_photograph(config, photo), photos, args.repeats),
            "  of which detect_fov": cpu_ms(lambda photo: detect_fov(photo.image), photos, args.repeats),
            "  of which assess_quality": cpu_ms(
                lambda pair: assess_quality(pair[0].image, pair[1], config.quality_thresholds), pairs, args.repeats
            ),
            "landmarks": cpu_ms(
                lambda s: locate_landmarks(s.prepared.display, s.prepared.fov_mask, disc_map(s)), screened, args.repeats
            ),
            "write preview, overlays, JSON": cpu_ms(
                lambda s: folder.write_image(s, screener.lesion_threshold), screened, args.repeats
            ),
        }
    results = {
        "command": "python benchmarks/stage_cpu.py " + " ".join(sys.argv[1:]),
        "drscreen": package_location(Path(drscreen.__file__).parent),
        "photographs": len(paths),
        "repeats": args.repeats,
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "cpu_ms_per_photograph": stages,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stage_cpu.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [
        "# CPU time per photograph outside the network (one thread)",
        "",
        f"Command: `{results['command']}`; drscreen from `{results['drscreen']}`; {len(paths)} generated "
        f"photographs, least of {args.repeats} runs each; load average {load_before:.1f} before, "
        f"{results['load_average_1min'][1]:.1f} after.",
        "",
        "| stage | CPU ms per photograph |",
        "|---|---|",
        *(f"| {stage} | {ms} |" for stage, ms in stages.items()),
    ]
    (args.out / "stage_cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
