"""What ``drscreen demo`` does (parser: ``drscreen.commands.demo``): the main job on bundled input.

It writes the sample input into ``<out>/inputs``: scikit-image's ``retina`` photograph (a real
fundus photograph shipped with scikit-image), synthetic photographs with known lesions and
grades (two patients, both eyes, listed in a CSV manifest, with a labels CSV from the
generator's ground truth) and one deliberately damaged file; then screens them all with the
shipped model into ``<out>/screening`` and prints the path of ``report.html``.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from drscreen.report import screen
from drscreen.synth import generate_fundus

#: (file stem, patient, eye, target DR grade, target DME grade) of the synthetic photographs.
SYNTHETIC_PHOTOGRAPHS: tuple[tuple[str, str, str, int, int], ...] = (
    ("patient-A_right", "A", "R", 0, 0),
    ("patient-A_left", "A", "L", 1, 0),
    ("patient-B_right", "B", "R", 2, 1),
    ("patient-B_left", "B", "L", 3, 2),
)
#: The deliberately damaged input: a JPEG cut off after its first kilobyte.
DAMAGED_FILE = "damaged_photo.jpg"


def _write_rgb(path: Path, image: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])


def write_sample_inputs(folder: Path, size: int = 768, seed: int = 0) -> tuple[Path, Path]:
    """Write the demo's photographs, manifest and labels into ``folder``; returns (manifest, labels)."""
    photos = folder / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    _write_rgb(photos / "skimage_retina.jpg", data.retina())
    manifest_rows = [("photos/skimage_retina.jpg", "skimage_retina", "C", "", "")]
    label_rows = []
    for stem, patient, eye, dr, dme in SYNTHETIC_PHOTOGRAPHS:
        fundus = generate_fundus(seed, size, target_dr=dr, target_dme=dme, eye="right" if eye == "R" else "left")
        _write_rgb(photos / f"{stem}.jpg", fundus.image)
        manifest_rows.append((f"photos/{stem}.jpg", stem, patient, eye, "2026-12"))
        label_rows.append((stem, fundus.dr_grade, fundus.dme_grade))
    encoded = cv2.imencode(".jpg", cv2.cvtColor(data.retina(), cv2.COLOR_RGB2BGR))[1].tobytes()
    (photos / DAMAGED_FILE).write_bytes(encoded[:1024])
    manifest_rows.append((f"photos/{DAMAGED_FILE}", "damaged_photo", "C", "", ""))
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["path", "id", "patient_id", "laterality", "visit"])
        writer.writerows(manifest_rows)
    labels = folder / "labels.csv"
    with labels.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "dr_grade", "dme_grade"])
        writer.writerows(label_rows)
    return manifest, labels


def run(args: argparse.Namespace) -> int:
    """Write the sample input, screen it, print the report's path; 0 when only the damaged file failed."""
    out: Path = args.out
    manifest, labels = write_sample_inputs(out / "inputs", size=args.size, seed=args.seed)
    summary = screen(
        [manifest], out / "screening", labels=labels, progress=not args.quiet,
        command=shlex.join(["drscreen", *sys.argv[1:]]),
    )  # fmt: skip
    print(
        f"screened {summary.n_screened} photographs ({summary.n_ungradable} ungradable, {summary.n_referable} "
        f"referable); {summary.n_unreadable} unreadable (the demo includes one damaged file on purpose)"
    )
    print(f"report: {summary.report}")
    expected_failures = [e for e in summary.errors if Path(e[0]).name == DAMAGED_FILE]
    return 0 if len(expected_failures) == summary.n_unreadable == 1 else 1
