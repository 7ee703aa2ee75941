"""``create_app``: the FastAPI application of ``drscreen serve`` (pages, API, worker pool)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from drscreen.serve import api, pages
from drscreen.serve.blobs import BlobStore
from drscreen.serve.config import ServeConfig, ServeState
from drscreen.serve.database import make_engine, migrate, session_factory, sqlite_url
from drscreen.serve.queue import WorkerPool
from drscreen.serve.security import BodyLimit, CsrfFailed, NotAuthenticated, SecurityHeaders
from drscreen.serve.work import ScreeningWork

#: Routes that answer without credentials: the sign-in form and the static files (CSS, JS).
PUBLIC_ROUTES = frozenset({("GET", "/login"), ("POST", "/login"), ("GET", "/static")})


def open_state(config: ServeConfig) -> ServeState:
    """Create the data folder, migrate the database and open the file store."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(config.database_url or sqlite_url(config.data_dir))
    migrate(engine)
    return ServeState(config=config, engine=engine, sessions=session_factory(engine), blobs=BlobStore(config.data_dir))


def create_app(config: ServeConfig) -> FastAPI:
    """The web app and API on ``config``'s database and data folder; the lifespan runs the workers."""
    from drscreen import __version__

    state = open_state(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = WorkerPool(state, ScreeningWork(state), config.workers)
        app.state.pool = pool
        pool.start()
        try:
            yield
        finally:
            pool.stop()
            state.engine.dispose()

    app = FastAPI(
        title="drscreen serve",
        version=__version__,
        description="Screening photographs with drscreen: submit, poll, fetch results and overlays. Research "
        "output, not a medical device. Results use the schema of `drscreen screen` (ImageResult).",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.drscreen = state
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).with_name("static"))), name="static")
    app.add_middleware(BodyLimit, max_bytes=config.max_request_bytes)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, _error: NotAuthenticated) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"detail": "sign in or send an API token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return pages.login_page(request, 401)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(_request: Request, _error: CsrfFailed) -> Response:
        return JSONResponse({"detail": "CSRF token missing or wrong: reload the page"}, status_code=403)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)
        user = None
        try:
            user = await api.authorized(request)
        except (NotAuthenticated, CsrfFailed):
            pass
        return pages.render(
            request, "error.html.j2", user, error.status_code, status=error.status_code, detail=error.detail
        )

    return app


def route_table(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route of the API and the pages, and of every mount of ``app``."""
    table = []
    for route in [*api.router.routes, *pages.router.routes, *app.routes]:
        path = getattr(route, "path", None)
        if path is None:  # an included router: its routes are listed above
            continue
        methods = getattr(route, "methods", None) or {"GET"}
        table.extend((method, path) for method in sorted(methods) if method != "HEAD")
    return table
