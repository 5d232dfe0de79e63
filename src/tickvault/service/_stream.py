"""``WS /v1/stream``: new bars pushed to subscribers as they are written.

Protocol (JSON text frames)::

    client -> {"action": "subscribe", "symbols": ["AAPL", "BTC/*"], "timeframes": ["1m"], "adjust": "splits"}
    server <- {"type": "subscribed", "subscriptions": [{"symbol": "AAPL", "timeframe": "1m", "adjust": "splits"}, ...]}
    server <- {"type": "bars", "symbol": "AAPL", "timeframe": "1m", "adjust": "splits", "bars": [{...}, ...]}
    server <- {"type": "heartbeat", "ts": "2024-05-01T12:00:00Z"}           (every heartbeat period)
    client -> {"action": "unsubscribe", "symbols": [...], "timeframes": [...]}  |  {"action": "ping"}
    client -> {"action": "auth", "api_key": "..."}     (browsers cannot set headers on WebSockets)

``*`` in a symbol or timeframe is a wildcard (``*``, ``BTC/*``, ``A*``). A bad message or
subscription closes the connection with code 4400 and the reason (an invalid symbol, an
unknown timeframe, too many subscriptions); 4401/4403 for authentication and role, 4429 for
the rate limit, 4408 for a client too slow to keep up, 1009 for an oversized message.

The hub listens to the vault's new-bar events (``Vault.listen``: Redis pub/sub across processes
when configured, this process's writes otherwise). Events arrive on the writer's thread; they
are handed to the event loop, the new bars are read once per (series, adjustment) and the
serialised message is queued to every matching client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from tickvault.errors import TickvaultError
from tickvault.model import Timeframe, us_to_ts, validate_symbol
from tickvault.service._errors import ApiError
from tickvault.service._formats import json_records
from tickvault.service._keys import Principal
from tickvault.service._logging import log_event
from tickvault.service._settings import Role
from tickvault.service._state import ServiceState, state_of

if TYPE_CHECKING:
    from tickvault import BarEvent

__all__ = ["StreamHub", "router"]

router = APIRouter()

_PATTERN_RE = re.compile(r"^[A-Z0-9.\-_/:^*]{1,40}$")
_ADJUST = ("none", "splits", "all")
_MAX_MESSAGE = 64 * 1024


class BadMessage(Exception):
    """A client message or subscription the stream cannot accept (closes with 4400)."""


@dataclass(frozen=True)
class Subscription:
    """One (symbol pattern, timeframe pattern, adjustment) a client listens to."""

    symbol: str
    timeframe: str
    adjust: Literal["none", "splits", "all"]

    @property
    def exact(self) -> bool:
        """No wildcard in either part."""
        return "*" not in self.symbol and self.timeframe != "*"

    def matches(self, symbol: str, timeframe: str) -> bool:
        """Whether an event of (symbol, timeframe) is for this subscription."""
        if self.timeframe != "*" and self.timeframe != timeframe:
            return False
        if "*" not in self.symbol:
            return self.symbol == symbol
        return _glob(self.symbol).match(symbol) is not None


_GLOBS: dict[str, re.Pattern[str]] = {}


def _glob(pattern: str) -> re.Pattern[str]:
    rx = _GLOBS.get(pattern)
    if rx is None:
        rx = re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$")
        if len(_GLOBS) < 10_000:
            _GLOBS[pattern] = rx
    return rx


def parse_symbol_pattern(raw: object) -> str:
    """A canonical symbol, or a pattern with ``*`` wildcards over the symbol alphabet."""
    if not isinstance(raw, str):
        raise BadMessage("symbols must be strings")
    value = raw.strip().upper()
    if "*" not in value:
        try:
            return validate_symbol(value)
        except TickvaultError as exc:
            raise BadMessage(str(exc)) from None
    if not _PATTERN_RE.match(value) or ".." in value:
        shown = raw.encode("unicode_escape").decode("ascii")[:40]
        raise BadMessage(f"invalid symbol pattern {shown!r}")
    return value


def parse_timeframe_pattern(raw: object) -> str:
    """A canonical timeframe or ``*``."""
    if not isinstance(raw, str):
        raise BadMessage("timeframes must be strings")
    if raw.strip() == "*":
        return "*"
    try:
        return str(Timeframe.parse(raw))
    except TickvaultError as exc:
        raise BadMessage(str(exc)) from None


def parse_subscriptions(msg: dict[str, Any]) -> list[Subscription]:
    """The subscriptions a subscribe/unsubscribe message names."""
    symbols, timeframes = msg.get("symbols"), msg.get("timeframes", ["*"])
    if not isinstance(symbols, list) or not symbols:
        raise BadMessage("'symbols' must be a non-empty list")
    if not isinstance(timeframes, list) or not timeframes:
        raise BadMessage("'timeframes' must be a non-empty list")
    if len(symbols) * len(timeframes) > 10_000:
        raise BadMessage("too many subscriptions in one message")
    adjust = msg.get("adjust", "splits")
    if adjust not in _ADJUST:
        raise BadMessage(f"'adjust' must be one of {', '.join(_ADJUST)}")
    syms = [parse_symbol_pattern(s) for s in symbols]
    tfs = [parse_timeframe_pattern(t) for t in timeframes]
    return [Subscription(s, t, adjust) for s in syms for t in tfs]


@dataclass(eq=False)  # identity semantics: clients live in a set
class _Client:
    queue: asyncio.Queue[str | None]
    principal: Principal
    subs: set[Subscription] = field(default_factory=set)
    overflow: bool = False


class StreamHub:
    """Fan-out of new-bar events to WebSocket clients (see the module docstring).

    Parameters
    ----------
    state
        The service state (vault, settings, metrics).
    """

    def __init__(self, state: ServiceState) -> None:
        self._st = state
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: asyncio.Queue[BarEvent] | None = None
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Any = None

    @property
    def clients(self) -> int:
        """Connected clients."""
        return len(self._clients)

    def attach(self) -> None:
        """Listen to the vault's new-bar events (at app build: versions and metrics move from then on)."""
        if self._unlisten is None:
            self._unlisten = self._st.vault.listen(self._on_event)

    def detach(self) -> None:
        """Stop listening to the vault."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    async def start(self) -> None:
        """Start the dispatcher on the running loop (app startup, or the first stream client)."""
        self.attach()
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        self._loop = loop
        self._events = asyncio.Queue(maxsize=100_000)
        self._task = asyncio.create_task(self._dispatch(), name="tickvault-stream-dispatch")

    async def stop(self) -> None:
        """Stop listening, close every client and stop the dispatcher (app shutdown)."""
        self.detach()
        for client in list(self._clients):
            client.queue.put_nowait(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_event(self, event: BarEvent) -> None:
        """Called on the writer's (or the bus listener's) thread: hand over, never block."""
        self._st.versions.bump_series(event.symbol, event.timeframe, event.last_us)
        self._st.metrics.bars_written.labels(event.timeframe).inc(event.rows)
        loop, events = self._loop, self._events
        if loop is None or events is None or not self._clients or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
            loop.call_soon_threadsafe(self._enqueue, event)

    def _enqueue(self, event: BarEvent) -> None:
        assert self._events is not None
        with contextlib.suppress(asyncio.QueueFull):  # an event flood: clients re-read with REST
            self._events.put_nowait(event)

    async def _dispatch(self) -> None:
        assert self._events is not None
        while True:
            event = await self._events.get()
            try:
                await self._fan_out(event)
            except Exception as exc:  # one bad event must not stop the stream for everyone
                log_event(logging.ERROR, "stream dispatch failed", self._st.redactor, exc=exc,
                          symbol=event.symbol, timeframe=event.timeframe)

    async def _fan_out(self, event: BarEvent) -> None:
        targets: dict[Literal["none", "splits", "all"], list[_Client]] = {}
        for client in list(self._clients):
            for sub in client.subs:
                if sub.matches(event.symbol, event.timeframe):
                    targets.setdefault(sub.adjust, []).append(client)
        for adjust, clients in targets.items():
            table = await run_in_threadpool(
                self._st.vault.bars, event.symbol, event.timeframe, us_to_ts(event.first_us),
                us_to_ts(event.last_us + 1), adjust=adjust, fetch="never", format="arrow")
            if table.num_rows == 0:
                continue
            head = json.dumps({"type": "bars", "symbol": event.symbol, "timeframe": event.timeframe,
                               "adjust": adjust, "count": table.num_rows})
            text = head[:-1] + ',"bars":' + json_records(table).decode() + "}"
            for client in dict.fromkeys(clients):
                self._send(client, text, "bars")

    def _send(self, client: _Client, text: str, kind: str) -> None:
        try:
            client.queue.put_nowait(text)
            self._st.metrics.stream_messages.labels(kind).inc()
        except asyncio.QueueFull:
            client.overflow = True
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)

    def staleness(self) -> list[tuple[str, str, float]]:
        """``(symbol, timeframe, seconds)`` since the newest bar of each exactly-subscribed series ended."""
        series = sorted({(s.symbol, s.timeframe) for c in list(self._clients) for s in c.subs if s.exact})
        now_us = time.time_ns() // 1000
        out = []
        for symbol, timeframe in series:
            last = self._st.versions.last_bar_us.get((symbol, timeframe))
            if last is None:
                try:
                    table = self._st.vault.latest(symbol, timeframe, 1, adjust="none", format="arrow")
                except TickvaultError:
                    continue
                if table.num_rows == 0:
                    continue
                last = int(pd.Timestamp(table.column("ts")[0].as_py()).value // 1000)
            end = last + Timeframe.parse(timeframe).micros
            out.append((symbol, timeframe, max(0.0, (now_us - end) / 1e6)))
        return out

    # -- one connection -------------------------------------------------------------------------

    async def serve(self, ws: WebSocket) -> None:
        """Run one client connection until it closes."""
        st = self._st
        client_addr = ws.client.host if ws.client is not None else "unknown"
        await self.start()  # no-op after the app's startup; servers without lifespan start it here
        await ws.accept()
        try:
            principal = st.guard.identify(ws.headers, client_addr, "/v1/stream")
        except ApiError as err:
            await _close(ws, 4000 + err.status, err.message)
            return
        client = _Client(asyncio.Queue(maxsize=st.settings.stream_queue_size), principal)
        self._clients.add(client)
        st.metrics.stream_clients.set(len(self._clients))
        sender = asyncio.create_task(self._sender(ws, client))
        try:
            await self._receiver(ws, client, client_addr)
        except WebSocketDisconnect:
            pass
        finally:
            self._clients.discard(client)
            st.metrics.stream_clients.set(len(self._clients))
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    async def _receiver(self, ws: WebSocket, client: _Client, addr: str) -> None:
        st = self._st
        while True:
            text = await ws.receive_text()
            if client.overflow:
                return
            if len(text) > _MAX_MESSAGE:
                await _close(ws, 1009, f"message larger than {_MAX_MESSAGE} bytes")
                return
            identity = f"key:{client.principal.name}" if client.principal.name else f"addr:{addr}"
            if st.guard.limiter.take(identity) > 0:
                await _close(ws, 4429, "rate limit exceeded")
                return
            try:
                msg = json.loads(text)
                if not isinstance(msg, dict):
                    raise BadMessage("messages must be JSON objects")
                reply = self._handle(client, msg)
            except (ValueError, BadMessage) as exc:
                await _close(ws, 4400, str(exc) if isinstance(exc, BadMessage) else "message is not valid JSON")
                return
            except ApiError as err:
                await _close(ws, 4000 + err.status, err.message)
                return
            if reply is not None:
                self._send(client, json.dumps(reply), reply["type"])

    def _handle(self, client: _Client, msg: dict[str, Any]) -> dict[str, Any] | None:
        st = self._st
        action = msg.get("action")
        if action == "ping":
            return {"type": "pong"}
        if action == "auth":
            key = msg.get("api_key")
            if not isinstance(key, str):
                raise BadMessage("'api_key' must be a string")
            found = st.guard.keys.authenticate(key)
            if found is None:
                raise ApiError(401, "invalid_api_key", "the API key is not valid")
            client.principal = found
            return {"type": "authenticated", "role": str(found.role)}
        if action in ("subscribe", "unsubscribe"):
            st.guard.authorize(client.principal, Role.READ)
            subs = parse_subscriptions(msg)
            if action == "subscribe":
                if len(client.subs | set(subs)) > st.settings.stream_max_subscriptions:
                    raise BadMessage(f"more than {st.settings.stream_max_subscriptions} subscriptions")
                client.subs.update(subs)
            else:
                client.subs.difference_update(subs)
            return {"type": "subscribed", "subscriptions": [
                {"symbol": s.symbol, "timeframe": s.timeframe, "adjust": s.adjust}
                for s in sorted(client.subs, key=lambda s: (s.symbol, s.timeframe, s.adjust))]}
        raise BadMessage("unknown action; use subscribe, unsubscribe, auth or ping")

    async def _sender(self, ws: WebSocket, client: _Client) -> None:
        period = self._st.settings.stream_heartbeat_seconds
        while True:
            try:
                text = await asyncio.wait_for(client.queue.get(), timeout=period)
            except TimeoutError:
                ts = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
                await ws.send_text(json.dumps({"type": "heartbeat", "ts": ts}))
                self._st.metrics.stream_messages.labels("heartbeat").inc()
                continue
            if text is None:
                reason = "client too slow; messages were dropped" if client.overflow else "server shutting down"
                await _close(ws, 4408 if client.overflow else 1001, reason)
                return
            await ws.send_text(text)


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    # A close reason is at most 123 bytes of UTF-8.
    short = reason.encode("utf-8")[:120].decode("utf-8", "ignore")
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await ws.close(code=code, reason=short)


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """New bars as they are written; see :mod:`tickvault.service._stream` for the protocol."""
    hub = state_of(websocket).hub
    if hub is None:  # pragma: no cover - the app always builds one
        await websocket.close(code=1011)
        return
    await hub.serve(websocket)
