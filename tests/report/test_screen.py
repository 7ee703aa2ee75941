"""``drscreen screen`` end to end: the output folder, bad inputs, resume after kill -9."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data

from drscreen.cli import main
from drscreen.report import RESULT_COLUMNS, iter_results, screen
from drscreen.screening import ImageResult, Screener
from drscreen.synth import generate_fundus
from drscreen.synth.bad_inputs import write_bad_inputs

#: Fast settings for tests: no explanation maps, small overlays.
FAST = {"explain": False, "overlay_size": 256, "progress": False}


def write_photo(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def screener() -> Screener:
    return Screener(explain=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four synthetic fundus photographs (two patients via a manifest), the scikit-image retina, a broken file."""
    root = tmp_path_factory.mktemp("photos")
    for seed in range(4):
        write_photo(root / "images" / f"synth_{seed}.png", generate_fundus(seed=seed, size=256).image)
    write_photo(root / "images" / "retina.jpg", data.retina())
    (root / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    rows = [("images/synth_0.png", "p1", "R"), ("images/synth_1.png", "p1", "L"), ("images/synth_2.png", "p2", "R")]
    with (root / "manifest.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["path", "patient_id", "laterality", "visit"])
        writer.writerows([(path, patient, side, "2026-01") for path, patient, side in rows])
    return root


def comparable(result: ImageResult) -> dict[str, Any]:
    """A result without its timing fields."""
    dumped = result.model_dump()
    dumped["provenance"].pop("seconds")
    dumped["provenance"].pop("created")
    return dumped


def test_a_folder_screens_into_results_tables_overlays_and_a_report(photos: Path, tmp_path: Path, screener: Screener) -> None:
    out = tmp_path / "out"
    summary = screen([photos / "images"], out, screener=screener, **FAST)
    assert (summary.n_inputs, summary.n_unreadable) == (6, 1) and summary.exit_code == 3
    assert summary.n_screened + summary.n_ungradable == 5
    results = {r.id: r for r in iter_results(out)}
    assert set(results) == {"synth_0", "synth_1", "synth_2", "synth_3", "retina"}
    for result in results.values():
        assert result.validated_on_real_data["dr"] and not result.validated_on_real_data["lesion_maps"]
        assert result.provenance.weights_sha256 != "unknown" and len(result.content_sha256) == 64
        for relative in result.overlays.values():
            layer = cv2.imread(str(out / relative), cv2.IMREAD_UNCHANGED)
            assert layer.shape[2] == 4 and max(layer.shape[:2]) <= 256
        if result.status == "screened":
            assert result.dr is not None and abs(sum(result.dr.probabilities) - 1) < 1e-4
            assert {f.region for f in result.lesions if f.code == "HE"} == {"optic_disc", "macula", "rest"}
            assert result.landmarks is not None and {"lesions", "disc"} <= set(result.overlays)
    with (out / "results.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == RESULT_COLUMNS
    assert [r["id"] for r in rows] == ["retina", "synth_0", "synth_1", "synth_2", "synth_3"], "input order"
    with (out / "errors.csv").open(newline="") as stream:
        (error,) = list(csv.DictReader(stream))
    assert error["file"].endswith("broken.jpg") and error["reason"] == "corrupt" and error["message"]
    schema = json.loads((out / "schema.json").read_text())
    assert "provenance" in schema["properties"]
    assert (out / "report.html").stat().st_size > 0


def test_a_manifest_gives_patients_eyes_and_one_recommendation_each(photos: Path, tmp_path: Path, screener: Screener) -> None:
    out = tmp_path / "out"
    screen([photos / "manifest.csv"], out, screener=screener, **FAST)
    results = {r.id: r for r in iter_results(out)}
    assert results["images__synth_1"].patient_id == "p1" and results["images__synth_1"].laterality == "L"
    assert results["images__synth_1"].laterality_source == "manifest"
    with (out / "patients.csv").open(newline="") as stream:
        patients = {row["patient_id"]: row for row in csv.DictReader(stream)}
    assert set(patients) == {"p1", "p2"}
    p1 = [r for r in results.values() if r.patient_id == "p1"]
    worst_referable = any(r.referable is not None and r.referable.referable for r in p1)
    assert (patients["p1"]["recommendation"] == "refer") == worst_referable
    assert patients["p1"]["image_ids"].count("images__synth") == 2


def test_a_rerun_reuses_what_is_done_and_redoes_what_changed(photos: Path, tmp_path: Path, screener: Screener) -> None:
    images = tmp_path / "images"
    for seed in range(3):
        write_photo(images / f"p{seed}.png", generate_fundus(seed=20 + seed, size=256).image)
    out = tmp_path / "out"
    first = screen([images], out, screener=screener, **FAST)
    assert first.n_reused == 0
    stamp = (out / "results" / "p1.json").stat().st_mtime_ns
    again = screen([images], out, screener=screener, **FAST)
    assert again.n_reused == 3 and (out / "results" / "p1.json").stat().st_mtime_ns == stamp
    write_photo(images / "p1.png", generate_fundus(seed=99, size=256).image)  # changed content
    write_photo(images / "p9.png", generate_fundus(seed=98, size=256).image)  # an added input
    third = screen([images], out, screener=screener, **FAST)
    assert third.n_reused == 2 and third.n_screened + third.n_ungradable == 4
    assert (out / "results" / "p1.json").stat().st_mtime_ns != stamp


def test_every_bad_or_awkward_input_gets_its_outcome_without_a_traceback(tmp_path: Path, screener: Screener) -> None:
    corpus = write_bad_inputs(tmp_path / "corpus")
    assert len(corpus) >= 40
    out = tmp_path / "out"
    summary = screen([c.path for c in corpus], out, screener=screener, **FAST)
    assert summary.n_inputs == len(corpus)
    results = {Path(r.source).name: r for r in iter_results(out) if r.source}
    with (out / "errors.csv").open(newline="") as stream:
        errors = {Path(row["file"]).name: row["reason"] for row in csv.DictReader(stream)}
    for item in corpus:
        name = item.path.name
        if item.expected_outcome == "unreadable":
            assert name in errors and name not in results, name
        elif item.expected_outcome == "ungradable":
            assert results[name].status == "ungradable" and results[name].dr is None, name
            assert results[name].quality.reasons, name
        else:
            assert results[name].status == "screened" and results[name].dr is not None, name


def test_command_line_exit_status_and_usage_errors(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["screen", str(photos / "images" / "synth_3.png"), "--out", str(tmp_path / "a"), "--quiet",
                 "--no-explain", "--overlay-size", "128"]) == 0  # fmt: skip
    assert main(["screen", str(photos / "images" / "broken.jpg"), "--out", str(tmp_path / "b"), "--quiet"]) == 3
    assert "broken.jpg" in capsys.readouterr().err
    bad_manifest = tmp_path / "m.csv"
    bad_manifest.write_text("file\nx.png\n")
    assert main(["screen", str(bad_manifest), "--out", str(tmp_path / "c"), "--quiet"]) == 1
    assert main(["screen", str(photos / "images"), "--out", str(tmp_path / "d"), "--operating-point", "x=1"]) == 1
    assert main(["screen", str(photos / "images" / "synth_3.png"), "--out", str(tmp_path / "e"), "--quiet",
                 "--no-explain", "--jpeg-decode", "device", "--channels-last"]) == 0  # fmt: skip
    (stored,) = (tmp_path / "e").rglob("synth_3.json")
    assert '"jpeg_decoder": "torchvision-cpu"' in stored.read_text().replace('":"', '": "')


def _run(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "drscreen.cli", "screen", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


@pytest.mark.slow
def test_kill_9_at_any_point_then_rerun_gives_the_uninterrupted_results(tmp_path: Path) -> None:
    images = tmp_path / "images"
    for seed in range(6):
        write_photo(images / f"k{seed}.png", generate_fundus(seed=40 + seed, size=256).image)
    options = ["--quiet", "--no-explain", "--overlay-size", "128", "--batch-size", "2"]
    reference = tmp_path / "reference"
    assert _run([str(images), "--out", str(reference), *options]).wait(timeout=300) == 0
    expected = {r.id: comparable(r) for r in iter_results(reference)}
    assert len(expected) == 6
    for kill_after in (0, 1, 3):
        out = tmp_path / f"killed{kill_after}"
        process = _run([str(images), "--out", str(out), *options])
        deadline = time.monotonic() + 300
        while len(list((out / "results").glob("*.json"))) < kill_after and time.monotonic() < deadline:
            time.sleep(0.02)
        if kill_after == 0:
            time.sleep(1.0)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert _run([str(images), "--out", str(out), *options]).wait(timeout=300) == 0
        got = {r.id: comparable(r) for r in iter_results(out)}
        assert got == expected, f"killed after {kill_after} results"
        with (out / "results.csv").open(newline="") as stream:
            ids = [row["id"] for row in csv.DictReader(stream)]
        assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))
        assert not list(out.rglob("*.tmp"))


def test_overlay_pngs_decode_to_the_drawn_pixels() -> None:
    """Lesion and disc layers (transparent or opaque, few colours) are written as indexed PNGs,
    other layers (graded alpha: saliency) as RGBA; both decode to the same RGBA pixels."""
    from drscreen.report.folder import _encode, _indexed_png

    drawn = np.zeros((90, 160, 4), np.uint8)
    cv2.circle(drawn, (80, 45), 30, (255, 0, 255, 255), 2)
    drawn[10:14, 20:30] = (200, 30, 40, 255)
    graded = drawn.copy()
    graded[50:60, 100:120] = (0, 0, 255, 120)
    assert _indexed_png(drawn) is not None and _indexed_png(graded) is None
    for layer in (drawn, graded):
        data = np.frombuffer(_encode(layer, ".png"), np.uint8)
        decoded = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
        assert np.array_equal(decoded, layer)
