"""Synthetic photographs toned like real ones: Reinhard colour transfer and a camera JPEG.

The generator (``drscreen.synth``) already models the camera: white balance, gamma, haze,
defocus blur, sensor noise and JPEG compression (``drscreen.synth.camera``). What it cannot
know is the colour of a given camera's photographs. ``tone_like`` gives a synthetic fundus the
lαβ statistics of a real photograph's field of view (``reinhard_transfer``, the colour step of
ELLG) and ``recolour_files`` does so for a list of files, each with a reference drawn at random,
re-encoding the result as a JPEG of random quality as a camera would. Masks are untouched: no
pixel moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from drscreen.augment.colour import reinhard_transfer
from drscreen.io import read_image
from drscreen.preprocess import detect_fov

#: Side to which a reference is reduced before its statistics are measured (they barely change).
REFERENCE_SIDE = 512
#: JPEG quality range of the re-encoded photographs.
JPEG_QUALITY = (80, 95)


def tone_like(image: np.ndarray, reference: np.ndarray, reference_fov: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3) with the lαβ mean and spread of ``reference``'s field of view.

    ``reference``: RGB uint8 (H', W', 3), any size; ``reference_fov``: its (H', W') bool field of
    view when already known (else detected). Pixels outside ``image``'s field of view keep their
    colour (black).
    """
    if reference_fov is None:
        reference_fov = detect_fov(reference).mask
    return reinhard_transfer(image, reference, detect_fov(image).mask, reference_fov)


def load_references(paths: Sequence[str | Path], side: int = REFERENCE_SIDE) -> list[np.ndarray]:
    """Real photographs as RGB uint8 arrays whose longer side is at most ``side`` px."""
    references = []
    for path in paths:
        image = read_image(path)
        scale = side / max(image.shape[:2])
        if scale < 1:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        references.append(image)
    return references


def recolour_files(
    pairs: Sequence[tuple[str | Path, str | Path]], references: Sequence[np.ndarray], seed: int = 0
) -> list[int]:
    """For each ``(source, target)`` file pair: ``tone_like`` a random reference, write a JPEG.

    Returns the index of the reference each image took. The JPEG quality is drawn uniformly
    from ``JPEG_QUALITY``; targets are written whatever their extension says (use ``.jpg``).
    """
    if not references:
        raise ValueError("recolour_files needs at least one reference photograph")
    rng = np.random.default_rng(seed)
    reference_fovs = [detect_fov(reference).mask for reference in references]  # once per reference
    chosen = []
    for source, target in pairs:
        index = int(rng.integers(len(references)))
        quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
        toned = tone_like(read_image(source), references[index], reference_fovs[index])
        ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(toned, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {source}")
        Path(target).write_bytes(buffer.tobytes())
        chosen.append(index)
    return chosen
