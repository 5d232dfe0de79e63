"""The hot path of ``GET /v1/bars/{symbol}/latest``: a repeated request answered from the
pre-serialised cache before FastAPI routes it.

Why this module exists: a cache hit on the latest-N route costs microseconds of work (a dict
lookup and a bytes response), but going through FastAPI's routing, dependency resolution and
pydantic parameter validation cost about 0.4 ms per request on the 2-core dev machine, four
times a whole minimal FastAPI endpoint (measured in ``bench/`` by the ``http`` workload, see
docs/benchmarks.md). :func:`serve_cached_latest` answers such a hit directly; everything else
(first requests, misses, stale or expired entries, other methods) goes the normal way.

How it stays exact:

- **Only requests seen before.** When the route computes an answer it has validated the
  symbol, timeframe, ``n``, ``adjust`` and format; it records the *raw* request (path, query
  string, ``Accept`` header: everything those depend on) as an alias of the cache key it
  derived (:meth:`LatestCache.remember`). Parsing is a pure function of the raw request, so an
  alias stands for exactly the validation the route did. Aliases are bounded (LRU).
- **The same access checks.** Authentication, rate limit and role use the route's own
  :class:`~tickvault.service._auth.Guard` calls, in the same order, with the same headers,
  client address and route template; refusals leave in the one error shape, with the same
  headers (``Retry-After``, ``WWW-Authenticate``).
- **The same freshness.** An entry is served only at the series' current version and before
  it expires (:meth:`LatestCache.get`), as the route does; otherwise the route recomputes.
- **The same answer.** Body, ``Content-Type``, ``X-Row-Count``, ``X-Cache: hit``; the
  middleware adds ``X-Request-ID`` and ``nosniff``, records latency under the route template,
  counts the response-cache hit and writes the access log line with the key's name.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tickvault.service._errors import ApiError, error_body
from tickvault.service._settings import Role
from tickvault.service._state import ServiceState

__all__ = ["LATEST_TEMPLATE", "raw_request_key", "serve_cached_latest"]

#: The route template of the latest-N route (metrics label, rate-limit route).
LATEST_TEMPLATE = "/v1/bars/{symbol}/latest"


def raw_request_key(scope: Scope, accept: str | None) -> tuple[Any, ...]:
    """What a latest-N answer depends on, as the client sent it: path, query string, ``Accept``."""
    return (scope.get("path", ""), bytes(scope.get("query_string", b"")), accept)


async def serve_cached_latest(st: ServiceState, scope: Scope, receive: Receive, send: Send) -> bool:
    """Answer a repeated latest-N request from the cache; ``False`` when the normal route must run.

    Parameters
    ----------
    st
        The app's state (cache, versions, guard, metrics).
    scope, receive, send
        The ASGI request (HTTP).

    Returns
    -------
    bool
        Whether a response was sent.
    """
    if scope.get("method") != "GET" or not str(scope.get("path", "")).endswith("/latest") or not st.latest.enabled:
        return False
    headers = Headers(scope=scope)
    key = st.latest.alias_of(raw_request_key(scope, headers.get("accept")))
    if key is None:
        return False
    hit = st.latest.get(key, st.versions.of(key[1], key[2]))
    if hit is None:
        return False  # stale or expired: the route recomputes (and counts the miss)
    if st.latest_route is not None:
        scope["route"] = st.latest_route  # the middleware labels metrics and the log with its template
    client = scope.get("client")
    try:
        principal = st.guard.identify(headers, client[0] if client else "unknown", LATEST_TEMPLATE)
        scope.setdefault("state", {})["principal"] = principal
        st.guard.authorize(principal, Role.READ)
    except ApiError as err:
        response: Response = JSONResponse(error_body(err, st.redactor), status_code=err.status,
                                          headers=err.headers or None)
    else:
        st.metrics.response_cache.labels("hit").inc()
        body, media, rows = hit
        response = Response(body, media_type=media, headers={"X-Row-Count": str(rows), "X-Cache": "hit"})
    await response(scope, receive, send)
    return True
