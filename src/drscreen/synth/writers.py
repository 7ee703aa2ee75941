"""Write synthetic data sets in the official IDRiD and APTOS 2019 layouts, or a plain folder.

Layouts (``root`` = the output folder):

* ``idrid``: ``A. Segmentation/`` and ``B. Disease Grading/`` exactly as the official archive
  (see :func:`format_idrid_grading_csv` for the label-file quirks); masks are RGB TIFFs with the
  lesion in red, written only where the structure is present.
* ``aptos``: ``train.csv`` (``id_code,diagnosis``, CRLF) and ``train_images/<id_code>.png``.
* ``folder``: ``images/<name>.png``, ``labels.csv`` (``image,grade,dme,eye``; the generic ``csv``
  data adapter reads it) and ``masks/<CODE>/<name>_<CODE>.png`` (0/255, present ones only).

Every layout also gets ``synth_truth.csv`` (one row per image: computed grades, recorded labels,
lesion counts, haemorrhages per quadrant, exudate distance, geometry) and ``synth_masks/`` with
any mask the official layout cannot hold (IDRiD has no NV folder; APTOS has no masks at all), so
no truth is lost. Images are rendered in parallel; each depends only on its own seed, so the
output is byte-identical whatever the number of workers.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import tifffile
from tqdm import tqdm

from drscreen.synth.config import SynthConfig
from drscreen.synth.generator import MASK_CODES, SynthFundus, generate_fundus

LAYOUTS: tuple[str, ...] = ("idrid", "aptos", "folder")

#: IDRiD part A mask folders, in the official order.
IDRID_MASK_FOLDERS: dict[str, str] = {
    "MA": "1. Microaneurysms",
    "HE": "2. Haemorrhages",
    "EX": "3. Hard Exudates",
    "SE": "4. Soft Exudates",
    "OD": "5. Optic Disc",
}
IDRID_SPLITS: dict[str, str] = {"train": "a. Training Set", "test": "b. Testing Set"}
IDRID_GRADING_CSV: dict[str, str] = {
    "train": "a. IDRiD_Disease Grading_Training Labels.csv",
    "test": "b. IDRiD_Disease Grading_Testing Labels.csv",
}
IDRID_CSV_HEADER = "Image name,Retinopathy grade,Risk of macular edema"
#: The official training CSV pads every line with 9 empty columns; the testing CSV does not.
IDRID_CSV_PADDING: dict[str, str] = {"train": "," * 9, "test": ""}
#: Training-CSV data rows (1-based) that end in a stray space in the official file.
IDRID_TRAIN_ROWS_WITH_TRAILING_SPACE: frozenset[int] = frozenset({405})
TRUTH_CSV = "synth_truth.csv"
JPEG_QUALITY = 95

TRUTH_COLUMNS: tuple[str, ...] = (
    "name", "image", "grading_image", "split", "index", "seed", "size", "eye",
    "dr_grade", "dme_grade", "dr_label", "dme_label", "label_noisy", "target_dr", "target_dme",
    "n_MA", "n_HE", "n_EX", "n_SE", "n_NV",
    "he_supero_temporal", "he_supero_nasal", "he_infero_nasal", "he_infero_temporal",
    "exudate_distance_dd", "fovea_x", "fovea_y", "disc_x", "disc_y", "disc_diameter_px",
    "fov_x", "fov_y", "fov_radius", "fov_clip_half_height",
)  # fmt: skip


def image_seed(seed: int, index: int) -> int:
    """Seed of image ``index`` in a data set written with ``seed`` (63-bit, order-independent)."""
    state = np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & (2**63 - 1)


def _largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Integer counts summing to ``total`` proportional to ``weights`` (Hamilton's method)."""
    array = np.asarray(weights, dtype=np.float64)
    if array.sum() <= 0:
        raise ValueError("weights must have a positive sum")
    quotas = total * array / array.sum()
    counts = np.floor(quotas).astype(int)
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts.tolist()


def allocate_grades(
    n: int, seed: int, grade_distribution: Sequence[float], dme_given_dr: Sequence[Sequence[float]]
) -> list[tuple[int, int]]:
    """Target (DR, DME) for ``n`` images: counts as close to the distributions as integers allow,
    in a seeded random order."""
    if len(grade_distribution) != 5:
        raise ValueError(f"grade_distribution needs 5 weights, got {len(grade_distribution)}")
    pairs: list[tuple[int, int]] = []
    for dr, count in enumerate(_largest_remainder(n, grade_distribution)):
        for dme, dme_count in enumerate(_largest_remainder(count, dme_given_dr[dr])):
            pairs += [(dr, dme)] * dme_count
    order = np.random.default_rng([seed, 7919]).permutation(n)
    return [pairs[i] for i in order]


@dataclass(frozen=True)
class _Task:
    """Everything a worker needs to render and write one image."""

    root: str
    layout: str
    index: int
    seed: int
    size: int
    target_dr: int
    target_dme: int
    split: str
    name: str
    grading_name: str
    config: SynthConfig


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path.write_bytes(buffer.tobytes())


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buffer = cv2.imencode(".png", array)
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path.write_bytes(buffer.tobytes())


def _write_idrid_mask(path: Path, mask: np.ndarray) -> None:
    """IDRiD-style ground truth: an RGB TIFF, lesion pixels pure red (255, 0, 0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.zeros((*mask.shape, 3), np.uint8)
    rgb[..., 0][mask] = 255
    tifffile.imwrite(path, rgb, photometric="rgb", compression="zlib")


def _write_side_masks(root: Path, fundus: SynthFundus, name: str, codes: Sequence[str]) -> None:
    """Masks the layout cannot hold: ``synth_masks/<CODE>/<name>_<CODE>.png`` (0/255), present ones only."""
    for code in codes:
        if fundus.masks[code].any():
            _write_png(root / "synth_masks" / code / f"{name}_{code}.png", fundus.masks[code].astype(np.uint8) * 255)


def _render_and_write(task: _Task) -> dict[str, object]:
    """Worker body: render one image, write its files, return its truth row."""
    fundus = generate_fundus(
        task.seed, task.size, target_dr=task.target_dr, target_dme=task.target_dme, config=task.config
    )
    root = Path(task.root)
    if task.layout == "idrid":
        split_dir = IDRID_SPLITS[task.split]
        image_rel = f"A. Segmentation/1. Original Images/{split_dir}/{task.name}.jpg"
        grading_rel = f"B. Disease Grading/1. Original Images/{split_dir}/{task.grading_name}.jpg"
        _write_jpeg(root / image_rel, fundus.image)
        _write_jpeg(root / grading_rel, fundus.image)
        for code, folder in IDRID_MASK_FOLDERS.items():
            if fundus.masks[code].any():
                mask_dir = root / "A. Segmentation/2. All Segmentation Groundtruths" / split_dir / folder
                _write_idrid_mask(mask_dir / f"{task.name}_{code}.tif", fundus.masks[code])
        _write_side_masks(root, fundus, task.name, ["NV"])
    elif task.layout == "aptos":
        image_rel = grading_rel = f"train_images/{task.name}.png"
        _write_png(root / image_rel, fundus.image)
        _write_side_masks(root, fundus, task.name, MASK_CODES)
    else:
        image_rel = grading_rel = f"images/{task.name}.png"
        _write_png(root / image_rel, fundus.image)
        for code in MASK_CODES:
            if fundus.masks[code].any():
                _write_png(root / "masks" / code / f"{task.name}_{code}.png", fundus.masks[code].astype(np.uint8) * 255)
    return _truth_row(task, fundus, image_rel, grading_rel)


def _truth_row(task: _Task, fundus: SynthFundus, image_rel: str, grading_rel: str) -> dict[str, object]:
    geometry = fundus.geometry
    counts = fundus.lesion_counts()
    return {
        "name": task.grading_name if task.layout == "idrid" else task.name,
        "image": image_rel,
        "grading_image": grading_rel,
        "split": task.split,
        "index": task.index,
        "seed": task.seed,
        "size": task.size,
        "eye": fundus.eye,
        "dr_grade": fundus.dr_grade,
        "dme_grade": fundus.dme_grade,
        "dr_label": fundus.dr_label,
        "dme_label": fundus.dme_label,
        "label_noisy": int(fundus.label_noisy),
        "target_dr": fundus.target_dr,
        "target_dme": fundus.target_dme,
        **{f"n_{code}": counts[code] for code in ("MA", "HE", "EX", "SE", "NV")},
        "he_supero_temporal": fundus.he_per_quadrant[0],
        "he_supero_nasal": fundus.he_per_quadrant[1],
        "he_infero_nasal": fundus.he_per_quadrant[2],
        "he_infero_temporal": fundus.he_per_quadrant[3],
        "exudate_distance_dd": f"{fundus.exudate_distance_dd:.4f}",
        "fovea_x": f"{geometry.fovea[0]:.2f}",
        "fovea_y": f"{geometry.fovea[1]:.2f}",
        "disc_x": f"{geometry.disc_center[0]:.2f}",
        "disc_y": f"{geometry.disc_center[1]:.2f}",
        "disc_diameter_px": f"{geometry.disc_diameter:.2f}",
        "fov_x": f"{geometry.fov_center[0]:.2f}",
        "fov_y": f"{geometry.fov_center[1]:.2f}",
        "fov_radius": f"{geometry.fov_radius:.2f}",
        "fov_clip_half_height": "" if geometry.clip_half_height is None else f"{geometry.clip_half_height:.2f}",
    }


def _names(layout: str, n: int, seed: int, test_fraction: float) -> list[tuple[str, str, str]]:
    """(split, name, grading name) per image index, as the layout names its files."""
    if layout == "idrid":
        n_test = int(round(n * test_fraction))
        n_train = n - n_test
        out = []
        for index in range(n):
            split = "train" if index < n_train else "test"
            grading_number = index + 1 if split == "train" else index - n_train + 1
            out.append((split, f"IDRiD_{index + 1:02d}", f"IDRiD_{grading_number:03d}"))
        return out
    if layout == "aptos":
        codes = [f"{image_seed(seed, index) & 0xFFFFFFFFFFFF:012x}" for index in range(n)]
        if len(set(codes)) != n:
            raise RuntimeError("APTOS id_code collision; choose another seed")
        return [("train", code, code) for code in codes]
    return [("train", f"synth_{index:05d}", f"synth_{index:05d}") for index in range(n)]


def _crlf(lines: list[str]) -> bytes:
    """``lines`` joined with CRLF line ends, the last one terminated too (as IDRiD and APTOS do)."""
    return "".join(f"{line}\r\n" for line in lines).encode("ascii")


def format_idrid_grading_csv(records: Sequence[tuple[str, int, int]], split: str) -> bytes:
    """Bytes of an IDRiD part B label file for (image name, DR, DME) records, with its quirks:
    CRLF, the training file's 9 empty trailing columns and its stray space on row 405."""
    pad = IDRID_CSV_PADDING[split]
    lines = [IDRID_CSV_HEADER + pad]
    for number, (name, dr, dme) in enumerate(records, start=1):
        stray = " " if split == "train" and number in IDRID_TRAIN_ROWS_WITH_TRAILING_SPACE else ""
        lines.append(f"{name},{dr},{dme}{pad}{stray}")
    return _crlf(lines)


def _write_label_files(root: Path, layout: str, rows: list[dict[str, object]]) -> None:
    if layout == "idrid":
        labels = root / "B. Disease Grading/2. Groundtruths"
        labels.mkdir(parents=True, exist_ok=True)
        for split in ("train", "test"):
            records = [(str(r["name"]), int(r["dr_label"]), int(r["dme_label"])) for r in rows if r["split"] == split]
            (labels / IDRID_GRADING_CSV[split]).write_bytes(format_idrid_grading_csv(records, split))
            for folder in (
                root / "A. Segmentation/1. Original Images" / IDRID_SPLITS[split],
                root / "B. Disease Grading/1. Original Images" / IDRID_SPLITS[split],
                *(root / "A. Segmentation/2. All Segmentation Groundtruths" / IDRID_SPLITS[split] / f
                  for f in IDRID_MASK_FOLDERS.values()),
            ):
                folder.mkdir(parents=True, exist_ok=True)
    elif layout == "aptos":
        (root / "train.csv").write_bytes(_crlf(["id_code,diagnosis"] + [f"{r['name']},{r['dr_label']}" for r in rows]))
    else:
        lines = ["image,grade,dme,eye"] + [f"{r['name']}.png,{r['dr_label']},{r['dme_label']},{r['eye']}" for r in rows]
        (root / "labels.csv").write_bytes(_crlf(lines))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TRUTH_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (root / TRUTH_CSV).write_text(buffer.getvalue(), encoding="utf-8")


def _init_worker() -> None:
    cv2.setNumThreads(1)


def default_workers() -> int:
    """Number of CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def write_dataset(
    out_dir: str | os.PathLike[str],
    n: int,
    size: int,
    seed: int,
    layout: str = "idrid",
    grade_distribution: Sequence[float] | None = None,
    label_noise: float = 0.0,
    workers: int | None = None,
    *,
    config: SynthConfig | None = None,
    test_fraction: float = 0.2,
    progress: bool = True,
) -> Path:
    """Renders ``n`` images of ``size`` px and writes them in ``layout`` under ``out_dir``.

    ``grade_distribution``: DR 0-4 weights (default ``config.grade_distribution``), met as exactly
    as integers allow; DME follows ``config.dme_given_dr``. ``label_noise``: probability that a
    recorded label moves one grade (true grades stay in ``synth_truth.csv``). IDRiD: the last
    ``test_fraction`` of images form the testing set of both parts. ``out_dir`` must be new or
    empty (``FileExistsError`` otherwise: a stale mask file would read as a present lesion).
    Returns ``out_dir``.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    base = config or SynthConfig()
    distribution = tuple(grade_distribution) if grade_distribution is not None else base.grade_distribution
    config = replace(base, grade_distribution=distribution, label_noise=label_noise)
    root = Path(out_dir)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"output folder {root} exists and is not empty (stale files would corrupt the truth)")
    root.mkdir(parents=True, exist_ok=True)
    targets = allocate_grades(n, seed, config.grade_distribution, config.dme_given_dr)
    tasks = [
        _Task(str(root), layout, index, image_seed(seed, index), size, dr, dme, split, name, grading_name, config)
        for index, ((dr, dme), (split, name, grading_name)) in enumerate(
            zip(targets, _names(layout, n, seed, test_fraction))
        )
    ]
    workers = max(1, min(workers or default_workers(), n))
    bar = tqdm(total=n, desc=f"synth {layout}", unit="img", disable=not progress)
    rows: list[dict[str, object]] = []
    if workers == 1:
        for task in tasks:
            rows.append(_render_and_write(task))
            bar.update()
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
            for row in pool.map(_render_and_write, tasks):
                rows.append(row)
                bar.update()
    bar.close()
    _write_label_files(root, layout, rows)
    return root


def read_truth(out_dir: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of ``synth_truth.csv`` in a written data set."""
    with open(Path(out_dir) / TRUTH_CSV, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
