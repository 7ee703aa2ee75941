"""drscreen.io: every format, bit depth and failure mode, on files the tests write themselves."""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import convert_color_space
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, RLELossless, generate_uid

from drscreen.io import (
    DEFAULT_LIMITS,
    SUPPORTED_EXTENSIONS,
    InputError,
    ReadLimits,
    find_images,
    read_image,
    read_mask,
)

OPHTHALMIC_PHOTOGRAPHY_8BIT = "1.2.840.10008.5.1.4.1.1.77.1.5.1"


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    """A smooth (160, 200, 3) uint8 test picture (smooth so that JPEG stays close)."""
    y, x = np.mgrid[0:160, 0:200]
    return np.stack([x * 255 // 199, y * 255 // 159, (x + y) * 255 // 358], axis=-1).astype(np.uint8)


def _scaled(values: np.ndarray, max_value: int) -> np.ndarray:
    return np.rint(values.astype(np.float64) * 255 / max_value).astype(np.uint8)


def _dicom(pixels: np.ndarray, photometric: str, bits_stored: int = 8) -> Dataset:
    """A minimal Ophthalmic Photography dataset holding ``pixels`` uncompressed."""
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.SOPClassUID = OPHTHALMIC_PHOTOGRAPHY_8BIT
    dataset.SOPInstanceUID = generate_uid()
    dataset.Modality = "OP"
    dataset.set_pixel_data(pixels, photometric_interpretation=photometric, bits_stored=bits_stored)
    return dataset


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` but holds no pixel data (a decompression-bomb stand-in)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


# ---------------------------------------------------------------------------------------------
# formats and bit depths


def test_jpeg_png_bmp_8bit_rgb(tmp_path: Path, rgb: np.ndarray) -> None:
    for fmt, suffix in [("PNG", ".png"), ("BMP", ".bmp"), ("TIFF", ".tif")]:
        Image.fromarray(rgb).save(tmp_path / f"a{suffix}", fmt)
        out = read_image(tmp_path / f"a{suffix}")
        assert out.dtype == np.uint8 and out.shape == (160, 200, 3)
        np.testing.assert_array_equal(out, rgb, err_msg=fmt)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == (160, 200, 3) and np.abs(out.astype(int) - rgb).mean() < 2


def test_png_grey_palette_bilevel_and_alpha(tmp_path: Path, rgb: np.ndarray) -> None:
    grey = rgb[..., 0]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    out = read_image(tmp_path / "grey.png")
    assert all(np.array_equal(out[..., c], grey) for c in range(3))

    Image.fromarray(rgb).quantize(16).save(tmp_path / "palette.png")
    expected = np.asarray(Image.open(tmp_path / "palette.png").convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "palette.png"), expected)

    Image.fromarray(grey > 128).save(tmp_path / "bilevel.png")
    assert set(np.unique(read_image(tmp_path / "bilevel.png"))) == {0, 255}

    alpha = np.zeros((160, 200), np.uint8)
    alpha[:, 100:] = 255
    alpha[:80, 100:] = 128
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "rgba.png")
    out = read_image(tmp_path / "rgba.png").astype(int)
    assert out[:, :100].max() == 0, "transparent pixels are black (the fundus background)"
    np.testing.assert_array_equal(out[80:, 100:], rgb[80:, 100:])
    assert np.abs(out[:80, 100:] - rgb[:80, 100:].astype(int) * 128 / 255).max() <= 1

    Image.fromarray(np.dstack([grey, alpha]), "LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    assert out[:, :100].max() == 0 and np.array_equal(out[80:, 100:, 1], grey[80:, 100:])

    palette_with_transparency = Image.fromarray(rgb).quantize(16)
    palette_with_transparency.info["transparency"] = 0
    palette_with_transparency.save(tmp_path / "trns.png")
    indices = np.asarray(Image.open(tmp_path / "trns.png"))
    assert read_image(tmp_path / "trns.png")[indices == 0].max() == 0


def test_16bit_is_scaled_by_declared_depth_not_stretched(tmp_path: Path) -> None:
    grey16 = np.linspace(0, 4095, 160 * 200).reshape(160, 200).astype(np.uint16)  # 12-bit data
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    out = read_image(tmp_path / "g16.png")
    # A 16-bit PNG declares 16 bits: 12-bit content stays dark (4095 -> 16), never stretched to 255.
    np.testing.assert_array_equal(out[..., 0], _scaled(grey16, 65535))
    assert out.max() == 16

    rgb16 = np.stack([grey16 * 16, grey16, 65535 - grey16 * 16], axis=-1).astype(np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16, photometric="rgb", compression="lzw")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb16.tif"), _scaled(rgb16, 65535))

    tifffile.imwrite(tmp_path / "g16.tif", grey16, photometric="minisblack")
    np.testing.assert_array_equal(read_image(tmp_path / "g16.tif")[..., 2], _scaled(grey16, 65535))

    # TIFF MaxSampleValue declares 12 bits: 4095 is full scale.
    tifffile.imwrite(tmp_path / "g12.tif", grey16, photometric="minisblack", extratags=[(281, "H", 1, 4095)])
    np.testing.assert_array_equal(read_image(tmp_path / "g12.tif")[..., 0], _scaled(grey16, 4095))

    # Pillow reads 16-bit RGB PNG as 8-bit (high byte): within one grey level of exact scaling.
    import cv2

    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[..., ::-1])
    assert np.abs(read_image(tmp_path / "rgb16.png").astype(int) - _scaled(rgb16, 65535)).max() <= 1


def test_tiff_8bit_lzw_and_cmyk_jpeg(tmp_path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(rgb).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(read_image(tmp_path / "lzw.tif"), rgb)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    out = read_image(tmp_path / "cmyk.jpg")
    assert out.shape == (160, 200, 3) and np.abs(out.astype(int) - rgb).mean() < 4


def test_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    stored = np.zeros((200, 300, 3), np.uint8)  # landscape as stored, with a red top-left corner
    stored[:50, :50] = (255, 0, 0)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    out = read_image(tmp_path / "rotated.jpg")
    assert out.shape == (300, 200, 3)
    assert out[:40, -40:, 0].min() > 200, "the stored top-left corner is displayed top-right"
    assert out[-40:, :40, 0].max() < 50


def test_tiff_orientation_tag_on_16bit(tmp_path: Path) -> None:
    stored = np.zeros((200, 300), np.uint16)
    stored[:50, :50] = 65535
    tifffile.imwrite(tmp_path / "o6.tif", stored, extratags=[(274, "H", 1, 6)])
    out = read_image(tmp_path / "o6.tif")
    assert out.shape == (300, 200, 3) and out[:50, -50:].min() == 255 and out[:, :150].max() == 0


def test_dicom_rgb_monochrome_ybr_multiframe_and_compressed(tmp_path: Path, rgb: np.ndarray) -> None:
    _dicom(rgb, "RGB").save_as(tmp_path / "rgb.dcm", enforce_file_format=True)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.dcm"), rgb)

    # A DICOM file is recognised by its preamble, whatever its name.
    (tmp_path / "rgb.dcm").rename(tmp_path / "IM000001")
    np.testing.assert_array_equal(read_image(tmp_path / "IM000001"), rgb)

    grey12 = np.linspace(0, 4095, 160 * 200).reshape(160, 200).astype(np.uint16)
    _dicom(grey12, "MONOCHROME2", bits_stored=12).save_as(tmp_path / "mono2.dcm")
    np.testing.assert_array_equal(read_image(tmp_path / "mono2.dcm")[..., 0], _scaled(grey12, 4095))
    _dicom(grey12, "MONOCHROME1", bits_stored=12).save_as(tmp_path / "mono1.dcm")
    np.testing.assert_array_equal(read_image(tmp_path / "mono1.dcm")[..., 0], _scaled(4095 - grey12, 4095))

    _dicom(convert_color_space(rgb, "RGB", "YBR_FULL"), "YBR_FULL").save_as(tmp_path / "ybr.dcm")
    assert np.abs(read_image(tmp_path / "ybr.dcm").astype(int) - rgb).max() <= 1

    _dicom(np.stack([rgb, 255 - rgb]), "RGB").save_as(tmp_path / "frames.dcm")
    np.testing.assert_array_equal(read_image(tmp_path / "frames.dcm"), rgb)

    rle = _dicom(rgb, "RGB")
    rle.compress(RLELossless)
    rle.save_as(tmp_path / "rle.dcm")
    np.testing.assert_array_equal(read_image(tmp_path / "rle.dcm"), rgb)

    jpeg_bytes = io.BytesIO()
    Image.fromarray(rgb).save(jpeg_bytes, "JPEG", quality=95)
    baseline = _dicom(rgb, "RGB")
    baseline.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    baseline.PhotometricInterpretation = "YBR_FULL_422"
    baseline.PixelData = encapsulate([jpeg_bytes.getvalue()])
    baseline["PixelData"].VR = "OB"
    baseline.save_as(tmp_path / "jpeg.dcm")
    decoded_by_pillow = np.asarray(Image.open(jpeg_bytes))
    assert np.abs(read_image(tmp_path / "jpeg.dcm").astype(int) - decoded_by_pillow).max() <= 1


# ---------------------------------------------------------------------------------------------
# errors


def _expect(path: Path, code: str, **kwargs: object) -> InputError:
    with pytest.raises(InputError) as caught:
        read_image(path, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == code, caught.value
    assert str(path) in str(caught.value) and caught.value.path == path
    assert caught.value.reason and caught.value.reason in str(caught.value)
    return caught.value


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom's remarks while probing a text file
def test_missing_folder_empty_and_not_an_image(tmp_path: Path) -> None:
    _expect(tmp_path / "nope.jpg", "missing")
    _expect(tmp_path, "not_a_file")
    (tmp_path / "empty.png").write_bytes(b"")
    _expect(tmp_path / "empty.png", "empty")
    (tmp_path / "notes.jpg").write_text("patient notes, not a photograph\n")
    _expect(tmp_path / "notes.jpg", "not_an_image")
    (tmp_path / "notes.dcm").write_text("not DICOM either\n")
    _expect(tmp_path / "notes.dcm", "not_an_image")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF"])
def test_truncated_files_are_refused(tmp_path: Path, rgb: np.ndarray, fmt: str) -> None:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    _expect(path, "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_16bit_tiff_and_dicom(tmp_path: Path, rgb: np.ndarray) -> None:
    tifffile.imwrite(tmp_path / "full.tif", rgb.astype(np.uint16) * 257, photometric="rgb")
    data = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    assert _expect(tmp_path / "cut.tif", "truncated").path.name == "cut.tif"
    _dicom(rgb, "RGB").save_as(tmp_path / "full.dcm", enforce_file_format=True)
    data = (tmp_path / "full.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) // 2])
    _expect(tmp_path / "cut.dcm", "truncated")


def test_corrupt_png(tmp_path: Path, rgb: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # damage the compressed stream
    (tmp_path / "bad.png").write_bytes(bytes(data))
    _expect(tmp_path / "bad.png", "corrupt")


def test_size_limits_and_decompression_bombs(tmp_path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(rgb[:100]).save(tmp_path / "small.png")
    assert "128" in _expect(tmp_path / "small.png", "too_small").reason
    assert read_image(tmp_path / "small.png", limits=ReadLimits(min_side=64)).shape == (100, 200, 3)
    Image.fromarray(rgb).save(tmp_path / "ok.png")
    _expect(tmp_path / "ok.png", "too_large", limits=ReadLimits(max_pixels=10_000))
    # Declared sizes are refused from the header, before decoding anything.
    _expect(_png_header_only(tmp_path / "70mp.png", 10_000, 7_000), "too_large")
    # Pillow's own guards (its warning above ~89 MP, its error above ~179 MP) become InputError too.
    generous = ReadLimits(max_pixels=10**10)
    _expect(_png_header_only(tmp_path / "100mp.png", 10_000, 10_000), "too_large", limits=generous)
    _expect(_png_header_only(tmp_path / "400mp.png", 20_000, 20_000), "too_large", limits=generous)
    assert DEFAULT_LIMITS.max_pixels == 64_000_000 and DEFAULT_LIMITS.min_side == 128


def test_extreme_aspect_ratios_are_refused_from_the_header(tmp_path: Path) -> None:
    """A 15 KB PNG of 128 x 40,000 px passes the pixel limit, but every step that works on a square
    around it would allocate gigapixels: refused before decoding, whichever side is longer."""
    Image.fromarray(np.zeros((128, 40_000), np.uint8)).save(tmp_path / "wide.png")
    assert (tmp_path / "wide.png").stat().st_size < 100_000
    assert "312.5:1" in _expect(tmp_path / "wide.png", "bad_aspect_ratio").reason
    _expect(_png_header_only(tmp_path / "strip.png", 500_000, 128), "bad_aspect_ratio")
    _expect(_png_header_only(tmp_path / "tall.png", 200, 20_000), "bad_aspect_ratio")
    Image.fromarray(np.zeros((128, 512), np.uint8)).save(tmp_path / "four_to_one.png")
    assert read_image(tmp_path / "four_to_one.png").shape == (128, 512, 3)
    assert read_image(tmp_path / "wide.png", limits=ReadLimits(max_aspect_ratio=400)).shape == (128, 40_000, 3)
    with pytest.raises(ValueError):
        ReadLimits(max_aspect_ratio=0.5)


def test_unsupported_format_and_modes(tmp_path: Path, rgb: np.ndarray) -> None:
    Image.fromarray(rgb).save(tmp_path / "anim.gif")
    _expect(tmp_path / "anim.gif", "unsupported_format")
    tifffile.imwrite(tmp_path / "float.tif", rgb[..., 0].astype(np.float32))
    _expect(tmp_path / "float.tif", "unsupported_mode")
    tifffile.imwrite(tmp_path / "complex.tif", rgb[..., 0].astype(np.complex64))
    _expect(tmp_path / "complex.tif", "unsupported_mode")
    signed = _dicom(rgb[..., 0].astype(np.int16), "MONOCHROME2", bits_stored=16)
    signed.save_as(tmp_path / "signed.dcm")
    _expect(tmp_path / "signed.dcm", "unsupported_mode")
    no_pixels = _dicom(rgb, "RGB")
    del no_pixels.PixelData
    no_pixels.save_as(tmp_path / "report.dcm")
    _expect(tmp_path / "report.dcm", "not_an_image")


def test_input_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(InputError("/x/y.jpg", "file is empty (0 bytes)", "empty")))
    assert (error.path, error.reason, error.code) == (Path("/x/y.jpg"), "file is empty (0 bytes)", "empty")


# ---------------------------------------------------------------------------------------------
# masks


def test_read_mask_dataset_forms(tmp_path: Path) -> None:
    truth = np.zeros((40, 60), bool)
    truth[10:20, 5:50] = True

    idrid_style = np.zeros((40, 60, 3), np.uint8)
    idrid_style[truth, 0] = 255  # lesion in the red channel only, as the IDRiD TIFFs store it
    tifffile.imwrite(tmp_path / "IDRiD_01_MA.tif", idrid_style, photometric="rgb")
    Image.fromarray(idrid_style).save(tmp_path / "pillow_rgb.tif", compression="tiff_lzw")
    Image.fromarray(truth.astype(np.uint8) * 255).save(tmp_path / "grey255.png")
    Image.fromarray(truth.astype(np.uint8)).save(tmp_path / "grey01.png")
    Image.fromarray(truth).save(tmp_path / "bilevel.png")
    Image.fromarray(truth.astype(np.uint16)).save(tmp_path / "label16.png")  # value 1 of 65535
    palette = Image.fromarray(truth.astype(np.uint8), "L").convert("P")
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.save(tmp_path / "palette.png")
    for path in sorted(tmp_path.iterdir()):
        mask = read_mask(path)
        assert mask.dtype == bool and mask.shape == (40, 60), path.name
        np.testing.assert_array_equal(mask, truth, err_msg=path.name)

    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[truth, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "alpha.png"), truth)

    with pytest.raises(InputError) as caught:
        read_image(tmp_path / "grey255.png")
    assert caught.value.code == "too_small", "masks may be small, photographs may not"
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(InputError, match="empty.tif"):
        read_mask(tmp_path / "empty.tif")


# ---------------------------------------------------------------------------------------------
# folders


def test_find_images(tmp_path: Path) -> None:
    for name in ["b.JPG", "a.png", "c.Tiff", "d.dcm", "e.txt", ".hidden.jpg", "labels.csv"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f.jpeg").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "g.png").write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    assert [p.name for p in find_images(tmp_path)] == ["a.png", "b.JPG", "c.Tiff", "d.dcm"]
    assert [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path, recursive=True)] == [
        "a.png", "b.JPG", "c.Tiff", "d.dcm", "sub/f.jpeg",
    ]
    with pytest.raises(InputError) as caught:
        find_images(tmp_path / "absent")
    assert caught.value.code == "missing"
    with pytest.raises(InputError) as caught:
        find_images(tmp_path / "a.png")
    assert caught.value.code == "not_a_folder"
    assert {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".dcm"} <= SUPPORTED_EXTENSIONS


def test_refuses_to_read_when_truncated_loading_was_switched_on(
    tmp_path: Path, rgb: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.fromarray(rgb).save(tmp_path / "a.png")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        read_image(tmp_path / "a.png")
