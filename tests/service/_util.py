"""Helpers shared by the service tests."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tickvault.errors import AuthenticationFailed
from tickvault.model import AssetClass, Instrument
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, DataKind, TimeframeSupport

#: The credential :class:`FundamentalsStub` leaks into its error messages when it has no fields.
FUNDAMENTALS_SECRET = "fk_live_0123456789abcdef"


class ManualClock:
    """A monotonic clock the test moves by hand (rate limits, cache expiry)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def assert_error_shape(body: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape: ``{"error": {status, code, message, request_id, details}}``."""
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"status", "code", "message", "request_id", "details"}, err
    assert err["status"] == status, err
    assert isinstance(err["message"], str)
    assert err["message"]
    assert isinstance(err["request_id"], str)
    assert err["request_id"] != "-"
    assert isinstance(err["details"], dict)
    if code is not None:
        assert err["code"] == code, err
    return dict(err)


def arrow_stream(table: pa.Table, compression: str | None = None) -> bytes:
    """``table`` as an Arrow IPC stream."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as w:
        w.write_table(table)
    return sink.getvalue()


def read_arrow(body: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(body)).read_all()


def read_parquet(body: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(body))


class FundamentalsStub:
    """A provider serving fundamentals only (counts its calls); optionally keyed, optionally failing."""

    def __init__(self, name: str, fields: dict[str, tuple[float | str, str]] | None = None, *,
                 keyed: bool = False, key_set: bool = False) -> None:
        self._name = name
        self._fields = fields
        self._caps = Capabilities(name, frozenset(AssetClass), (TimeframeSupport("1d"),),
                                  frozenset({DataKind.FUNDAMENTALS}), needs_credentials=keyed)
        self.settings = type("S", (), {"has_credentials": key_set})()
        self.calls = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    async def bars(self, query: BarsQuery) -> BarsResult:
        raise AssertionError("fundamentals only")

    async def fundamentals(self, symbol: str, instrument: Instrument | None = None) -> dict[str, tuple[float | str,
                                                                                                       str]]:
        self.calls += 1
        if self._fields is None:  # what a careless adapter might do: its key in the message
            raise AuthenticationFailed(f"GET https://fund.example.com/{symbol}?apikey={FUNDAMENTALS_SECRET} -> 401",
                                       provider=self._name)
        return dict(self._fields)

    async def aclose(self) -> None:
        return None
