"""``create_app(vault, settings)``: the FastAPI application over one open vault.

The app only uses the public facade (``import tickvault``). Vault calls block (file and
database I/O), so the routes run them in the thread pool; the latest-N path is served from
pre-serialised bytes when the series has not changed. Access is declared per route and
checked at build time (deny by default, see :mod:`._auth`); errors leave in one JSON shape
(:mod:`._errors`); a static folder is served at ``/`` for the dashboard.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

import tickvault
from tickvault.errors import ConfigError, ProviderError, TickvaultError
from tickvault.service import _routes_analytics, _routes_bars, _routes_ops, _routes_ref, _stream
from tickvault.service._auth import Guard
from tickvault.service._errors import ApiError, Redactor, code_for_status, error_body, error_for
from tickvault.service._fastpath import LATEST_TEMPLATE
from tickvault.service._keys import KeyRing, default_keys_file
from tickvault.service._logging import log_event
from tickvault.service._metrics import Metrics
from tickvault.service._middleware import ServiceMiddleware
from tickvault.service._settings import ServiceSettings
from tickvault.service._state import LatestCache, SeriesVersions, ServiceState
from tickvault.service._stream import StreamHub

if TYPE_CHECKING:
    from tickvault import Vault

__all__ = ["STATIC_DIR", "create_app"]

#: The folder served at ``/`` unless ``static_dir`` says otherwise (the dashboard goes here).
STATIC_DIR = Path(__file__).with_name("static")


def _secrets(vault: Vault, settings: ServiceSettings) -> list[str]:
    """Values no response or log line may show: configured extras, store and Redis credentials."""
    out = [s.get_secret_value() for s in settings.redact]
    for url in (vault.settings.database_url, vault.settings.redis_url):
        if url is None:
            continue
        raw = url.get_secret_value()
        password = urlsplit(raw).password
        out += [raw] + ([password] if password else [])
    return out


def _dependencies(dep: Dependant) -> Iterator[Dependant]:
    for sub in dep.dependencies:
        yield sub
        yield from _dependencies(sub)


def _access_map(routers: Iterable[APIRouter]) -> dict[str, str]:
    """``"METHOD /path" -> role`` for every route; refuse to build if one declares none."""
    access: dict[str, str] = {}
    for route in (r for router in routers for r in router.routes):
        if isinstance(route, APIRoute):
            roles = {str(getattr(d.call, "tickvault_role", "")) for d in _dependencies(route.dependant)} - {""}
            if len(roles) != 1:
                raise ConfigError(f"route {sorted(route.methods or ())} {route.path} must declare exactly one access "
                                  "role (needs(...) or public())")
            role = roles.pop()
            for method in sorted(route.methods or ()):
                access[f"{method} {route.path_format}"] = role
        elif isinstance(route, APIWebSocketRoute):
            access[f"WS {route.path_format}"] = "read"  # checked inside the stream handler
    return access


class _Static:
    """``StaticFiles`` for HTTP; a WebSocket to an unknown path is closed instead of crashing it."""

    def __init__(self, directory: Path) -> None:
        self._files = StaticFiles(directory=directory, html=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4404, "reason": "no such stream"})
            return
        await self._files(scope, receive, send)


def _install_handlers(app: FastAPI, st: ServiceState) -> None:
    def respond(err: ApiError) -> JSONResponse:
        return JSONResponse(error_body(err, st.redactor), status_code=err.status, headers=err.headers or None)

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return respond(exc)

    async def on_tickvault_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TickvaultError)
        err = error_for(exc)
        if isinstance(exc, ProviderError):
            st.metrics.provider_error(exc.context.get("provider"), type(exc).__name__)
        if err.status >= 500:
            log_event(logging.ERROR, "request failed", st.redactor, exc=exc, path=request.url.path)
        return respond(err)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                     "type": str(e.get("type", ""))} for e in exc.errors()[:20]]
        where = ", ".join(".".join(p["loc"]) for p in problems[:3])
        return respond(ApiError(422, "validation_error", f"invalid request: {where or 'see details'}",
                                details={"errors": problems}))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return respond(ApiError(exc.status_code, code_for_status(exc.status_code), message,
                                headers=dict(exc.headers or {})))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(TickvaultError, on_tickvault_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


def create_app(vault: Vault, settings: ServiceSettings, *, clock: Callable[[], float] = time.monotonic) -> FastAPI:
    """Build the HTTP/WebSocket application over ``vault``.

    Parameters
    ----------
    vault
        An open vault (``tickvault.open(...)``); the app does not close it.
    settings
        Service settings (keys, limits, read policy).
    clock
        Monotonic seconds for the rate limiter and the latest-N cache (tests inject one).

    Returns
    -------
    fastapi.FastAPI
        Serve it with any ASGI server (``tickvault serve`` uses uvicorn).

    Raises
    ------
    ConfigError
        If the keys file is malformed, or a route declares no access role.
    """
    redactor = Redactor(_secrets(vault, settings))
    keys_file = settings.keys_file if settings.keys_file is not None else default_keys_file(vault.home)
    ring = KeyRing(settings.api_keys, keys_file)
    hub_box: list[StreamHub] = []
    metrics = Metrics(vault, staleness=lambda: hub_box[0].staleness() if hub_box else [])
    guard = Guard(settings, ring, clock=clock, on_limited=lambda route: metrics.rate_limited.labels(route).inc())
    st = ServiceState(vault=vault, settings=settings, guard=guard, metrics=metrics, redactor=redactor,
                      versions=SeriesVersions(), latest=LatestCache(settings.latest_cache_seconds,
                                                                    settings.latest_cache_entries, clock),
                      keys_file=keys_file)
    hub = StreamHub(st)
    hub_box.append(hub)
    st.hub = hub
    hub.attach()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(
        title="tickvault",
        version=tickvault.__version__,
        summary="Market data you can trust: bars, instruments, corporate actions, coverage and quality over HTTP.",
        description="See docs/service.md. Errors share one shape: `{\"error\": {status, code, message, "
                    "request_id, details}}`. Send API keys as `X-API-Key` or `Authorization: Bearer`.",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.tv = st
    app.state.guard = guard
    _install_handlers(app, st)
    routers = (_routes_bars.router, _routes_ref.router, _routes_analytics.router, _routes_ops.router,
               _stream.router)
    app.state.access = _access_map(routers)  # before serving anything: deny by default
    st.latest_route = next(r for r in _routes_bars.router.routes
                           if isinstance(r, APIRoute) and r.path_format == LATEST_TEMPLATE)
    for router in routers:
        app.include_router(router)
    app.add_middleware(ServiceMiddleware, state=st)
    static = settings.static_dir if settings.static_dir is not None else STATIC_DIR
    if not static.is_dir():
        raise ConfigError("the static folder does not exist", path=str(static))
    app.mount("/", _Static(static), name="static")
    return app
