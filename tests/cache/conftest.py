"""Fixtures for cache tests: the machine's real Redis, a throwaway Redis, a fake clock.

- ``redis_url`` is the shared Redis (``TICKVAULT_TEST_REDIS_URL``, default
  ``redis://127.0.0.1:6379/0``, read at import time before the environment is cleared).
  It is a *failure*, not a skip, when it does not answer: CI must have it.
- ``redis_prefix`` is a namespace unique to one test; every key under it is deleted after.
- ``redis_server`` starts a private ``redis-server`` on a free port, for tests that stop and
  restart Redis; the machine's shared server is never touched.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ._util import FakeClock, RedisServer, free_port

REDIS_URL = os.environ.get("TICKVAULT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        pytest.fail(f"Redis is required for the cache tests and did not answer at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


def _purge(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
    finally:
        client.close()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"tickvault-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    _purge(redis_url, prefix)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def closed_port_url() -> str:
    """A Redis URL nobody listens on (connections are refused at once)."""
    return f"redis://127.0.0.1:{free_port()}/0"
