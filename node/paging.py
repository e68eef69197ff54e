"""Keyset pages: a list's next page named by its last row's sort key and id (pure).

The cursor is opaque to callers (URL-safe base64 of "key|id"); a row added meanwhile
neither repeats a row nor skips one, as an offset would. Used by every list that pages
(node/cases/query.py, node/warnings/commands.py).
"""

from __future__ import annotations

import base64

from node.errors import N_, ValidationError

PAGE = 50  # rows a page shows unless asked otherwise
MAX_PAGE = 500  # and at most


def cursor(*key: str) -> str:
    """The cursor of a row by its sort key, its id last ("key|id"; a key of more parts
    for a list sorted by more columns)."""
    return base64.urlsafe_b64encode("|".join(key).encode()).decode().rstrip("=")


def after(value: str, parts: int = 2) -> tuple[str, ...]:
    """The ``parts`` parts of a cursor (key, id); a value this node never gave is
    refused."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raw = ""
    found = raw.split("|", parts - 1)
    if len(found) != parts:
        raise ValidationError(N_("%(field)s: not a cursor this node gave"), field="after")
    return tuple(found)


def limit(value) -> int:
    """A page size from a form, the API or the CLI: a whole number, 1 to MAX_PAGE."""
    try:
        n = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        n = None
    if n is None or not 1 <= n <= MAX_PAGE:
        raise ValidationError(N_("%(field)s must be between %(min)s and %(max)s"),
                              field="limit", min=1, max=MAX_PAGE)
    return n


def every(fetch, batch: int = MAX_PAGE):
    """Every row of a paged list, a page at a time (exports): ``fetch(after, limit)``
    returns (rows, next cursor)."""
    after = None
    while True:
        rows, after = fetch(after, batch)
        yield from rows
        if after is None:
            return
