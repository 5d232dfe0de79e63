"""The binary COPY encoder of the PostgreSQL store (``tickvault.store.postgres._codec``), no server.

A load is streamed from parts (one per series slice) that are encoded as the stream
reaches them; the bytes must not depend on how the rows are cut into parts or chunks.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from tickvault.store.postgres import _codec
from tickvault.store.postgres._codec import Column, CopyRows, encode_copy


def _columns(n: int, sid: int, seed: int) -> list[Column]:
    rng = np.random.default_rng(seed)
    return [("series_id", np.full(n, sid, dtype=np.int32)),
            ("ts", np.sort(rng.integers(0, 10**15, n)).astype(np.int64)),
            ("close", rng.normal(size=n)),
            ("trade_count", rng.integers(0, 10**6, n).astype(np.int64))]


def _stream(rows: CopyRows) -> bytes:
    return b"".join(bytes(chunk) for chunk in encode_copy(rows))


def _one_row(sid: int, ts: int, close: float, trades: int) -> bytes:
    # Written out with struct, independently of the numpy encoder under test.
    return struct.pack(">hiiiqidiq", 4, 4, sid, 8, ts, 8, close, 8, trades)


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 1 << 17])
def test_parts_stream_the_same_bytes_as_one_part(monkeypatch: pytest.MonkeyPatch, chunk_rows: int) -> None:
    monkeypatch.setattr(_codec, "_CHUNK_ROWS", chunk_rows)
    parts = [_columns(n, sid, seed=sid) for sid, n in enumerate([5, 0, 33, 1, 64], start=1)]
    whole = [(name, np.concatenate([p[k][1] for p in parts])) for k, (name, _) in enumerate(parts[0])]
    names = tuple(name for name, _ in whole)
    total = int(whole[0][1].size)
    got = _stream(CopyRows(names, total, iter(parts)))
    assert got == _stream(CopyRows.of(whole))
    rows = b"".join(_one_row(int(whole[0][1][i]), int(whole[1][1][i]), float(whole[2][1][i]), int(whole[3][1][i]))
                    for i in range(total))
    assert got == b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rows + b"\xff\xff"


def test_an_empty_load_is_header_and_trailer() -> None:
    assert _stream(CopyRows(("series_id", "ts"), 0, [])) == b"PGCOPY\n\xff\r\n\x00" + bytes(8) + b"\xff\xff"


def test_a_part_with_other_columns_is_refused() -> None:
    first = _columns(3, 1, seed=0)
    with pytest.raises(ValueError, match="COPY part"):
        _stream(CopyRows(tuple(name for name, _ in first), 6, [first, first[:2]]))
