"""The ``ellg`` round hook: lesion images generated between the rounds of the ``rounds`` schedule.

Before fine-tuning round ``r`` the hook (registered in ``drscreen.engine.ROUND_HOOKS``; the
generator itself is ``drscreen.augment``, which knows nothing of the engine):

1. predicts every original training image with the model of the previous stage
   (``Trainer.predict``, on every rank) and keeps the correctly graded ones: known DR grade equal
   to the arg-max grade (a regression model's score counts as its nearest grade);
2. takes as sources those of grade >= ``source_min_grade`` and as targets those whose grade is in
   ``target_grades`` (ELLG: normal images);
3. on rank 0, for ``n`` drawn (source, target) pairs, computes the source's GMSM map
   (``drscreen.explain``, explaining the predicted grade, or the score of a regression model) on
   the network input and runs ``generate_one``. Images are handled in the network-input grid
   (the crop around the field of view at ``preprocess.size``) but *without* the configured
   enhancement, so that the engine's preprocessing, which reads the written files back like any
   photograph, applies it exactly once. Photographs are loaded lazily, one pair at a time;
4. writes ``<run>/rounds/<r>/images/ellg-r<r>-<k>.png`` and ``generated.csv`` (file name, grade,
   mixed label and provenance), readable by the ``csv`` dataset adapter, and every rank reads
   that CSV back as the ``Sample`` records (``dataset="ellg"``) the next round trains on.

By default each round replaces the previous round's generated images (``accumulate: true``
keeps them and adds the new ones). Seeded by ``train.seed`` and the round number.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drscreen.augment.ellg import ELLGConfig, Fundus, GeneratedImage, generate_lesion_images
from drscreen.data import Sample, load_dataset
from drscreen.engine.distributed import barrier
from drscreen.engine.inference import Predictions
from drscreen.engine.schedules.round_hooks import ROUND_HOOKS, RoundContext, RoundHook
from drscreen.engine.trainer import Trainer
from drscreen.explain import GMSM
from drscreen.grading import decode_grades
from drscreen.io import DEFAULT_LIMITS, read_image
from drscreen.preprocess import Preprocessor

log = logging.getLogger(__name__)

CSV_NAME = "generated.csv"
IMAGE_DIR = "images"
DATASET_NAME = "ellg"
CSV_COLUMNS = ("image", "grade", "label", "source", "target", "tau", "ratio", "patches", "placed", "dropped")
#: Photographs kept in memory by a lazy pool (sources recur across draws).
POOL_CACHE = 32


def correctly_classified(
    predictions: Predictions, samples: Sequence[Sample], dr_decoding: str = "argmax"
) -> dict[int, int]:
    """Index -> DR grade of the ``samples`` whose known grade equals the predicted one (read
    with ``dr_decoding``, ``drscreen.grading.decode_grades``)."""
    if predictions.dr_probs is None:
        raise ValueError("ELLG lesion generation needs a model that grades DR (dr_logits or dr_score)")
    predicted = decode_grades(predictions.dr_probs, dr_decoding)
    return {
        int(i): int(grade) for i, grade in zip(predictions.indices, predicted) if samples[i].dr_grade == grade
    }


class LazyFundusPool:
    """The photographs ``indices`` of a dataset as ``Fundus`` records, built on access by ``load``
    (dataset index -> ``Fundus``); the ``POOL_CACHE`` most recent ones are kept."""

    def __init__(self, indices: Sequence[int], load: Callable[[int], Fundus]) -> None:
        self.indices = list(indices)
        self._load = lru_cache(maxsize=POOL_CACHE)(load)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> Fundus:
        return self._load(self.indices[position])


class _RoundGenerator:
    """Loads the photographs of one round and writes its generated images (rank 0)."""

    def __init__(self, trainer: Trainer, samples: Sequence[Sample], gate: float) -> None:
        self.trainer = trainer
        self.samples = samples
        self.dataset = trainer.dataset(samples, train=False)
        plain = replace(trainer.preprocessor.config, enhancement="none", quality_gate=False)
        self.plain = Preprocessor(plain)
        self.gmsm = GMSM(trainer.model, gate=gate)

    def fundus(self, index: int, grade: int, *, saliency: bool) -> Fundus:
        """Dataset image ``index`` (of DR ``grade``) in the network-input grid, unenhanced, with
        its GMSM map when ``saliency``."""
        sample = self.samples[index]
        prepared = self.plain.prepare(read_image(sample.image_path))
        saliency_map = self.gmsm(self.dataset[index].image[None])[0].numpy() if saliency else None
        return Fundus(prepared.display, float(grade), f"{sample.dataset}:{sample.id}", prepared.fov_mask, saliency_map)


def write_generated(images: Sequence[GeneratedImage], out_dir: Path, prefix: str) -> None:
    """PNG files under ``out_dir/images`` and ``out_dir/generated.csv`` (columns ``CSV_COLUMNS``).

    Images smaller than ``drscreen.io``'s minimum side (128 px; tiny test inputs) are enlarged by
    pixel replication with the smallest integer factor that reaches it, which the area resampling
    of preprocessing undoes exactly.
    """
    (out_dir / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    with (out_dir / CSV_NAME).open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for k, generated in enumerate(images):
            name = f"{prefix}-{k:05d}.png"
            factor = -(-DEFAULT_LIMITS.min_side // min(generated.image.shape[:2]))
            image = np.repeat(np.repeat(generated.image, factor, axis=0), factor, axis=1)
            cv2.imwrite(str(out_dir / IMAGE_DIR / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            p = generated.provenance
            writer.writerow({
                "image": name, "grade": generated.grade, "label": round(generated.label, 6),
                **{key: p[key] for key in ("source", "target", "patches", "placed", "dropped")},
                "tau": round(p["tau"], 6), "ratio": round(p["ratio"], 6),
            })  # fmt: skip


def read_generated(out_dir: Path) -> list[Sample]:
    """The samples listed in ``out_dir/generated.csv`` (``dataset="ellg"``, split ``train``)."""
    return load_dataset(
        "csv", out_dir, "train", csv=CSV_NAME, images=IMAGE_DIR, image_column="image", grade_column="grade",
        dataset_name=DATASET_NAME,
    )  # fmt: skip


@ROUND_HOOKS.register(
    "ellg",
    paper="Lin et al.: Explainable lesion learning and generation for diabetic retinopathy detection",
    description="ELLG: lesion images from GMSM maps of correctly graded training images",
)
def ellg_hook(
    n: int | None = None,
    source_min_grade: int = 1,
    target_grades: Sequence[int] | None = (0,),
    gate: float = 1.0,
    accumulate: bool = False,
    **generation: Any,
) -> RoundHook:
    """The ELLG round hook (module doc).

    Args:
        n: images per round; ``None``: one per target image.
        source_min_grade: smallest DR grade of a source image.
        target_grades: DR grades a target image may have; ``None``: any correctly graded image.
        gate: GMSM's gate ``t`` (eq. 2), in units of the model's weighted activations.
        accumulate: keep the previous rounds' generated images as well.
        generation: ``ELLGConfig`` fields (``tau_range``, ``ratio_range``, ``min_area``, ...).
    """
    config = ELLGConfig(**generation)
    if n is not None and n < 0:
        raise ValueError(f"ellg hook: n must be >= 0, got {n}")
    allowed = None if target_grades is None else {int(g) for g in target_grades}

    def hook(context: RoundContext) -> list[Sample]:
        trainer, samples = context.trainer, context.train_samples
        generator = _RoundGenerator(trainer, samples, gate)
        correct = correctly_classified(
            trainer.predict(generator.dataset, description="ellg"), samples, trainer.config.model.dr_decoding
        )
        if trainer.context.is_main:
            sources = [i for i, grade in correct.items() if grade >= source_min_grade]
            targets = [i for i, grade in correct.items() if allowed is None or grade in allowed]
            count = len(targets) if n is None else n
            images: list[GeneratedImage] = []
            if sources and targets and count:
                images = generate_lesion_images(
                    LazyFundusPool(sources, lambda i: generator.fundus(i, correct[i], saliency=True)),
                    LazyFundusPool(targets, lambda i: generator.fundus(i, correct[i], saliency=False)),
                    count,
                    np.random.default_rng([trainer.config.train.seed, context.round]),
                    config,
                )
            write_generated(images, context.work_dir, f"{DATASET_NAME}-r{context.round}")
            log.info(
                "ellg round %d: %d of %d training images graded correctly (%d sources, %d targets); "
                "%d images generated, %d patches dropped",
                context.round, len(correct), len(samples), len(sources), len(targets), len(images),
                sum(g.provenance["dropped"] for g in images),
            )  # fmt: skip
        barrier(trainer.context)
        generated = read_generated(context.work_dir)
        return [*context.extra_samples, *generated] if accumulate else generated

    return hook
