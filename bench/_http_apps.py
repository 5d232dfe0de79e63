"""The ASGI apps the HTTP workload serves: tickvault's service and the FastAPI baselines.

Why this module exists: uvicorn and granian import an app by name inside their own process
(granian always runs its workers as processes), so each app is a factory here that reads
where its data lives from ``TVBENCH_*`` environment variables set by :mod:`bench._http`.

- :func:`tickvault_app`: ``tickvault.service.create_app`` over the bench vault, as ``tickvault
  serve`` builds it, except that the per-client rate limit is off (the load generator is one
  client) and no access log is written (``tickvault serve --log-level warning``).
- :func:`fastapi_app`: the issue's baseline, a minimal FastAPI endpoint on the same path and
  query that returns the same 500 bars held in memory as plain Python objects (dicts of
  ``str``/``float``/``int``, timestamps already formatted); FastAPI serialises them on every
  request (``jsonable_encoder`` + ``json``), as an endpoint that returns data does.
- :func:`fastapi_bytes_app`: the same endpoint returning the response body as pre-serialised
  bytes. It does no work per request at all: a floor for what FastAPI's routing and the server
  cost, shown for reference and never used as a peer in ratios.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["fastapi_app", "fastapi_bytes_app", "tickvault_app"]


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set (the HTTP workload sets it for its servers)")
    return value


def tickvault_app() -> Any:
    """tickvault's service over the vault at ``TVBENCH_HOME``."""
    import tickvault
    from tickvault.service import ServiceSettings, create_app

    vault = tickvault.open(_env("TVBENCH_HOME"))
    return create_app(vault, ServiceSettings(rate_limit_per_minute=0))


def _document() -> dict[str, Any]:
    """The JSON answer tickvault's server gave for the latest 500 bars (written by the workload)."""
    data: dict[str, Any] = json.loads(Path(_env("TVBENCH_BODY")).read_text())
    return data


def fastapi_app() -> Any:
    """The minimal FastAPI baseline: the same bars from memory, serialised per request."""
    from fastapi import FastAPI

    doc = _document()
    bars: list[dict[str, Any]] = doc["bars"]
    app = FastAPI()

    @app.get("/v1/bars/{symbol}/latest")
    async def latest(symbol: str, timeframe: str = "1m", n: int = 500) -> dict[str, Any]:
        rows = bars[-n:] if n else []
        return {"symbol": symbol, "timeframe": timeframe, "adjust": "splits", "count": len(rows), "bars": rows}

    return app


def fastapi_bytes_app() -> Any:
    """FastAPI returning the pre-serialised body: routing and server only, no per-request work."""
    from fastapi import FastAPI
    from starlette.responses import Response

    body = json.dumps(_document(), separators=(",", ":")).encode()
    app = FastAPI()

    @app.get("/v1/bars/{symbol}/latest")
    async def latest(symbol: str, timeframe: str = "1m", n: int = 500) -> Response:
        return Response(body, media_type="application/json")

    return app
