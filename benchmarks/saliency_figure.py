"""Makes docs/images/saliency_methods.png: CAM, Grad-CAM, Grad-CAM++ and GMSM side by side.

drscreen's default model (``drscreen_effnet``: EfficientNet-Lite0 with its offline ImageNet
weights, DR/DME grades and lesion maps) is trained briefly on CPU, through the engine, on a few
synthetic images in the IDRiD layout (grades and lesion masks), at a small input size so that
it takes about a minute on 2 CPU cores. The four methods then explain the referable score
(``log P(DR >= 2)``) of a held-out synthetic image with lesions; the maps are mapped back onto
the original photograph, on which the true lesion outlines are drawn. The figure illustrates
the methods; a model this briefly trained says nothing about their quality.

Usage::

    python benchmarks/saliency_figure.py [--out docs/images/saliency_methods.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from drscreen.data import load_dataset
from drscreen.engine import config_from_dict, train
from drscreen.explain import ReferableTarget, create_saliency, mask_overlay, saliency_grid, to_original_geometry
from drscreen.models import create_model
from drscreen.preprocess import PreprocessConfig, Preprocessor
from drscreen.synth import generate_fundus, write_dataset

REPO = Path(__file__).resolve().parents[1]
#: Panel title -> (method, settings). GMSM twice: its gate t is in units of the explained score,
#: and this model's weighted activations of log P(DR >= 2) stay far below the paper's t = 1.
METHODS = {
    "CAM": ("cam", {}),
    "Grad-CAM": ("gradcam", {}),
    "Grad-CAM++": ("gradcam++", {}),
    "GMSM, t = 0": ("gmsm", {"gate": 0.0}),
    "GMSM, t = 1 (paper)": ("gmsm", {"gate": 1.0}),
}
LESIONS = ("MA", "HE", "EX", "SE")


def train_model(work: Path, args: argparse.Namespace) -> tuple[Path, int]:
    """Train the default model briefly on synthetic images; returns its checkpoint and the number
    of training photographs."""
    data = write_dataset(
        work / "synth", n=args.images, size=384, seed=args.seed, layout="idrid", workers=1, progress=False
    )
    raw = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    config = config_from_dict(
        raw,
        [
            *(f"data.train.{i}.root={data}" for i in range(len(raw["data"]["train"]))),
            "data.val=[]", "data.test=[]", f"data.preprocess.size={args.size}", f"data.cache.dir={work / 'cache'}",
            f"optim.epochs={args.epochs}", "optim.lr=1.0e-3", "optim.warmup_epochs=0",
            "train.device=cpu", "train.workers=0", "train.monitor=loss", "train.progress=false",
            f"train.seed={args.seed}", f"run.dir={work / 'runs'}",
        ],
    )  # fmt: skip
    return train(config) / "checkpoints" / "last.pt", len(load_dataset("idrid-grading", data, "train"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "saliency_methods.png")
    parser.add_argument("--images", type=int, default=24, help="synthetic images (about 80 %% train)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--size", type=int, default=192, help="network input side, px")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # small tensors: more threads only contend on a shared CPU

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        checkpoint, photographs = train_model(Path(folder), args)
        model = create_model("drscreen_effnet", checkpoint=checkpoint).eval()
    minutes = (time.perf_counter() - started) / 60

    fundus = generate_fundus(10_000 + args.seed, 512, target_dr=3)
    prepared = Preprocessor(PreprocessConfig(size=args.size, normalization=model.normalization)).prepare(fundus.image)
    maps = {}
    for title, (name, settings) in METHODS.items():
        saliency = create_saliency(name, model, **settings)(prepared.tensor[None], ReferableTarget())
        maps[title] = to_original_geometry(saliency, [prepared.geometry])[0]
    with torch.no_grad():
        probability = model(prepared.tensor[None]).dr_logits.softmax(dim=1)[0, 2:].sum().item()
    outlined = mask_overlay(fundus.image, {code: fundus.masks[code] for code in LESIONS}, alpha=1.0, style="contour")
    figure = saliency_grid(outlined, maps, panel_size=2.6)
    figure.suptitle(
        f"Synthetic DR {fundus.dr_grade} image (lesion outlines drawn); maps of log P(DR >= 2) (P = {probability:.2f}) "
        f"of drscreen_effnet trained for {args.epochs} epochs on {photographs} synthetic images at {args.size} px "
        f"on CPU ({minutes:.1f} min): an illustration of the methods, not of their quality. "
        "An all-blue panel is a map of zeros (everything gated).",
        fontsize=8,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(f"{args.out}: {args.out.stat().st_size / 1024:.0f} KB, training {minutes:.1f} min", file=sys.stderr)


if __name__ == "__main__":
    main()
