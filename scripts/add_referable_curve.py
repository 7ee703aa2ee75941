"""Store a packed model's referable validation curve and operating point in its file, so that
screening refers at a validated sensitivity and users can move the operating point by sensitivity
(``drscreen screen --operating-point sensitivity=0.95``).

The referable scores of the labelled validation images are computed through the inference core
(``Predictor.from_packed``) on the path screening uses (``--inputs photograph``, default) and the
ROC curve of ``score >= threshold`` is written into ``info["referable_curve"]`` (``threshold``,
``sensitivity``, ``specificity`` lists) with where it came from (``info["referable_curve_data"]``);
the packed operating point (``info["operating_point"]``) becomes the highest threshold reaching
``--sensitivity`` on it. The weights are not touched. Usage::

    python scripts/add_referable_curve.py ../shared/data/aptos2019-224 [--model FILE] [--inputs photograph] [--sensitivity 0.9]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_curve

from drscreen.data import load_dataset
from drscreen.grading import OperatingPoint, referable_labels
from drscreen.inference import Predictor
from drscreen.models.pretrained import DEFAULT_MODEL_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="APTOS 2019 folder (its val.csv is the validation data)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_FILE)
    parser.add_argument("--inputs", choices=("photograph", "training"), default="photograph")
    parser.add_argument("--sensitivity", type=float, default=0.9, help="target of the packed operating point")
    args = parser.parse_args()
    samples = load_dataset("aptos2019", args.root, "val")
    predictor = Predictor.from_packed(args.model, inputs=args.inputs, quality_gate=False, lesions=False,
                                      batch_size=32)  # fmt: skip
    scores = np.array([o.prediction.referable_score for o in predictor.predict_files(s.image_path for s in samples)])
    truth = referable_labels(np.array([s.dr_grade for s in samples]))
    false_positive_rate, sensitivity, thresholds = roc_curve(truth, scores)
    keep = np.isfinite(thresholds)
    payload = torch.load(args.model, map_location="cpu", weights_only=True)
    payload["info"]["referable_curve"] = {
        "threshold": [round(float(t), 6) for t in thresholds[keep]],
        "sensitivity": [round(float(v), 6) for v in sensitivity[keep]],
        "specificity": [round(float(1 - v), 6) for v in false_positive_rate[keep]],
    }
    point = OperatingPoint.for_sensitivity(payload["info"]["referable_curve"], args.sensitivity)
    payload["info"]["operating_point"] = {
        "threshold": point.threshold,
        "source": f"sensitivity {args.sensitivity:.2f} on APTOS 2019 val ({args.inputs} inputs)",
        "sensitivity": point.sensitivity,
        "specificity": point.specificity,
    }
    payload["info"]["referable_curve_data"] = (
        f"APTOS 2019 val.csv ({len(samples)} images, {int(truth.sum())} referable), inputs: {args.inputs} "
        f"preprocessing; the data the grading checkpoint was chosen on (optimistic)"
    )
    torch.save(payload, args.model)
    print(f"{args.model}: {int(keep.sum())} curve points from {len(samples)} images ({args.inputs} inputs); "
          f"operating point {payload['info']['operating_point']}")


if __name__ == "__main__":
    main()
