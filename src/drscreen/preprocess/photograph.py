"""How a photograph, read reduced (``drscreen.io.draft``), becomes a network input.

Screening reads a large photograph at a fraction of its size (DCT-scaled JPEG decoding or area
averaging, by one rule) because the network and the quality gate need far fewer pixels. Every
path that prepares a photograph (the screening batch path, ``Predictor.prepare`` and
``Predictor.predict_files``) goes through ``prepare_photograph``, so one photograph always gives
one network input.
"""

from __future__ import annotations

from dataclasses import replace

from drscreen.io.draft import ReducedPhotograph
from drscreen.preprocess.fov import FieldOfView
from drscreen.preprocess.pipeline import PreparedImage, PreprocessConfig, Preprocessor


def prepare_reduced(
    config: PreprocessConfig, photo: ReducedPhotograph, fov: FieldOfView | None = None
) -> PreparedImage:
    """``Preprocessor(config).prepare`` of the reduced image with the quality gate in original pixels
    (``fov``: the reduced image's field of view when another preparation found it already).

    Returns the prepared image in the reduced image's geometry; ``quality.measurements
    ["fov_diameter_px"]`` is in original pixels and ``min_fov_diameter_px`` applies to it.
    """
    factor = photo.factor
    thresholds = config.quality_thresholds
    if factor > 1:
        thresholds = replace(thresholds, min_fov_diameter_px=thresholds.min_fov_diameter_px / factor)
    prepared = Preprocessor(replace(config, quality_thresholds=thresholds)).prepare(photo.image, fov)
    if prepared.quality is None or factor == 1:
        return prepared
    measurements = dict(prepared.quality.measurements)
    measurements["fov_diameter_px"] = round(measurements["fov_diameter_px"] * factor, 1)
    return replace(prepared, quality=replace(prepared.quality, measurements=measurements))


def prepare_photograph(config: PreprocessConfig, photo: ReducedPhotograph) -> PreparedImage:
    """``prepare_reduced`` with the crop geometry mapped to the ORIGINAL photograph's pixels."""
    prepared = prepare_reduced(config, photo)
    if photo.factor == 1:
        return prepared
    return replace(prepared, geometry=prepared.geometry.rescaled(photo.factor, photo.original_size))
