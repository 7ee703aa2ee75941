"""The HTML pages: sign in, upload, an image's result, a patient, the history, the account.

Server-rendered Jinja2 templates with small scripts from ``static/`` (no build step, no inline
script or style, so the Content-Security-Policy can forbid both). The pages read the same
stored results as the API; uploads and polling go through the API.
"""

from __future__ import annotations

import math
import secrets
import uuid
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from drscreen.grading import DR_GRADE_NAMES, LESION_BY_CODE, SEGMENTATION_LESIONS
from drscreen.serve.api import authorized, delete_patient, patient_view, state_of
from drscreen.serve.schemas import PATIENT_ID_PATTERN, SEARCH_PATTERN
from drscreen.serve.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    authenticate,
    end_session,
    start_session,
    tokens_match,
)
from drscreen.serve.store import HistoryFilter, delete_images, history_page, record
from drscreen.serve.tables import Image

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
templates.env.globals["lesion_legend"] = [
    (code, LESION_BY_CODE[code].name, "#{:02x}{:02x}{:02x}".format(*LESION_BY_CODE[code].color))
    for code in SEGMENTATION_LESIONS
]
templates.env.globals["dr_names"] = DR_GRADE_NAMES
templates.env.globals["laterality_sources"] = {
    "manifest": "as entered at upload",
    "dicom": "from the DICOM tags",
    "file_name": "from the file name",
    "image": "read from the image",
}
router = APIRouter(include_in_schema=False)
User = Annotated[Principal, Depends(authorized)]
RECOMMENDATIONS = {
    "refer": ("Refer", "bad"),
    "rescreen_12_months": ("Rescreen in 12 months", "good"),
    "retake_or_refer": ("Retake photographs or refer", "warn"),
}
OVERLAY_NAMES = {"lesions": "Lesions", "disc": "Optic disc & fovea (model map)", "saliency": "Saliency (explanation)"}


def render(request: Request, name: str, user: Principal | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"user": user, **context}, status_code=status_code)


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in (never another site)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\", "/login")) and "\n" not in target:
        return target
    return "/upload"


def login_page(
    request: Request, status_code: int, error: str | None = None, next_url: str | None = None
) -> HTMLResponse:
    """The sign-in form with a fresh login CSRF token (double-submit cookie)."""
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html.j2",
        None,
        status_code,
        error=error,
        login_csrf=token,
        next_url=safe_next(next_url or (request.url.path if request.method == "GET" else None)),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/login"
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return login_page(request, 200, next_url=next)


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/upload",
) -> Response:
    state = state_of(request)
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE), csrf_token):
        return login_page(request, 403, "The sign-in form expired: please try again.", next)
    with state.sessions() as session:
        user = authenticate(session, username, password)
        if user is None:
            return login_page(request, 401, "Wrong user name or password.", next)
        cookie, _ = start_session(session, user, state.config.session_hours)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=int(state.config.session_hours * 3600),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, user: User) -> Response:
    with state_of(request).sessions() as session:
        end_session(session, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/")
def home(user: User) -> Response:
    return RedirectResponse("/upload", status_code=303)


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, user: User) -> HTMLResponse:
    config = state_of(request).config
    return render(
        request,
        "upload.html.j2",
        user,
        today=date.today().isoformat(),
        max_mb=config.max_upload_bytes / 1e6,
        max_files=config.max_files_per_request,
    )


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(request: Request, user: User, image_id: uuid.UUID) -> HTMLResponse:
    with state_of(request).sessions() as session:
        image = session.get(Image, str(image_id))
        if image is None:
            raise HTTPException(404, "no such image")
        item = record(session, image)
    return render(request, "image.html.j2", user, item=item, result=item.result, overlay_names=OVERLAY_NAMES)


@router.post("/images/{image_id}/delete")
def image_delete(request: Request, user: User, image_id: uuid.UUID) -> Response:
    state = state_of(request)
    with state.sessions() as session:
        image = session.get(Image, str(image_id))
        patient = None if image is None else image.patient_id
    if patient is None or not delete_images(state, [str(image_id)]):
        raise HTTPException(404, "no such image")
    remaining = patient_view(state, patient)
    return RedirectResponse(f"/patients/{patient}" if remaining else "/history", status_code=303)


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(
    request: Request, user: User, patient_id: Annotated[str, PathParam(pattern=PATIENT_ID_PATTERN)]
) -> HTMLResponse:
    view = patient_view(state_of(request), patient_id)
    if view is None:
        raise HTTPException(404, "no such patient")
    by_id = {image.id: image for image in view.images}
    in_visits = {i for visit in view.visits for eye in visit.eyes for i in eye.image_ids}
    others = [image for image in view.images if image.id not in in_visits]
    return render(
        request, "patient.html.j2", user, view=view, by_id=by_id, others=others, recommendations=RECOMMENDATIONS
    )


@router.post("/patients/{patient_id}/delete")
def patient_delete(
    request: Request, user: User, patient_id: Annotated[str, PathParam(pattern=PATIENT_ID_PATTERN)]
) -> Response:
    delete_patient(request, patient_id)
    return RedirectResponse("/history", status_code=303)


def form_filter(
    patient: Annotated[str, Query(pattern=SEARCH_PATTERN)] = "",
    date_from: Annotated[str, Query(max_length=10)] = "",
    date_to: Annotated[str, Query(max_length=10)] = "",
    referable: Annotated[str, Query(pattern=r"^(true|false)?$")] = "",
    ungradable: Annotated[str, Query(pattern=r"^(true|false)?$")] = "",
    status: Annotated[str, Query(pattern=r"^(queued|screened|ungradable|rejected|failed)?$")] = "",
) -> HistoryFilter:
    """The history's search form, whose empty fields mean "any" (the API takes typed values)."""
    try:
        dates = [date.fromisoformat(value) if value else None for value in (date_from, date_to)]
    except ValueError:
        raise HTTPException(422, "dates are YYYY-MM-DD") from None
    flags = [None if value == "" else value == "true" for value in (referable, ungradable)]
    return HistoryFilter(patient or None, dates[0], dates[1], flags[0], flags[1], status or None)


@router.get("/history", response_class=HTMLResponse)
def history_view(
    request: Request,
    user: User,
    history: Annotated[HistoryFilter, Depends(form_filter)],
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    with state_of(request).sessions() as session:
        listing = history_page(session, history, page, 25)
    query = {key: value for key, value in request.query_params.items() if key != "page" and value != ""}

    def page_link(number: int) -> str:
        return "/history?" + urlencode({**query, "page": number})

    return render(
        request,
        "history.html.j2",
        user,
        listing=listing,
        filters=history,
        page_link=page_link,
        csv_link="/api/images.csv" + ("?" + urlencode(query) if query else ""),
        last_page=max(1, math.ceil(listing.total / listing.per_page)),
    )


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, user: User) -> HTMLResponse:
    return render(request, "account.html.j2", user)
