"""The JSON shapes of the API besides the screening result itself (``drscreen.screening.ImageResult``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from drscreen.grading import DR_GRADE_NAMES
from drscreen.screening import ImageResult, PatientResult

PATIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
VISIT_PATTERN = r"^([A-Za-z0-9][A-Za-z0-9._-]{0,31})?$"
LATERALITY_PATTERN = r"^(R|L)?$"
SEARCH_PATTERN = r"^[A-Za-z0-9._-]{0,64}$"
ImageStatus = Literal["queued", "screened", "ungradable", "rejected", "failed"]
JobState = Literal["queued", "running", "done", "failed"]


class UploadOutcome(BaseModel):
    """What became of one uploaded file: a queued job, or the reason it was rejected."""

    file_name: str
    accepted: bool
    image_id: str | None = None
    job_id: str | None = None
    code: str | None = Field(
        None, description="reason code when rejected (drscreen.io.InputError codes, too_large_upload)"
    )
    reason: str | None = None


class UploadResponse(BaseModel):
    files: list[UploadOutcome]
    accepted: int
    rejected: int


class JobStatus(BaseModel):
    id: str
    image_id: str
    status: JobState
    attempts: int
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    image_status: ImageStatus


class ImageSummary(BaseModel):
    """One photograph in lists: where it stands and its headline results (read from the
    store's ``Image`` row by attribute)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    patient_id: str
    laterality: Literal["R", "L"] | None
    visit: str | None
    file_name: str
    uploaded_at: datetime
    status: ImageStatus
    dr_grade: int | None
    dme_grade: int | None
    referable: bool | None
    referable_score: float | None
    error_code: str | None
    error_message: str | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def dr_name(self) -> str | None:
        """The ICDR name of ``dr_grade``."""
        return None if self.dr_grade is None else DR_GRADE_NAMES.get(self.dr_grade)


class ImageRecord(ImageSummary):
    """One photograph with its full result once screened (``overlays`` holds API URLs)."""

    job_id: str | None
    result: ImageResult | None


class ImagePage(BaseModel):
    items: list[ImageSummary]
    total: int
    page: int
    per_page: int
    pages: int


class PatientView(BaseModel):
    """A patient's visits with the worst-eye recommendation, and every photograph on record."""

    patient_id: str
    visits: list[PatientResult]
    images: list[ImageSummary]


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._ -]+$")


class TokenCreated(BaseModel):
    name: str
    token: str = Field(description="shown once; send as 'Authorization: Bearer <token>'")


class Me(BaseModel):
    username: str
    via: Literal["session", "token", "local"]
