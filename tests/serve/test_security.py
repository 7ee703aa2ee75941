"""Security: every route without credentials answers 401/403 (generated from the route table),
CSRF for cookie sessions, argon2 password hashes, hashed API tokens, headers, upload limits,
content checks by the io layer, no client name on disk, loopback unless signed in."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_helpers import PASSWORD
from sqlalchemy import select

from drscreen.serve.app import PUBLIC_ROUTES, route_table
from drscreen.serve.main import is_loopback, run_server
from drscreen.serve.security import SECURITY_HEADERS
from drscreen.serve.tables import ApiToken, ImageFile, User

PATH_VALUES = {
    "image_id": str(uuid.uuid4()),
    "job_id": str(uuid.uuid4()),
    "patient_id": "P1",
    "kind": "lesions",
    "path": "app.css",
}


def protected_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, concrete path) of the app except the sign-in form and static files."""
    routes = []
    for method, path in route_table(client.app):  # type: ignore[arg-type]
        if (method, path) in PUBLIC_ROUTES:
            continue
        routes.append((method, re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PATH_VALUES[m.group(1)], path)))
    return routes


def test_every_route_without_valid_credentials_answers_401_or_403(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(signed_in=False)
    routes = protected_routes(client)
    assert len(routes) >= 20 and ("DELETE", "/api/patients/P1") in routes
    for headers in ({}, {"Authorization": "Bearer drs_not-a-token"}, {"Cookie": "drscreen_session=forged"}):
        for method, path in routes:
            answer = client.request(method, path, headers=headers)
            assert answer.status_code in (401, 403), f"{method} {path} with {headers}: {answer.status_code}"
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/login").status_code == 200


def test_pages_answer_401_with_the_sign_in_form_and_return_after_sign_in(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(signed_in=False)
    page = client.get("/history")
    assert page.status_code == 401 and 'action="/login"' in page.text and 'value="/history"' in page.text
    api = client.get("/api/images")
    assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"


def test_sign_in_checks_the_password_and_the_form_token(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(signed_in=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    wrong = client.post("/login", data={"username": "alice", "password": "nope-nope", "csrf_token": token})
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    forged = TestClient(client.app).post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": "x"})
    assert forged.status_code == 403
    token = re.search(r'name="csrf_token" value="([^"]+)"', wrong.text).group(1)  # type: ignore[union-attr]
    outside = client.post(
        "/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert outside.status_code == 303 and outside.headers["location"] == "/upload"


def test_cookie_sessions_need_the_csrf_token_for_changes(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    csrf = client.headers.pop("X-CSRF-Token")
    assert client.post("/api/tokens", json={"name": "script"}).status_code == 403
    assert client.post("/api/tokens", json={"name": "script"}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.post("/logout", follow_redirects=False).status_code == 403
    assert client.post("/api/tokens", json={"name": "script"}, headers={"X-CSRF-Token": csrf}).status_code == 201
    assert client.get("/api/me").json() == {"username": "alice", "via": "session"}  # reading needs no token


def test_passwords_and_tokens_are_stored_hashed_and_tokens_work_without_csrf(make_client, upload, noise_png) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    token = client.post("/api/tokens", json={"name": "script"}).json()["token"]
    with client.app.state.drscreen.sessions() as session:  # type: ignore[attr-defined]
        user = session.scalar(select(User))
        stored = list(session.scalars(select(ApiToken.token_sha256)))
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert token not in stored and len(stored) == 1
    script = TestClient(client.app, headers={"Authorization": f"Bearer {token}"})
    assert script.get("/api/me").json() == {"username": "alice", "via": "token"}
    assert upload(script, [("a.png", noise_png(), "image/png")]).status_code == 202


def test_signing_out_ends_the_session(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    cookie = client.cookies.get("drscreen_session")
    assert (
        client.post("/logout", data={"csrf_token": client.headers["X-CSRF-Token"]}, follow_redirects=False).status_code
        == 303
    )
    assert TestClient(client.app, cookies={"drscreen_session": cookie}).get("/api/me").status_code == 401


def test_security_headers_on_pages_api_and_files(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    for path in ("/upload", "/api/images", "/login", "/static/app.js"):
        headers = client.get(path).headers
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == value, (path, name)
    assert client.get("/api/images").headers["cache-control"] == "no-store"
    assert "unsafe-inline" not in SECURITY_HEADERS["Content-Security-Policy"]
    login = make_client(signed_in=False).get("/login")
    assert "httponly" in login.headers["set-cookie"].lower()


def test_content_is_checked_by_the_io_layer_and_client_names_never_reach_the_disk(  # type: ignore[no-untyped-def]
    make_client, upload, noise_png
) -> None:
    client = make_client()
    files = [
        ("../../etc/evil name.txt", noise_png(), "text/plain"),  # a real PNG, whatever it is called
        ("photo.jpg", b"<html>not an image</html>", "image/jpeg"),  # text, whatever it is called
        ("tiny.png", noise_png(size=32), "image/png"),
    ]
    answer = upload(client, files).json()
    good, text, tiny = answer["files"]
    assert good["accepted"] and good["file_name"] == "evil name.txt"
    assert (text["accepted"], text["code"]) == (False, "not_an_image")
    assert (tiny["accepted"], tiny["code"]) == (False, "too_small") and "128" in tiny["reason"]
    data_dir: Path = client.app.state.drscreen.config.data_dir  # type: ignore[attr-defined]
    names = [p.name for p in data_dir.rglob("*") if p.is_file()]
    assert not any("evil" in name or name.endswith((".txt", "photo.jpg")) for name in names)
    with client.app.state.drscreen.sessions() as session:  # type: ignore[attr-defined]
        stored = session.scalar(select(ImageFile.path))
    assert re.fullmatch(r"blobs/[0-9a-f]{2}/[0-9a-f]{64}", stored)
    assert not any(p.name.startswith("upload-") for p in (data_dir / "tmp").iterdir())


def test_upload_size_and_count_limits(make_client, upload, noise_png) -> None:  # type: ignore[no-untyped-def]
    client = make_client(max_upload_bytes=2_000, max_files_per_request=2)
    big = upload(client, [("big.png", noise_png(512), "image/png")])
    assert big.status_code == 422 and big.json()["files"][0]["code"] == "too_large_upload"
    assert upload(client, [(f"{i}.png", b"x", "image/png") for i in range(3)]).status_code == 413
    body = b"x" * (client.app.state.drscreen.config.max_request_bytes + 1)  # type: ignore[attr-defined]
    assert (
        client.post(
            "/api/images", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
        ).status_code
        == 413
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::"])
def test_no_sign_in_is_refused_on_an_address_others_can_reach(host: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert not is_loopback(host)
    assert run_server(host, 8000, tmp_path, None, 0, no_auth=True) == 2
    assert "refusing" in capsys.readouterr().err
    assert not (tmp_path / "drscreen.sqlite3").exists()


def test_loopback_addresses() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.3.4.5", "localhost", "::1"))
