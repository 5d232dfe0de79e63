"""The live half of ``tickvault demo``: the service and dashboard over the demo vault, fed with
simulated minute bars until Ctrl-C.

Why a module of its own: the one-shot demo (fill, summary) needs neither the web framework nor
threads; this part owns both. :class:`LiveFeed` writes bars on a thread through
``Vault.write``, the one write path, so the quality rules, the coverage ledger and the new-bar
events see them like any other write: the WebSocket stream and the dashboard update live.
:func:`serve_demo` runs the service under uvicorn on ``127.0.0.1`` and returns once it has
shut down on SIGINT or SIGTERM.

What is simulated, exactly (docs/cli.md repeats it): for each symbol, the trading minutes after
its newest stored 1m bar, in order, as :func:`tickvault.providers.sim.simulate_bars` gives them
for the demo's seed on the symbol's calendar, with no bad ticks. The simulator is deterministic
per bar, so the live bars continue the stored path. One bar per symbol is written every
``interval`` seconds: replayed time runs ahead of the wall clock, one trading minute per tick.
XNYS symbols jump over nights, weekends and holidays to the next session, and BTC/USDT runs
24/7. Minutes the simulator reports as no-trade are recorded as ``empty`` coverage, as a
read-through would record them, so they never show as holes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pandas as pd
import pyarrow as pa
import pydantic
from rich.text import Text

import tickvault
from tickvault.cli._context import State
from tickvault.cli._serve import _service_settings, env_secrets
from tickvault.model import CoverageState, us_to_ts

__all__ = ["DEFAULT_PORT", "LiveFeed", "listen", "serve_demo"]

#: The port ``tickvault demo`` tries first (the same as ``tickvault serve``).
DEFAULT_PORT = 8001
_PORT_TRIES = 100
_HOST = "127.0.0.1"
_MINUTE_US = 60_000_000
# How far ahead one simulator call looks: long enough to cross any weekend or holiday run, short
# enough to stay a few thousand rows (24/7: 5,760 minutes).
_HORIZON_US = 4 * 86_400 * 1_000_000
_MAX_EMPTY_WINDOWS = 30  # 120 days without one simulated bar means something is wrong


@dataclass
class _Series:
    """Where one symbol's feed stands."""

    symbol: str
    calendar: str
    window_us: int  # start of the next window to simulate
    pending: pa.Table | None = None
    row: int = 0
    empties: list[tuple[int, int]] = field(default_factory=list)


class LiveFeed:
    """Writes the next simulated 1m bar of each symbol every ``interval`` seconds (see the module docstring).

    Parameters
    ----------
    vault
        The open demo vault.
    symbols
        Symbols to feed (their instrument records give the calendars).
    seed
        Simulator seed: the demo's, so live bars continue the stored path.
    interval
        Seconds between two rounds of writes (one bar per symbol per round).
    on_error
        Called with a tickvault error a round raised (the feed carries on).
    """

    def __init__(self, vault: tickvault.Vault, symbols: Sequence[str], *, seed: int, interval: float,
                 on_error: Callable[[tickvault.TickvaultError], None] = lambda exc: None) -> None:
        self._vault = vault
        self._seed = seed
        self._interval = interval
        self._on_error = on_error
        self._series = [self._begin(s) for s in symbols]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Bars stored so far.
        self.written = 0

    def _begin(self, symbol: str) -> _Series:
        calendar = self._vault.instrument(symbol).calendar
        newest = self._vault.latest(symbol, "1m", 1, adjust="none", format="arrow")
        if newest.num_rows:
            start = _us(newest.column("ts")[0]) + _MINUTE_US
        else:  # nothing stored yet: start at the current minute
            start = int(pd.Timestamp.now(tz="UTC").floor("min").value // 1000)
        return _Series(symbol, calendar, start)

    def _next_bar(self, s: _Series) -> pa.Table:
        from tickvault.providers.sim import simulate_bars  # only the demo needs the simulator

        tries = 0
        while s.pending is None or s.row >= s.pending.num_rows:
            if tries >= _MAX_EMPTY_WINDOWS:
                raise tickvault.errors.MissingData(f"the simulator gave no {s.symbol} bar in "
                                                   f"{tries * _HORIZON_US // 86_400_000_000} days",
                                                   symbol=s.symbol, timeframe="1m")
            table, coverage = simulate_bars(s.symbol, "1m", s.window_us, s.window_us + _HORIZON_US, seed=self._seed,
                                            calendar=s.calendar)
            s.empties += [(c.start_us, c.end_us) for c in coverage if c.state is CoverageState.EMPTY]
            s.window_us += _HORIZON_US
            s.pending, s.row = table, 0
            tries += 1
        bar = s.pending.slice(s.row, 1)
        s.row += 1
        return bar

    def step(self) -> int:
        """Write one bar per symbol now; returns the bars stored."""
        stored = 0
        for s in self._series:
            bar = self._next_bar(s)
            ts = _us(bar.column("ts")[0])
            # No-trade minutes before this bar: confirmed empty, as the read-through records them.
            for start, end in [e for e in s.empties if e[1] <= ts]:
                self._vault.mark_covered(s.symbol, "1m", us_to_ts(start), us_to_ts(end), CoverageState.EMPTY, "sim")
            s.empties = [e for e in s.empties if e[1] > ts]
            stored += self._vault.write(s.symbol, "1m", bar, provider="sim").rows_written
        self.written += stored
        return stored

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.step()
            except tickvault.TickvaultError as exc:  # e.g. the store briefly locked: say so, try again next round
                self._on_error(exc)

    def start(self) -> None:
        """Start writing on a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tickvault-demo-feed", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop writing and wait for the round in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _us(scalar: Any) -> int:
    """Epoch microseconds of a ``timestamp[us]`` Arrow scalar."""
    return int(scalar.cast(pa.int64()).as_py())


def listen(port: int | None) -> socket.socket:
    """A listening TCP socket on 127.0.0.1.

    Parameters
    ----------
    port
        The port to use (0: any free one), or ``None`` for :data:`DEFAULT_PORT` or the next
        free one after it.

    Raises
    ------
    InvalidInput
        The port asked for (or every port tried) is in use.
    """
    candidates = [port] if port is not None else list(range(DEFAULT_PORT, DEFAULT_PORT + _PORT_TRIES))
    for p in candidates:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restarts reuse the port
        try:
            sock.bind((_HOST, p))
            sock.listen(2048)
        except OSError as exc:
            sock.close()
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
            continue
        return sock
    if port is not None:
        raise tickvault.InvalidInput(f"port {port} on {_HOST} is in use; pick another with --port (0: any free port)")
    raise tickvault.InvalidInput(f"ports {candidates[0]}-{candidates[-1]} on {_HOST} are all in use; "
                                 "pick one with --port (0: any free port)")


def check_service_extra() -> None:
    """Fail early (before the demo fills anything) when the web framework is missing.

    Raises
    ------
    ConfigError
        FastAPI or uvicorn is not installed.
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise tickvault.errors.ConfigError(
            f"tickvault demo serves the dashboard and needs the service extra ({exc.name} is missing): "
            "pip install 'tickvault[service]', or run 'tickvault demo --no-serve'") from None


@contextlib.contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[list[int]]:
    """Route SIGINT and SIGTERM to ``stop`` (main thread only); yields the signals received.

    uvicorn installs its own handlers while it serves and, once shut down, raises the signal
    it caught again for whoever handled it before: that is this handler, so Ctrl-C ends in a
    clean return instead of a ``KeyboardInterrupt`` traceback, and SIGTERM in exit code 0.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(sig: int, frame: FrameType | None) -> None:
        received.append(sig)
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve_demo(state: State, vault: tickvault.Vault, sock: socket.socket, *, symbols: Sequence[str], seed: int,
               interval: float) -> int:
    """Serve ``vault`` on ``sock`` with the dashboard while :class:`LiveFeed` writes bars; until a signal.

    The service runs with reads open and every write needing an API key (none exists in a
    demo folder, so writes are refused); the feed writes through the vault directly.

    Returns
    -------
    int
        Bars the feed stored.
    """
    import uvicorn

    from tickvault.service import configure_logging, create_app

    secrets = env_secrets(os.environ)
    settings = _service_settings(read_requires_key=False, redact=tuple(pydantic.SecretStr(s) for s in secrets))
    app = create_app(vault, settings)  # type: ignore[arg-type]
    configure_logging("warning", secrets)  # problems only: no access log in the demo's terminal
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=3))
    reported: set[str] = set()

    def on_error(exc: tickvault.TickvaultError) -> None:
        if str(exc) not in reported:  # once per distinct problem, not once a second
            reported.add(str(exc))
            state.note(f"live feed: {exc}")

    feed = LiveFeed(vault, symbols, seed=seed, interval=interval, on_error=on_error)
    _print_serving(state, sock.getsockname()[1], symbols, interval)

    def stop() -> None:
        server.should_exit = True

    with _stop_on_signals(stop):
        feed.start()
        try:
            server.run(sockets=[sock])
        finally:
            feed.stop()
    return feed.written


def _print_serving(state: State, port: int, symbols: Sequence[str], interval: float) -> None:
    base = f"http://{_HOST}:{port}"
    names = ", ".join(symbols[:-1]) + f" and {symbols[-1]}" if len(symbols) > 1 else "".join(symbols)
    out = state.out
    out.print(Text("Serving the demo vault", style="bold"))
    # soft_wrap: URLs are never broken by rich, so they stay clickable and copy whole.
    out.print(Text(f"  dashboard  {base}/"), soft_wrap=True)
    out.print(Text(f"  live view  {base}/#symbol={symbols[0]}&tf=1m&range=500"), soft_wrap=True)
    out.print(Text(f"  API docs   {base}/docs"), soft_wrap=True)
    out.print(Text(f"New simulated 1m bars for {names} arrive every {interval:g} s (the next trading minutes after "
                   "the newest stored bar, faster than real time; see docs/cli.md). Reads are open; writes need an "
                   "API key. Press Ctrl-C to stop."))
