"""Helpers shared by the service tests."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


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
