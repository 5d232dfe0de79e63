"""The workloads added after the first suite: analytics, server tiers, daily upserts.

Why this module exists: the first four workloads (ingest, read, latest, storage) share one
load of every store library; the later ones each bring their own peers (Polars, pandas,
TA-Lib, PostgreSQL, Redis) and their own setup. This module is the one place that lists
them, carries the options they need (service URLs, which store libraries were asked for)
and offers the recording helper they share, so :mod:`bench._cli` only dispatches.

Peers that are not installed are skipped with the reason recorded in ``skipped`` (like the
store libraries). A service that does not answer (PostgreSQL, Redis) is recorded there
too, so a run still finishes; the smoke test asserts ``skipped`` is empty, so there a
missing service fails.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench._harness import Samples
from bench._workloads import Context

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_REDIS_URL",
    "EXTRA_WORKLOADS",
    "STORE_WORKLOADS",
    "ExtraOptions",
    "has_module",
    "maybe_profile",
    "record",
]

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: The workloads that need the shared load of every store library (bench._workloads.load).
STORE_WORKLOADS = ("ingest", "read", "latest", "storage")


@dataclass
class ExtraOptions:
    """What the added workloads need beyond the :class:`~bench._workloads.Context`.

    Parameters
    ----------
    database_url
        An administrative PostgreSQL URL: the workloads create a throw-away database
        through it and drop it at the end.
    redis_url
        Redis for the cache tiers (keys go under a unique prefix, removed at the end).
    libs
        The store libraries asked for with ``--libs``: ArcticDB and DuckDB take part in
        the added workloads only when listed; the other peers (Polars, pandas, TA-Lib,
        PostgreSQL) whenever installed.
    skipped
        ``peer -> reason`` for peers that could not run (shared with the run record).
    """

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    libs: tuple[str, ...] = ("tickvault", "arcticdb", "duckdb", "parquet")
    skipped: dict[str, str] = field(default_factory=dict)
    #: Profile tickvault's side of each missed target (``--profile``), into ``profiles``.
    profile: bool = False
    profiles: dict[str, str] = field(default_factory=dict)

    def wants(self, peer: str, module: str | None = None) -> bool:
        """Whether ``peer`` should run: asked for (store libraries) and importable."""
        if peer in ("arcticdb", "duckdb") and peer not in self.libs:
            return False
        if module is not None and not has_module(module):
            self.skipped[peer] = f"not installed (no module {module})"
            return False
        return True


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def record(ctx: Context, workload: str, variant: str, library: str, samples: Samples, unit: str = "s",
           **extra: Any) -> dict[str, Any]:
    """Append one result row in the same shape as :meth:`Context.record`."""
    s = samples.summary()
    row: dict[str, Any] = {"workload": workload, "variant": variant, "library": library, "unit": unit,
                           "value": s.get("median_s"), **s, **extra}
    ctx.results.append(row)
    return row


def _resample(ctx: Context, opts: ExtraOptions) -> None:
    from bench._analytics import run_resample

    run_resample(ctx, opts)


def _indicators(ctx: Context, opts: ExtraOptions) -> None:
    from bench._analytics import run_indicators

    run_indicators(ctx, opts)


def _postgres(ctx: Context, opts: ExtraOptions) -> None:
    from bench._server_tier import run_postgres

    run_postgres(ctx, opts)


def _cache(ctx: Context, opts: ExtraOptions) -> None:
    from bench._server_tier import run_cache

    run_cache(ctx, opts)


def _upsert(ctx: Context, opts: ExtraOptions) -> None:
    from bench._upsert import run_upsert

    run_upsert(ctx, opts)


#: name -> runner, in the order they run. Each appends rows to ``ctx.results``.
EXTRA_WORKLOADS: dict[str, Callable[[Context, ExtraOptions], None]] = {
    "resample": _resample,
    "indicators": _indicators,
    "postgres": _postgres,
    "cache": _cache,
    "upsert": _upsert,
}


def maybe_profile(ctx: Context, opts: ExtraOptions, target: str, title: str, fn: Callable[[], Any],
                  times: int = 1, lines: int = 20) -> None:
    """With ``--profile``, profile ``fn`` (tickvault's side) when ``target`` was missed.

    Runs right after the workload's measurements, while its stores and services still
    exist, and never inside a timed region. ``title`` starts with the workload's name and
    a colon, so a later ``--merge`` of that workload replaces the note.
    """
    if not opts.profile:
        return
    from bench._goals import extra_targets

    if not any(t["target"] == target and t["met"] is False for t in extra_targets(ctx.results)):
        return
    if not has_module("pyinstrument"):
        opts.profiles["note"] = "pyinstrument is not installed (pip install '.[bench]')"
        return
    from bench._profile import _profile

    ctx.log(f"profiling tickvault: {title}")
    opts.profiles[title] = _profile(fn, times, lines)
