"""Who is asking: passwords (argon2), browser sessions with CSRF tokens, API tokens, headers.

A browser signs in with a password and gets a random session cookie (HttpOnly, SameSite=Lax;
only its SHA-256 is stored). Every state-changing request made with that cookie must carry the
session's CSRF token (``X-CSRF-Token`` header or ``csrf_token`` form field). Scripts send
``Authorization: Bearer <token>``; tokens are stored as SHA-256 and need no CSRF token.
Without credentials every route answers 401 (pages show the sign-in form with that status).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from drscreen.serve.config import ServeState
from drscreen.serve.tables import ApiToken, User, WebSession, utc_now

SESSION_COOKIE = "drscreen_session"
LOGIN_CSRF_COOKIE = "drscreen_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
MIN_PASSWORD_LENGTH = 8
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

_hasher = PasswordHasher()
#: Verified against when a user name is unknown, so that the answer takes as long as for a real user.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class NotAuthenticated(Exception):
    """No valid credentials: 401."""


class CsrfFailed(Exception):
    """A cookie-authenticated change without the session's CSRF token: 403."""


@dataclass(frozen=True)
class Principal:
    """The signed-in user; ``csrf_token`` is set for browser sessions only."""

    user_id: int | None
    username: str
    csrf_token: str | None
    via: str


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; spends the same time on unknown users (``stored_hash`` None)."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def create_user(session: Session, username: str, password: str) -> User:
    """Add a user (or set a new password for an existing one)."""
    import re

    if not re.fullmatch(USERNAME_PATTERN, username):
        raise ValueError("user names are 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, password_hash=hash_password(password))
        session.add(user)
    else:
        user.password_hash = hash_password(password)
    session.commit()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user whose password this is, or None."""
    user = session.scalar(select(User).where(User.username == username))
    return user if verify_password(None if user is None else user.password_hash, password) else None


def start_session(session: Session, user: User, hours: float) -> tuple[str, str]:
    """A new browser session for ``user``: (cookie value, CSRF token)."""
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utc_now()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.add(
        WebSession(
            token_sha256=sha256_hex(cookie),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    session.commit()
    return cookie, csrf


def end_session(session: Session, cookie: str | None) -> None:
    if cookie:
        session.execute(delete(WebSession).where(WebSession.token_sha256 == sha256_hex(cookie)))
        session.commit()


def issue_api_token(session: Session, user_id: int, name: str) -> str:
    """A new API token for ``user_id`` (shown once; only its SHA-256 is stored)."""
    token = "drs_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user_id, name=name, token_sha256=sha256_hex(token)))
    session.commit()
    return token


def identify(state: ServeState, request: Request) -> Principal | None:
    """The principal behind ``request``'s bearer token or session cookie, or None."""
    if not state.config.auth_required:
        return Principal(user_id=None, username="local", csrf_token=None, via="local")
    header = request.headers.get("authorization", "")
    with state.sessions() as session:
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            row = session.execute(
                select(User.id, User.username)
                .join(ApiToken, ApiToken.user_id == User.id)
                .where(ApiToken.token_sha256 == sha256_hex(token.strip()))
            ).first()
            return (
                None if row is None else Principal(user_id=row.id, username=row.username, csrf_token=None, via="token")
            )
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        row = session.execute(
            select(User.id, User.username, WebSession.csrf_token)
            .join(WebSession, WebSession.user_id == User.id)
            .where(WebSession.token_sha256 == sha256_hex(cookie), WebSession.expires_at > utc_now())
        ).first()
        return None if row is None else Principal(row.id, row.username, row.csrf_token, "session")


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of two tokens (False when either is missing)."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


async def require_user(request: Request) -> Principal:
    """FastAPI dependency: the principal, with the CSRF check for cookie-authenticated changes."""
    state: ServeState = request.app.state.drscreen
    principal = identify(state, request)
    if principal is None:
        raise NotAuthenticated()
    if principal.via == "session" and request.method in UNSAFE_METHODS:
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            given = value if isinstance(value, str) else None
        if not tokens_match(principal.csrf_token, given):
            raise CsrfFailed()
    return principal


class SecurityHeaders:
    """ASGI middleware: security headers on every response, and no caching of patient data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.encode(), value.encode()))
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyLimit:
    """ASGI middleware: answers 413 once a request body passes ``max_bytes`` (chunked bodies too)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, "request body too large")
            return message

        await self.app(scope, counted, send)


async def _too_large(send: Send) -> None:
    body = b'{"detail":"request body too large"}'
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
