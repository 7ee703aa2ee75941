"""Synthetic photographs toned like real ones (Reinhard transfer within the field of view, camera JPEG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from drscreen.augment.colour import rgb_to_lalphabeta
from drscreen.augment.realism import load_references, recolour_files, tone_like
from drscreen.io import read_image
from drscreen.preprocess import detect_fov
from drscreen.synth import generate_fundus


def _fov_stats(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = rgb_to_lalphabeta(image)[detect_fov(image).mask]
    return lab.mean(axis=0), lab.std(axis=0)


def test_tone_like_copies_the_reference_tone_inside_the_field_of_view() -> None:
    image = generate_fundus(seed=0, size=256).image
    reference = generate_fundus(seed=1, size=320).image.astype(np.float32)
    reference = np.clip(reference * np.array([0.7, 0.9, 1.3], np.float32), 0, 255).astype(np.uint8)
    toned = tone_like(image, reference)
    mean, std = _fov_stats(toned)
    ref_mean, ref_std = _fov_stats(reference)
    assert np.abs(mean - ref_mean).max() < 0.05 and np.abs(std - ref_std).max() < 0.05
    outside = ~detect_fov(image).mask
    assert np.array_equal(toned[outside], image[outside])


def test_recolour_files_writes_jpegs_with_a_seeded_reference_choice(tmp_path: Path) -> None:
    sources = []
    for seed in range(3):
        path = tmp_path / f"s{seed}.png"
        Image.fromarray(generate_fundus(seed=seed, size=128).image).save(path)
        sources.append(path)
    ref_path = tmp_path / "ref.png"
    Image.fromarray(generate_fundus(seed=9, size=900).image).save(ref_path)
    references = load_references([ref_path, ref_path], side=256)
    assert max(references[0].shape[:2]) == 256
    pairs = [(s, tmp_path / f"{s.stem}.jpg") for s in sources]
    chosen = recolour_files(pairs, references, seed=4)
    assert chosen == recolour_files([(s, tmp_path / f"again-{s.stem}.jpg") for s in sources], references, seed=4)
    assert all(read_image(target).shape == (128, 128, 3) for _, target in pairs)
    assert all(target.read_bytes()[:2] == b"\xff\xd8" for _, target in pairs)
