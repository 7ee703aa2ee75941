"""Torch dataset over ``Sample`` records: the one preprocessing path, a file cache, joint augmentation.

Per item: read the image (``drscreen.io``), ``Preprocessor.prepare`` it (field of view, square
crop, resize, enhancement), prepare its lesion masks with the same geometry, then augment image
and masks together, scale to [0, 1] and normalise for the model. Preparing runs once per image
and preprocessing setting when the cache is on: the prepared uint8 image and masks are stored
under the cache folder and every later epoch (and run) reads them back; augmentation always
happens after the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from drscreen.data import LESION_UNION, Sample
from drscreen.grading import SEGMENTATION_LESIONS
from drscreen.io import read_image, read_mask
from drscreen.losses import UNION_POSITIVE, TaskTargets
from drscreen.preprocess import CropGeometry, Normalization, PreprocessConfig, Preprocessor
from drscreen.transforms import JointAugmentation

log = logging.getLogger(__name__)

#: Bumped when the cache entry format changes, so old entries are not misread.
CACHE_FORMAT = 1
#: Preprocessing settings that do not change the prepared uint8 pixels (left out of cache keys).
_NOT_IN_PIXELS = frozenset({"normalization", "quality_gate", "quality_thresholds"})


@dataclass
class PreparedSample:
    """A sample after preprocessing, before augmentation.

    ``image``: (S, S, 3) uint8 RGB. ``masks``: (C, S, S) uint8 0/1 (0 / ``UNION_POSITIVE`` in
    channels known through their union) in the requested lesion-class order, or ``None`` when
    the sample has no usable masks. ``geometry``: the crop, to map results back onto the
    original image.
    """

    image: np.ndarray
    masks: np.ndarray | None
    geometry: CropGeometry


@dataclass
class Example:
    """One dataset item. ``image``: (3, S, S) float, normalised; ``masks``: (C, S, S) float 0/1."""

    index: int
    image: Tensor
    dr: int | None
    dme: int | None
    masks: Tensor | None


@dataclass
class Batch:
    """A collated batch: ``images`` (B, 3, S, S), ``targets`` (``TaskTargets``), ``indices`` (B,)."""

    images: Tensor
    targets: TaskTargets
    indices: Tensor

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory (``DataLoader(pin_memory=True)`` calls this)."""
        t = self.targets
        masks = None if t.lesion_masks is None else t.lesion_masks.pin_memory()
        assert t.dme is not None and t.has_lesion_masks is not None
        targets = TaskTargets(t.dr.pin_memory(), t.dme.pin_memory(), masks, t.has_lesion_masks.pin_memory())
        return Batch(self.images.pin_memory(), targets, self.indices)


def mask_classes_available(sample: Sample, classes: Sequence[str], *, union: bool = False) -> bool:
    """True when ``sample`` has a lesion annotation covering every class of ``classes``.

    With ``union``, a lesion class (``SEGMENTATION_LESIONS``) is also covered by the sample's
    ``LESION_UNION`` mask (see ``union_classes``).
    """
    if not classes or sample.lesion_masks is None:
        return False
    return all(c in sample.lesion_masks for c in classes) or (union and bool(union_classes(sample, classes)))


def union_classes(sample: Sample, classes: Sequence[str]) -> tuple[str, ...]:
    """The lesion classes of ``classes`` that ``sample`` knows only through its union mask.

    Empty unless the annotation has ``LESION_UNION`` and covers every other class of ``classes``.
    """
    masks = sample.lesion_masks or {}
    if LESION_UNION not in masks:
        return ()
    missing = tuple(c for c in classes if c not in masks)
    return missing if missing and all(c in SEGMENTATION_LESIONS for c in missing) else ()


class PreparedCache:
    """Prepared samples stored as compressed ``.npz`` files under ``root``.

    An entry's name hashes the preprocessing settings that shape the pixels, the lesion classes and the path, size and
    modification time of the image and of every mask file, so a changed setting or file never
    reads a stale entry. Entries are written atomically; parallel writers are safe.
    """

    def __init__(self, root: str | os.PathLike[str], config: PreprocessConfig) -> None:
        self.root = Path(root)
        settings = {k: v for k, v in config.to_dict().items() if k not in _NOT_IN_PIXELS}
        self.settings_key = _digest({"format": CACHE_FORMAT, "settings": settings})

    def path(self, sample: Sample, classes: Sequence[str]) -> Path:
        files = [sample.image_path] + [p for p in (sample.lesion_masks or {}).values() if p is not None]
        stamp = {
            "files": [[str(Path(f).resolve()), *_file_stamp(Path(f))] for f in files],
            "masks": sorted((code, p is not None) for code, p in (sample.lesion_masks or {}).items()),
            "classes": list(classes),
        }
        key = _digest(stamp)
        return self.root / self.settings_key[:16] / key[:2] / f"{key}.npz"

    def load(self, path: Path) -> PreparedSample | None:
        """The entry at ``path``, or ``None`` when missing or unreadable (it is then rebuilt)."""
        try:
            with np.load(path) as entry:
                masks = entry["masks"] if entry["has_masks"] else None
                geometry = CropGeometry.from_dict(json.loads(str(entry["geometry"])))
                return PreparedSample(entry["image"], masks, geometry)
        except (OSError, ValueError, KeyError, zlib.error):
            return None

    def store(self, path: Path, prepared: PreparedSample) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        masks = prepared.masks if prepared.masks is not None else np.zeros((0, 1, 1), np.uint8)
        np.savez_compressed(
            buffer, image=prepared.image, masks=masks, has_masks=prepared.masks is not None,
            geometry=json.dumps(prepared.geometry.to_dict()),
        )  # fmt: skip
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_bytes(buffer.getvalue())
        os.replace(partial, path)


class FundusDataset(Dataset[Example]):
    """Samples as normalised image tensors with their grades and lesion masks.

    Args:
        samples: the records.
        preprocessor: the one preprocessing path (``drscreen.preprocess.Preprocessor``).
        lesion_classes: mask channels to produce, in the model's ``lesion_classes`` order.
            A sample whose annotation lacks one of them counts as having no masks.
        normalization: the model's input normalisation.
        augment: joint augmentation for training, ``None`` for evaluation.
        cache: where prepared samples are stored, ``None`` to prepare every time.
        seed: with ``set_epoch``, makes every augmentation draw a function of (seed, epoch,
            index) alone, whatever the worker count and across resumes.
        lesion_union: samples that know their lesion classes only through ``LESION_UNION``
            have masks too: each such channel holds 0 and ``UNION_POSITIVE`` where the union is
            positive (for the ``lesion_union`` loss; training only, metrics cannot read them).
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        preprocessor: Preprocessor,
        lesion_classes: Sequence[str],
        normalization: Normalization,
        *,
        augment: JointAugmentation | None = None,
        cache: PreparedCache | None = None,
        seed: int = 0,
        lesion_union: bool = False,
    ) -> None:
        self.samples = list(samples)
        self.preprocessor = preprocessor
        self.lesion_classes = tuple(lesion_classes)
        self.normalization = normalization
        self.augment = augment
        self.cache = cache
        self.seed = seed
        self.epoch = 0
        self.union = [union_classes(s, self.lesion_classes) if lesion_union else () for s in self.samples]
        self.has_masks = [
            mask_classes_available(s, self.lesion_classes, union=lesion_union) for s in self.samples
        ]
        incomplete = sum(
            s.lesion_masks is not None and not ok for s, ok in zip(self.samples, self.has_masks, strict=True)
        )
        if incomplete and self.lesion_classes:
            log.warning(
                "%d samples lack masks for some of %s; their lesion maps are not supervised",
                incomplete, ", ".join(self.lesion_classes),
            )  # fmt: skip

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def prepared(self, index: int) -> PreparedSample:
        """Sample ``index`` preprocessed (from the cache when possible)."""
        sample = self.samples[index]
        if self.cache is None:
            return self._prepare(index)
        classes = self.lesion_classes if self.has_masks[index] else ()
        if self.union[index]:
            classes = (*classes, f"{LESION_UNION}:{','.join(self.union[index])}")
        path = self.cache.path(sample, classes)
        prepared = self.cache.load(path) if path.is_file() else None
        if prepared is None:
            prepared = self._prepare(index)
            self.cache.store(path, prepared)
        return prepared

    def _prepare(self, index: int) -> PreparedSample:
        sample = self.samples[index]
        result = self.preprocessor.prepare(read_image(sample.image_path))
        image = np.ascontiguousarray(result.display)
        masks = None
        if self.has_masks[index]:
            assert sample.lesion_masks is not None
            size = image.shape[:2]
            channels = []
            for code in self.lesion_classes:
                from_union = code in self.union[index]
                mask_path = sample.lesion_masks[LESION_UNION if from_union else code]
                if mask_path is None:
                    channels.append(np.zeros(size, np.uint8))
                else:
                    prepared = self.preprocessor.prepare_mask(read_mask(mask_path), result.geometry)
                    value = int(UNION_POSITIVE) if from_union else 1
                    channels.append(np.asarray(prepared, dtype=bool).astype(np.uint8) * np.uint8(value))
            masks = np.stack(channels)
        return PreparedSample(image, masks, result.geometry)

    def __getitem__(self, index: int) -> Example:
        sample = self.samples[index]
        prepared = self.prepared(index)
        image = torch.from_numpy(prepared.image).permute(2, 0, 1).contiguous()
        masks = None if prepared.masks is None else torch.from_numpy(prepared.masks)
        if self.augment is not None:
            with torch.random.fork_rng(devices=[]):
                # Seeds the CPU generator only (torch.manual_seed would reseed CUDA's as well).
                torch.default_generator.manual_seed(_item_seed(self.seed, self.epoch, index))
                image, masks = self.augment(image, masks)
        return Example(
            index=index,
            image=self.normalization(image.float() / 255.0),
            dr=sample.dr_grade,
            dme=sample.dme_grade,
            masks=None if masks is None else masks.float(),
        )


def collate_examples(examples: Sequence[Example]) -> Batch:
    """Stack images and gather labels into ``TaskTargets`` (missing grades -1, missing masks off)."""
    return Batch(
        images=torch.stack([e.image for e in examples]),
        targets=TaskTargets.from_samples(
            [e.dr for e in examples], [e.dme for e in examples], [e.masks for e in examples]
        ),
        indices=torch.tensor([e.index for e in examples], dtype=torch.int64),
    )


def worker_init(worker_id: int) -> None:
    """DataLoader workers: one OpenCV thread each (the workers already run in parallel)."""
    cv2.setNumThreads(1)


def _item_seed(seed: int, epoch: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _file_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
