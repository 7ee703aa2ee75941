"""The screening result schema: what ``drscreen screen``, the Python API and the web app return.

Pydantic models, so that the JSON written per image is validated on the way out and its JSON
Schema is generated from the code (``image_result_json_schema``; published in docs/usage.md and
written into every output folder). ``SCHEMA_VERSION`` changes whenever a field changes meaning.

Coordinates are ``(x, y)`` pixels of the ORIGINAL photograph; areas are original pixels.
Everything here is research output, not medical advice (``RESEARCH_NOTICE``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Version of the result layout (``ImageResult.schema_version``).
SCHEMA_VERSION = "1.1"
#: Printed with every result.
RESEARCH_NOTICE = (
    "Research output of drscreen, not a medical device: not for diagnosis, screening decisions or patient care."
)

Laterality = Literal["R", "L"]
ImageStatus = Literal["screened", "ungradable"]
Recommendation = Literal["refer", "rescreen_12_months", "retake_or_refer"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QualityResult(_Strict):
    """The quality gate's verdict on the photograph as it arrived."""

    gradable: bool
    reasons: list[str] = Field(description="reason codes (drscreen.preprocess.QualityIssue values) when not gradable")
    measures: dict[str, float | None] = Field(description="the gate's measurements, for review")


class GradeResult(_Strict):
    """One grading output: the grade, its name and the probability of every grade."""

    grade: int
    name: str
    probabilities: list[float]
    validated_on_real_data: bool


class ReferableResult(_Strict):
    """Referable diabetic eye disease (DR >= 2 or DME >= 1) at the operating point."""

    score: float = Field(description="probability of referable disease, 0-1")
    referable: bool
    threshold: float
    operating_point: str = Field(description="how the threshold was chosen")
    from_grades: list[str] = Field(description="grades the score combines (dr, dme)")
    validated_on_real_data: bool


class LesionFinding(_Strict):
    """One structure in one retinal region: connected components above the threshold."""

    code: str = Field(description="MA, HE, EX, SE or OD")
    name: str
    region: Literal["optic_disc", "macula", "rest", "all"]
    count: int
    area_px: float = Field(description="area in original-image pixels")
    validated_on_real_data: bool


class LandmarkResult(_Strict):
    """Optic disc and fovea found on the image, in original pixels, and the laterality they imply."""

    disc_center: tuple[float, float]
    disc_diameter_px: float
    disc_confidence: float
    disc_source: str
    fovea_center: tuple[float, float]
    fovea_confidence: float
    laterality: Laterality | None
    laterality_confidence: float


class ExplanationResult(_Strict):
    """Which saliency method made the map, for which score, and whether it fell back."""

    method: str
    target: str
    settings: dict[str, Any]
    degenerate: bool
    fallback: bool
    skipped: list[str]


class LesionModelProvenance(_Strict):
    """The separate lesion segmenter whose maps gave the lesion findings, overlays and optic disc."""

    model_name: str
    model_version: str | None
    weights_sha256: str
    runtime: str
    preprocess: dict[str, Any]


class Provenance(_Strict):
    """Everything needed to reproduce the result (``model_*`` and ``weights_sha256``: the grading model)."""

    drscreen_version: str
    model_name: str
    model_version: str | None
    weights_sha256: str
    runtime: str
    preprocess: dict[str, Any]
    settings: dict[str, Any]
    lesion_model: LesionModelProvenance | None = Field(
        default=None,
        description="the lesion segmenter that gave the lesion findings, overlays and optic disc; "
        "null: the grading model's own lesion maps",
    )
    settings_key: str = Field(description="hash of everything above that changes a result")
    seconds: float = Field(description="wall time of this image, read to written")
    created: str = Field(description="UTC time, ISO 8601")


class ImageResult(_Strict):
    """The screening result of one photograph."""

    schema_version: str = SCHEMA_VERSION
    notice: str = RESEARCH_NOTICE
    id: str
    source: str | None = Field(description="the input file, or null for an array")
    content_sha256: str
    image_size: tuple[int, int] = Field(description="(width, height) px of the photograph as read")
    patient_id: str | None
    laterality: Laterality | None = Field(description="from the manifest, DICOM tags, the file name, else the image")
    laterality_source: Literal["manifest", "dicom", "file_name", "image"] | None
    visit: str | None
    field: str | None
    status: ImageStatus
    quality: QualityResult
    dr: GradeResult | None
    dme: GradeResult | None
    referable: ReferableResult | None
    lesions: list[LesionFinding]
    landmarks: LandmarkResult | None
    explanation: ExplanationResult | None
    overlays: dict[str, str] = Field(description="overlay kind -> PNG path relative to the output folder")
    warnings: list[str]
    validated_on_real_data: dict[str, bool] = Field(description="output -> whether it was validated on real images")
    provenance: Provenance


class EyeSummary(_Strict):
    """The worst result among one eye's images of a visit."""

    laterality: Laterality | Literal["unknown"]
    image_ids: list[str]
    status: ImageStatus
    dr_grade: int | None
    dme_grade: int | None
    referable: bool | None


class PatientResult(_Strict):
    """One patient's visit: both eyes and one recommendation (research output, not advice)."""

    notice: str = RESEARCH_NOTICE
    patient_id: str
    visit: str | None
    eyes: list[EyeSummary]
    recommendation: Recommendation
    reason: str


def image_result_json_schema() -> dict[str, Any]:
    """The JSON Schema of one image's result file."""
    return ImageResult.model_json_schema()
