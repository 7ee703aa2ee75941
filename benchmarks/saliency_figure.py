"""Makes docs/images/saliency_methods.png: CAM, Grad-CAM, Grad-CAM++ and GMSM side by side.

The four methods explain the referable score (``log P(DR >= 2)``) of drscreen's shipped default
model (``drscreen.models.load_pretrained()``, docs/model_card.md) on a synthetic image with
lesions, rendered with Ben Graham's filter like the model's training inputs (a synthetic image:
real photographs may not be committed). The maps are mapped back onto the original image, on
which the true lesion outlines are drawn. The figure illustrates the methods; the measured
faithfulness is in docs/explainability.md.

Usage::

    python benchmarks/saliency_figure.py [--out docs/images/saliency_methods.png] [--model PACKED_FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from drscreen.explain import ReferableTarget, create_saliency, mask_overlay, saliency_grid, to_original_geometry
from drscreen.inference import Predictor
from drscreen.synth import generate_fundus
from drscreen.synth.config import SynthConfig

REPO = Path(__file__).resolve().parents[1]
#: Panel title -> (method, settings). GMSM twice: its gate t is in units of the explained score
#: (docs/explainability.md).
METHODS = {
    "CAM": ("cam", {}),
    "Grad-CAM": ("gradcam", {}),
    "Grad-CAM++": ("gradcam++", {}),
    "GMSM, t = 0": ("gmsm", {"gate": 0.0}),
    "GMSM, t = 1 (paper)": ("gmsm", {"gate": 1.0}),
}
LESIONS = ("MA", "HE", "EX", "SE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "saliency_methods.png")
    parser.add_argument("--model", type=Path, default=None, help="packed model (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    predictor = Predictor.from_packed(args.model, inputs="training", referable_from=("dr",), lesions=False)
    model = predictor.packed.model
    fundus = generate_fundus(10_000 + args.seed, 512, target_dr=3, config=SynthConfig(ben_graham=True))
    prepared = predictor.prepare(fundus.image)
    maps = {}
    for title, (name, settings) in METHODS.items():
        saliency = create_saliency(name, model, **settings)(prepared.tensor[None], ReferableTarget())
        maps[title] = to_original_geometry(saliency, [prepared.geometry])[0]
    probability = predictor.predict_prepared([prepared])[0].referable_score
    outlined = mask_overlay(fundus.image, {code: fundus.masks[code] for code in LESIONS}, alpha=1.0, style="contour")
    figure = saliency_grid(outlined, maps, panel_size=2.6)
    figure.suptitle(
        f"SYNTHETIC DR {fundus.dr_grade} image (true lesion outlines drawn); maps of log P(DR >= 2) "
        f"(P = {probability:.2f}) of the shipped default model at {predictor.preprocessor.config.size} px. "
        "An all-blue panel is a map of zeros (everything gated).",
        fontsize=8,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(f"{args.out}: {args.out.stat().st_size / 1024:.0f} KB", file=sys.stderr)


if __name__ == "__main__":
    main()
