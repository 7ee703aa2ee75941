"""What ``drscreen demo`` does (parser and description: ``drscreen.commands.demo``): the main job on
bundled input, checked against the synthetic generator's ground truth."""

from __future__ import annotations

import argparse
import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from drscreen.data import Sample, load_dataset
from drscreen.explain.overlay import mask_overlay
from drscreen.grading import SEGMENTATION_CLASSES, SEGMENTATION_LESIONS
from drscreen.io import read_image, read_mask
from drscreen.metrics import dice
from drscreen.preprocess import PreprocessConfig, Preprocessor
from drscreen.synth import generate_fundus, write_dataset
from drscreen.synth.writers import TRUTH_CSV, read_truth

#: Goals the checks must meet (synthetic data, so they are tight).
MIN_FOV_IOU = 0.98
#: Lesion pixels may move by at most this much (px) when a mask goes into the crop and back.
MAX_ROUND_TRIP_ERROR_PX = 1


@dataclass
class ImageCheck:
    """What the demo measured on one image."""

    name: str
    split: str
    dr_grade: int | None
    dme_grade: int | None
    grades_match: bool
    masks_match: bool
    lesions: str
    fov_iou: float
    usable: bool
    quality_issues: str
    round_trip_dice: float
    round_trip_error_px: float

    @property
    def passed(self) -> bool:
        """All checks of this image met their goal."""
        round_trip_ok = self.round_trip_error_px <= MAX_ROUND_TRIP_ERROR_PX
        return self.grades_match and self.masks_match and self.fov_iou >= MIN_FOV_IOU and self.usable and round_trip_ok


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the process exit code (0 when every check passed)."""
    out: Path = args.out
    dataset_root = out / "idrid"
    if (dataset_root / TRUTH_CSV).is_file():
        shutil.rmtree(dataset_root)  # a previous demo's synthetic output: regenerate it
    print(f"[demo] writing {args.n} synthetic images ({args.size} px, seed {args.seed}) to {dataset_root}")
    write_dataset(dataset_root, n=args.n, size=args.size, seed=args.seed, layout="idrid")
    truth = {row["image"].rsplit("/", 1)[-1].rsplit(".", 1)[0]: row for row in read_truth(dataset_root)}

    segmentation, grading = (
        [s for split in ("train", "test") for s in load_dataset(name, dataset_root, split=split)]
        for name in ("idrid-segmentation", "idrid-grading")
    )
    grades = {(s.split, s.image_path.stem): (s.dr_grade, s.dme_grade) for s in grading}

    preprocessor = Preprocessor(PreprocessConfig(size=min(512, args.size)))
    checks: list[ImageCheck] = []
    tiles: list[np.ndarray] = []
    for sample in tqdm(segmentation, desc="check", unit="img"):
        check, tile = _check_sample(sample, truth[sample.image_path.stem], grades, preprocessor)
        checks.append(check)
        tiles.append(tile)

    summary = _summarise(checks, n_written=args.n, n_grading=len(grading))
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (out / "summary.md").write_text(_markdown(summary), encoding="utf-8")
    sheet = _contact_sheet(tiles)
    cv2.imwrite(str(out / "contact_sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(_markdown(summary))
    print(f"[demo] wrote {out / 'summary.md'}, {out / 'summary.json'} and {out / 'contact_sheet.png'}")
    return 0 if summary["passed"] else 1


def _check_sample(
    sample: Sample, truth: dict[str, str], grades: dict[tuple[str | None, str], tuple[int | None, int | None]],
    preprocessor: Preprocessor,
) -> tuple[ImageCheck, np.ndarray]:
    """Check one segmentation-part image against the generator's truth; also return a display tile."""
    seed, size = int(truth["seed"]), int(truth["size"])
    dr, dme = grades.get((sample.split, truth["name"]), (None, None))
    grades_match = (dr, dme) == (int(truth["dr_label"]), int(truth["dme_label"]))

    fundus = generate_fundus(seed, size, target_dr=int(truth["target_dr"]), target_dme=int(truth["target_dme"]))
    masks: dict[str, np.ndarray] = {}
    masks_match = sample.lesion_masks is not None
    for code in SEGMENTATION_CLASSES:
        path = (sample.lesion_masks or {}).get(code)
        expected = fundus.masks[code]
        if path is None:
            masks_match &= not expected.any()
            masks[code] = np.zeros_like(expected)
        else:
            masks[code] = read_mask(path)
            masks_match &= bool(np.array_equal(masks[code], expected))

    image = read_image(sample.image_path)
    prepared = preprocessor.prepare(image)
    true_fov = fundus.geometry.fov_bool()
    fov_iou = float((prepared.fov.mask & true_fov).sum() / max((prepared.fov.mask | true_fov).sum(), 1))

    lesion_union = np.logical_or.reduce([masks[c] for c in SEGMENTATION_LESIONS])
    if lesion_union.any():
        in_crop = preprocessor.prepare_mask(lesion_union, prepared.geometry)
        back = prepared.geometry.to_original(in_crop, "nearest")
        round_trip = float(dice(back, lesion_union))
        round_trip_error = _boundary_error_px(back, lesion_union)
    else:
        round_trip, round_trip_error = float("nan"), 0.0

    crop_masks = {code: preprocessor.prepare_mask(m, prepared.geometry) for code, m in masks.items() if m.any()}
    tile = mask_overlay(prepared.display, crop_masks, alpha=0.6, style="contour", thickness=1)
    caption = f"{sample.image_path.stem} ({sample.split}) DR{dr} DME{dme}"
    cv2.putText(tile, caption, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)

    quality = prepared.quality
    check = ImageCheck(
        name=sample.id,
        split=str(sample.split),
        dr_grade=dr,
        dme_grade=dme,
        grades_match=grades_match,
        masks_match=masks_match,
        lesions=" ".join(f"{c}{truth[f'n_{c}']}" for c in ("MA", "HE", "EX", "SE", "NV") if int(truth[f"n_{c}"])),
        fov_iou=fov_iou,
        usable=prepared.usable,
        quality_issues=",".join(issue.name for issue in quality.reasons) if quality else "",
        round_trip_dice=round_trip,
        round_trip_error_px=round_trip_error,
    )
    return check, tile


def _boundary_error_px(mapped: np.ndarray, original: np.ndarray) -> float:
    """Largest distance (px) from a pixel where two (H, W) bool masks disagree to the original's boundary."""
    disagree = mapped != original
    if not disagree.any():
        return 0.0
    inside = cv2.distanceTransform(original.astype(np.uint8), cv2.DIST_L2, 3)
    outside = cv2.distanceTransform((~original).astype(np.uint8), cv2.DIST_L2, 3)
    return float(np.maximum(inside, outside)[disagree].max())

def _summarise(checks: list[ImageCheck], n_written: int, n_grading: int) -> dict[str, object]:
    """Aggregate the per-image checks into the summary written to disk."""
    ious = [c.fov_iou for c in checks]
    dices = [c.round_trip_dice for c in checks if not math.isnan(c.round_trip_dice)]
    all_found = len(checks) == n_written and n_grading == n_written
    return {
        "passed": all_found and all(c.passed for c in checks),
        "images_written": n_written,
        "segmentation_images_read": len(checks),
        "grading_images_read": n_grading,
        "grades_match": sum(c.grades_match for c in checks),
        "masks_match": sum(c.masks_match for c in checks),
        "usable": sum(c.usable for c in checks),
        "fov_iou_mean": float(np.mean(ious)) if ious else float("nan"),
        "fov_iou_min": float(np.min(ious)) if ious else float("nan"),
        "round_trip_dice_min": float(np.min(dices)) if dices else float("nan"),
        "round_trip_error_px_max": max(c.round_trip_error_px for c in checks) if checks else 0.0,
        "goals": {"fov_iou_min": MIN_FOV_IOU, "round_trip_error_px_max": MAX_ROUND_TRIP_ERROR_PX},
        "images": [asdict(c) | {"passed": c.passed} for c in checks],
    }


def _markdown(summary: dict[str, object]) -> str:
    """The summary as a markdown report (synthetic data, labelled as such)."""
    lines = [
        "# drscreen demo: synthetic IDRiD-layout data set read back and checked",
        "",
        "All images are **synthetic** (drscreen.synth); the generator's masks and grades are the truth.",
        "",
        f"- images written / read (segmentation, grading): {summary['images_written']} / "
        f"{summary['segmentation_images_read']}, {summary['grading_images_read']}",
        f"- grades read back equal the truth: {summary['grades_match']}; masks equal pixel for pixel: "
        f"{summary['masks_match']}; usable by the quality gate: {summary['usable']}",
        f"- FOV IoU mean {summary['fov_iou_mean']:.4f}, worst {summary['fov_iou_min']:.4f} (goal ≥ {MIN_FOV_IOU})",
        f"- lesion masks into the crop and back: largest edge shift {summary['round_trip_error_px_max']:.2f} px "
        f"(goal ≤ {MAX_ROUND_TRIP_ERROR_PX}), worst Dice {summary['round_trip_dice_min']:.4f}",
        f"- **{'PASSED' if summary['passed'] else 'FAILED'}**",
        "",
        "| image | split | DR | DME | lesions drawn | grades | masks | FOV IoU | usable "
        "| round trip: Dice, edge shift px |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["images"]:  # type: ignore[union-attr]
        lines.append(
            f"| {row['name']} | {row['split']} | {row['dr_grade']} | {row['dme_grade']} | {row['lesions'] or '-'} | "
            f"{'ok' if row['grades_match'] else 'WRONG'} | {'ok' if row['masks_match'] else 'WRONG'} | "
            f"{row['fov_iou']:.4f} | {'yes' if row['usable'] else 'no: ' + row['quality_issues']} | "
            f"{row['round_trip_dice']:.4f}, {row['round_trip_error_px']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _contact_sheet(tiles: list[np.ndarray], columns: int = 4, tile_size: int = 256) -> np.ndarray:
    """Tiles (S, S, 3) uint8 laid out in a grid, resized to ``tile_size``."""
    resized = [cv2.resize(t, (tile_size, tile_size), interpolation=cv2.INTER_AREA) for t in tiles]
    rows = math.ceil(len(resized) / columns)
    sheet = np.zeros((rows * tile_size, columns * tile_size, 3), dtype=np.uint8)
    for index, tile in enumerate(resized):
        r, c = divmod(index, columns)
        sheet[r * tile_size:(r + 1) * tile_size, c * tile_size:(c + 1) * tile_size] = tile
    return sheet
