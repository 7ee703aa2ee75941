"""Side-by-side figure of the photograph path (docs/images/photograph_path.png).

Each pair shows an input as stored (thumbnail) and what the packed ``photograph_preprocess`` of
``configs/grader.yaml`` makes of it: the APTOS-224 and EyePACS-256 training derivatives and the
full-resolution camera originals of ``fullres-samples``.

    python scripts/photograph_path_figure.py ../shared/data docs/images/photograph_path.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw

from drscreen.io import read_image
from drscreen.preprocess import PreprocessConfig, Preprocessor

TILE = 160


def tile(image: np.ndarray) -> Image.Image:
    """(H, W, 3) uint8 -> a TILE x TILE thumbnail, aspect kept, black padding."""
    thumb = Image.fromarray(image)
    thumb.thumbnail((TILE, TILE))
    canvas = Image.new("RGB", (TILE, TILE))
    canvas.paste(thumb, ((TILE - thumb.width) // 2, (TILE - thumb.height) // 2))
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_root", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--config", type=Path, default=Path("configs/grader.yaml"))
    args = parser.parse_args()
    settings = yaml.safe_load(args.config.read_text())["data"]["preprocess"]
    preprocessor = Preprocessor(PreprocessConfig.from_dict({**settings, "quality_gate": False}))
    root = args.data_root
    rows = {
        "APTOS-224 (training)": sorted((root / "aptos2019-224/images").glob("*"))[:3],
        "EyePACS-256 (training)": sorted((root / "eyepacs-256/images").glob("*"))[:3],
        "APTOS camera originals": sorted((root / "fullres-samples/aptos").glob("*.png"))[:2],
        "EyePACS camera originals": sorted((root / "fullres-samples/eyepacs").glob("*.jpeg"))[:3],
    }
    label_height = 18
    width = 2 * TILE * max(len(paths) for paths in rows.values())
    figure = Image.new("RGB", (width, len(rows) * (TILE + label_height)), "white")
    draw = ImageDraw.Draw(figure)
    for row, (label, paths) in enumerate(rows.items()):
        top = row * (TILE + label_height)
        draw.text((4, top + 3), f"{label}: as stored | through photograph_preprocess", fill="black")
        for column, path in enumerate(paths):
            image = read_image(path)
            prepared = preprocessor.prepare(image).display
            figure.paste(tile(image), (2 * column * TILE, top + label_height))
            figure.paste(tile(prepared), ((2 * column + 1) * TILE, top + label_height))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)


if __name__ == "__main__":
    main()
