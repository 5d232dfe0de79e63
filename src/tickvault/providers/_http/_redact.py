"""Keep credentials out of every message, log record and repr.

Two layers, because one mistake should not leak a key:

1. Credentials never enter the request the rest of the code sees: :class:`AuthTransport`
   (in :mod:`._client`) adds them to a private copy at the transport boundary, so
   ``response.request.url`` — and httpx's own ``HTTP Request: ...`` log line — never hold them.
2. Everything that reaches an exception or a log record passes through :class:`Redactor`,
   which masks the configured secret values (raw and URL-encoded) and the values of query
   parameters whose names look like credentials.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from tickvault.errors import TickvaultError

__all__ = ["MASK", "SECRET_PARAM_NAMES", "Redactor", "scrub_error"]

MASK = "***"

#: Query-parameter names whose values are masked wherever a URL is shown.
SECRET_PARAM_NAMES = frozenset({
    "apikey", "api_key", "apiKey", "key", "token", "access_token", "secret", "api_secret", "password",
    "signature", "sig", "client_secret", "auth", "crumb",
})
_SECRET_PARAMS_LOWER = frozenset(n.lower() for n in SECRET_PARAM_NAMES)


class Redactor:
    """Masks known secret values and credential-like query parameters in text.

    Parameters
    ----------
    secrets
        Secret values to mask (empty strings are ignored).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants: set[str] = set()
        for s in secrets:
            if s:
                variants.update({s, quote(s, safe=""), quote_plus(s)})
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(variants, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    def __repr__(self) -> str:
        return "Redactor(<secrets hidden>)"

    def text(self, value: object) -> str:
        """``str(value)`` with every secret masked."""
        s = str(value)
        return self._pattern.sub(MASK, s) if self._pattern is not None else s

    def url(self, url: object) -> str:
        """A URL with credential-like query values and known secrets masked."""
        raw = str(url)
        try:
            parts = urlsplit(raw)
        except ValueError:
            return self.text(raw)
        if parts.query:
            pairs = [(k, MASK if k.lower() in _SECRET_PARAMS_LOWER else v)
                     for k, v in parse_qsl(parts.query, keep_blank_values=True)]
            query = urlencode(pairs, safe="*")
            raw = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        return self.text(raw)


E = TypeVar("E", bound=TickvaultError)


def scrub_error(exc: E, redactor: Redactor) -> E:
    """``exc`` with its message and string context masked (a new instance only if needed).

    Transforms quote vendor text in their errors (Polygon's ``"error"`` field, Yahoo's
    ``description``); a vendor that echoes the key back must not put it in our exception.
    """
    message = redactor.text(exc.message)
    context = {k: redactor.text(v) if isinstance(v, str) else v for k, v in exc.context.items()}
    if message == exc.message and context == exc.context:
        return exc
    clean = type(exc).__new__(type(exc))
    TickvaultError.__init__(clean, message, **context)
    return clean
