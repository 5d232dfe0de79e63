"""Analytics workloads: resampling 1-minute bars and computing indicators, against peers.

Why this module exists: tickvault derives every timeframe and indicator on read
(``tickvault.transform``), so their speed is part of every read of a derived series. This
module times them side by side with what people use instead, on the benchmark's bars.

- ``resample``: 1m→1h and 1m→1d of every symbol. tickvault calls
  ``transform.resample(table, "1m", tgt, calendar=XNYS)`` per symbol; Polars
  ``group_by_dynamic`` (``group_by="symbol"``, 30-minute offset for hours) and pandas
  ``resample`` (per symbol, empty bins dropped) get the same batches in their own frames;
  DuckDB runs one ``GROUP BY symbol, bucket`` query over its own table holding the whole
  data set (buckets computed on integer epoch microseconds: its fastest correct form, see
  :func:`duckdb_resample_sql`). XNYS sessions open at :30 UTC (14:30 or 13:30) and lie
  inside one UTC day, so a UTC grid offset by 30 minutes gives the session-aligned hours and UTC days
  give the sessions: every library computes the same buckets, which is checked on one
  symbol before timing (open, high, low, close, volume, VWAP, trade count).
- ``indicators``: RSI(14), EMA(20), MACD(12,26,9) and Bollinger(20,2) on one symbol-year of
  closes and on the universe stacked as a ``(symbols, minutes)`` matrix (gaps forward
  filled on the XNYS minute grid), tickvault's ``transform.indicators`` against TA-Lib
  (a loop over the rows for the universe). Outputs are compared after the warm-up; a
  cell whose outputs disagree is recorded but left out of the ratios.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from bench._extra import ExtraOptions, maybe_profile, record
from bench._goals import INDICATORS
from bench._harness import Samples, timed
from bench._workloads import Context

__all__ = ["duckdb_resample_sql", "run_indicators", "run_resample"]

TARGETS = (("1m→1h", "1h"), ("1m→1d", "1d"))
RESAMPLE_REPS = {"tiny": 1, "quick": 3, "full": 3}
SERIES_REPS = {"tiny": 2, "quick": 30, "full": 30}
UNIVERSE_REPS = {"tiny": 1, "quick": 3, "full": 3}
# Bars skipped before comparing with TA-Lib: MACD's seeds differ (TA-Lib seeds the fast EMA
# at bar 25) and agree to 1e-9 after ~40 slow periods.
WARMUP = 1200
_PANDAS_RULE = {"1h": "1h", "1d": "1D"}
_AGG_COLS = ("open", "high", "low", "close", "volume", "vwap", "trade_count")


# --------------------------------------------------------------------------- resample


def duckdb_resample_sql(target: str, where: str = "") -> str:
    """The peer's query: session-aligned buckets (hours at :30 UTC, UTC days) per symbol.

    Buckets are computed on integer epoch microseconds: ``time_bucket``/``date_trunc`` on a
    TIMESTAMPTZ column go through ICU time-zone arithmetic per row and were 5-12x slower
    here (1.0 s against 0.08 s on 1.9 M rows), so this is DuckDB's fastest correct form.
    """
    width = 3_600_000_000 if target == "1h" else 86_400_000_000
    offset = 1_800_000_000 if target == "1h" else 0
    bucket = f"(epoch_us(ts) - {offset}) // {width} * {width} + {offset}"
    return ("SELECT symbol, make_timestamp(b)::TIMESTAMPTZ AS bucket, open, high, low, close, volume, vwap, "
            f"trade_count FROM (SELECT symbol, {bucket} AS b, arg_min(open, ts) AS open, max(high) AS high, "
            "min(low) AS low, arg_max(close, ts) AS close, sum(volume) AS volume, "
            "sum(vwap * volume) / sum(volume) AS vwap, sum(trade_count) AS trade_count "
            f"FROM bars {where} GROUP BY ALL) ORDER BY symbol, bucket")


def _polars_frame(batch: list[tuple[str, pa.Table]]) -> Any:
    import polars as pl

    tables = [t.drop_columns(["provider"]).add_column(0, "symbol", pa.array([s] * t.num_rows, pa.string()))
              for s, t in batch]
    return pl.from_arrow(pa.concat_tables(tables))


def _polars_resample(df: Any, target: str) -> Any:
    import polars as pl

    return df.group_by_dynamic("ts", every=target, offset="30m" if target == "1h" else "0m", group_by="symbol",
                               closed="left", label="left").agg(
        pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
        pl.col("volume").sum(), ((pl.col("vwap") * pl.col("volume")).sum() / pl.col("volume").sum()).alias("vwap"),
        pl.col("trade_count").sum())


def _pandas_frames(batch: list[tuple[str, pa.Table]]) -> list[tuple[str, Any]]:
    return [(s, t.drop_columns(["provider"]).to_pandas().set_index("ts")) for s, t in batch]


def _pandas_resample(frames: list[tuple[str, Any]], target: str) -> list[Any]:
    out = []
    for _s, df in frames:
        x = df.assign(pv=df["vwap"] * df["volume"])
        r = x.resample(_PANDAS_RULE[target], offset="30min" if target == "1h" else None, closed="left",
                       label="left")
        agg = r.agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum", "pv": "sum",
                     "trade_count": "sum"})
        agg = agg[agg["open"].notna()]  # pandas lays out every hour / day, sessions or not
        agg["vwap"] = agg["pv"] / agg["volume"]
        out.append(agg)
    return out


def _tickvault_resample(batch: list[tuple[str, pa.Table]], target: str, cal: Any) -> list[pa.Table]:
    from tickvault.transform import resample

    return [resample(t, "1m", target, calendar=cal) for _s, t in batch]


def _as_arrays(table: pa.Table) -> dict[str, np.ndarray]:
    cols = {"ts": np.asarray(table.column("ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy())}
    for name in _AGG_COLS:
        cols[name] = np.asarray(table.column(name).to_numpy(), dtype=np.float64)
    return cols


def _agree(ref: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> str | None:
    """``None`` when ``got`` has the same buckets and values as ``ref``, else the first difference."""
    if ref["ts"].size != got["ts"].size:
        return f"{got['ts'].size} buckets, tickvault {ref['ts'].size}"
    if not np.array_equal(ref["ts"], got["ts"]):
        return "bucket labels differ"
    for name in _AGG_COLS:
        exact = name in ("open", "high", "low", "close", "trade_count")
        if not np.allclose(ref[name], got[name], rtol=0.0 if exact else 1e-9, atol=0.0, equal_nan=True):
            return f"column {name} differs"
    return None


def _check_resample(ctx: Context, libs: list[str], batch: list[tuple[str, pa.Table]], con: Any, cal: Any,
                    frames: dict[str, Any]) -> dict[tuple[str, str], str | None]:
    """Compare every peer's buckets for the first symbol with tickvault's (untimed)."""
    import pyarrow.compute as pc

    sym, table = batch[0]
    out: dict[tuple[str, str], str | None] = {}
    for _variant, target in TARGETS:
        ref = _as_arrays(_tickvault_resample([(sym, table)], target, cal)[0])
        for lib in libs:
            if lib == "polars":
                got_t = _polars_resample(frames["polars"], target).to_arrow()
                got_t = got_t.filter(pc.equal(got_t.column("symbol"), pa.scalar(sym))).rename_columns(
                    ["symbol", "ts", *got_t.column_names[2:]])
            elif lib == "pandas":
                df = _pandas_resample(frames["pandas"][:1], target)[0].reset_index()
                got_t = pa.Table.from_pandas(df, preserve_index=False)
            elif lib == "duckdb":
                got_t = con.sql(duckdb_resample_sql(target, "WHERE symbol = ?"), params=[sym]).to_arrow_table()
                got_t = got_t.rename_columns(["symbol", "ts", *got_t.column_names[2:]])
            else:
                continue
            out[(target, lib)] = _agree(ref, _as_arrays(got_t))
            if out[(target, lib)] is not None:
                ctx.log(f"resample {target}: {lib} disagrees with tickvault on {sym}: {out[(target, lib)]}")
    return out


def run_resample(ctx: Context, opts: ExtraOptions) -> None:
    """1m→1h and 1m→1d of every symbol: tickvault, DuckDB (own table), Polars, pandas."""
    from tickvault.calendars import get_calendar

    cal = get_calendar("XNYS")
    reps = RESAMPLE_REPS.get(ctx.data.size.name, 3)
    libs = ["tickvault"] + [p for p in ("duckdb", "polars", "pandas") if opts.wants(p, p)]
    inproc = [lib for lib in libs if lib != "duckdb"]
    con = None
    if "duckdb" in libs:
        import duckdb

        folder = ctx.workdir / "resample-duckdb"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        con = duckdb.connect(str(folder / "bars.duckdb"))
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET memory_limit = '4GB'")  # as in the store workloads: a shared machine
        con.execute("CREATE TABLE bars (symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, open DOUBLE, high DOUBLE, "
                    "low DOUBLE, close DOUBLE, volume DOUBLE, vwap DOUBLE, trade_count BIGINT)")
    # totals[rep][variant][lib]: seconds summed over the batches; peaks likewise (max).
    totals = [{v: dict.fromkeys(inproc, 0.0) for v, _t in TARGETS} for _ in range(reps)]
    peaks = {(v, lib): 0 for v, _t in TARGETS for lib in inproc}
    agreement: dict[tuple[str, str], str | None] = {}
    rows = 0
    runners: dict[str, Callable[[Any, str], Any]] = {
        "tickvault": lambda payload, target: _tickvault_resample(payload, target, cal),
        "polars": _polars_resample,
        "pandas": _pandas_resample,
    }
    for b, batch in enumerate(ctx.data.batches()):
        rows += sum(t.num_rows for _s, t in batch)
        if con is not None:
            arrow = pa.concat_tables([t.drop_columns(["provider"]).add_column(
                0, "symbol", pa.array([s] * t.num_rows, pa.string())) for s, t in batch])
            con.register("batch", arrow)
            con.execute("INSERT INTO bars SELECT * FROM batch ORDER BY symbol, ts")
            con.unregister("batch")
            del arrow
        payloads: dict[str, Any] = {"tickvault": batch}
        if "polars" in inproc:
            payloads["polars"] = _polars_frame(batch)
        if "pandas" in inproc:
            payloads["pandas"] = _pandas_frames(batch)
        if b == 0:  # warm-up (imports, first-call costs) and the agreement check, untimed
            for lib in inproc:
                for _v, target in TARGETS:
                    runners[lib](payloads[lib][:1] if lib != "polars" else payloads[lib], target)
            if con is not None:
                con.execute("CHECKPOINT")
            agreement = _check_resample(ctx, libs, batch, con, cal, payloads)
        for rep in range(reps):
            order = [inproc[(b + rep + i) % len(inproc)] for i in range(len(inproc))]
            for variant, target in TARGETS:
                for lib in order:
                    out, sec, mem = timed(lambda f=runners[lib], p=payloads[lib], t=target: f(p, t),  # type: ignore[misc]
                                          ctx.probe)
                    del out
                    totals[rep][variant][lib] += sec
                    peaks[(variant, lib)] = max(peaks[(variant, lib)], mem)
        del payloads
    for variant, target in TARGETS:
        for lib in inproc:
            s = Samples()
            for rep in range(reps):
                s.add(totals[rep][variant][lib], 0)
            s.peak_bytes = peaks[(variant, lib)]
            note = agreement.get((target, lib))
            record(ctx, "resample", variant, lib, s, rows=rows, rows_per_s=rows / float(s.summary()["median_s"]),
                   symbols=len(ctx.data.symbols), comparable=note is None,
                   check=note or ("reference" if lib == "tickvault" else "same buckets and values as tickvault"))
    if con is not None:
        con.execute("CHECKPOINT")
        con.sql(duckdb_resample_sql("1d")).to_arrow_table()  # warm its buffer pool
        for variant, target in TARGETS:
            s = Samples()
            for _rep in range(reps):
                out, sec, mem = timed(lambda t=target: con.sql(duckdb_resample_sql(t)).to_arrow_table(),  # type: ignore[misc]
                                      ctx.probe, full_gc=True)
                del out
                s.add(sec, mem)
            note = agreement.get((target, "duckdb"))
            record(ctx, "resample", variant, "duckdb", s, rows=rows, rows_per_s=rows / float(s.summary()["median_s"]),
                   symbols=len(ctx.data.symbols), comparable=note is None,
                   check=note or "same buckets and values as tickvault (one query over its own table)")
        con.close()
        shutil.rmtree(ctx.workdir / "resample-duckdb", ignore_errors=True)
    ctx.notes["about:resample"] = (
        f"resample: {reps} repetitions over all {len(ctx.data.symbols)} symbols ({rows:,} rows); tickvault, Polars "
        "and pandas are timed per batch of symbols and summed, DuckDB is one query over its own table (all its "
        "threads); outputs of one symbol were compared with tickvault's before timing")
    if opts.profile:
        first = next(iter(ctx.data.batches()))
        maybe_profile(ctx, opts, "resample 1m→1d faster than DuckDB on its own table",
                      f"resample: 1m→1d, tickvault, one batch ({len(first)} symbols)",
                      lambda: _tickvault_resample(first, "1d", cal))


# --------------------------------------------------------------------------- indicators


def _universe(ctx: Context) -> tuple[np.ndarray, int]:
    """Closes of every symbol on the XNYS minute grid, gaps forward filled: ``(symbols, minutes)``."""
    from tickvault.calendars import get_calendar
    from tickvault.model import ts_to_us

    cal = get_calendar("XNYS")
    size = ctx.data.size
    import pandas as pd

    grid, _ends = cal.bar_bounds("1m", ts_to_us(pd.Timestamp(size.start, tz="UTC")),
                                 ts_to_us(pd.Timestamp(size.end, tz="UTC")))
    out = np.empty((len(ctx.data.symbols), grid.size), dtype=np.float64)
    i = 0
    rows = 0
    for batch in ctx.data.batches():
        for _s, t in batch:
            ts = np.asarray(t.column("ts").cast(pa.int64()).to_numpy())
            close = np.asarray(t.column("close").to_numpy(), dtype=np.float64)
            rows += ts.size
            pos = np.searchsorted(grid, ts)
            have = np.zeros(grid.size, dtype=bool)
            have[pos] = True
            row = np.zeros(grid.size)
            row[pos] = close
            last = np.maximum.accumulate(np.where(have, np.arange(grid.size), -1))
            first = int(np.argmax(have))
            out[i] = np.where(last >= 0, row[np.maximum(last, 0)], close[0])
            out[i, :first] = close[0]
            i += 1
    return out, rows


def _tv_funcs() -> dict[str, Callable[[np.ndarray], Any]]:
    from tickvault.transform import indicators as ind

    return {"rsi(14)": lambda x: ind.rsi(x, 14), "ema(20)": lambda x: ind.ema(x, 20),
            "macd(12,26,9)": lambda x: ind.macd(x, 12, 26, 9),
            # TA-Lib's BBANDS computes the three bands: so does this cell; the five-output
            # call (bands, %b and BandWidth) is measured as its own cell (FIVE_BANDS)
            "bbands(20,2)": lambda x: ind.bbands(x, 20, 2.0, bands_only=True)}


#: Variant prefix of the tickvault-only cell: ``bbands`` with %b and BandWidth (no TA-Lib peer).
FIVE_BANDS = "bbands(20,2) with %b and width"


def _ta_funcs() -> dict[str, Callable[[np.ndarray], Any]]:
    import talib

    return {"rsi(14)": lambda x: talib.RSI(x, 14), "ema(20)": lambda x: talib.EMA(x, 20),
            "macd(12,26,9)": lambda x: talib.MACD(x, 12, 26, 9),
            "bbands(20,2)": lambda x: talib.BBANDS(x, 20, 2.0, 2.0, talib.MA_Type.SMA)}


def _outputs(name: str, tv: Any, ta: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs (tickvault, TA-Lib) of comparable outputs of one indicator, 2-D."""
    if name == "macd(12,26,9)":
        return [(np.atleast_2d(tv.line), np.atleast_2d(ta[0])), (np.atleast_2d(tv.signal), np.atleast_2d(ta[1])),
                (np.atleast_2d(tv.hist), np.atleast_2d(ta[2]))]
    if name == "bbands(20,2)":
        return [(np.atleast_2d(tv.upper), np.atleast_2d(ta[0])), (np.atleast_2d(tv.middle), np.atleast_2d(ta[1])),
                (np.atleast_2d(tv.lower), np.atleast_2d(ta[2]))]
    return [(np.atleast_2d(tv), np.atleast_2d(ta))]


def _compare(name: str, tv: Any, ta: Any, scale: float) -> tuple[str | None, float]:
    """``(None, max abs diff)`` when tickvault and TA-Lib agree after the warm-up."""
    worst = 0.0
    tol = 1e-6 if name == "rsi(14)" else 1e-9 * scale  # RSI lives in [0, 100]; the others in prices
    for a, b in _outputs(name, tv, ta):
        x, y = a[:, WARMUP:], b[:, WARMUP:]
        if x.shape != y.shape:
            return f"shapes {x.shape} vs {y.shape}", float("inf")
        if np.isnan(x).any() or np.isnan(y).any():
            return "NaN after the warm-up", float("inf")
        worst = max(worst, float(np.max(np.abs(x - y))) if x.size else 0.0)
    return (None if worst <= tol else f"max |difference| {worst:.3g} > {tol:.3g} after bar {WARMUP}"), worst


def run_indicators(ctx: Context, opts: ExtraOptions) -> None:
    """RSI, EMA, MACD, Bollinger on one series and on the stacked universe, vs TA-Lib."""
    universe, rows = _universe(ctx)
    series = np.ascontiguousarray(universe[0])
    tv = _tv_funcs()
    ta = _ta_funcs() if opts.wants("talib", "talib") else {}
    names = [p for p, _label in INDICATORS]
    scale = float(np.nanmax(np.abs(universe)))
    size = ctx.data.size.name
    for n in names:  # numba compiles (or loads its cache) on the first call: outside the timed region
        tv[n](series[:100])
    for scope, data in (("one series", series), ("universe", universe)):
        reps = SERIES_REPS.get(size, 30) if scope == "one series" else UNIVERSE_REPS.get(size, 3)

        def run_tv(x: np.ndarray = data) -> list[Any]:
            return [tv[n](x) for n in names]

        def run_ta(x: np.ndarray = data, one: Callable[[np.ndarray], Any] | None = None) -> Any:
            fns = [one] if one is not None else [ta[n] for n in names]
            if x.ndim == 1:
                return [f(x) for f in fns]
            return [[f(row) for row in x] for f in fns]

        checks: dict[str, tuple[str | None, float]] = {}
        if ta:
            for n in names:  # warm-up and agreement, untimed
                got = tv[n](data)
                want = ta[n](data) if data.ndim == 1 else _stack(ta[n], data)
                checks[n] = _compare(n, got, want, scale)
                if checks[n][0] is not None:
                    ctx.log(f"indicators {n}, {scope}: tickvault and TA-Lib disagree: {checks[n][0]}")
        cells: list[tuple[str, Callable[[], Any], Callable[[], Any] | None, str | None]] = []
        for n in names:
            cells.append((f"{n}, {scope}", lambda n=n, x=data: tv[n](x),  # type: ignore[misc]
                          (lambda n=n, x=data: run_ta(x, ta[n])) if ta else None,  # type: ignore[misc]
                          checks.get(n, (None, 0.0))[0]))
        cells.append((f"{FIVE_BANDS}, {scope}", lambda x=data: _five_bands(x), None, None))
        bad = [f"{n}: {checks[n][0]}" for n in names if n in checks and checks[n][0] is not None]
        cells.append((f"all four, {scope}", run_tv, run_ta if ta else None, "; ".join(bad) or None))
        for variant, fn_tv, fn_ta, problem in cells:
            s_tv, s_ta = Samples(), Samples()
            for rep in range(reps):
                runs: list[tuple[Samples, Callable[[], Any]]] = [(s_tv, fn_tv)]
                runs += [(s_ta, fn_ta)] if fn_ta is not None else []
                for samples, fn in (runs if rep % 2 == 0 else runs[::-1]):
                    out, sec, mem = timed(fn, ctx.probe, full_gc=scope == "universe")
                    del out
                    samples.add(sec, mem)
            extra: dict[str, Any] = {"bars": int(data.shape[-1]),
                                     "symbols": 1 if data.ndim == 1 else int(data.shape[0])}
            record(ctx, "indicators", variant, "tickvault", s_tv, comparable=problem is None, **extra)
            if fn_ta is not None:
                record(ctx, "indicators", variant, "talib", s_ta, comparable=problem is None,
                       check=problem or "agrees with tickvault after the warm-up", **extra)
    ctx.notes["about:indicators"] = (
        f"indicators: one series = the first symbol's {series.size:,} closes on the XNYS minute grid "
        f"({SERIES_REPS.get(size, 30)} calls each); universe = {universe.shape[0]} x {universe.shape[1]:,} "
        f"stacked closes ({UNIVERSE_REPS.get(size, 3)} calls each; TA-Lib loops over the rows); outputs agree with "
        f"TA-Lib after bar {WARMUP} (|difference| ≤ 1e-9 × the largest price, RSI ≤ 1e-6) or the ratio is skipped; "
        f"{rows:,} source rows; tickvault's indicators run as compiled single-pass kernels (numba; one series "
        "on one thread, the universe in row blocks on every usable core; compiled or loaded from numba's cache "
        "before timing); bbands(20,2) is the three bands, as TA-Lib's BBANDS (`bands_only=True`); "
        f"'{FIVE_BANDS}' is the default call that adds %b and BandWidth (no peer)")
    for n, label in INDICATORS:
        maybe_profile(ctx, opts, f"{label} within 1.25× of TA-Lib",
                      f"indicators: {label}, tickvault, one series (50 calls)",
                      lambda n=n: tv[n](series), times=50)  # type: ignore[misc]


def _five_bands(x: np.ndarray) -> Any:
    from tickvault.transform import indicators as ind

    return ind.bbands(x, 20, 2.0)


def _stack(fn: Callable[[np.ndarray], Any], data: np.ndarray) -> Any:
    """TA-Lib's per-row results stacked like tickvault's 2-D output."""
    rows = [fn(row) for row in data]
    if isinstance(rows[0], tuple):
        return tuple(np.vstack([r[i] for r in rows]) for i in range(len(rows[0])))
    return np.vstack(rows)
