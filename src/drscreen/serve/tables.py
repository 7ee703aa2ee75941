"""The server's tables (SQLAlchemy 2 declarative). The schema is created by the Alembic
migrations in ``migrations/versions``; ``tests/serve`` checks that the two agree.

Photographs, previews and overlays live on disk under content-addressed names (``blobs.py``);
a row of ``image_files`` ties one such file to one image, so that deleting an image removes
the files no other image uses.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Job states: queued -> running -> done | failed (a running job whose lease ran out is claimed again).
JOB_STATES = ("queued", "running", "done", "failed")
#: Image states: waiting for its job, screened, ungradable (quality gate), rejected (unreadable), failed.
IMAGE_STATES = ("queued", "screened", "ungradable", "rejected", "failed")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and read back timezone-aware on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC) if dialect.name != "sqlite" else value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the server's tables."""


class User(Base):
    """A person who signs in, or whose API token a script uses."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class WebSession(Base):
    """A signed-in browser: the cookie's SHA-256 (never the cookie) and its CSRF token."""

    __tablename__ = "web_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiToken(Base):
    """A bearer token for scripts: only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class Image(Base):
    """One uploaded photograph, its screening state and, once screened, its ``ImageResult`` JSON."""

    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    laterality: Mapped[str | None] = mapped_column(String(1))
    visit: Mapped[str | None] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(String(200), doc="the client's file name, for display only")
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    screened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    dr_grade: Mapped[int | None] = mapped_column(Integer)
    dme_grade: Mapped[int | None] = mapped_column(Integer)
    referable: Mapped[bool | None] = mapped_column(Boolean)
    referable_score: Mapped[float | None] = mapped_column(Float)
    result_json: Mapped[str | None] = mapped_column(Text)


class ImageFile(Base):
    """A content-addressed file that belongs to an image: the upload, its preview or an overlay layer."""

    __tablename__ = "image_files"
    __table_args__ = (Index("ix_image_files_path", "path"),)

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True, doc="upload, preview or overlay:<layer>")
    path: Mapped[str] = mapped_column(String(255), doc="relative to the data folder")


class Job(Base):
    """Screening one image: claimed by exactly one worker at a time, re-run when its lease runs out."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claimable", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)
