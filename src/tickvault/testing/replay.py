"""A real HTTP server on 127.0.0.1 that replays recorded vendor responses, with faults.

Provider tests fetch through the real adapters and the real HTTP stack (httpx, sockets);
only the far end is replaced. The server maps a request's path and identifying query
parameters to a recorded body (:class:`Route`), keeps a log of what it received, and
plays scripted faults per route (:class:`Fault`): ``429`` with ``Retry-After``, ``5xx``
N times then success, a delay longer than the client's timeout (on the route of page k:
timeout mid-pagination), a truncated or malformed body, ``401``/``403``, a dropped
connection.

Loaders read the recordings in ``shared/data/provider-payloads`` in their own formats
(Yahoo: recorded exchanges; Polygon: bare bodies whose file name encodes the request;
Alpaca: a JSON array of ``{test, url_template, response}``). Where a test needs more pages
than a recording has, :func:`alpaca_pages` and :func:`polygon_pages` split a recorded body
into pages with synthetic cursors: *derived from the recording*, the rows unchanged.

Usage::

    with ReplayServer([yahoo_route(path)]) as server:
        server.fault("/v8/finance/chart/AAPL", Fault.status(503, times=2))
        provider = YahooProvider(ProviderSettings("yahoo", server.base_url), clock=clock)
        result = asyncio.run(provider.bars(query))
        assert len(server.requests) == 4   # 2 failures, success, later-events lookup
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tickvault.providers._http import Clock

__all__ = [
    "Canned",
    "Fault",
    "ManualClock",
    "ReceivedRequest",
    "ReplayServer",
    "Route",
    "alpaca_pages",
    "alpaca_recordings",
    "alpaca_route",
    "polygon_pages",
    "polygon_path",
    "polygon_route",
    "routes_from",
    "yahoo_later_events_route",
    "yahoo_route",
]

_JSON = {"Content-Type": "application/json"}
_DAY_S = 86_400


# -- responses, faults, routes ---------------------------------------------------------------


@dataclass(frozen=True)
class Canned:
    """One response: status, headers, body bytes."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=lambda: dict(_JSON))

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Canned:
        """A JSON response."""
        return cls(status, json.dumps(obj).encode(), {**_JSON, **(headers or {})})


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour, applied to the next ``times`` requests of a route.

    Build with the class methods; ``kind`` is one of ``status``, ``delay``, ``truncate``,
    ``malformed``, ``disconnect``.
    """

    kind: str
    times: int = 1
    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    keep: float = 0.5

    @classmethod
    def status_code(cls, status: int, *, times: int = 1, headers: Mapping[str, str] | None = None,
                    body: Any = None) -> Fault:
        """Answer ``status`` (with an optional JSON ``body``) instead of the recording."""
        payload = json.dumps(body if body is not None else {"error": f"replayed fault {status}"}).encode()
        return cls("status", times, status, {**_JSON, **(headers or {})}, payload)

    @classmethod
    def rate_limited(cls, retry_after: str | float | None = 1, *, times: int = 1) -> Fault:
        """``429 Too Many Requests`` with ``Retry-After`` (seconds or an HTTP date)."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return cls.status_code(429, times=times, headers=headers)

    @classmethod
    def server_error(cls, status: int = 503, *, times: int = 1) -> Fault:
        """A ``5xx`` answer ``times`` times (then the recording)."""
        return cls.status_code(status, times=times)

    @classmethod
    def auth_failure(cls, status: int = 401, *, times: int = 1, body: Any = None) -> Fault:
        """``401``/``403`` with an optional vendor body."""
        return cls.status_code(status, times=times, body=body)

    @classmethod
    def delay(cls, seconds: float, *, times: int = 1) -> Fault:
        """Wait ``seconds`` before answering (longer than the client timeout: a timeout)."""
        return cls("delay", times, seconds=seconds)

    @classmethod
    def truncated(cls, keep: float = 0.5, *, times: int = 1) -> Fault:
        """Send only the first ``keep`` fraction of the body (with a matching length)."""
        return cls("truncate", times, keep=keep)

    @classmethod
    def malformed(cls, *, times: int = 1) -> Fault:
        """A 200 whose body is not JSON."""
        return cls("malformed", times, body=b"{\"chart\": <html>oops")

    @classmethod
    def disconnect(cls, *, times: int = 1) -> Fault:
        """Announce the full length, send half the body, close the connection."""
        return cls("disconnect", times)


@dataclass
class Route:
    """A recorded answer for requests to ``path`` whose query contains ``params``.

    Parameters
    ----------
    path
        URL path, unquoted (``/v8/finance/chart/^GSPC``).
    response
        What to answer.
    params
        Query parameters the request must carry with these values (others are ignored:
        recordings rarely match our own start/end or limit).
    accept
        Optional extra predicate on the request's query parameters.
    name
        Key for :meth:`ReplayServer.fault` (default: the path).
    note
        Provenance, e.g. ``"derived: terminal page"``.
    """

    path: str
    response: Canned
    params: Mapping[str, str] = field(default_factory=dict)
    accept: Callable[[Mapping[str, str]], bool] | None = None
    name: str = ""
    note: str = "recorded"

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.path

    def matches(self, path: str, query: Mapping[str, str]) -> bool:
        """Whether a request is for this route."""
        if path != self.path or any(query.get(k) != v for k, v in self.params.items()):
            return False
        return self.accept is None or self.accept(query)


@dataclass(frozen=True)
class ReceivedRequest:
    """A request the server received (for assertions)."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    route: str | None
    status: int


# -- the server -------------------------------------------------------------------------------


class ReplayServer:
    """Threaded HTTP server on ``127.0.0.1:<ephemeral port>`` replaying :class:`Route` s.

    Start and stop it with ``with`` (or :meth:`start` / :meth:`stop`). Unknown requests get
    ``404 {"error": "no recorded route"}`` and are logged like the others.
    """

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._routes: list[Route] = []
        self._faults: dict[str, list[list[Any]]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests: list[ReceivedRequest] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for r in routes:
            self.add(r)

    def __repr__(self) -> str:
        state = self.base_url if self._httpd is not None else "stopped"
        return f"ReplayServer({len(self._routes)} routes, {state})"

    # configuration
    def add(self, route: Route) -> Route:
        """Register a route (more specific ``params`` win over fewer)."""
        with self._lock:
            self._routes.append(route)
            self._routes.sort(key=lambda r: -(len(r.params) + (r.accept is not None)))
        return route

    def fault(self, name: str, *faults: Fault) -> None:
        """Queue faults for the route called ``name`` (its path unless named)."""
        if not any(r.name == name for r in self._routes):
            raise KeyError(f"no route named {name!r}")
        with self._lock:
            self._faults.setdefault(name, []).extend([f, f.times] for f in faults)

    # lifecycle
    def start(self) -> ReplayServer:
        """Bind an ephemeral port on 127.0.0.1 and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        handler = type("_BoundHandler", (_Handler,), {"replay": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="tickvault-replay", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; delayed answers are cut short. Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (only while started)."""
        if self._httpd is None:
            raise RuntimeError("replay server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, name: str) -> list[ReceivedRequest]:
        """Requests that matched the route called ``name``."""
        return [r for r in self.requests if r.route == name]

    # serving (called from handler threads)
    def _dispatch(self, path: str, query: dict[str, str]) -> tuple[Route | None, Fault | None]:
        with self._lock:
            route = next((r for r in self._routes if r.matches(path, query)), None)
            if route is None:
                return None, None
            queue = self._faults.get(route.name)
            if not queue:
                return route, None
            item = queue[0]
            item[1] -= 1
            if item[1] <= 0:
                queue.pop(0)
            return route, item[0]

    def _log(self, req: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(req)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    replay: ReplayServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log (the server keeps its own request log)."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        route, fault = self.replay._dispatch(path, query)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if route is None:
            body = json.dumps({"error": "no recorded route", "path": path}).encode()
            self._send(404, _JSON, body)
            self.replay._log(ReceivedRequest("GET", path, query, headers, None, 404))
            return
        status, hdrs, body = route.response.status, dict(route.response.headers), route.response.body
        if fault is not None and fault.kind == "status":
            status, hdrs, body = fault.status, dict(fault.headers), fault.body
        elif fault is not None and fault.kind == "malformed":
            status, body = 200, fault.body
        # Logged on arrival, so a request still being delayed is already visible.
        self.replay._log(ReceivedRequest("GET", path, query, headers, route.name, status))
        if fault is not None and fault.kind == "delay" and self.replay._stopping.wait(fault.seconds):
            return
        if fault is not None and fault.kind == "truncate":
            body = body[: int(len(body) * fault.keep)]
        if fault is not None and fault.kind == "disconnect":
            self._send(status, hdrs, body[: len(body) // 2], length=len(body))
            self.close_connection = True
            return
        self._send(status, hdrs, body)

    def _send(self, status: int, headers: Mapping[str, str], body: bytes, length: int | None = None) -> None:
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) and closed the socket
            self.close_connection = True


# -- injected time ---------------------------------------------------------------------------


class ManualClock:
    """A clock whose ``sleep`` returns at once and advances time; it records every wait.

    Parameters
    ----------
    now_us
        Initial wall-clock time, epoch µs (e.g. the day a payload was recorded).
    """

    def __init__(self, now_us: int) -> None:
        self._mono = 1_000.0
        self._now_us = int(now_us)
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ManualClock(now_us={self._now_us}, sleeps={len(self.sleeps)})"

    def monotonic(self) -> float:
        """Current monotonic seconds."""
        with self._lock:
            return self._mono

    def now_us(self) -> int:
        """Current wall-clock epoch µs."""
        with self._lock:
            return self._now_us

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        with self._lock:
            self._mono += seconds
            self._now_us += int(seconds * 1_000_000)

    async def sleep(self, seconds: float) -> None:
        """Record the wait, advance time, yield to the loop once."""
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

    @property
    def clock(self) -> Clock:
        """As a :class:`~tickvault.providers._http.Clock` to inject into providers."""
        return Clock(monotonic=self.monotonic, sleep=self.sleep, now_us=self.now_us)


# -- loaders: Yahoo (recorded exchanges) -------------------------------------------------------


def _load(path: Path | str) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _window(query: Mapping[str, str]) -> tuple[int, int] | None:
    try:
        return int(query["period1"]), int(query["period2"])
    except (KeyError, ValueError):
        return None


def yahoo_route(path: Path | str, *, slack_days: int = 2) -> Route:
    """A route replaying one node-yahoo-finance2 recorded exchange.

    Matches the recorded path and ``interval``; ``period1``/``period2`` must lie within
    ``slack_days`` of the recorded ones (adapters pad daily windows by a day), so a test
    asking for a wider window gets a 404 instead of a recording that does not cover it.
    """
    rec = _load(path)
    url = urlsplit(rec["request"]["url"])
    query = dict(parse_qsl(url.query))
    p1, p2 = int(query["period1"]), int(query["period2"])
    slack = slack_days * _DAY_S

    def accept(q: Mapping[str, str]) -> bool:
        w = _window(q)
        return w is not None and abs(w[0] - p1) <= slack and abs(w[1] - p2) <= slack

    resp = rec["response"]
    headers = {"Content-Type": resp.get("headers", {}).get("content-type", "application/json")}
    return Route(unquote(url.path), Canned(int(resp["status"]), json.dumps(resp["bodyJson"]).encode(), headers),
                 {"interval": query["interval"]}, accept, note=f"recorded: {Path(path).name}")


def yahoo_later_events_route(path: Path | str, *, slack_days: int = 2) -> Route:
    """Derived: the answer to the adapter's later-events lookup after a recorded window.

    The body is the recording's own ``meta`` with no bars and no events — what Yahoo answers
    when no split or dividend happened in the lookup window. (For the recorded AAPL and MSFT
    windows no split happened between the window and the recording date; later dividends
    are not replayed, which does not change raw prices.)
    """
    rec = _load(path)
    url = urlsplit(rec["request"]["url"])
    p2 = int(dict(parse_qsl(url.query))["period2"])
    meta = copy.deepcopy(rec["response"]["bodyJson"]["chart"]["result"][0]["meta"])
    meta["dataGranularity"] = "1mo"
    body = {"chart": {"result": [{"meta": meta, "indicators": {"quote": [{}]}}], "error": None}}

    def accept(q: Mapping[str, str]) -> bool:
        w = _window(q)
        return w is not None and w[0] >= p2 - slack_days * _DAY_S

    return Route(unquote(url.path), Canned.json(body), {"interval": "1mo"}, accept,
                 name=f"{unquote(url.path)}#later", note="derived: no events after the recorded window")


# -- loaders: Polygon (bare bodies, request encoded in the file name) ---------------------------

_POLYGON_AGGS = re.compile(r"^v2_aggs_(?P<t>[A-Z.:]+)_range_(?P<m>\d+)_(?P<span>[a-z]+)_(?P<a>[\d-]+)_(?P<b>[\d-]+)$")


def polygon_path(filename: str) -> str:
    """The request path a polygon-client-python mock file stands for.

    ``v2_aggs_AAPL_range_1_day_2005-04-01_2005-04-04.json`` ->
    ``/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-04``; ``v3_reference_splits.json``
    -> ``/v3/reference/splits``.

    Raises
    ------
    ValueError
        For a file name this mapping does not know.
    """
    stem = Path(filename).name.removesuffix(".json")
    m = _POLYGON_AGGS.match(stem)
    if m:
        return f"/v2/aggs/ticker/{m['t']}/range/{m['m']}/{m['span']}/{m['a']}/{m['b']}"
    simple = {"v3_reference_splits": "/v3/reference/splits", "v3_reference_dividends": "/v3/reference/dividends",
              "v2_aggs_AAPL_prev": "/v2/aggs/ticker/AAPL/prev", "v3_quotes_AAPL_page1": "/v3/quotes/AAPL",
              "v3_quotes_AAPL_page2_cursor": "/v3/quotes/AAPL", "v3_trades_AAPL_limit2": "/v3/trades/AAPL"}
    if stem in simple:
        return simple[stem]
    raise ValueError(f"unknown polygon mock file {filename!r}")


def polygon_route(path: Path | str, *, params: Mapping[str, str] | None = None) -> Route:
    """A route replaying one polygon-client-python mock body at the path its name encodes."""
    body = Path(path).read_bytes()
    return Route(polygon_path(Path(path).name), Canned(200, body), dict(params or {}),
                 note=f"recorded: {Path(path).name}")


def polygon_pages(path: str, body: Mapping[str, Any], per_page: int, *,
                  origin: str = "https://api.polygon.io") -> list[Route]:
    """Derived: split a recorded aggregates body into cursor pages of ``per_page`` results.

    Page ``i`` carries ``next_url = {origin}{path}?cursor=replay-{i+1}`` (Polygon's form;
    adapters re-base it onto their configured URL) and ``resultsCount``/``count`` of its own
    rows; the last page has no ``next_url``. Rows are unchanged and in order.
    """
    rows = list(body.get("results") or [])
    chunks = [rows[i:i + per_page] for i in range(0, len(rows), per_page)] or [[]]
    routes = []
    for i, chunk in enumerate(chunks):
        page = {k: v for k, v in body.items() if k != "next_url"}
        page.update(results=chunk, resultsCount=len(chunk), count=len(chunk))
        if i + 1 < len(chunks):
            page["next_url"] = f"{origin}{path}?cursor=replay-{i + 1}"
        params = {"cursor": f"replay-{i}"} if i else {}
        routes.append(Route(path, Canned.json(page), params, name=f"{path}#page{i}",
                            note=f"derived: page {i + 1}/{len(chunks)} of a recorded body"))
    return routes


# -- loaders: Alpaca (array of {test, url_template, response}) -----------------------------------


def alpaca_recordings(path: Path | str) -> dict[str, dict[str, Any]]:
    """The alpaca-py payload file as ``{test name: {url_template, response, ...}}``."""
    return {item["test"]: item for item in _load(path)}


def alpaca_route(recording: Mapping[str, Any], *, params: Mapping[str, str] | None = None,
                 terminal_continuation: bool = True) -> list[Route]:
    """Routes replaying one alpaca-py recording.

    The route matches the template's path and its literal identity parameters (``symbols``,
    ``timeframe``, ``feed`` when not placeholders) plus ``params``; ``sort`` is deliberately
    not matched (a ``sort=desc`` recording answers an ascending request: adapters must not
    rely on the vendor's order). When the
    recording ends with a ``next_page_token`` whose page was not recorded (alpaca-py's
    requests had no ``end``; ours always do), ``terminal_continuation`` adds a *derived*
    route answering that token with an empty last page, which is what Alpaca returns once a
    bounded range is exhausted.
    """
    url = urlsplit(recording["url_template"])
    literal = {k: v for k, v in parse_qsl(url.query)
               if k in ("symbols", "timeframe", "feed") and "{" not in v}
    match = {**literal, **(params or {})}
    response = recording["response"]
    name = f"{url.path}#{recording['test']}"
    routes = [Route(url.path, Canned.json(response), match, name=name, note=f"recorded: {recording['test']}")]
    token = response.get("next_page_token") if isinstance(response, dict) else None
    if token and terminal_continuation:
        empty_key = "bars" if "bars" in response else next(iter(response), "bars")
        routes.append(Route(url.path, Canned.json({empty_key: {}, "next_page_token": None}),
                            {**match, "page_token": token}, name=f"{name}#continuation",
                            note="derived: empty last page after the recorded token"))
    return routes


def alpaca_pages(path: str, params: Mapping[str, str], body: Mapping[str, Any], per_page: int) -> list[Route]:
    """Derived: split a recorded ``{"bars": {SYM: [...]}}`` body into token pages of ``per_page``.

    Page ``i`` (0-based) is served to ``page_token=replay-{i}`` (page 0 to no token) and
    points to ``replay-{i+1}``; the last page's ``next_page_token`` is ``null``.
    """
    bars = body.get("bars") or {}
    symbol, rows = next(iter(bars.items())) if bars else ("", [])
    chunks = [rows[i:i + per_page] for i in range(0, len(rows), per_page)] or [[]]
    routes = []
    for i, chunk in enumerate(chunks):
        page = {"bars": {symbol: chunk} if symbol else {},
                "next_page_token": f"replay-{i + 1}" if i + 1 < len(chunks) else None}
        match = {**params, "page_token": f"replay-{i}"} if i else dict(params)
        routes.append(Route(path, Canned.json(page), match, name=f"{path}#page{i}",
                            note=f"derived: page {i + 1}/{len(chunks)} of a recorded body"))
    return routes


def routes_from(items: Sequence[Route | Sequence[Route]]) -> list[Route]:
    """Flatten routes and lists of routes."""
    out: list[Route] = []
    for item in items:
        if isinstance(item, Route):
            out.append(item)
        else:
            out.extend(item)
    return out
