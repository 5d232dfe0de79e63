"""Follow a vendor's pagination to the end, or fail loudly.

Vendors page with opaque cursors (Alpaca ``next_page_token``, Polygon ``next_url``,
ccxt ``since``). :func:`follow_pages` calls ``fetch(cursor, page_index)`` until the vendor
says there is no next page. A cursor seen twice (a vendor loop) or more pages than
``max_pages`` raise :class:`~tickvault.errors.IncompleteData` instead of returning a short
or endless result; a page that fails after its retries propagates its typed error
(e.g. :class:`~tickvault.errors.ProviderTimeout` mid-pagination), never a partial range.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tickvault.errors import IncompleteData

__all__ = ["DEFAULT_MAX_PAGES", "follow_pages"]

P = TypeVar("P")
DEFAULT_MAX_PAGES = 10_000


async def follow_pages(fetch: Callable[[str | None, int], Awaitable[tuple[P, str | None]]], *,
                       provider: str, first: str | None = None, max_pages: int = DEFAULT_MAX_PAGES,
                       **context: Any) -> list[P]:
    """Fetch every page, starting from ``first`` (``None``: the first page).

    Parameters
    ----------
    fetch
        ``await fetch(cursor, index) -> (page, next_cursor)``; ``next_cursor`` is ``None``
        (or empty) on the last page.
    provider
        For error context.
    first
        Initial cursor.
    max_pages
        Safety cap on the number of pages.
    **context
        Extra error context (``symbol``, ``timeframe``).

    Returns
    -------
    list
        The pages in order.

    Raises
    ------
    IncompleteData
        If the vendor repeats a cursor or the page cap is reached.
    """
    pages: list[P] = []
    seen: set[str] = set()
    cursor = first
    while True:
        page, nxt = await fetch(cursor, len(pages))
        pages.append(page)
        if not nxt:
            return pages
        if nxt in seen:
            raise IncompleteData("provider repeated a page cursor; stopping instead of looping",
                                 provider=provider, pages=len(pages), **context)
        if len(pages) >= max_pages:
            raise IncompleteData(f"more than {max_pages} pages; narrow the request", provider=provider,
                                 pages=len(pages), **context)
        seen.add(nxt)
        cursor = nxt
