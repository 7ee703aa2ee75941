"""The JSON API under ``/api``: submit photographs, poll jobs, fetch results and overlays, list,
export and delete. Every route needs a session cookie (plus CSRF token for changes) or a bearer
token. Results use the CLI's schema (``drscreen.screening.ImageResult``)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, Response, Security, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from drscreen.screening import ImageResult, patient_results
from drscreen.serve.config import ServeState
from drscreen.serve.schemas import (
    LATERALITY_PATTERN,
    PATIENT_ID_PATTERN,
    SEARCH_PATTERN,
    VISIT_PATTERN,
    ImagePage,
    ImageRecord,
    ImageStatus,
    JobStatus,
    Me,
    PatientView,
    TokenCreated,
    TokenRequest,
    UploadResponse,
)
from drscreen.serve.security import Principal, issue_api_token, require_user
from drscreen.serve.store import (
    HistoryFilter,
    UploadMeta,
    accept_upload,
    delete_images,
    history_page,
    record,
    stored_result,
    summary,
)
from drscreen.serve.tables import Image, ImageFile, Job

OverlayKind = Literal["lesions", "disc", "saliency"]
#: Immutable: these files are content-addressed.
FILE_CACHE = "private, max-age=31536000, immutable"
_bearer = HTTPBearer(auto_error=False, description="an API token from POST /api/tokens or the account page")


async def authorized(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None
) -> Principal:
    """The caller (documents the bearer scheme in the OpenAPI schema)."""
    return await require_user(request)


User = Annotated[Principal, Depends(authorized)]
router = APIRouter(
    prefix="/api",
    dependencies=[Depends(authorized)],
    responses={401: {"description": "no valid credentials"}, 403: {"description": "CSRF token missing"}},
)


def state_of(request: Request) -> ServeState:
    return request.app.state.drscreen


def history_filter(
    patient: Annotated[str | None, Query(pattern=SEARCH_PATTERN, description="patient id contains")] = None,
    date_from: Annotated[date | None, Query(description="uploaded on or after (UTC date)")] = None,
    date_to: Annotated[date | None, Query(description="uploaded on or before (UTC date)")] = None,
    referable: bool | None = None,
    ungradable: bool | None = None,
    status: ImageStatus | None = None,
) -> HistoryFilter:
    return HistoryFilter(patient, date_from, date_to, referable, ungradable, status)


Filter = Annotated[HistoryFilter, Depends(history_filter)]


def image_or_404(request: Request, image_id: uuid.UUID) -> Image:
    with state_of(request).sessions() as session:
        image = session.get(Image, str(image_id))
    if image is None:
        raise HTTPException(404, "no such image")
    return image


@router.get("/me", response_model=Me, summary="Who the credentials belong to")
def me(user: User) -> Me:
    return Me(username=user.username, via=user.via)  # type: ignore[arg-type]


@router.post("/tokens", response_model=TokenCreated, status_code=201, summary="Create an API token for scripts")
def create_token(request: Request, body: TokenRequest, user: User) -> TokenCreated:
    if user.user_id is None:
        raise HTTPException(409, "sign-in is off on this server: no tokens are needed")
    with state_of(request).sessions() as session:
        token = issue_api_token(session, user.user_id, body.name)
    return TokenCreated(name=body.name, token=token)


@router.post(
    "/images",
    response_model=UploadResponse,
    status_code=202,
    summary="Submit photographs for screening",
    responses={
        413: {"description": "too many files or too large"},
        422: {"model": UploadResponse, "description": "no file was accepted"},
    },
)
def submit_images(
    request: Request,
    user: User,
    files: Annotated[list[UploadFile], File(description="photographs: JPEG, PNG, TIFF, BMP or DICOM")],
    patient_id: Annotated[str, Form(pattern=PATIENT_ID_PATTERN)],
    laterality: Annotated[str, Form(pattern=LATERALITY_PATTERN, description="R, L or empty (from the image)")] = "",
    visit: Annotated[str, Form(pattern=VISIT_PATTERN, description="e.g. the visit date 2026-11-26")] = "",
) -> Any:
    state = state_of(request)
    if len(files) > state.config.max_files_per_request:
        raise HTTPException(413, f"at most {state.config.max_files_per_request} files per request")
    meta = UploadMeta(patient_id=patient_id, laterality=laterality or None, visit=visit or None, user_id=user.user_id)
    outcomes = [accept_upload(state, upload.file, upload.filename, meta) for upload in files]
    pool = getattr(request.app.state, "pool", None)
    if pool is not None:
        pool.notify()
    accepted = sum(o.accepted for o in outcomes)
    body = UploadResponse(files=outcomes, accepted=accepted, rejected=len(outcomes) - accepted)
    return body if accepted else JSONResponse(body.model_dump(), status_code=422)


@router.get("/images", response_model=ImagePage, summary="The history: search, filter, paginate")
def list_images(
    request: Request,
    history: Filter,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 25,
) -> ImagePage:
    with state_of(request).sessions() as session:
        return history_page(session, history, page, per_page)


@router.get(
    "/images.csv",
    summary="The history as CSV (the CLI's results.csv columns)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_csv(request: Request, history: Filter) -> StreamingResponse:
    state = state_of(request)
    headers = {"Content-Disposition": 'attachment; filename="drscreen-history.csv"'}
    return StreamingResponse(_csv_rows(state, history), media_type="text/csv; charset=utf-8", headers=headers)


def _csv_rows(state: ServeState, history: HistoryFilter) -> Iterator[str]:
    from drscreen.report.folder import RESULT_COLUMNS, result_row

    columns = ["uploaded_at", *RESULT_COLUMNS, "file_name", "error_code", "error_message"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    with state.sessions() as session:
        for image in session.scalars(history.query().order_by(Image.uploaded_at.desc(), Image.id)).yield_per(200):
            result = stored_result(image)
            row: dict[str, Any] = dict.fromkeys(columns, "")
            if result is not None:
                row.update(result_row(result))
            row.update(
                id=image.id,
                patient_id=image.patient_id,
                laterality=row["laterality"] or image.laterality or "",
                visit=image.visit or "",
                status=image.status,
                uploaded_at=image.uploaded_at.isoformat(),
                file_name=image.file_name,
                error_code=image.error_code or "",
                error_message=image.error_message or "",
            )
            writer.writerow({key: _no_formula(value) for key, value in row.items()})
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def _no_formula(value: Any) -> Any:
    """Cells a spreadsheet would run as a formula get a leading quote (CSV injection)."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@router.get("/images/{image_id}", response_model=ImageRecord, summary="One photograph: state and full result")
def get_image(request: Request, image_id: uuid.UUID) -> ImageRecord:
    with state_of(request).sessions() as session:
        image = session.get(Image, str(image_id))
        if image is None:
            raise HTTPException(404, "no such image")
        return record(session, image)


@router.get(
    "/images/{image_id}/result",
    response_model=ImageResult,
    summary="The screening result (CLI schema)",
    responses={404: {"description": "no such image, or not screened (yet)"}},
)
def get_result(request: Request, image_id: uuid.UUID) -> ImageResult:
    result = stored_result(image_or_404(request, image_id))
    if result is None:
        raise HTTPException(404, "this image has no result (yet): poll its job")
    return result


def _file(request: Request, image_id: uuid.UUID, kind: str, media_type: str) -> FileResponse:
    state = state_of(request)
    with state.sessions() as session:
        path = session.scalar(select(ImageFile.path).where(ImageFile.image_id == str(image_id), ImageFile.kind == kind))
    if path is None or not state.blobs.path(path).is_file():
        raise HTTPException(404, "no such file for this image")
    return FileResponse(state.blobs.path(path), media_type=media_type, headers={"Cache-Control": FILE_CACHE})


@router.get(
    "/images/{image_id}/photo",
    summary="The photograph at display size (JPEG, once screened)",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {}},
)
def get_photo(request: Request, image_id: uuid.UUID) -> FileResponse:
    return _file(request, image_id, "preview", "image/jpeg")


@router.get(
    "/images/{image_id}/overlays/{kind}",
    summary="A transparent overlay layer (PNG) on the photograph",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}}, 404: {}},
)
def get_overlay(request: Request, image_id: uuid.UUID, kind: OverlayKind) -> FileResponse:
    return _file(request, image_id, f"overlay:{kind}", "image/png")


@router.delete("/images/{image_id}", status_code=204, summary="Delete a photograph, its result and files")
def delete_image(request: Request, image_id: uuid.UUID) -> Response:
    if not delete_images(state_of(request), [str(image_id)]):
        raise HTTPException(404, "no such image")
    return Response(status_code=204)


@router.get("/jobs/{job_id}", response_model=JobStatus, summary="Poll a screening job")
def get_job(request: Request, job_id: uuid.UUID) -> JobStatus:
    with state_of(request).sessions() as session:
        row = session.execute(
            select(Job, Image.status).join(Image, Image.id == Job.image_id).where(Job.id == str(job_id))
        ).first()
    if row is None:
        raise HTTPException(404, "no such job")
    job, image_status = row
    return JobStatus(
        id=job.id,
        image_id=job.image_id,
        status=job.status,
        attempts=job.attempts,  # type: ignore[arg-type]
        created_at=job.created_at,
        finished_at=job.finished_at,
        error=job.error,
        image_status=image_status,
    )


def patient_view(state: ServeState, patient_id: str) -> PatientView | None:
    """A patient's visits (worst-eye rule of ``drscreen.screening.patient_results``) and photographs."""
    with state.sessions() as session:
        images = session.scalars(
            select(Image)
            .where(Image.patient_id == patient_id)
            .order_by(Image.visit, Image.laterality, Image.uploaded_at)
        ).all()
    if not images:
        return None
    results = [r for r in (stored_result(i) for i in images) if r is not None]
    return PatientView(patient_id=patient_id, visits=patient_results(results), images=[summary(i) for i in images])


@router.get("/patients/{patient_id}", response_model=PatientView, summary="A patient's visits and recommendation")
def get_patient(request: Request, patient_id: Annotated[str, PathParam(pattern=PATIENT_ID_PATTERN)]) -> PatientView:
    view = patient_view(state_of(request), patient_id)
    if view is None:
        raise HTTPException(404, "no such patient")
    return view


@router.delete("/patients/{patient_id}", status_code=204, summary="Delete a patient: every photograph, result, file")
def delete_patient(request: Request, patient_id: Annotated[str, PathParam(pattern=PATIENT_ID_PATTERN)]) -> Response:
    state = state_of(request)
    with state.sessions() as session:
        ids = list(session.scalars(select(Image.id).where(Image.patient_id == patient_id)))
    if not delete_images(state, ids):
        raise HTTPException(404, "no such patient")
    return Response(status_code=204)


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())
