"""The outermost layer of every HTTP request: request id, body limit, metrics, access log, crashes.

A plain ASGI middleware (not ``BaseHTTPMiddleware``) so streamed responses pass through
untouched. For each request it

- takes the client's ``X-Request-ID`` if it is a short safe token, or makes one, and returns it;
- refuses a body over ``max_body_bytes`` with 413 *before reading it*: a ``Content-Length``
  over the limit is answered at once; a body without one (chunked) is read up to the limit
  and no further;
- records latency and status per route template, and writes one JSON access-log line (the
  key's *name*, never the key);
- answers a repeated latest-N request from the pre-serialised cache before routing
  (:mod:`._fastpath`);
- turns any exception that escaped the handlers into a 500 in the one error shape, logged with
  its (redacted) traceback under the request id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tickvault.service._errors import ApiError, error_body, request_id_var
from tickvault.service._fastpath import serve_cached_latest
from tickvault.service._logging import log_event
from tickvault.service._state import ServiceState

__all__ = ["ServiceMiddleware"]

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class _BodyTooLarge(Exception):
    """Raised inside the middleware when a chunked body passes the limit."""


class ServiceMiddleware:
    """See the module docstring.

    Parameters
    ----------
    app
        The wrapped ASGI app.
    state
        The service's shared state (settings, metrics, redactor).
    """

    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app = app
        self.st = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        incoming = headers.get("x-request-id", "")
        rid = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send, headers, rid)
        finally:
            request_id_var.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], rid: str) -> None:
        st = self.st
        started = time.perf_counter()
        sent: dict[str, Any] = {"status": 0, "bytes": 0, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                sent["started"] = True
                extra = [(b"x-request-id", rid.encode()), (b"x-content-type-options", b"nosniff")]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            elif message["type"] == "http.response.body":
                sent["bytes"] += len(message.get("body", b""))
            await send(message)

        st.metrics.in_flight.inc()
        try:
            # A repeated latest-N request is answered from the cache here (hot path, ._fastpath).
            if not await serve_cached_latest(st, scope, receive, send_wrapper):
                body_receive = await self._limit_body(scope, receive, headers)
                await self.app(scope, body_receive, send_wrapper)
        except _BodyTooLarge:
            await self._error(scope, send_wrapper, sent, self._too_large())
        except Exception as exc:  # the last line: anything a handler did not turn into an answer
            log_event(logging.ERROR, "unhandled error", st.redactor, exc=exc, method=scope.get("method"),
                      path=scope.get("path"))
            await self._error(scope, send_wrapper, sent, ApiError(
                500, "internal_error", "internal error; the server log has the details under this request id"))
        finally:
            st.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            found = scope.get("route")
            route = getattr(found, "path_format", None) or getattr(found, "path", None) or "unmatched"
            status = int(sent["status"]) or 500
            st.metrics.observe_request(scope.get("method", "?"), route, status, elapsed)
            principal = (scope.get("state") or {}).get("principal")
            level = logging.INFO if status < 500 else logging.ERROR if status == 500 else logging.WARNING
            log_event(level, "request", st.redactor,
                      method=scope.get("method"), route=route, path=scope.get("path"), status=status,
                      duration_ms=round(elapsed * 1000, 3), bytes_out=sent["bytes"],
                      client=(scope.get("client") or ("-",))[0], key=getattr(principal, "name", None))

    def _too_large(self) -> ApiError:
        limit = self.st.settings.max_body_bytes
        return ApiError(413, "payload_too_large", f"the request body is larger than {limit:,} bytes",
                        details={"limit_bytes": limit})

    async def _limit_body(self, scope: Scope, receive: Receive, headers: dict[str, str]) -> Receive:
        """A receive callable that never hands the app more than ``max_body_bytes``."""
        limit = self.st.settings.max_body_bytes
        length = headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > limit:
                raise _BodyTooLarge
            if declared >= 0:
                return receive  # the server enforces the declared length
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS") and "transfer-encoding" not in headers:
            return receive
        # No (valid) length: read up to the limit here, then replay it to the app.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay_receive() -> Message:
            if replay:
                return replay.pop()
            return await receive()

        return replay_receive

    async def _error(self, scope: Scope, send: Send, sent: dict[str, Any], err: ApiError) -> None:
        if sent["started"]:
            return  # too late to change the answer; the log has it
        response = JSONResponse(error_body(err, self.st.redactor), status_code=err.status, headers=err.headers)

        async def no_receive() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, no_receive, send)
