"""The shipped default model on full-resolution camera photographs (``photograph_preprocess``).

The default model learnt from small public derivatives (APTOS 2019 at 224 px, EyePACS at 256 px).
A user brings camera photographs instead; the production path (``Predictor.predict_files``:
reduced decoding, the packed model's ``photograph_preprocess``, the quality gate) turns them
into inputs. This script grades the 12 full-resolution originals in
``<data-root>/fullres-samples`` (10 EyePACS, 2 APTOS, with their labels) that way, refers at the
packed operating point, and, for the two APTOS images that also exist in ``aptos2019-224``,
compares with the grade of the derivative image. Twelve images test that the path works and how
far it agrees; they are far too few to validate it.

Usage::

    python benchmarks/photographs.py [--data-root ../shared/data] [--model PACKED_FILE]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from drscreen.data import Sample, load_dataset
from drscreen.engine.runs import write_json
from drscreen.inference import Predictor

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


#: fullres-samples sub-folder -> its labels.csv columns (image id, DR grade).
LABEL_COLUMNS = {"aptos": ("id_code", "diagnosis"), "eyepacs": ("image", "level")}


def grade(predictor: Predictor, path: Path) -> dict[str, Any]:
    """Predicted DR grade, referable score and the quality verdict of the photograph at ``path``."""
    outcome = next(iter(predictor.predict_files([path])))
    if outcome.prediction is None:
        raise RuntimeError(f"{path}: {outcome.error}")
    prediction = outcome.prediction
    quality = prediction.prepared.quality
    return {
        "grade": prediction.dr_grade,
        "p_referable": prediction.referable_score,
        "referable": bool(prediction.referable),
        "usable": None if quality is None else bool(quality.usable),
    }


def labelled_photographs(root: Path) -> list[Sample]:
    """Every photograph listed in the sub-folders' labels.csv (``csv`` adapter; grade None if blank)."""
    return [
        sample
        for folder, (image_column, grade_column) in LABEL_COLUMNS.items()
        for sample in load_dataset(
            "csv", root / folder, image_column=image_column, grade_column=grade_column, dataset_name=folder
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--model", type=Path, default=None, help="packed model (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    root = args.data_root / "fullres-samples"
    if not root.is_dir():
        sys.exit(f"{root} not found: nothing to measure")
    # Graded even when the gate rejects them: the benchmark reports both.
    photograph_path = Predictor.from_packed(args.model, quality_gate=True, grade_ungradable=True, lesions=False)
    derivative_path = Predictor.from_packed(args.model, inputs="training", lesions=False)
    photograph = photograph_path.preprocessor.config
    rows = []
    for sample in labelled_photographs(root):
        path = Path(sample.image_path)
        row = {"dataset": sample.dataset, "image": path.name, "label": sample.dr_grade}
        row |= grade(photograph_path, path)
        derivative = args.data_root / "aptos2019-224" / "images" / f"{path.stem}.jpg"
        if sample.dataset == "aptos" and derivative.is_file():
            row["derivative"] = grade(derivative_path, derivative)
        rows.append(row)
    labelled = [r for r in rows if r["label"] is not None]
    result = {
        "command": shlex.join(["python", "benchmarks/photographs.py", *sys.argv[1:]]),
        "rows": rows,
        "exact": sum(r["grade"] == r["label"] for r in labelled),
        "referable_agree": sum(r["referable"] == (r["label"] >= 2) for r in labelled),
        "threshold": photograph_path.settings.operating_point.threshold,
        "n_labelled": len(labelled),
    }
    lines = [
        "# The default model on full-resolution photographs (12 images: a check, not a validation)",
        "",
        f"Command: `{result['command']}`. Photograph path: reduced decoding, field-of-view crop, "
        f"{photograph.enhancement}, {photograph.size} px, quality gate on; referred when "
        f"P(referable) >= {result['threshold']:.3f} (the packed operating point).",
        "",
        "| dataset | image | label | predicted | P(referable) | usable | derivative image: predicted, P(referable) |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        derivative = r.get("derivative")
        other = f"{derivative['grade']}, {derivative['p_referable']:.2f}" if derivative else ""
        label = "" if r["label"] is None else r["label"]
        cells = [r["dataset"], r["image"], label, r["grade"], f"{r['p_referable']:.2f}", r["usable"], other]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += [
        "",
        f"Exact grade {result['exact']}/{result['n_labelled']}, referral decision right (label DR >= 2) "
        f"{result['referable_agree']}/{result['n_labelled']} on the labelled images.",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(result, args.out / "photographs.json")
    (args.out / "photographs.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
