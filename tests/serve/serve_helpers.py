"""Helpers of the server tests: a real PostgreSQL server, a signed-in client, test photographs."""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: Kept in step with ``CI_REQUIRED`` of tests/conftest.py: such a skip fails the run when CI=true.
CI_REQUIRED = "[required in CI]"
PASSWORD = "correct horse battery"


def skip_unless_available(reason: str) -> None:
    """Skip with a reason that tests/conftest.py turns into a failure in CI."""
    pytest.skip(f"{reason} {CI_REQUIRED}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_bin() -> Path | None:
    """The folder of Debian's (or any) PostgreSQL server binaries, or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    found = candidates[0] if candidates else shutil.which("initdb")
    return None if found is None else Path(found).parent


@contextmanager
def postgres_server() -> Iterator[tuple[int, Path]]:
    """A throw-away PostgreSQL server on 127.0.0.1 (port, socket folder); run as ``nobody`` under root,
    because PostgreSQL refuses to run as root."""
    binaries = postgres_bin()
    if binaries is None:
        skip_unless_available("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="drscreen-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "nobody", "nogroup")
        as_user = ["runuser", "-u", "nobody", "--"]
    data, log = root / "data", root / "server.log"
    port = free_port()
    try:
        subprocess.run(
            [
                *as_user,
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(
            [
                *as_user,
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=90,
        )
        yield port, root
    finally:
        subprocess.run(
            [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(port: int) -> str:
    """A new empty database on the server at ``port``; returns its SQLAlchemy URL."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return f"postgresql://postgres@127.0.0.1:{port}/{name}"


def sign_in(client, username: str = "alice", password: str = PASSWORD) -> str:  # type: ignore[no-untyped-def]
    """Sign ``client`` in through the form; returns the session's CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    upload = client.get("/upload")
    return re.search(r'name="csrf-token" content="([^"]+)"', upload.text).group(1)  # type: ignore[union-attr]


def wait_for(condition, timeout: float, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``condition()`` until it returns something truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def fundus_jpeg(path: Path, seed: int = 1, size: int = 384) -> Path:
    """A synthetic fundus photograph (no patient data) as JPEG."""
    from PIL import Image

    from drscreen.synth import generate_fundus

    Image.fromarray(generate_fundus(seed=seed, size=size).image).save(path, quality=92)
    return path


class ServerProcess:
    """``drscreen serve`` in a child process on 127.0.0.1 (the real command line)."""

    def __init__(self, data_dir: Path, *extra: str, port: int | None = None, workers: int = 1) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [
            sys.executable,
            "-m",
            "drscreen.cli",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            "--workers",
            str(workers),
            *extra,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90) -> ServerProcess:
        import httpx

        self.log = (self.data_dir.parent / f"server-{self.port}.log").open("ab")
        self.process = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, "the server exited"
            try:
                return httpx.get(f"{self.url}/login", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=timeout, interval=0.3)
        return self

    def kill(self) -> None:
        """``kill -9``: no shutdown, no cleanup."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def run_create_user(
    data_dir: Path, username: str = "alice", password: str = PASSWORD, *extra: str
) -> subprocess.CompletedProcess[str]:
    """``drscreen serve create-user`` with the password on standard input (``extra``: e.g. --database URL)."""
    command = [sys.executable, "-m", "drscreen.cli", "serve", "create-user", username, "--data-dir", str(data_dir)]
    return subprocess.run(
        [*command, "--password-stdin", *extra], input=password + "\n", text=True, capture_output=True, timeout=120
    )


def create_user_cli(data_dir: Path, username: str = "alice", password: str = PASSWORD, *extra: str) -> None:
    """``run_create_user``, which must succeed."""
    done = run_create_user(data_dir, username, password, *extra)
    assert done.returncode == 0, done.stderr


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def chromium(profile: Path, width: int = 1400, height: int = 1000):  # type: ignore[no-untyped-def]
    """Debian's headless Chromium driven by Debian's chromedriver (nothing is downloaded)."""
    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        skip_unless_available("Chromium or chromedriver missing: apt-get install chromium chromium-driver")
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
