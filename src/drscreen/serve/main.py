"""The work of ``drscreen serve`` and ``drscreen serve create-user`` (the parser is ``commands/serve.py``)."""

from __future__ import annotations

import getpass
import ipaddress
import sys
from pathlib import Path

from sqlalchemy import func, select

from drscreen.serve.app import create_app, open_state
from drscreen.serve.config import LOOPBACK_HOSTS, ServeConfig
from drscreen.serve.security import create_user
from drscreen.serve.tables import User


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(
    host: str,
    port: int,
    data_dir: Path,
    database: str | None,
    workers: int,
    no_auth: bool,
    runtime: str = "torch",
    amp: str = "fp32",
) -> int:
    """Start the server; refuses a non-loopback address without sign-in. Returns the exit status.
    ``runtime`` / ``amp``: what the screening workers run the networks on (``ServeConfig``)."""
    import uvicorn

    if no_auth and not is_loopback(host):
        print(
            f"drscreen serve: refusing to serve {host} without sign-in: drop --no-auth or bind 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    config = ServeConfig(data_dir=data_dir, database_url=database, workers=workers, auth_required=not no_auth,
                         runtime=runtime, amp=amp)  # fmt: skip
    app = create_app(config)
    with app.state.drscreen.sessions() as session:
        users = session.scalar(select(func.count()).select_from(User)) or 0
    if not no_auth and users == 0:
        print(
            "drscreen serve: no users yet; add one with: drscreen serve create-user NAME "
            f"--data-dir {data_dir}" + (" --database URL" if database else ""),
            file=sys.stderr,
        )
    print(f"drscreen serve: http://{host}:{port}/ (data in {data_dir}, {workers} screening worker(s))", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False)
    return 0


def add_user(username: str, data_dir: Path, database: str | None, password_stdin: bool) -> int:
    """Create a user (or reset a password): prompts twice, or reads one line from stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {username}: ")
        if getpass.getpass("again: ") != password:
            print("drscreen serve create-user: the passwords differ", file=sys.stderr)
            return 1
    state = open_state(ServeConfig(data_dir=data_dir, database_url=database, workers=0))
    try:
        with state.sessions() as session:
            create_user(session, username, password)
    except ValueError as error:
        print(f"drscreen serve create-user: {error}", file=sys.stderr)
        return 1
    finally:
        state.engine.dispose()
    print(f"user {username} can sign in")
    return 0
