"""Fixtures of the server tests: apps on SQLite or a real PostgreSQL server, signed-in clients,
uploads, noise photographs and waiting for a job."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serve_helpers import PASSWORD, create_database, fundus_jpeg, postgres_server, sign_in, wait_for

from drscreen.serve import ServeConfig, create_app
from drscreen.serve.security import create_user

AppFactory = Callable[..., TestClient]
#: ``upload(client, files, patient="P1", laterality="R")``: see ``_upload``.
Upload = Callable[..., Any]
#: The visit date of every test upload.
VISIT = "2026-11-26"


@pytest.fixture(scope="session")
def postgres() -> Iterator[int]:
    """The port of a PostgreSQL server started for this test session."""
    with postgres_server() as (port, _root):
        yield port


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or a new database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return create_database(request.getfixturevalue("postgres"))


@pytest.fixture(scope="session")
def good_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fundus_jpeg(tmp_path_factory.mktemp("photos") / "fundus_right.jpg")


@pytest.fixture(scope="session")
def fast_screener() -> Callable[[], Any]:
    """The real shipped model through the real Screener, without the explanation (web-layer tests)."""
    from drscreen.screening import Screener

    return lambda: Screener(explain=False)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[AppFactory]:
    """Builds a started app (workers running) with user alice; ``signed_in`` clients have a session."""
    clients: list[TestClient] = []

    def build(*, signed_in: bool = True, database_url: str | None = None, **settings: Any) -> TestClient:
        settings.setdefault("workers", 0)
        app = create_app(ServeConfig(data_dir=tmp_path / f"data{len(clients)}", database_url=database_url, **settings))
        with app.state.drscreen.sessions() as session:
            create_user(session, "alice", PASSWORD)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        if signed_in:
            client.headers["X-CSRF-Token"] = sign_in(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def _upload(client: Any, files: Sequence[tuple[str, bytes, str]], patient: str = "P1", laterality: str = "R") -> Any:
    """``POST /api/images`` of ``files`` ((name, content, media type) each) as one visit of one eye,
    with a ``TestClient`` or an ``httpx.Client``; returns the response."""
    form = {"patient_id": patient, "laterality": laterality, "visit": VISIT}
    return client.post("/api/images", data=form, files=[("files", file) for file in files])


@pytest.fixture(scope="session")
def upload() -> Upload:
    """Uploads files through the API (``_upload``)."""
    return _upload


@pytest.fixture(scope="session")
def noise_png() -> Callable[..., bytes]:
    """Makes a PNG of random RGB noise, ``size`` px square (default 256): a valid image that the quality
    gate calls ungradable (not a fundus), different on every call."""

    def make(size: int = 256) -> bytes:
        buffer = io.BytesIO()
        Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(buffer, "PNG")
        return buffer.getvalue()

    return make


@pytest.fixture(scope="session")
def wait_for_job() -> Callable[..., dict[str, Any]]:
    """Waits until a job is done or failed (``wait(client, job_id, timeout=120)``) and returns it."""

    def wait(client: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
            return job if job["status"] in ("done", "failed") else None

        return wait_for(finished, timeout)  # type: ignore[no-any-return]

    return wait
