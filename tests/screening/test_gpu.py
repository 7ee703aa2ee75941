"""JPEG decoding on a torch device (``drscreen.screening.gpu``), run here with torchvision's CPU
decoder through the same code; the GPU run is ``benchmarks/gpu_throughput.sh``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from drscreen.io.draft import is_jpeg_within_limits, read_reduced
from drscreen.io.limits import ReadLimits
from drscreen.screening import ScreenedImage, Screener, ScreeningFailure, ScreeningInput
from drscreen.screening.gpu import decode_inputs, decode_reduced, reduce_on_device
from drscreen.synth import generate_fundus


def _photograph(path: Path, seed: int, size: tuple[int, int] = (2048, 2048)) -> Path:
    """A synthetic fundus resized to ``size`` (W, H) px, saved as ``path`` (JPEG or PNG by suffix)."""
    image = cv2.resize(generate_fundus(seed=seed, size=512).image, size, interpolation=cv2.INTER_CUBIC)
    Image.fromarray(image).save(path, quality=92)
    return path


def test_the_device_reader_reduces_like_the_cpu_reader(tmp_path: Path) -> None:
    path = _photograph(tmp_path / "p.jpg", seed=2, size=(4100, 3075))
    (on_device,) = decode_reduced([path], device="cpu")
    on_cpu = read_reduced(path)
    assert (on_device.factor, on_device.original_size) == (on_cpu.factor, on_cpu.original_size) == (4, (3075, 4100))
    assert on_device.image.shape == on_cpu.image.shape
    assert np.abs(on_device.image.astype(int) - on_cpu.image.astype(int)).mean() < 2.0
    blocks = torch.arange(5 * 5 * 3, dtype=torch.uint8).reshape(3, 5, 5)
    reduced = reduce_on_device(blocks, 2)
    assert reduced.shape == (3, 3, 3) and reduced[2, 2, 0] == blocks[0, 4, 4] and reduced[0, 0, 0] == 3


def test_only_jpeg_files_within_the_limits_are_decoded_on_the_device(tmp_path: Path) -> None:
    jpeg = _photograph(tmp_path / "a.jpg", seed=0)
    png = _photograph(tmp_path / "b.png", seed=1)
    misnamed = _photograph(tmp_path / "c.jpg.png", seed=1)
    misnamed = misnamed.rename(tmp_path / "c.jpeg")  # a PNG named .jpeg
    broken = tmp_path / "d.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    items = [
        ScreeningInput(id="jpeg", path=jpeg), ScreeningInput(id="png", path=png),
        ScreeningInput(id="misnamed", path=misnamed), ScreeningInput(id="broken", path=broken),
        ScreeningInput(id="array", image=np.zeros((600, 600, 3), np.uint8)), ScreeningInput(id="jpeg2", path=jpeg),
    ]  # fmt: skip
    photographs = decode_inputs(items, device="cpu")
    assert [photo is not None for photo in photographs] == [True, False, False, False, False, True]
    assert photographs[0] is not None and photographs[0].factor == 2
    assert np.abs(photographs[0].image.astype(int) - read_reduced(jpeg).image.astype(int)).mean() < 2.0
    assert is_jpeg_within_limits(jpeg) and not is_jpeg_within_limits(jpeg, ReadLimits(max_pixels=1000))


def test_a_file_the_device_cannot_decode_falls_back_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One failing file fails nvJPEG's whole batch: the others are decoded one by one."""
    import drscreen.screening.gpu as gpu

    good = [_photograph(tmp_path / f"{i}.jpg", seed=i) for i in range(2)]
    bad = _photograph(tmp_path / "bad.jpg", seed=3)
    decode = gpu.decode_reduced

    def failing(paths: list[Path], device: str) -> list[object]:
        if bad in paths:
            raise RuntimeError("nvjpeg: unsupported")
        return decode(paths, device)

    monkeypatch.setattr(gpu, "decode_reduced", failing)
    photographs = decode_inputs([ScreeningInput(id=p.stem, path=p) for p in (good[0], bad, good[1])], device="cpu")
    assert [photo is not None for photo in photographs] == [True, False, True]


def test_screening_with_device_decoding_gives_the_cpu_decoders_results(tmp_path: Path) -> None:
    """Same grades, referrals, failures and order; probabilities within the two decoders' difference."""
    paths = [_photograph(tmp_path / f"s{seed}.jpg", seed) for seed in range(3)]
    paths.append(_photograph(tmp_path / "s3.png", 3))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    items = [ScreeningInput(id=p.name, path=p) for p in [*paths[:2], tmp_path / "broken.jpg", *paths[2:]]]
    on_cpu = Screener(explain=False, batch_size=4, jpeg_decode="cpu")
    on_device = Screener(explain=False, batch_size=4, jpeg_decode="device")
    assert on_cpu.decode_device is None and on_device.decode_device == "cpu"
    assert Screener(explain=False, jpeg_decode="auto").decode_device is None  # auto: the device only on a GPU
    assert (on_cpu.settings["jpeg_decoder"], on_device.settings["jpeg_decoder"]) == ("cpu", "torchvision-cpu")
    assert on_cpu.settings_key != on_device.settings_key  # stored results of the other decoder are redone
    for workers in (0, 2):
        reference = list(on_cpu.screen(items, workers=workers))
        decoded = list(on_device.screen(items, workers=workers))
        assert len(decoded) == len(reference) == len(items)
        pixels_differ = [
            not np.array_equal(one.image, other.image) for one, other in zip(reference, decoded, strict=True)
            if isinstance(one, ScreenedImage) and isinstance(other, ScreenedImage)
        ]  # fmt: skip
        assert pixels_differ == [True, True, True, False]  # the JPEGs took the other decoder, the PNG did not
        for one, other in zip(reference, decoded, strict=True):
            if isinstance(one, ScreeningFailure):
                assert isinstance(other, ScreeningFailure) and (other.code, other.message) == (one.code, one.message)
                continue
            assert isinstance(one, ScreenedImage) and isinstance(other, ScreenedImage)
            assert other.result.id == one.result.id and other.image.shape == one.image.shape
            assert one.result.dr is not None and other.result.dr is not None
            assert other.result.dr.grade == one.result.dr.grade
            assert one.result.referable is not None and other.result.referable is not None
            assert other.result.referable.referable == one.result.referable.referable
            assert np.abs(np.subtract(other.result.dr.probabilities, one.result.dr.probabilities)).max() < 0.05


def test_the_screener_refuses_an_unknown_decoder() -> None:
    with pytest.raises(ValueError, match="jpeg_decode"):
        Screener(explain=False, jpeg_decode="gpu")
