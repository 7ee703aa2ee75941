"""Reading and changing what is stored: uploads in, history out, deletions that remove files."""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import BinaryIO

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from drscreen.screening import ImageResult
from drscreen.serve.blobs import TooLarge
from drscreen.serve.config import ServeState
from drscreen.serve.queue import enqueue
from drscreen.serve.schemas import ImagePage, ImageRecord, ImageSummary, UploadOutcome
from drscreen.serve.tables import Image, ImageFile, Job, utc_now

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f<>\"'`\\/]")


def display_name(name: str | None) -> str:
    """A client's file name made safe to show (never used on disk): last path part, printable, short."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNPRINTABLE.sub("_", base).strip() or "unnamed"
    return cleaned[:200]


@dataclass(frozen=True)
class UploadMeta:
    """What the uploader said about the photographs."""

    patient_id: str
    laterality: str | None
    visit: str | None
    user_id: int | None


def accept_upload(state: ServeState, stream: BinaryIO, file_name: str | None, meta: UploadMeta) -> UploadOutcome:
    """Store one uploaded file and queue its job, or say why it was rejected.

    The content is checked by ``drscreen.io.read_image`` (format by content, size guards), never
    by the extension or the client's MIME type; the file is stored under its SHA-256.
    """
    from drscreen.io import InputError, read_image

    shown = display_name(file_name)
    try:
        temporary, digest = state.blobs.receive(stream, state.config.max_upload_bytes)
    except TooLarge as error:
        return UploadOutcome(file_name=shown, accepted=False, code="too_large_upload", reason=str(error))
    try:
        read_image(temporary)
    except InputError as error:
        temporary.unlink(missing_ok=True)
        return UploadOutcome(file_name=shown, accepted=False, code=error.code, reason=error.reason)
    except Exception:  # a decoder failing on hostile bytes in a way the io layer does not name
        temporary.unlink(missing_ok=True)
        return UploadOutcome(file_name=shown, accepted=False, code="unreadable", reason="the file could not be decoded")
    image_id = str(uuid.uuid4())
    with state.sessions() as session:
        relative = state.blobs.adopt(temporary, digest)
        session.add(
            Image(
                id=image_id,
                patient_id=meta.patient_id,
                laterality=meta.laterality,
                visit=meta.visit,
                file_name=shown,
                content_sha256=digest,
                uploaded_by=meta.user_id,
                uploaded_at=utc_now(),
                status="queued",
            )
        )
        session.flush()
        session.add(ImageFile(image_id=image_id, kind="upload", path=relative))
        job = enqueue(session, image_id)
        session.commit()
    return UploadOutcome(file_name=shown, accepted=True, image_id=image_id, job_id=job.id)


def summary(image: Image) -> ImageSummary:
    """The list view of a stored photograph."""
    return ImageSummary.model_validate(image)


def stored_result(image: Image) -> ImageResult | None:
    return None if image.result_json is None else ImageResult.model_validate_json(image.result_json)


def record(session: Session, image: Image) -> ImageRecord:
    job_id = session.scalar(select(Job.id).where(Job.image_id == image.id).order_by(Job.created_at.desc()).limit(1))
    return ImageRecord(**summary(image).model_dump(), job_id=job_id, result=stored_result(image))


@dataclass(frozen=True)
class HistoryFilter:
    """Search and filters of the history: patient id (contains), upload dates, referable, ungradable."""

    patient: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    referable: bool | None = None
    ungradable: bool | None = None
    status: str | None = None

    def query(self) -> Select[tuple[Image]]:
        query = select(Image)
        if self.patient:
            escaped = self.patient.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(func.lower(Image.patient_id).like(f"%{escaped.lower()}%", escape="\\"))
        if self.date_from is not None:
            query = query.where(Image.uploaded_at >= _utc_midnight(self.date_from))
        if self.date_to is not None:
            query = query.where(Image.uploaded_at < _utc_midnight(self.date_to) + timedelta(days=1))
        if self.referable is not None:
            query = query.where(Image.referable.is_(self.referable))
        if self.ungradable is True:
            query = query.where(Image.status == "ungradable")
        elif self.ungradable is False:
            query = query.where(Image.status != "ungradable")
        if self.status:
            query = query.where(Image.status == self.status)
        return query


def _utc_midnight(day: date) -> datetime:
    from datetime import UTC

    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def history_page(session: Session, history: HistoryFilter, page: int, per_page: int) -> ImagePage:
    """One page of the history, newest first."""
    query = history.query()
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Image.uploaded_at.desc(), Image.id).offset((page - 1) * per_page).limit(per_page)
    ).all()
    return ImagePage(
        items=[summary(r) for r in rows],
        total=total,
        page=page,
        per_page=per_page,
        pages=max(1, math.ceil(total / per_page)),
    )


def delete_images(state: ServeState, image_ids: list[str]) -> int:
    """Delete images with their jobs, results and every file no other image uses; returns how many."""
    if not image_ids:
        return 0
    with state.sessions() as session:
        paths = set(session.scalars(select(ImageFile.path).where(ImageFile.image_id.in_(image_ids))))
        session.execute(delete(Job).where(Job.image_id.in_(image_ids)))
        session.execute(delete(ImageFile).where(ImageFile.image_id.in_(image_ids)))
        removed = session.execute(delete(Image).where(Image.id.in_(image_ids))).rowcount
        session.commit()
        still_used = set(session.scalars(select(ImageFile.path).where(ImageFile.path.in_(paths)))) if paths else set()
        session.rollback()
    state.blobs.remove(sorted(paths - still_used))
    return int(removed or 0)


def remove_unreferenced(state: ServeState, paths: set[str]) -> None:
    """Remove those of ``paths`` that no image refers to (files of a job whose image was deleted)."""
    if not paths:
        return
    with state.sessions() as session:
        still_used = set(session.scalars(select(ImageFile.path).where(ImageFile.path.in_(paths))))
        session.rollback()
    state.blobs.remove(sorted(paths - still_used))
