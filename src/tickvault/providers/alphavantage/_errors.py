"""Alpha Vantage answers most failures with HTTP 200 and a one-key JSON body.

So the status code says nothing and the body must be read before the payload is trusted:

==============================================  ================================
body                                            error
==============================================  ================================
``{"Note": "...call frequency..."}``            RateLimited (retry after 60 s)
``{"Information": "...rate limit..."}``         RateLimited (daily quota: no retry hint)
``{"Information": "...premium endpoint..."}``   UnsupportedRequest
``{"Information": "...demo... / apikey..."}``   AuthenticationFailed
``{"Error Message": "...apikey..."}``           AuthenticationFailed
``{"Error Message": "Invalid API call..."}``     SymbolNotFound (the usual cause: unknown symbol)
any other ``Note`` / ``Information``            ProviderResponseError
==============================================  ================================

:func:`body_error` is pure and returns the error (the adapter raises it with the request
context and after redaction), or ``None`` for a normal payload.
"""

from __future__ import annotations

from typing import Any

from tickvault.errors import (
    AuthenticationFailed,
    ProviderError,
    ProviderResponseError,
    RateLimited,
    SymbolNotFound,
    UnsupportedRequest,
)

__all__ = ["MINUTE_RETRY_AFTER", "body_error"]

#: Alpha Vantage's per-minute quota refills within a minute.
MINUTE_RETRY_AFTER = 60.0
_SNIPPET = 200


def body_error(payload: Any) -> tuple[type[ProviderError], str, float | None] | None:
    """Classify an Alpha Vantage error body.

    Parameters
    ----------
    payload
        The decoded JSON body of a 200 reply.

    Returns
    -------
    tuple or None
        ``(error class, message, retry_after seconds or None)``, or ``None`` when the body
        is not an error body.
    """
    if not isinstance(payload, dict) or any(isinstance(k, str) and k.startswith("Time Series") for k in payload):
        return None
    for key in ("Error Message", "Information", "Note"):
        if key in payload:
            text = str(payload[key])[:_SNIPPET]
            return _classify(key, text)
    return None


def _classify(key: str, text: str) -> tuple[type[ProviderError], str, float | None]:
    low = text.lower()
    message = f"Alpha Vantage: {text}"
    # Quota messages also mention the API key and the premium plans: test them first.
    if any(w in low for w in ("frequency", "per minute", "rate limit", "per day")):
        daily = "per day" in low and "per minute" not in low
        return RateLimited, message, None if daily else MINUTE_RETRY_AFTER
    if "demo" in low or (("apikey" in low or "api key" in low) and ("invalid" in low or "missing" in low)):
        return AuthenticationFailed, message, None
    if "premium" in low:
        return UnsupportedRequest, message, None
    if key == "Error Message":
        return SymbolNotFound, message, None
    return ProviderResponseError, message, None
