"""The batch path (worker processes, reduced decoding) gives the one-image path's results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from drscreen.io import read_image
from drscreen.io.draft import read_reduced, reduce_photograph, reduction_factor
from drscreen.screening import ScreenedImage, Screener, ScreeningFailure, ScreeningInput
from drscreen.screening.batch import LoadFailure, PhotographLoader, load_photograph
from drscreen.screening.screener import content_sha256
from drscreen.synth import generate_fundus

#: Long side (px) of the test photographs: reduced by 2 for analysis (>= 1024 px long, 512 short).
PHOTO_SIZE = 2048


def _write(path: Path, image: np.ndarray) -> Path:
    Image.fromarray(image).save(path, quality=92) if path.suffix == ".jpg" else Image.fromarray(image).save(path)
    return path


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener(explain=False, batch_size=4)


@pytest.fixture(scope="module")
def photographs(tmp_path_factory: pytest.TempPathFactory) -> list[ScreeningInput]:
    """Synthetic fundus photographs of 2048 px as JPEG and PNG, a broken file among them."""
    root = tmp_path_factory.mktemp("photographs")
    items = []
    for seed in range(3):
        image = cv2.resize(
            generate_fundus(seed=seed, size=1024).image, (PHOTO_SIZE, PHOTO_SIZE), interpolation=cv2.INTER_CUBIC
        )
        for suffix in (".jpg", ".png"):
            items.append(ScreeningInput(id=f"s{seed}{suffix[1:]}", path=_write(root / f"s{seed}{suffix}", image)))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    items.insert(3, ScreeningInput(id="broken", path=root / "broken.jpg"))
    return items


def comparable(result: Any) -> dict[str, Any]:
    """A result without its timing fields and without the probabilities (compared with a tolerance)."""
    dumped = result.model_dump()
    for key in ("seconds", "created"):
        dumped["provenance"].pop(key)
    for head in ("dr", "dme"):
        if dumped[head] is not None:
            dumped[head].pop("probabilities")
    dumped["referable"] = None if dumped["referable"] is None else {**dumped["referable"], "score": None}
    return dumped


def test_the_batch_path_gives_the_one_image_results(screener: Screener, photographs: list[ScreeningInput]) -> None:
    batched = list(screener.screen(photographs, workers=2))
    single = [screener.screen_one(item) for item in photographs]
    assert [o.input.id if isinstance(o, ScreeningFailure) else o.result.id for o in batched] == [
        i.id for i in photographs
    ]
    assert isinstance(batched[3], ScreeningFailure) and batched[3].code == "corrupt"
    graded = 0
    for many, one in zip(batched, single):
        if isinstance(many, ScreeningFailure):
            assert isinstance(one, ScreeningFailure) and (one.code, one.message) == (many.code, many.message)
            continue
        assert isinstance(one, ScreenedImage)
        assert comparable(many.result) == comparable(one.result), many.result.id
        for head in ("dr", "dme"):
            a, b = getattr(many.result, head), getattr(one.result, head)
            assert (a is None) == (b is None)
            if a is not None:
                graded += 1
                assert np.abs(np.subtract(a.probabilities, b.probabilities)).max() <= 1e-5
        assert np.array_equal(many.image, one.image) and bool((many.prepared.tensor == one.prepared.tensor).all())
    assert graded >= 6, "the synthetic photographs are gradable"


def test_a_photograph_is_analysed_at_half_size_and_reported_at_full_size(screener: Screener, tmp_path: Path) -> None:
    """A PNG upsampled exactly 2x (nearest) reduces back to the original pixels: same grades, and
    positions, sizes and areas in the photograph's own pixels (x2, x2, x4)."""
    small = generate_fundus(seed=7, size=1024).image
    large = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    one = screener.screen_one(ScreeningInput(id="small", path=_write(tmp_path / "small.png", small)))
    two = screener.screen_one(ScreeningInput(id="large", path=_write(tmp_path / "large.png", large)))
    assert isinstance(one, ScreenedImage) and isinstance(two, ScreenedImage)
    a, b = one.result, two.result
    assert b.image_size == (2048, 2048) and a.image_size == (1024, 1024)
    assert a.dr is not None and b.dr is not None and a.dr.probabilities == b.dr.probabilities
    assert b.quality.measures["fov_diameter_px"] == pytest.approx(2 * a.quality.measures["fov_diameter_px"], abs=0.2)
    assert a.landmarks is not None and b.landmarks is not None
    assert b.landmarks.disc_diameter_px == pytest.approx(2 * a.landmarks.disc_diameter_px, abs=0.2)
    for x_large, x_small in zip(b.landmarks.fovea_center, a.landmarks.fovea_center):
        assert x_large + 0.5 == pytest.approx(2 * (x_small + 0.5), abs=0.2)
    for large_finding, small_finding in zip(b.lesions, a.lesions):
        assert large_finding.count == small_finding.count
        assert large_finding.area_px == pytest.approx(4 * small_finding.area_px, rel=1e-3, abs=0.5)
    assert max(two.image.shape[:2]) == 1024 and two.prepared.geometry.original_size == two.image.shape[:2]


def test_full_resolution_display_changes_the_image_not_the_result(screener: Screener, tmp_path: Path) -> None:
    image = cv2.resize(
        generate_fundus(seed=3, size=1024).image, (PHOTO_SIZE, PHOTO_SIZE), interpolation=cv2.INTER_CUBIC
    )
    item = ScreeningInput(id="p", path=_write(tmp_path / "p.jpg", image))
    default = load_photograph(item, screener.predictor.preprocessor.config, content_sha256)
    full = load_photograph(item, screener.predictor.preprocessor.config, content_sha256, display_size=None)
    assert not isinstance(default, LoadFailure) and not isinstance(full, LoadFailure)
    assert full.image.shape[:2] == (PHOTO_SIZE, PHOTO_SIZE) and default.image.shape[:2] == (1024, 1024)
    assert bool((full.prepared.tensor == default.prepared.tensor).all())
    assert full.original_geometry == default.original_geometry
    assert full.prepared.geometry == full.original_geometry, "at full resolution the display is the original"
    assert default.prepared.geometry.side * 2 == full.prepared.geometry.side


@pytest.mark.parametrize(
    ("width", "height", "factor"),
    [
        (4928, 3264, 4),
        (4752, 3168, 4),
        (3888, 2592, 2),
        (2592, 1944, 2),
        (1411, 1411, 1),
        (8192, 4096, 8),
        (640, 480, 1),
    ],
)
def test_the_reduction_keeps_1024_px_long_and_512_px_short(width: int, height: int, factor: int) -> None:
    assert reduction_factor(width, height) == factor
    assert reduction_factor(height, width) == factor
    assert reduction_factor(width, height, min_long_side=None) == 1


def test_a_jpeg_is_decoded_at_reduced_scale_close_to_its_area_average(tmp_path: Path) -> None:
    image = cv2.resize(generate_fundus(seed=5, size=512).image, (2000, 1500), interpolation=cv2.INTER_CUBIC)
    path = _write(tmp_path / "p.jpg", image)
    reduced = read_reduced(path)
    assert (reduced.factor, reduced.original_size, reduced.image.shape) == (1, (1500, 2000), (1500, 2000, 3))
    wide = _write(tmp_path / "wide.jpg", cv2.resize(image, (4100, 3075)))
    reduced, averaged = read_reduced(wide), reduce_photograph(read_image(wide))
    assert (reduced.factor, reduced.original_size, reduced.image.shape) == (4, (3075, 4100), (769, 1025, 3))
    assert averaged.image.shape == reduced.image.shape
    assert np.abs(reduced.image.astype(int) - averaged.image.astype(int)).mean() < 2.0


def test_a_rotated_jpeg_is_reduced_upright(tmp_path: Path) -> None:
    image = Image.fromarray(np.full((3000, 4100, 3), 90, np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # rotated 90 degrees: the upright photograph is 3000 wide, 4100 tall
    image.save(tmp_path / "r.jpg", exif=exif)
    reduced = read_reduced(tmp_path / "r.jpg")
    assert (reduced.factor, reduced.original_size, reduced.image.shape) == (4, (4100, 3000), (1025, 750, 3))


def test_the_loader_keeps_input_order_and_bounds_what_is_in_flight(
    screener: Screener, photographs: list[ScreeningInput]
) -> None:
    pulled: list[str] = []

    def stream() -> Iterator[ScreeningInput]:
        for item in photographs:
            pulled.append(item.id)
            yield item

    loader = PhotographLoader(screener.predictor.preprocessor.config, content_sha256, workers=2, prefetch=2)
    outcomes = loader.load(stream())
    first = next(outcomes)
    assert len(pulled) == 3, "two in flight, one more submitted when the first was taken"
    assert [first[0].id] + [item.id for item, _ in outcomes] == [item.id for item in photographs]
    with pytest.raises(ValueError, match="workers"):
        PhotographLoader(screener.predictor.preprocessor.config, content_sha256, workers=-1)


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_killed_run_leaves_no_worker_behind(photographs: list[ScreeningInput], tmp_path: Path) -> None:
    folder = photographs[0].path.parent  # type: ignore[union-attr]
    command = [sys.executable, "-m", "drscreen.cli", "screen", str(folder), "--out", str(tmp_path / "out"),
               "--workers", "2", "--no-explain", "--quiet"]  # fmt: skip
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    helpers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(helpers) < 3 and run.poll() is None:  # fork server + 2 workers
        time.sleep(0.2)
        helpers = [grandchild for child in _children(run.pid) for grandchild in [child, *_children(child)]]
    assert run.poll() is None and len(helpers) >= 3, "the run started its workers"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in helpers):
        time.sleep(0.2)
    for pid in helpers:  # zombies (reaped by init soon) count as gone
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" in status.read_text(), f"process {pid} outlived the killed run"
