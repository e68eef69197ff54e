"""Lists in pages (issue 19): the filters a request asks for, its page, and the link to
the next one. The rows are found in SQL (cases.query, warnings.page) and never all read.
"""

from __future__ import annotations

from flask import request, url_for

from node import paging

CASE_FILTERS = ("state", "due", "category", "origin", "since", "until")
WARNING_FILTERS = ("status", "level", "origin")


def filters(names) -> dict:
    """The request's filters among ``names`` that have a value."""
    return {k: request.args[k] for k in names if request.args.get(k)}


def page_args() -> tuple[str | None, int]:
    """(after, limit) of the request: the cursor of the page to show and its size."""
    return request.args.get("after") or None, paging.limit(
        request.args.get("limit") or paging.PAGE)


def next_url(cursor: str | None, endpoint: str | None = None) -> str | None:
    """This page's address (or ``endpoint``'s, when a form's answer shows the list) for the
    page after ``cursor`` (None: there is none)."""
    if cursor is None:
        return None
    args = {k: v for k, v in request.args.items() if k != "after"}
    return url_for(endpoint or request.endpoint, **(request.view_args or {}), **args,
                   after=cursor)


def first_url(after: str | None, endpoint: str | None = None) -> str | None:
    """This list's first page, when showing a later one."""
    if not after:
        return None
    args = {k: v for k, v in request.args.items() if k != "after"}
    return url_for(endpoint or request.endpoint, **(request.view_args or {}), **args)


def links(following: str | None, after: str | None, endpoint: str | None = None) -> dict:
    """The template's ``next_url`` and ``first_url`` (macro next_page)."""
    return {"next_url": next_url(following, endpoint), "first_url": first_url(after, endpoint)}
