"""``drscreen serve`` as a user runs it: create-user, start, screen, kill -9, restart, find it again."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from serve_helpers import ServerProcess, create_user_cli, run_create_user, sign_in


@contextmanager
def signed_in(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.headers["X-CSRF-Token"] = sign_in(client)
        yield client


def test_results_and_queued_jobs_survive_kill_9(tmp_path: Path, good_photo: Path, upload, wait_for_job) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "site"
    create_user_cli(data_dir)
    web_only = ServerProcess(data_dir, workers=0).start()  # nobody screens: the job stays queued
    try:
        with signed_in(web_only) as client:
            answer = upload(client, [(good_photo.name, good_photo.read_bytes(), "image/jpeg")], "P-restart")
            assert answer.status_code == 202, answer.text
            queued = answer.json()["files"][0]
            assert client.get(f"/api/jobs/{queued['job_id']}").json()["status"] == "queued"
    finally:
        web_only.kill()
    server = ServerProcess(data_dir, workers=1).start()  # restarted with a worker: the queued job runs
    try:
        with signed_in(server) as client:
            job = wait_for_job(client, queued["job_id"], timeout=180)
            assert job["status"] == "done" and job["image_status"] == "screened"
            before = client.get(f"/api/images/{queued['image_id']}/result").json()
    finally:
        server.kill()
    again = ServerProcess(data_dir, workers=0).start()
    try:
        with signed_in(again) as client:
            assert client.get(f"/api/images/{queued['image_id']}/result").json() == before
            history = client.get("/api/images", params={"patient": "P-restart"}).json()
            assert [i["id"] for i in history["items"]] == [queued["image_id"]]
    finally:
        again.stop()


def test_create_user_rejects_a_short_password(tmp_path: Path) -> None:
    done = run_create_user(tmp_path, "bob", "short")
    assert done.returncode == 1 and "at least 8 characters" in done.stderr


def test_serve_refuses_no_auth_on_a_public_address(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "drscreen.cli", "serve", "--host", "0.0.0.0", "--no-auth", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "refusing" in done.stderr
