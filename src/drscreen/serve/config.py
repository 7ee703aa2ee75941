"""Settings of one server process and the state its routes share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from drscreen.serve.blobs import BlobStore

#: Addresses that only this machine can reach.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class ServeConfig:
    """What ``drscreen serve`` was told.

    ``workers``: screening threads in this process (0: a web-only process; other processes on the
    same database screen). ``screener_factory``: builds one screener per worker thread (default:
    the shipped models with explanations, on ``runtime`` in ``amp``:
    ``drscreen.screening.Screener``). ``job_lease_seconds``: a running job whose worker sent no
    heartbeat for this long is claimed again (its process died). Upload limits: bytes per file and
    files per request.
    """

    data_dir: Path
    database_url: str | None = None
    workers: int = 2
    auth_required: bool = True
    max_upload_bytes: int = 50_000_000
    max_files_per_request: int = 200
    session_hours: float = 12.0
    job_lease_seconds: float = 30.0
    poll_seconds: float = 0.5
    max_attempts: int = 3
    overlay_size: int = 1024
    runtime: str = "torch"
    amp: str = "fp32"
    screener_factory: Callable[[], Any] | None = field(default=None, repr=False)

    @property
    def max_request_bytes(self) -> int:
        """Largest accepted request body: every file at its limit, plus room for the form fields."""
        return self.max_files_per_request * self.max_upload_bytes + 1_000_000


@dataclass
class ServeState:
    """The database, the file store and the settings, shared by the routes and the workers."""

    config: ServeConfig
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore
