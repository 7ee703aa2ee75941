"""The dataset registry and ``load_dataset``."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from drscreen.data.errors import DatasetError
from drscreen.data.sample import Sample
from drscreen.registry import Registry

#: Adapters by name. Each factory takes ``root: Path``, ``split: str | None`` and its own options,
#: and is registered with ``description`` and ``splits`` metadata.
DATASETS: Registry[list[Sample]] = Registry("dataset")


def load_dataset(
    name: str, root: str | os.PathLike[str], split: str | None = None, **options: Any
) -> list[Sample]:
    """Samples of dataset ``name`` stored under ``root``; ``split=None`` loads every split present.

    Raises ``KeyError`` for an unknown name and ``DatasetError`` when the files do not match the
    adapter's layout (each adapter's docstring and docs/data.md show it).
    """
    entry = DATASETS.get(name)
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"{name}: root folder {folder} does not exist")
    samples = entry.factory(root=folder, split=split, **options)
    duplicated = [key for key, count in Counter(s.id for s in samples).items() if count > 1]
    if duplicated:
        raise DatasetError(f"{name} at {folder}: duplicated sample ids {sorted(duplicated)[:5]}")
    return samples


def list_datasets() -> list[str]:
    """Names of the registered dataset adapters, sorted."""
    return DATASETS.names()
