"""Fixtures of the engine tests: a synthetic IDRiD-layout data set and a preprocessing cache folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from drscreen.synth import write_dataset


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 synthetic images in the official IDRiD layout: 8 training, 2 testing, in both parts."""
    root = tmp_path_factory.mktemp("synth-idrid")
    return write_dataset(root, n=10, size=128, seed=0, layout="idrid", workers=1, progress=False)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")
