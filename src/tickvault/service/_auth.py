"""Who may call what: API-key authentication, role checks and the per-key rate limit.

Every route declares the role it needs when it is registered (:func:`needs`); a route
registered without a declaration is refused at app build time, so access is deny-by-default.
Reads need the ``read`` role only when ``read_requires_key`` is set; writes, fetches and
admin calls always need a key whose role is high enough.

Order of checks, the same for HTTP and the WebSocket stream:

1. a presented key that matches nothing -> 401 (charged to the client address's bucket,
   so guessing keys is rate-limited too);
2. the rate limit of the key (or of the client address without a key) -> 429 + Retry-After;
3. no key where one is needed -> 401; a key whose role is too low -> 403.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from tickvault.service._errors import ApiError
from tickvault.service._keys import ANONYMOUS, KeyRing, Principal
from tickvault.service._settings import Role, ServiceSettings

__all__ = ["Guard", "RateLimiter", "needs", "public"]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (`tickvault keys add`).")
_bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token.")


class RateLimiter:
    """Token buckets per identity: ``per_minute`` sustained, ``burst`` at once.

    Parameters
    ----------
    per_minute
        Refill rate; 0 disables the limit.
    burst
        Bucket size.
    clock
        Monotonic seconds (tests inject a manual clock).
    max_identities
        Buckets kept; the least recently used go first (a full bucket loses nothing).
    """

    def __init__(self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 max_identities: int = 10_000) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._max = max_identities
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, identity: str) -> float:
        """Spend one token; returns 0 if allowed, else the seconds until one is available."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(identity, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self._rate
            self._buckets[identity] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        return wait


class Guard:
    """Authentication, authorisation and rate limiting for one app.

    Parameters
    ----------
    settings
        Service settings (``read_requires_key``, rate limit).
    keys
        The configured keys.
    clock
        Monotonic seconds for the rate limiter.
    on_limited
        Called with the route template whenever a request is refused with 429.
    """

    def __init__(self, settings: ServiceSettings, keys: KeyRing, *, clock: Callable[[], float] = time.monotonic,
                 on_limited: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.keys = keys
        self.limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst, clock=clock)
        self._on_limited = on_limited or (lambda route: None)

    def needed(self, role: Role) -> Role | None:
        """The role a caller must hold for an endpoint declared with ``role`` (``None``: nobody)."""
        if role is Role.READ and not self.settings.read_requires_key:
            return None
        return role

    def identify(self, headers: Mapping[str, str], client: str, route: str) -> Principal:
        """Authenticate from ``X-API-Key`` / ``Authorization: Bearer`` and apply the rate limit.

        Raises
        ------
        ApiError
            401 for a key that matches nothing, 429 when the bucket is empty.
        """
        key = headers.get("x-api-key")
        if key is None:
            auth = headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                key = token.strip()
        principal = ANONYMOUS
        if key is not None:
            found = self.keys.authenticate(key)
            if found is None:
                self._limit(f"addr:{client}", route)
                raise ApiError(401, "invalid_api_key", "the API key is not valid",
                               headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})
            principal = found
        self._limit(f"key:{principal.name}" if principal.name else f"addr:{client}", route)
        return principal

    def _limit(self, identity: str, route: str) -> None:
        wait = self.limiter.take(identity)
        if wait > 0:
            self._on_limited(route)
            raise ApiError(429, "rate_limited", "too many requests; retry later",
                           details={"retry_after_seconds": math.ceil(wait)},
                           headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def authorize(self, principal: Principal, role: Role) -> None:
        """Check that ``principal`` may call an endpoint declared with ``role``.

        Raises
        ------
        ApiError
            401 without a key where one is needed, 403 for a role too low.
        """
        needed = self.needed(role)
        if needed is None:
            return
        if principal.role is None:
            raise ApiError(401, "api_key_required", f"this endpoint needs an API key with the {needed} role",
                           headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})
        if not principal.role.allows(needed):
            raise ApiError(403, "forbidden", f"this endpoint needs the {needed} role; the key has {principal.role}")


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path_format", None) or getattr(route, "path", "unmatched"))


def needs(role: Role) -> Callable[..., Any]:
    """A FastAPI dependency: authenticate, rate-limit and require ``role`` (see the module docstring).

    The principal is left on ``request.state.principal`` for handlers and the access log.
    """

    async def dependency(request: Request,
                         _key: str | None = Security(_api_key_header),
                         _bearer_token: HTTPAuthorizationCredentials | None = Security(_bearer)) -> Principal:
        guard: Guard = request.app.state.guard
        client = request.client.host if request.client is not None else "unknown"
        principal = guard.identify(request.headers, client, _route_of(request))
        request.state.principal = principal
        guard.authorize(principal, role)
        return principal

    dependency.tickvault_role = role  # type: ignore[attr-defined]  # read by the build-time deny-by-default check
    return dependency


def public() -> Callable[..., Any]:
    """A FastAPI dependency declaring an endpoint open to everyone, unlimited (liveness only)."""

    async def dependency() -> None:
        return None

    dependency.tickvault_role = "public"  # type: ignore[attr-defined]
    return dependency
