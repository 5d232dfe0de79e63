"""Hostile inputs get a 4xx and change nothing: path-traversal symbols, 10 MB bodies (declared
and chunked), ranges of a million rows, malformed CSV / JSON / Arrow, decompression bombs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

import tickvault
from tickvault.model import AssetClass, empty_bars
from tickvault.providers.base import BarsQuery, BarsResult, Capabilities, TimeframeSupport
from tickvault.service import ServiceSettings, create_app

from ._util import arrow_stream, assert_error_shape
from .conftest import daily_frame, minute_frame

HOSTILE_SYMBOLS = [
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "..", "..%2F..", "AAPL%2F..%2F..%2Fx", "%2Fetc%2Fpasswd", "*", "A%00B",
    "AAPL%3BDROP%20TABLE%20bars", "%C3%A9t%C3%A9", "%EF%BC%A1%EF%BC%A1%EF%BC%B0%EF%BC%AC", "A" * 41, "BTC%2F",
    "%5C..%5Cwindows", "AAPL%0Aevil", "~root", "$(reboot)",
]


def _snapshot(vault: tickvault.Vault) -> tuple[Any, ...]:
    bars = vault.bars("ACME", "1d", fetch="never")
    return (repr(vault.status()), [i.to_dict() for i in vault.instruments()], bars.to_json(date_format="iso"),
            repr(vault.action_list("ACME")), vault.quarantine("ACME", "1d").shape)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def local(tmp_path: Path, settings: ServiceSettings) -> Iterator[tuple[TestClient, tickvault.Vault, Path]]:
    with tickvault.open(tmp_path / "vault") as v, TestClient(create_app(v, settings)) as c:
        v.write("ACME", "1d", daily_frame(periods=5))
        yield c, v, tmp_path


def test_path_traversal_symbols_are_refused_on_every_symbol_route(
        local: tuple[TestClient, tickvault.Vault, Path], keys: dict[str, str]) -> None:
    client, vault, root = local
    before, files = _snapshot(vault), _files(root)
    admin = {"X-API-Key": keys["admin"]}
    for sym in HOSTILE_SYMBOLS:
        calls = [
            ("GET", f"/v1/bars/{sym}", {"timeframe": "1d"}, None, None),
            ("GET", f"/v1/bars/{sym}/latest", {"timeframe": "1d"}, None, None),
            ("GET", f"/v1/bars/{sym}/coverage", {"timeframe": "1d"}, None, None),
            ("GET", f"/v1/bars/{sym}/stats", {"timeframe": "1d"}, None, None),
            ("GET", f"/v1/bars/{sym}/quarantine", {"timeframe": "1d"}, None, None),
            ("POST", f"/v1/bars/{sym}", {"timeframe": "1d"}, None, b"ts,open,high,low,close,volume\n"
                                                                  b"2024-02-01,1,2,0.5,1,10\n"),
            ("POST", f"/v1/bars/{sym}/validate", {"timeframe": "1d"}, None, None),
            ("GET", f"/v1/actions/{sym}", {}, None, None),
            ("POST", f"/v1/actions/{sym}", {}, {"actions": [{"ex_date": "2024-01-05", "kind": "split",
                                                             "value": 2}]}, None),
            ("GET", f"/v1/instruments/{sym}", {}, None, None),
            ("PUT", f"/v1/instruments/{sym}", {}, {"symbol": "ACME"}, None),
            ("GET", "/v1/bars", {"symbols": sym, "timeframe": "1d", "start": "2024-01-01"}, None, None),
        ]
        for method, url, params, body, content in calls:
            headers = {**admin, "content-type": "text/csv"} if content else admin
            r = client.request(method, url, params=params, json=body, content=content, headers=headers)
            assert 400 <= r.status_code < 500, (method, url, r.status_code, r.text)
            assert_error_shape(r.json(), r.status_code)
    assert _snapshot(vault) == before
    assert _files(root) == files


def test_timeframes_and_times_that_are_not_are_400(client: TestClient) -> None:
    for params in ({"timeframe": "../1d"}, {"timeframe": "1d; rm"}, {"timeframe": "0m"},
                   {"timeframe": "1d", "start": "'; DROP TABLE bars --"}, {"timeframe": "1d", "start": "2024-13-45"},
                   {"timeframe": "1d", "start": "2024-02-01", "end": "2024-01-01"}):
        r = client.get("/v1/bars/ACME", params=params)
        assert r.status_code == 400, (params, r.text)


def test_a_10_mb_body_is_413_before_it_is_read(client: TestClient, vault: tickvault.Vault,
                                               keys: dict[str, str]) -> None:
    vault.write("ACME", "1d", daily_frame(periods=5))
    before = _snapshot(vault)
    body = b"ts,open,high,low,close,volume\n" + b"2024-01-02,1,2,0.5,1,10\n" * (10 * 1024 * 1024 // 24)
    assert len(body) > 10_000_000
    for headers in ({"X-API-Key": keys["write"]}, {}):
        r = client.post("/v1/bars/ACME", params={"timeframe": "1d"}, content=body,
                        headers={**headers, "content-type": "text/csv"})
        err = assert_error_shape(r.json(), 413, "payload_too_large")
        assert err["details"]["limit_bytes"] == 8 * 1024 * 1024
    # Without a Content-Length (chunked), the server reads up to the limit and no further. The
    # test client buffers request bodies itself, so this part drives the ASGI app directly.
    pulled, status = _post_chunked(client, keys["write"], chunks=10, chunk_size=1024 * 1024)
    assert status == 413
    assert pulled <= 9
    assert _snapshot(vault) == before


def _post_chunked(client: TestClient, key: str, *, chunks: int, chunk_size: int) -> tuple[int, int]:
    """POST ``chunks`` body chunks without a Content-Length straight to the ASGI app.

    Returns (chunks the app pulled, response status).
    """
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * chunk_size, "more_body": pulled < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/bars/ACME", "raw_path": b"/v1/bars/ACME", "query_string": b"timeframe=1d",
             "root_path": "", "client": ("127.0.0.1", 1234), "server": ("testserver", 80),
             "headers": [(b"host", b"testserver"), (b"transfer-encoding", b"chunked"),
                         (b"content-type", b"text/csv"), (b"x-api-key", key.encode())]}
    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    return pulled, int(start["status"])


class _CountingProvider:
    """Serves nothing but counts how often it is asked (nothing may reach it past a limit)."""

    def __init__(self) -> None:
        self.calls = 0

    @property
    def name(self) -> str:
        return "counting"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities("counting", frozenset(AssetClass), tuple(TimeframeSupport(t) for t in ("1m", "5m", "1d")))

    async def bars(self, query: BarsQuery) -> BarsResult:
        self.calls += 1
        return BarsResult(empty_bars())

    async def aclose(self) -> None:
        return None


def test_million_row_ranges_are_refused_before_any_work(settings: ServiceSettings, keys: dict[str, str]) -> None:
    provider = _CountingProvider()
    w = {"X-API-Key": keys["write"]}
    with tickvault.open(":memory:", providers=[provider]) as v, TestClient(create_app(v, settings)) as c:
        v.write("BTC/USDT", "1m", minute_frame(periods=10))
        million = {"timeframe": "1m", "start": "2020-01-01", "end": "2021-11-25"}  # ~1.0e6 minutes
        for fetch in ("never", "auto", "always"):
            r = c.get("/v1/bars/BTC/USDT", params={**million, "fetch": fetch}, headers=w)
            err = assert_error_shape(r.json(), 400, "limit_exceeded")
            assert err["details"]["estimate"] >= 1_000_000
        r = c.get("/v1/bars", params={**million, "symbols": "BTC/USDT,ETH/USDT", "fetch": "auto"}, headers=w)
        assert_error_shape(r.json(), 400, "limit_exceeded")
        r = c.get("/v1/bars/BTC/USDT/latest", params={"timeframe": "1m", "n": 1_000_000})
        assert_error_shape(r.json(), 400, "limit_exceeded")
        r = c.get("/v1/bars/BTC/USDT/coverage", params=million)
        assert_error_shape(r.json(), 400, "limit_exceeded")
        r = c.post("/v1/fetch", json={"symbols": ["BTC/USDT"], "timeframe": "1m", "start": "2000-01-01"}, headers=w)
        assert_error_shape(r.json(), 400, "limit_exceeded")
        r = c.get("/v1/bars/BTC/USDT", params={"timeframe": "1d", "start": "1700-01-01", "end": "2020-01-01"})
        assert_error_shape(r.json(), 400, "range_too_large")
        r = c.get("/v1/bars", params={"symbols": ",".join(f"S{i}" for i in range(51)), "timeframe": "1d",
                                      "start": "2024-01-01"})
        assert_error_shape(r.json(), 400, "limit_exceeded")
        assert provider.calls == 0
        assert v.provider_calls == {}


def test_a_whole_series_over_the_row_limit_is_refused(make_client: Callable[..., TestClient],
                                                      vault: tickvault.Vault) -> None:
    vault.write("BTC/USDT", "1m", minute_frame(periods=300))
    client = make_client(max_rows=200)
    assert_error_shape(client.get("/v1/bars/BTC/USDT", params={"timeframe": "1m"}).json(), 400, "limit_exceeded")
    assert client.get("/v1/bars/BTC/USDT/latest", params={"timeframe": "1m", "n": 200}).json()["count"] == 200


def _zstd_bomb() -> bytes:
    table = pa.table({"ts": pa.array(np.zeros(20_000_000, dtype="datetime64[us]")), "open": np.zeros(20_000_000)})
    return arrow_stream(table, compression="zstd")


MALFORMED: list[tuple[str, bytes, int, str]] = [
    ("text/csv", b"ts,open,high,low,close,volume\n2024-01-02,1,2,0.5\n2024-01-03,1,2,0.5,1,10,99\n", 400,
     "malformed_body"),
    ("text/csv", b"ts,open,high,low,close,volume\n2024-01-02,one,2,0.5,1,10\n", 400, "invalid_data"),
    ("text/csv", b"\x00\xff\xfe garbage \x81\x82\n\x00\x00", 400, ""),
    ("text/csv", b"open,high,low,close,volume\n1,2,0.5,1,10\n", 400, "invalid_data"),
    ("text/csv", b"ts,open,high,low,close,volume\nnot-a-date,1,2,0.5,1,10\n", 400, "invalid_data"),
    ("application/json", b'{"bars": [{"ts": "2024-01-02", "open": 1', 400, "malformed_body"),
    ("application/json", b"[1, 2, 3]", 400, "malformed_body"),
    ("application/json", b'{"rows": []}', 400, "malformed_body"),
    ("application/json", b"", 400, "empty_body"),
    ("application/x-ndjson", b'{"ts": "2024-01-02"}\n{not json}\n', 400, "malformed_body"),
    ("application/vnd.apache.arrow.stream", b"\xff\xff\xff\xff\x10\x00\x00\x00garbage-garbage-", 400,
     "malformed_body"),
    ("application/vnd.apache.arrow.stream", arrow_stream(pa.table({"ts": [1, 2]}))[:-20], 400, ""),
    ("application/vnd.apache.arrow.stream", b"ARROW1\x00\x00not really a file", 400, "malformed_body"),
    ("application/xml", b"<bars/>", 415, "unsupported_media_type"),
    ("", b"ts,open\n", 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("ctype", "body", "status", "code"), MALFORMED)
def test_malformed_bodies_are_4xx_and_change_nothing(client: TestClient, vault: tickvault.Vault,
                                                     keys: dict[str, str], ctype: str, body: bytes, status: int,
                                                     code: str) -> None:
    vault.write("ACME", "1d", daily_frame(periods=5))
    before = _snapshot(vault)
    r = client.post("/v1/bars/ACME", params={"timeframe": "1d"}, content=body,
                    headers={"X-API-Key": keys["write"], "content-type": ctype})
    assert_error_shape(r.json(), status, code or None)
    assert _snapshot(vault) == before


def test_an_arrow_decompression_bomb_is_refused_without_inflating_it(client: TestClient, vault: tickvault.Vault,
                                                                     keys: dict[str, str]) -> None:
    vault.write("ACME", "1d", daily_frame(periods=5))
    before = _snapshot(vault)
    bomb = _zstd_bomb()
    assert len(bomb) < 1_000_000  # 320 MB of zeros in a few kB
    r = client.post("/v1/bars/ACME", params={"timeframe": "1d"}, content=bomb,
                    headers={"X-API-Key": keys["write"], "content-type": "application/vnd.apache.arrow.stream"})
    assert_error_shape(r.json(), 413, "payload_too_large")
    assert _snapshot(vault) == before


def test_too_many_rows_in_a_body_is_413(make_client: Callable[..., TestClient], vault: tickvault.Vault,
                                        keys: dict[str, str]) -> None:
    client = make_client(max_rows=50)
    frame = daily_frame(periods=51)
    table = pa.Table.from_pandas(frame.reset_index(), preserve_index=False)
    csv = frame.reset_index().to_csv(index=False).encode()
    for ctype, body in (("text/csv", csv), ("application/vnd.apache.arrow.stream", arrow_stream(table))):
        r = client.post("/v1/bars/ACME", params={"timeframe": "1d"}, content=body,
                        headers={"X-API-Key": keys["write"], "content-type": ctype})
        assert_error_shape(r.json(), 413, "too_many_rows")
    assert vault.status() == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ctype=st.sampled_from(["text/csv", "application/json", "application/x-ndjson",
                              "application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file"]),
       body=st.one_of(st.binary(max_size=600),
                      st.builds(lambda b, cut: b[:cut], st.just(arrow_stream(pa.table({"ts": [1], "open": [1.0]}))),
                                st.integers(0, 400))))
def test_fuzzed_bodies_never_crash_and_never_write(client: TestClient, vault: tickvault.Vault,
                                                   keys: dict[str, str], ctype: str, body: bytes) -> None:
    r = client.post("/v1/bars/FUZZ", params={"timeframe": "1d"}, content=body,
                    headers={"X-API-Key": keys["write"], "content-type": ctype})
    assert 400 <= r.status_code < 500, r.text
    assert vault.status() == []


def test_deep_json_and_huge_numbers_are_400(client: TestClient, keys: dict[str, str], vault: tickvault.Vault) -> None:
    w = {"X-API-Key": keys["write"], "content-type": "application/json"}
    deep = b"[" * 100_000 + b"]" * 100_000
    assert_error_shape(client.post("/v1/bars/ACME", params={"timeframe": "1d"}, content=deep, headers=w).json(), 400)
    for url in ("/v1/instruments", "/v1/actions/ACME", "/v1/fetch"):
        assert_error_shape(client.post(url, content=deep, headers=w).json(), 400)
    big = b'[{"ts": "2024-01-02", "open": 1e999, "high": 1, "low": 1, "close": 1, "volume": 1}]'
    r = client.post("/v1/bars/ACME", params={"timeframe": "1d"}, content=big, headers=w)
    assert r.status_code in (200, 400)
    assert vault.bars("ACME", "1d", fetch="never").empty


def test_oversized_query_values_are_refused(client: TestClient) -> None:
    r = client.get("/v1/instruments", params={"q": "x" * 10_000})
    assert_error_shape(r.json(), 422, "validation_error")
    r = client.get("/v1/bars/ACME", params={"timeframe": "1" * 1000})
    assert_error_shape(r.json(), 422, "validation_error")
