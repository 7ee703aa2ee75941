"""How well ``drscreen.screening.landmarks`` finds the optic disc, the fovea and the eye.

(a) Synthetic fundus images (``drscreen.synth.generate_fundus``, right and left eyes in turn), whose
    disc centre, disc diameter, fovea and eye are known by construction: disc and fovea centre
    errors in disc diameters (DD) and laterality accuracy, with the disc from the shipped model's
    optic-disc map ("model") and from the image alone ("image").
(b) The 30 real IDRiD photographs of ``<data-root>/idrid-seg-subset`` with their optic-disc masks:
    disc centre error against the mask centroid, in DD (the mask's equivalent diameter), for both
    sources; IDRiD has no fovea or eye labels here, so only the laterality distribution, the
    fovea confidences and the disc-fovea distances are reported. Skipped when the folder is absent.
    Caveat: the source of this subset burnt a green optic-disc contour into every image, which
    helps the image-based disc finder.

Every image goes through the shipped model's photograph preprocessing (``load_pretrained()``,
``Preprocessor(photograph_preprocess)``: FOV crop, Ben Graham's filter, 224 px); the model's
optic-disc map is ``sigmoid`` of its "OD" lesion channel. All errors are measured in the crop.
Writes ``landmarks.json`` and ``landmarks.md`` into ``--out``.

Usage::

    python benchmarks/landmarks.py --n-synthetic 40 --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drscreen.io import read_image, read_mask
from drscreen.models.pretrained import PretrainedModel, load_pretrained
from drscreen.preprocess import PreparedImage, Preprocessor
from drscreen.screening.landmarks import Landmarks, locate_landmarks
from drscreen.synth import generate_fundus

SOURCES = ("model", "image")
#: Synthetic image side, px, before the photograph preprocessing.
SYNTH_SIZE = 512


def disc_probability(pretrained: PretrainedModel, prepared: PreparedImage) -> np.ndarray:
    """(S, S) float32: the model's optic-disc probability on the prepared image."""
    channel = pretrained.model.lesion_classes.index("OD")
    with torch.no_grad():
        logits = pretrained.model(prepared.tensor[None]).lesion_logits
    return torch.sigmoid(logits[0, channel]).numpy().astype(np.float32)


def locate_both(prepared: PreparedImage, probability: np.ndarray) -> dict[str, Landmarks]:
    """Landmarks with the model's disc map and with the image-based finder only."""
    return {
        "model": locate_landmarks(prepared.display, prepared.fov_mask, probability),
        "image": locate_landmarks(prepared.display, prepared.fov_mask, None),
    }


def mask_disc(mask: np.ndarray) -> tuple[tuple[float, float], float] | None:
    """A disc mask's centroid (x, y px) and equivalent diameter (px: the diameter of the circle
    of its area); ``None`` when the mask is empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return (float(xs.mean()), float(ys.mean())), 2.0 * math.sqrt(ys.size / math.pi)


def error_dd(found: tuple[float, float], truth: np.ndarray, disc_diameter: float) -> float:
    return math.dist(found, (float(truth[0]), float(truth[1]))) / disc_diameter


def summary(values: list[float]) -> dict[str, float]:
    """Median, mean, 90th percentile and max of finite ``values``."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return {"n": 0}
    return {
        "n": int(finite.size),
        "median": float(np.median(finite)),
        "mean": float(finite.mean()),
        "p90": float(np.percentile(finite, 90)),
        "max": float(finite.max()),
    }


def synthetic_rows(pretrained: PretrainedModel, preprocessor: Preprocessor, n: int) -> list[dict[str, Any]]:
    """One row per synthetic image: truth and what each source found, in crop pixels."""
    rows = []
    for seed in range(n):
        eye = "right" if seed % 2 == 0 else "left"
        fundus = generate_fundus(seed, SYNTH_SIZE, eye=eye)
        prepared = preprocessor.prepare(fundus.image)
        geometry = prepared.geometry
        disc, fovea = geometry.points_to_crop(np.array([fundus.geometry.disc_center, fundus.geometry.fovea]))
        diameter = fundus.geometry.disc_diameter * geometry.scale
        row: dict[str, Any] = {"seed": seed, "eye": "R" if eye == "right" else "L", "disc_diameter_px": diameter}
        for source, found in locate_both(prepared, disc_probability(pretrained, prepared)).items():
            row[source] = {
                **found.to_dict(),
                "disc_error_dd": error_dd(found.disc_center, disc, diameter),
                "disc_diameter_ratio": found.disc_diameter / diameter,
                "fovea_error_dd": error_dd(found.fovea_center, fovea, diameter),
                "laterality_correct": None if found.laterality is None else found.laterality == row["eye"],
            }
        rows.append(row)
    return rows


def idrid_rows(pretrained: PretrainedModel, preprocessor: Preprocessor, folder: Path) -> list[dict[str, Any]]:
    """One row per IDRiD photograph: the OD mask's centroid and diameter in the crop, and what each
    source found."""
    rows = []
    for path in sorted((folder / "images").glob("IDRiD_*.jpg")):
        prepared = preprocessor.prepare(read_image(path))
        mask = preprocessor.prepare_mask(read_mask(folder / "masks" / f"{path.stem}_OD.png"), prepared.geometry)
        disc = mask_disc(mask)
        if disc is None:
            raise ValueError(f"{path.name}: empty optic-disc mask")
        centroid, diameter = np.array(disc[0]), disc[1]
        fov_ys, fov_xs = np.nonzero(prepared.fov_mask)
        fov_center = ((fov_xs.min() + fov_xs.max()) / 2, (fov_ys.min() + fov_ys.max()) / 2)
        # In a macula-centred photograph the disc lies on the nasal side of the field's centre.
        mask_side = "R" if centroid[0] > fov_center[0] else "L"
        row: dict[str, Any] = {"file": path.name, "disc_diameter_px": diameter, "mask_side": mask_side}
        for source, found in locate_both(prepared, disc_probability(pretrained, prepared)).items():
            row[source] = {
                **found.to_dict(),
                "disc_error_dd": error_dd(found.disc_center, centroid, diameter),
                "disc_diameter_ratio": found.disc_diameter / diameter,
                "fovea_to_fov_center_dd": math.dist(found.fovea_center, fov_center) / diameter,
                "disc_fovea_distance_dd": found.disc_fovea_distance_dd,
            }
        rows.append(row)
    return rows


def synthetic_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for source in SOURCES:
        found = [row[source] for row in rows]
        decided = [f["laterality_correct"] for f in found if f["laterality_correct"] is not None]
        confident = [f for f in found if f["fovea_confidence"] >= 0.5]
        out[source] = {
            "disc_error_dd": summary([f["disc_error_dd"] for f in found]),
            "disc_within_0.5dd": float(np.mean([f["disc_error_dd"] <= 0.5 for f in found])),
            "disc_diameter_ratio": summary([f["disc_diameter_ratio"] for f in found]),
            "fovea_error_dd": summary([f["fovea_error_dd"] for f in found]),
            "fovea_within_1dd": float(np.mean([f["fovea_error_dd"] <= 1.0 for f in found])),
            "fovea_confidence": summary([f["fovea_confidence"] for f in found]),
            "fovea_within_1dd_when_confident": (
                float(np.mean([f["fovea_error_dd"] <= 1.0 for f in confident])) if confident else None
            ),
            "n_fovea_confident": len(confident),
            "disc_source_counts": dict(Counter(f["disc_source"] for f in found)),
            "laterality_reported": len(decided),
            "laterality_correct": int(sum(decided)),
            "laterality_accuracy_when_reported": float(np.mean(decided)) if decided else None,
            "laterality_accuracy_all": float(sum(decided) / len(found)),
        }
    return out


def idrid_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for source in SOURCES:
        found = [row[source] for row in rows]
        out[source] = {
            "disc_error_dd": summary([f["disc_error_dd"] for f in found]),
            "disc_within_0.5dd": float(np.mean([f["disc_error_dd"] <= 0.5 for f in found])),
            "disc_diameter_ratio": summary([f["disc_diameter_ratio"] for f in found]),
            "disc_source_counts": dict(Counter(f["disc_source"] for f in found)),
            "disc_confidence": summary([f["disc_confidence"] for f in found]),
            "laterality_counts": {str(k): v for k, v in Counter(f["laterality"] for f in found).items()},
            "laterality_agrees_with_mask_side": sum(
                row[source]["laterality"] == row["mask_side"] for row in rows
            ),
            "laterality_agrees_with_other_source": sum(
                row["image"]["laterality"] is not None and row["model"]["laterality"] == row["image"]["laterality"]
                for row in rows
            ),
            "fovea_confidence": summary([f["fovea_confidence"] for f in found]),
            "disc_fovea_distance_dd": summary([f["disc_fovea_distance_dd"] for f in found]),
            "fovea_to_fov_center_dd": summary([f["fovea_to_fov_center_dd"] for f in found]),
        }
    return out


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict) and "median" in value:
        return f"{value['median']:.2f} / {value['mean']:.2f} / {value['p90']:.2f} / {value['max']:.2f}"
    return str(value)


def write_markdown(path: Path, result: dict[str, Any]) -> None:
    lines = [
        "# Optic disc, fovea and laterality (`drscreen.screening.landmarks`)",
        "",
        f"Command: `{result['command']}`; {result['seconds']:.0f} s on {result['machine']}.",
        "",
        "Images prepared with the shipped model's photograph preprocessing "
        f"({result['preprocess']}); errors in the {result['crop_size']} px crop, in disc diameters (DD). "
        "Summaries are median / mean / p90 / max.",
        "",
        f"## (a) Synthetic images ({result['synthetic']['n']}, right and left eyes alternating, {SYNTH_SIZE} px)",
        "",
        "| measure | disc from model map | disc from image |",
        "|---|---|---|",
    ]
    synth = result["synthetic"]["summary"]
    for key in synth["model"]:
        lines.append(f"| {key} | {fmt(synth['model'][key])} | {fmt(synth['image'][key])} |")
    idrid = result["idrid"]
    lines += ["", "## (b) Real IDRiD photographs with optic-disc masks", ""]
    if idrid is None:
        lines.append("Skipped: `idrid-seg-subset` not found under the data root.")
    else:
        lines += [
            f"{idrid['n']} images. Disc error against the OD mask's centroid, in the mask's equivalent "
            "diameter. No fovea or eye labels: laterality and fovea rows describe the output only; "
            "`fovea_to_fov_center_dd` is a plausibility check (IDRiD photographs are macula-centred), "
            "not an error. `laterality_agrees_with_mask_side`: the eye matches the side of the field's "
            "centre on which the OD mask lies (a proxy label, right for macula-centred photographs; "
            "partly circular, as the disc's offset is one of the laterality cues). "
            "Caveat: these images carry a burnt-in green optic-disc contour.",
            "",
            "| measure | disc from model map | disc from image |",
            "|---|---|---|",
        ]
        for key in idrid["summary"]["model"]:
            lines.append(f"| {key} | {fmt(idrid['summary']['model'][key])} | {fmt(idrid['summary']['image'][key])} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-synthetic", type=int, default=40)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    start = time.perf_counter()
    pretrained = load_pretrained()
    photo = pretrained.photograph_preprocess
    preprocessor = Preprocessor(photo)
    synth_rows = synthetic_rows(pretrained, preprocessor, args.n_synthetic)
    folder = args.data_root / "idrid-seg-subset"
    real_rows = idrid_rows(pretrained, preprocessor, folder) if (folder / "images").is_dir() else None
    result = {
        "command": "python " + shlex.join(["benchmarks/landmarks.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
        "preprocess": f"size {photo.size}, enhancement {photo.enhancement}, crop_to_fov {photo.crop_to_fov}",
        "crop_size": photo.size,
        "synthetic": {"n": len(synth_rows), "summary": synthetic_summary(synth_rows), "rows": synth_rows},
        "idrid": None
        if real_rows is None
        else {"n": len(real_rows), "summary": idrid_summary(real_rows), "rows": real_rows},
    }
    result["seconds"] = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "landmarks.json").write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    write_markdown(args.out / "landmarks.md", result)
    print((args.out / "landmarks.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
