"""Screening: photographs in, per-image results with per-patient recommendations out.

``collect_inputs`` reads what a user gives (files, folders, CSV manifests, DICOM, arrays);
``Screener`` turns each photograph into an ``ImageResult`` (schema in ``schema.py``) through
the inference core; ``patient_results`` applies the worst-eye rule and gives one
recommendation per patient visit. Writing the output folder is ``drscreen.report``'s job.
"""

from drscreen.screening.inputs import ManifestError, ScreeningInput, collect_inputs, read_manifest
from drscreen.screening.patients import patient_results
from drscreen.screening.schema import (
    RESEARCH_NOTICE,
    SCHEMA_VERSION,
    ImageResult,
    PatientResult,
    image_result_json_schema,
)
from drscreen.screening.screener import (
    DEFAULT_LESION_MODEL,
    ScreenedImage,
    Screener,
    ScreeningFailure,
    content_sha256,
)

__all__ = [
    "DEFAULT_LESION_MODEL",
    "RESEARCH_NOTICE",
    "SCHEMA_VERSION",
    "ImageResult",
    "ManifestError",
    "PatientResult",
    "ScreenedImage",
    "Screener",
    "ScreeningFailure",
    "ScreeningInput",
    "collect_inputs",
    "content_sha256",
    "image_result_json_schema",
    "patient_results",
    "read_manifest",
]
