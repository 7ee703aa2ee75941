"""A corpus of bad and awkward input files, each with the outcome screening must give it.

``write_bad_inputs(folder)`` writes one file per kind and returns a :class:`BadInput` for each:
files the reader must refuse (``"unreadable"``, with the ``drscreen.io`` ``InputError`` code),
images the quality gate must reject (``"ungradable"``, with the ``QualityIssue`` value it must
give first) and awkward but valid fundus photographs that must be screened (``"gradable"``).
Fundus photographs come from :func:`drscreen.synth.generate_fundus`; non-fundus photographs are
scikit-image's packaged sample images. Everything is seeded: the same call writes the same files.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import tifffile
from PIL import Image
from skimage import data as skimage_data

from drscreen.preprocess.enhance import ben_graham
from drscreen.synth.generator import generate_fundus

Outcome = Literal["unreadable", "ungradable", "gradable"]

#: Side (px) of the synthetic fundus photographs in the corpus.
FUNDUS_SIZE = 512


@dataclass(frozen=True)
class BadInput:
    """One corpus file.

    Attributes:
        name: kind of input, unique in the corpus (also the file's stem).
        path: the written file.
        expected_outcome: ``"unreadable"``, ``"ungradable"`` or ``"gradable"``.
        expected_reason: the ``InputError.code`` (unreadable) or the first ``QualityIssue`` value
            (ungradable); None for gradable files.
        description: what the file is, in words.
    """

    name: str
    path: Path
    expected_outcome: Outcome
    expected_reason: str | None
    description: str


def _save_png_header(path: Path, width: int, height: int, pixels: bytes | None = None) -> None:
    """A PNG that declares ``width`` x ``height`` 8-bit grey pixels but holds one compressed row
    (or ``pixels`` as its image data): a few hundred bytes that decode to gigapixels if a reader
    trusts them."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"\x00" * (width + 1), 9) if pixels is None else pixels
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def _save(path: Path, image: np.ndarray, **options: object) -> None:
    Image.fromarray(image).save(path, **options)


def _disc_masked(image: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3) with everything outside a centred disc (radius 0.48 of the short side) black."""
    height, width = image.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    outside = np.hypot(xx - (width - 1) / 2, yy - (height - 1) / 2) > 0.48 * min(height, width)
    masked = image.copy()
    masked[outside] = 0
    return masked


def _screenshot(rng: np.random.Generator) -> np.ndarray:
    """(600, 900, 3) uint8: a title bar, coloured buttons and lines of text on a light window."""
    image = np.full((600, 900, 3), 236, np.uint8)
    cv2.rectangle(image, (0, 0), (899, 40), (40, 60, 110), -1)
    cv2.putText(image, "Patient viewer - DR screening", (12, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    for _ in range(8):
        x, y = int(rng.integers(0, 740)), int(rng.integers(60, 540))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.rectangle(image, (x, y), (x + 150, y + 40), colour, -1)
    for row in range(14):
        cv2.putText(image, f"Field {row}: value {row * 37 % 101}", (20, 90 + 34 * row),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.7, (20, 20, 20), 2)
    return image


def _document() -> np.ndarray:
    """(1100, 850, 3) uint8: a page of black text on white."""
    image = np.full((1100, 850, 3), 250, np.uint8)
    for row in range(30):
        cv2.putText(image, "The quick brown fox jumps over the lazy dog.", (60, 80 + 32 * row),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.7, (10, 10, 10), 1)
    return image


def _exposed(image: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def write_bad_inputs(folder: str | Path, seed: int = 0) -> list[BadInput]:
    """Write the corpus into ``folder`` (created if needed); returns one :class:`BadInput` per file.

    At least 40 kinds; about 20 MB in all and a few seconds on one CPU core.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    generated = generate_fundus(seed, FUNDUS_SIZE)
    fundus = generated.image
    inputs: list[BadInput] = []

    def add(name: str, suffix: str, outcome: Outcome, reason: str | None, description: str,
            write: Callable[[Path], None]) -> None:
        path = root / f"{name}{suffix}"
        write(path)
        inputs.append(BadInput(name, path, outcome, reason, description))

    def image_writer(image: np.ndarray, **options: object) -> Callable[[Path], None]:
        return lambda path: _save(path, image, **options)

    encoded = cv2.imencode(".jpg", cv2.cvtColor(fundus, cv2.COLOR_RGB2BGR))[1].tobytes()
    png = cv2.imencode(".png", cv2.cvtColor(fundus, cv2.COLOR_RGB2BGR))[1].tobytes()

    # Files the reader must refuse.
    add("zero_bytes", ".jpg", "unreadable", "empty", "an empty file", lambda p: p.write_bytes(b""))
    add("text_named_jpg", ".jpg", "unreadable", "not_an_image", "a text file named .jpg",
        lambda p: p.write_text("patient 12, left eye, no image attached\n"))
    add("html_page", ".png", "unreadable", "not_an_image", "an HTML error page saved as .png",
        lambda p: p.write_text("<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>"))
    add("pdf_document", ".jpg", "unreadable", "not_an_image", "a PDF header named .jpg",
        lambda p: p.write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"))
    add("truncated_jpeg", ".jpg", "unreadable", "truncated", "a fundus JPEG cut to 40 % of its bytes",
        lambda p: p.write_bytes(encoded[: int(0.4 * len(encoded))]))
    add("truncated_png", ".png", "unreadable", "truncated", "a fundus PNG cut to 40 % of its bytes",
        lambda p: p.write_bytes(png[: int(0.4 * len(png))]))
    add("corrupt_png", ".png", "unreadable", "corrupt", "a PNG header followed by random bytes as pixel data",
        lambda p: _save_png_header(p, 640, 480, pixels=rng.bytes(4096)))
    add("gif_fundus", ".gif", "unreadable", "unsupported_format", "a fundus saved as GIF",
        image_writer(fundus))
    add("decompression_bomb", ".png", "unreadable", "too_large",
        "a 1 KB PNG declaring 30,000 x 30,000 pixels", lambda p: _save_png_header(p, 30_000, 30_000))
    add("wide_128x40000", ".png", "unreadable", "bad_aspect_ratio",
        "a 128 x 40,000 px black PNG (15 KB; its padded square would be 1.6 gigapixels)",
        image_writer(np.zeros((128, 40_000), np.uint8)))
    add("strip_128x500000", ".png", "unreadable", "bad_aspect_ratio",
        "a PNG header declaring 500,000 x 128 pixels", lambda p: _save_png_header(p, 500_000, 128))
    add("tall_20000x200", ".png", "unreadable", "bad_aspect_ratio",
        "a PNG header declaring 200 x 20,000 pixels", lambda p: _save_png_header(p, 200, 20_000))
    add("one_pixel", ".png", "unreadable", "too_small", "a 1 x 1 px image",
        image_writer(np.full((1, 1, 3), 128, np.uint8)))
    add("tiny_fundus_64", ".png", "unreadable", "too_small", "a fundus at 64 x 64 px",
        image_writer(cv2.resize(fundus, (64, 64), interpolation=cv2.INTER_AREA)))
    add("float_tiff", ".tif", "unreadable", "unsupported_mode", "a fundus as 32-bit float TIFF",
        lambda p: tifffile.imwrite(p, fundus.astype(np.float32) / 255.0, photometric="rgb"))

    # Images the quality gate must reject.
    blanks = {"black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128),
              "red": (200, 40, 30), "blue": (30, 60, 200)}
    for colour_name, colour in blanks.items():
        add(f"blank_{colour_name}", ".png", "ungradable", "blank", f"a uniform {colour_name} image",
            image_writer(np.full((480, 640, 3), colour, np.uint8)))
    add("blank_grey_jpeg", ".jpg", "ungradable", "blank", "a uniform grey JPEG (q75)",
        image_writer(np.full((480, 640, 3), 90, np.uint8), quality=75))
    add("noise_uniform", ".png", "ungradable", "noise", "uniform random RGB noise",
        image_writer(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)))
    add("noise_gaussian", ".png", "ungradable", "noise", "Gaussian RGB noise around mid-grey",
        image_writer(np.clip(rng.normal(128, 40, (480, 640, 3)), 0, 255).astype(np.uint8)))
    add("noise_grey", ".png", "ungradable", "noise", "grey random noise",
        image_writer(np.repeat(rng.integers(0, 256, (480, 640, 1), dtype=np.uint8), 3, axis=2)))
    add("noise_in_disc", ".png", "ungradable", "noise", "RGB noise inside a disc on black",
        image_writer(_disc_masked(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))))
    add("screenshot", ".png", "ungradable", "not_fundus", "a screenshot: title bar, buttons, text",
        image_writer(_screenshot(rng)))
    add("screenshot_in_disc", ".png", "ungradable", "not_fundus", "the screenshot masked to a black disc",
        image_writer(_disc_masked(_screenshot(rng))))
    add("document", ".png", "ungradable", "greyscale", "a page of black text on white",
        image_writer(_document()))
    photos = {"cat": skimage_data.chelsea(), "astronaut": skimage_data.astronaut(),
              "coffee": skimage_data.coffee(), "rocket": skimage_data.rocket()}
    for photo_name, photo in photos.items():
        add(f"photo_{photo_name}", ".jpg", "ungradable", "not_fundus", f"a photo of a {photo_name}",
            image_writer(photo, quality=90))
        add(f"photo_{photo_name}_in_disc", ".png", "ungradable", "not_fundus",
            f"the {photo_name} photo masked to a black disc, like a fundus field of view",
            image_writer(_disc_masked(photo)))
    add("photo_grey_camera", ".png", "ungradable", "greyscale", "a greyscale photo (cameraman)",
        image_writer(skimage_data.camera()))
    add("fundus_greyscale", ".png", "ungradable", "greyscale",
        "a fundus converted to grey (colour cues for lesions lost; not what the model grades)",
        image_writer(cv2.cvtColor(fundus, cv2.COLOR_RGB2GRAY)))
    red_clipped = fundus.copy()
    red_clipped[..., 0] = np.clip(red_clipped[..., 0].astype(np.float32) * 3.0, 0, 255).astype(np.uint8)
    add("fundus_red_saturated", ".png", "ungradable", "channel_saturated",
        "a fundus whose red channel is clipped at 255 over the whole field of view",
        image_writer(red_clipped))
    add("fundus_underexposed", ".png", "ungradable", "too_dark", "a fundus at 12 % exposure",
        image_writer(_exposed(fundus, 0.12)))
    add("fundus_overexposed", ".png", "ungradable", "overexposed", "a fundus at 300 % exposure, clipped",
        image_writer(_exposed(fundus, 3.0)))
    add("fundus_blurred", ".png", "ungradable", "too_blurry", "a fundus blurred with a 6 px Gaussian",
        image_writer(cv2.GaussianBlur(fundus, (0, 0), 6.0)))
    small_disc = np.zeros((700, 900, 3), np.uint8)
    small_disc[200:500, 300:600] = cv2.resize(fundus, (300, 300), interpolation=cv2.INTER_AREA)
    add("fundus_small_in_frame", ".png", "ungradable", "fov_too_small",
        "a fundus 300 px across in a 900 x 700 frame (9 % of it)", image_writer(small_disc))

    # Awkward but valid fundus photographs.
    add("fundus_plain", ".png", "gradable", None, "a synthetic fundus photograph", image_writer(fundus))
    add("fundus_jpeg_q30", ".jpg", "gradable", None, "the fundus as a JPEG at quality 30",
        image_writer(fundus, quality=30))
    add("fundus_16bit_tiff", ".tif", "gradable", None, "the fundus as a 16-bit RGB TIFF",
        lambda p: tifffile.imwrite(p, fundus.astype(np.uint16) * 257, photometric="rgb"))
    rotated = np.ascontiguousarray(np.rot90(fundus, 1))  # stored on its side, EXIF says rotate back

    def exif_rotated(path: Path) -> None:
        exif = Image.Exif()
        exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
        Image.fromarray(rotated).save(path, quality=95, exif=exif)

    add("fundus_exif_rotated", ".jpg", "gradable", None, "a JPEG stored on its side with EXIF orientation 6",
        exif_rotated)
    labelled = fundus.copy()
    cv2.putText(labelled, "OD 2024-05-01", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
    cv2.putText(labelled, "ID 000123", (8, FUNDUS_SIZE - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 1)
    add("fundus_text_label", ".png", "gradable", None, "a fundus with a burnt-in date and ID label",
        image_writer(labelled))
    alpha = np.dstack([fundus, np.full(fundus.shape[:2], 255, np.uint8)])
    add("fundus_rgba", ".png", "gradable", None, "the fundus as RGBA with an opaque alpha channel",
        image_writer(alpha))
    add("fundus_bmp", ".bmp", "gradable", None, "the fundus as BMP", image_writer(fundus))
    wide = np.zeros((FUNDUS_SIZE, FUNDUS_SIZE * 3 // 2, 3), np.uint8)
    wide[:, FUNDUS_SIZE // 4 : FUNDUS_SIZE // 4 + FUNDUS_SIZE] = fundus
    add("fundus_wide_frame", ".png", "gradable", None, "the fundus in a 3:2 frame, as cameras write",
        image_writer(wide))
    add("fundus_small_256", ".png", "gradable", None, "the fundus at 256 x 256 px",
        image_writer(cv2.resize(fundus, (256, 256), interpolation=cv2.INTER_AREA)))
    graham = ben_graham(fundus, generated.geometry.fov_bool(), radius=float(generated.geometry.fov_radius))
    add("fundus_ben_graham", ".png", "gradable", None,
        "a Ben Graham-filtered fundus on mid-grey (how APTOS-224 is distributed)", image_writer(graham))
    add("retina_skimage", ".jpg", "gradable", None, "scikit-image's real retina photograph",
        image_writer(skimage_data.retina(), quality=92))
    return inputs
