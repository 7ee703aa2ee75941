"""``drscreen serve``: the screening web app and JSON API; ``drscreen serve create-user NAME``.

Light module (argparse only): FastAPI, the database and the model load when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_DATA_DIR = "drscreen-data"


def _storage_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default,
        help=f"folder for photographs, overlays and the SQLite database (default {DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--database",
        metavar="URL",
        default=default,
        help="SQLAlchemy URL, e.g. postgresql://user:pass@host/db (default: SQLite in --data-dir)",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``serve`` sub-command."""
    parser = subparsers.add_parser(
        "serve",
        help="run the screening web app and JSON API (sign-in, uploads, results, history)",
        description="Serve the screening web app and its JSON API (OpenAPI at /api/openapi.json). Photographs "
        "become jobs in the database, screened by --workers threads with the shipped model; several processes "
        "may share one PostgreSQL database. Binds 127.0.0.1 unless --host says otherwise. Add users with "
        "'drscreen serve create-user NAME'. Guide: docs/serve.md.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    _storage_options(parser, None)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="screening threads in this process (default 2; 0: web only, others screen)",
    )
    parser.add_argument(
        "--runtime", choices=("torch", "onnx", "openvino"), default="torch",
        help="what the screening workers run the networks on: PyTorch (default), ONNX Runtime or OpenVINO "
        "(the fastest on x86 CPUs; see drscreen screen --runtime)",
    )  # fmt: skip
    parser.add_argument("--amp", default="fp32", choices=("fp32", "bf16", "fp16", "auto"),
                        help="precision of the networks (default fp32, the validated one; bf16 with torch or openvino)")
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="no sign-in (single user on this machine; refused with a --host other than loopback)",
    )
    parser.set_defaults(func=_run)
    actions = parser.add_subparsers(dest="serve_command", metavar="ACTION")
    create = actions.add_parser(
        "create-user",
        help="add a user who can sign in (or set a new password)",
        description="Add a user, or set a new password for an existing one.",
    )
    create.add_argument("username")
    _storage_options(create, argparse.SUPPRESS)
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def _run(args: argparse.Namespace) -> int:
    from drscreen.serve.main import add_user, run_server

    data_dir = Path(args.data_dir or DEFAULT_DATA_DIR)
    if args.serve_command == "create-user":
        return add_user(args.username, data_dir, args.database, args.password_stdin)
    if args.workers < 0 or not 0 < args.port < 65536:
        print("drscreen serve: --workers must be >= 0 and --port between 1 and 65535")
        return 1
    return run_server(
        args.host, args.port, data_dir, args.database, args.workers, args.no_auth, args.runtime, args.amp
    )
