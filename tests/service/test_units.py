"""Pure pieces of the service: public names, format negotiation, JSON encoding, row estimates,
the rate limiter and the Arrow IPC pre-check."""

from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickvault.calendars import get_calendar
from tickvault.model import Timeframe, ts_to_us
from tickvault.service._auth import RateLimiter
from tickvault.service._bodies import check_arrow_ipc
from tickvault.service._errors import ApiError, Redactor
from tickvault.service._formats import OutFormat, json_records, negotiate
from tickvault.service._params import estimate_rows

from ._util import ManualClock, arrow_stream

PUBLIC = ["KEY_PREFIX", "STATIC_DIR", "ApiKeyEntry", "JsonLogFormatter", "KeyRing", "Principal", "Role",
          "ServiceSettings", "add_key", "configure_logging", "create_app", "default_keys_file", "generate_key",
          "hash_key", "load_keys_file", "remove_key"]


def test_public_names_are_pinned() -> None:
    mod = importlib.import_module("tickvault.service")
    assert sorted(mod.__all__) == sorted(PUBLIC)
    for name in mod.__all__:
        assert getattr(mod, name) is not None


@pytest.mark.parametrize(("fmt", "accept", "expected"), [
    (None, None, OutFormat.JSON), (None, "", OutFormat.JSON), (None, "*/*", OutFormat.JSON),
    (None, "text/csv", OutFormat.CSV), (None, "text/*", OutFormat.CSV),
    (None, "text/html;q=0.9, application/vnd.apache.arrow.stream;q=0.5", OutFormat.ARROW),
    (None, "application/json;q=0.1, application/vnd.apache.parquet", OutFormat.PARQUET),
    (None, "application/x-parquet;q=0, text/csv;q=0.2", OutFormat.CSV),
    ("csv", "application/json", OutFormat.CSV),
])
def test_negotiation(fmt: str | None, accept: str | None, expected: OutFormat) -> None:
    assert negotiate(fmt, accept) is expected


def test_negotiation_refuses_what_it_cannot_make() -> None:
    with pytest.raises(ApiError) as err:
        negotiate(None, "image/png, text/html;q=0.5")
    assert err.value.status == 406


_floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@given(rows=st.lists(st.tuples(st.integers(-2**62 // 1000, 2**62 // 1000), _floats,
                               st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)),
                               st.one_of(st.none(), st.text(max_size=8)), st.booleans()), max_size=30))
def test_json_records_equal_the_json_module(rows: list[tuple[int, float | None, int | None, str | None, bool]]) -> None:
    ts, f, i, s, b = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [], [])
    table = pa.table({"ts": pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")), "f": pa.array(f, pa.float64()),
                      "i": pa.array(i, pa.int64()), "s": pa.array(s, pa.string()).dictionary_encode(),
                      "b": pa.array(b, pa.bool_())})
    got = json.loads(json_records(table))
    assert len(got) == len(rows)
    for rec, (t, fv, iv, sv, bv) in zip(got, rows, strict=True):
        assert pd.Timestamp(rec["ts"]) == pd.Timestamp(t * 1000, tz="UTC")
        assert rec["f"] == (fv if fv is not None and math.isfinite(fv) else None)
        assert (rec["i"], rec["s"], rec["b"]) == (iv, sv, bv)


@given(start=st.integers(0, 2_000_000_000), span=st.integers(0, 40 * 86_400 * 365),
       tf=st.sampled_from(["1m", "5m", "15m", "1h", "4h", "1d", "1w", "1mo"]))
def test_row_estimates_bound_the_bars_a_range_can_hold(start: int, span: int, tf: str) -> None:
    a = pd.Timestamp(start, unit="s", tz="UTC")
    b = a + pd.Timedelta(seconds=span)
    timeframe = Timeframe.parse(tf)
    bound = estimate_rows(timeframe, a, b)
    for cal in ("24/7", "XNYS"):
        starts, _ = get_calendar(cal).bar_bounds(tf, ts_to_us(a), ts_to_us(b))
        assert len(starts) <= bound


def test_the_rate_limiter_refills_with_time() -> None:
    clock = ManualClock()
    limiter = RateLimiter(per_minute=120, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == pytest.approx(0.5)
    assert limiter.take("other") == 0.0
    clock.advance(0.5)
    assert limiter.take("k") == 0.0
    assert RateLimiter(per_minute=0, burst=1).take("k") == 0.0  # disabled


def test_the_arrow_precheck_counts_rows_without_decoding() -> None:
    table = pa.table({"x": np.arange(1000.0)})
    assert check_arrow_ipc(arrow_stream(table), max_decoded_bytes=1 << 20) == 1000
    assert check_arrow_ipc(arrow_stream(table, compression="zstd"), max_decoded_bytes=1 << 20) == 1000
    with pytest.raises(ApiError) as err:
        check_arrow_ipc(arrow_stream(table, compression="lz4"), max_decoded_bytes=4000)
    assert err.value.status == 413


def test_the_redactor_masks_raw_and_encoded_secrets_and_our_key_shape() -> None:
    r = Redactor(["s3cr3t/+=value", "ab"])
    text = r.text("a=s3cr3t/+=value b=s3cr3t%2F%2B%3Dvalue c=tvk_AbCdEfGhIjKl0123 ab")
    assert text == "a=*** b=*** c=tvk_*** ab"
