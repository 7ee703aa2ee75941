"""Fixtures of the server tests: apps on SQLite or a real PostgreSQL server, signed-in clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from serve_helpers import PASSWORD, create_database, fundus_jpeg, postgres_server, sign_in

from drscreen.serve import ServeConfig, create_app
from drscreen.serve.security import create_user

AppFactory = Callable[..., TestClient]


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
