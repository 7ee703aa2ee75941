"""The photograph path's enhancement (``ben_graham_normalised``): gain-free Ben Graham."""

from __future__ import annotations

import numpy as np
import pytest

from drscreen.preprocess import PreprocessConfig, Preprocessor, ben_graham, ben_graham_normalised
from drscreen.preprocess.enhance import BEN_GRAHAM_NORMALISED_STD


def textured_disc(size: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[:size, :size]
    disc = np.hypot(rows - size / 2, columns - size / 2) < size / 2 - 4
    base = np.stack([120 + 40 * np.sin(columns / 9.0), 70 + 20 * np.cos(rows / 7.0), 30 + 0 * rows], axis=-1)
    image = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    image[~disc] = 0
    return image, disc


def test_each_channel_gets_the_fixed_contrast_and_the_rim_is_grey() -> None:
    image, disc = textured_disc()
    out = ben_graham_normalised(image, disc, radius=76)
    centre = out[60:100, 60:100].reshape(-1, 3).astype(float)
    assert centre.std(axis=0) == pytest.approx([BEN_GRAHAM_NORMALISED_STD] * 3, rel=0.2)
    assert (out[~disc] == 128).all()


def test_a_publishers_ben_graham_filter_hardly_changes_the_result() -> None:
    image, disc = textured_disc(seed=1)
    derivative = ben_graham(image, disc, radius=76, sigma_fraction=0.15)  # coarser filter, 4x gain
    direct = ben_graham_normalised(image, disc, radius=76, sigma_fraction=0.03).astype(float)
    again = ben_graham_normalised(derivative, disc, radius=76, sigma_fraction=0.03).astype(float)
    inner = np.zeros_like(disc)
    inner[40:120, 40:120] = True
    correlation = np.corrcoef(direct[inner].ravel(), again[inner].ravel())[0, 1]
    assert correlation > 0.9
    assert abs(direct[inner].std() - again[inner].std()) < 4


def test_the_pipeline_offers_it_and_rejects_unknown_names() -> None:
    image, _ = textured_disc()
    prepared = Preprocessor(PreprocessConfig(size=96, enhancement="ben_graham_normalised", quality_gate=False))
    assert prepared.prepare(image).display.shape == (96, 96, 3)
    with pytest.raises(ValueError, match="enhancement"):
        PreprocessConfig(enhancement="ben_graham_normalized")  # type: ignore[arg-type]
