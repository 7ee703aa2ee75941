"""Does int8 dynamic quantisation of the ONNX export cost accuracy? APTOS 2019 val, shipped model.

Scores the packed model three ways on the same prepared inputs (the packed ``inputs="training"``
preprocessing, as the model card's ``aptos2019_val`` metrics): PyTorch fp32 (``from_packed``),
the fp32 ONNX export (``drscreen export``) and that export quantised with ONNX Runtime's
``quantize_dynamic`` (int8 weights per tensor, activations quantised at run time; the
``drscreen.*`` metadata copied over), both through ``Predictor.from_onnx``, with the
metrics ``drscreen evaluate`` computes (``drscreen.engine.inference.compute_metrics``, 1000
bootstrap resamples), the agreement of the grades with PyTorch and the model-only seconds per
image (2-core CPU, batch 32).

Usage::

    python benchmarks/quantization.py [--data-root ../shared/data] [--model PACKED_FILE]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from machine_info import command_line
from onnxruntime.quantization import QuantType, quantize_dynamic

from drscreen.data import load_dataset
from drscreen.engine.inference import Predictions, compute_metrics
from drscreen.engine.runs import write_json
from drscreen.export import export_model, read_export_metadata, save_onnx
from drscreen.inference import Prediction, Predictor
from drscreen.io import read_image

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: Metrics of ``compute_metrics``'s flat summary shown in the table.
SHOWN = ("dr_qwk", "dr_macro_auc", "dr_accuracy", "referable_auc", "referable_sensitivity", "referable_specificity")


def quantized_copy(source: Path, target: Path) -> Path:
    """``source`` (an fp32 export) quantised to int8 dynamic at ``target``, with its metadata."""
    quantize_dynamic(source, target, weight_type=QuantType.QInt8)
    save_onnx(onnx.load(str(target)), target, read_export_metadata(source))
    return target


def score(predictor: Predictor, prepared: list[Any], samples: list[Any], reference: list[Prediction] | None
          ) -> tuple[dict[str, Any], list[Prediction]]:  # fmt: skip
    """Metrics, timing and agreement with ``reference`` of ``predictor`` on ``prepared`` inputs."""
    start = time.perf_counter()
    predictions = predictor.predict_prepared(prepared)
    seconds = time.perf_counter() - start
    dr = np.stack([p.dr_probs for p in predictions])
    dme = np.stack([p.dme_probs for p in predictions])
    result = Predictions(indices=np.arange(len(samples)), dr_probs=dr, dme_probs=dme)
    flat, full = compute_metrics(result, samples, predictor.lesion_classes, n_bootstrap=1000, seed=0,
                                 dr_decoding=predictor.settings.dr_decoding)  # fmt: skip
    row: dict[str, Any] = {key: flat[key] for key in SHOWN}
    row["dr_qwk_ci"] = full["dr"]["qwk_ci"]
    row["referable_auc_ci"] = full["referable"]["auc_ci"]
    row["seconds_per_image"] = seconds / len(prepared)
    if reference is not None:
        row["same_dr_grade"] = float(np.mean([a.dr_grade == b.dr_grade for a, b in zip(reference, predictions)]))
        row["same_referral"] = float(np.mean([a.referable == b.referable for a, b in zip(reference, predictions)]))
        row["max_abs_dr_prob_diff"] = float(max(np.abs(a.dr_probs - b.dr_probs).max()
                                                for a, b in zip(reference, predictions)))  # fmt: skip
    return row, predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--model", help="packed model (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=RESULTS / "quantization")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization logs every tensor it skips

    samples = load_dataset("aptos2019", args.data_root / "aptos2019-224", "val")
    options = {"inputs": "training", "lesions": False, "grade_ungradable": True, "batch_size": 32}
    torch_predictor = Predictor.from_packed(args.model, **options)
    packed = torch_predictor.packed
    assert packed is not None
    prepared = [torch_predictor.prepare(read_image(sample.image_path)) for sample in samples]
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        rows["torch fp32"], reference = score(torch_predictor, prepared, samples, None)
        fp32 = Path(scratch) / "fp32.onnx"
        export_model(packed, fp32, "onnx")
        int8 = quantized_copy(fp32, Path(scratch) / "int8-dynamic.onnx")
        for label, path in (("onnx fp32", fp32), ("onnx int8-dynamic", int8)):
            rows[label], _ = score(Predictor.from_onnx(path, **options), prepared, samples, reference)
            rows[label]["file_mib"] = path.stat().st_size / 2**20

    command = command_line()
    write_json({"command": command, "dataset": "aptos2019 val", "n_images": len(samples), "rows": rows},
               args.out.with_suffix(".json"))  # fmt: skip
    lines = [
        f"# int8 dynamic quantisation of the ONNX export: APTOS 2019 val ({len(samples)} images)", "",
        f"Command: `{command}`", "",
        "| runtime | DR QWK [95 % CI] | DR macro AUC | DR accuracy | referable AUC [95 % CI] | sens | spec "
        "| same grade as torch | same referral | max abs P(DR) diff | s / image (batch 32) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for label, row in rows.items():
        qwk_ci, auc_ci = row["dr_qwk_ci"], row["referable_auc_ci"]
        agreement = (f"{row['same_dr_grade']:.3f} | {row['same_referral']:.3f} | {row['max_abs_dr_prob_diff']:.2g}"
                     if "same_dr_grade" in row else "- | - | -")  # fmt: skip
        lines.append(
            f"| {label} | {row['dr_qwk']:.4f} [{qwk_ci[0]:.3f}, {qwk_ci[1]:.3f}] | {row['dr_macro_auc']:.4f} "
            f"| {row['dr_accuracy']:.4f} | {row['referable_auc']:.4f} [{auc_ci[0]:.3f}, {auc_ci[1]:.3f}] "
            f"| {row['referable_sensitivity']:.3f} | {row['referable_specificity']:.3f} | {agreement} "
            f"| {row['seconds_per_image']:.3f} |"
        )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
