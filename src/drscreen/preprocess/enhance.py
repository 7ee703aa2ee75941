"""Contrast enhancement of fundus photos: CLAHE and Ben Graham's local-average subtraction.

Both take and return (H, W, 3) uint8 RGB. They are meant for the square crop produced by
:class:`~drscreen.preprocess.geometry.CropGeometry`, where the retinal disc is centred and its
radius is known, but work on any image.

* CLAHE: Siebert & Rostalski (lightweight U²-Net for lesion segmentation) crop the images to the
  retinal disc, resize them to 512x512 and apply CLAHE; the paper does not say on which channel.
  Here CLAHE runs on the lightness channel L of CIE L*a*b*, which equalises contrast without
  shifting hues (equalising R, G and B separately would change the colour of lesions).
* Ben Graham's method (Kaggle Diabetic Retinopathy Detection, 2015), used by Tian et al.
  (fine-grained DR grading) through an APTOS 2019 notebook: subtract a Gaussian-blurred copy to
  remove slow illumination changes, ``4 * I - 4 * blur(I) + 128``, and blank a thin band at the
  disc's edge (where the blur mixes in the black background and leaves a bright halo) to grey 128.
* Normalised Ben Graham (``ben_graham_normalised``): the same local-average subtraction, then each
  channel scaled to a fixed standard deviation inside the field of view. The gain no longer
  depends on the camera, on a contrast stretch or on a Ben Graham filter a publisher already
  applied at a coarser scale, so a raw photograph and a derivative of it give nearly the same image.
"""

from __future__ import annotations

import cv2
import numpy as np

#: CLAHE clip limit (OpenCV's default scale: 1 = no contrast limiting beyond plain AHE's bins).
CLAHE_CLIP_LIMIT = 2.0
#: CLAHE tiles per image side (8 x 8 tiles of 64 px on a 512 px crop).
CLAHE_TILE_GRID = (8, 8)
#: Gaussian sigma as a fraction of the disc radius (Graham: sigma 10 px on discs of radius 300 px).
BEN_GRAHAM_SIGMA_FRACTION = 1 / 30
#: Fraction of the disc radius kept by Ben Graham's method; the outer band is set to grey 128.
BEN_GRAHAM_KEEP_FRACTION = 0.9
#: Standard deviation (grey levels) of each channel of the normalised Ben Graham output in the FOV.
BEN_GRAHAM_NORMALISED_STD = 20.0
#: Radius of the central disc whose contrast sets that gain, as a fraction of the FOV radius.
SPREAD_FRACTION = 0.8
#: Sigma of the light smoothing of the normalised variant, as a fraction of the FOV radius (0.7 px
#: at 224 px): removes the pixel noise that a publisher's filter and JPEG leave in a derivative.
FINE_SIGMA_FRACTION = 0.006


def _check_rgb(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")


def clahe(
    image: np.ndarray,
    clip_limit: float = CLAHE_CLIP_LIMIT,
    tile_grid: tuple[int, int] = CLAHE_TILE_GRID,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of the L*a*b* lightness of ``image``.

    Args:
        image: (H, W, 3) uint8 RGB.
        clip_limit: OpenCV CLAHE clip limit.
        tile_grid: number of tiles (columns, rows).
        mask: optional (H, W) bool field of view; pixels outside are set to black afterwards, since
            CLAHE otherwise lifts the noise of the dark background.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    _check_rgb(image)
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    equaliser = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=tile_grid)
    lab[..., 0] = equaliser.apply(np.ascontiguousarray(lab[..., 0]))
    out = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    if mask is not None:
        out[~mask] = 0
    return out


def ben_graham(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    radius: float | None = None,
    sigma_fraction: float = BEN_GRAHAM_SIGMA_FRACTION,
    keep_fraction: float = BEN_GRAHAM_KEEP_FRACTION,
) -> np.ndarray:
    """Ben Graham's preprocessing: ``clip(4 * I - 4 * GaussianBlur(I) + 128)``, disc edge blanked.

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: optional (H, W) bool field of view. Pixels farther than ``(1 - keep_fraction) *
            radius`` inside its edge, and all pixels outside it, are set to grey 128.
        radius: disc radius in px, which sets the blur scale; default half the shorter image
            side (the disc of a square FOV crop).
        sigma_fraction: Gaussian sigma as a fraction of ``radius``.
        keep_fraction: fraction of the radius kept when ``mask`` is given.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    _check_rgb(image)
    radius = min(image.shape[:2]) / 2 if radius is None else radius
    sigma = max(sigma_fraction * radius, 0.5)
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    out = cv2.addWeighted(image, 4.0, blurred, -4.0, 128.0)  # saturates to uint8
    if mask is not None:
        band = (1.0 - keep_fraction) * radius
        # Distance of each FOV pixel to the nearest non-FOV pixel (the image border does not count).
        depth = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        out[depth <= band] = 128
    return out


def ben_graham_normalised(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    radius: float | None = None,
    sigma_fraction: float = BEN_GRAHAM_SIGMA_FRACTION,
    keep_fraction: float = BEN_GRAHAM_KEEP_FRACTION,
    target_std: float = BEN_GRAHAM_NORMALISED_STD,
) -> np.ndarray:
    """Ben Graham's local-average subtraction as a band-pass with a per-channel gain set by the
    image itself: ``clip(128 + target_std * D / std_c)`` with ``D = fine_blur(I) - blur(I)``
    (``fine_blur`` at ``FINE_SIGMA_FRACTION`` of ``radius``), ``std_c`` the channel's standard
    deviation of ``D`` over the central disc (``SPREAD_FRACTION`` of ``radius`` around the image
    centre, inside the kept FOV), which leaves out the bright rim a publisher's filter leaves at
    the disc's edge.

    Args:
        image: (H, W, 3) uint8 RGB.
        mask: optional (H, W) bool field of view; the band near its edge and everything outside
            it are set to grey 128, as in ``ben_graham``.
        radius: disc radius in px (blur scale); default half the shorter image side.
        sigma_fraction: Gaussian sigma as a fraction of ``radius``.
        keep_fraction: fraction of the radius kept when ``mask`` is given.
        target_std: standard deviation of each output channel in the kept disc, grey levels.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    _check_rgb(image)
    radius = min(image.shape[:2]) / 2 if radius is None else radius
    sigma = max(sigma_fraction * radius, 0.5)
    pixels = image.astype(np.float32)
    fine = cv2.GaussianBlur(pixels, (0, 0), max(FINE_SIGMA_FRACTION * radius, 0.3))
    detail = fine - cv2.GaussianBlur(pixels, (0, 0), sigma)
    kept = np.ones(image.shape[:2], dtype=bool)
    if mask is not None:
        depth = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        kept = depth > (1.0 - keep_fraction) * radius
    rows, columns = np.ogrid[: image.shape[0], : image.shape[1]]
    centre_distance = np.hypot(rows - (image.shape[0] - 1) / 2, columns - (image.shape[1] - 1) / 2)
    central = kept & (centre_distance <= SPREAD_FRACTION * radius)
    if central.any():
        spread = detail[central].std(axis=0)
        detail *= target_std / np.maximum(spread, 1e-3)
    out = np.clip(np.rint(detail + 128.0), 0, 255).astype(np.uint8)
    out[~kept] = 128
    return out
