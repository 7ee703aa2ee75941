"""``drscreen demo``: the main job on bundled input, needing no data and no network.

It writes a small synthetic data set in the official IDRiD layout, reads it back through the same
dataset adapters, image readers, preprocessing and quality gate that training and screening use,
and checks every step against the generator's ground truth:

* every image is found by the adapters, with the DR/DME grades the generator computed;
* every lesion mask file read back equals the re-rendered mask pixel for pixel, and a lesion has
  a mask file exactly when the generator drew it (IDRiD's absent-file-means-absent rule);
* field-of-view detection recovers the generator's FOV (IoU) and the quality gate passes;
* a lesion mask mapped into the network crop and back onto the original differs from the original
  only within 1 px of the lesion boundaries (resampling moves edges by at most a pixel).

Results go to ``<out>/summary.json``, ``<out>/summary.md`` and ``<out>/contact_sheet.png``; the exit
code is 1 when a check fails.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``drscreen demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="generate a synthetic IDRiD-layout data set and check the whole input path on it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: runs/demo)")
    parser.add_argument("--n", type=int, default=12, help="number of images (default: 12)")
    parser.add_argument("--size", type=int, default=512, help="image side in px, 256-2048 (default: 512)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from drscreen.demo import run

    return run(args)
