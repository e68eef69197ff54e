"""检索 and 重复信访: find a case by anything one knows of it, only among what the user may
see (and audited); and the pairs of cases with a petitioner in common, to link or merge."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from node import i18n, paging, repeats, search, store, users
from node.errors import N_, NodeError
from node.web import access, lists, ops
from node.web.auth import needs, node
from node.web.liaison import say

bp = Blueprint("search", __name__)


REFRESH = 200  # cases reindexed in one write transaction


def find(n, user: dict, text: str) -> list[dict]:
    """search.search, without holding the database's write lock for the whole search (a
    bundle's apply would wait for it, issue 19): the index is brought up to date in short
    transactions, the search only reads, and the audit row is written at the end."""
    query = search.parse(text)
    units = access.subtree(n)
    person = users.get_user(n, user["username"])
    while True:
        with store.write(n.db):
            if search.refresh(n, REFRESH) < REFRESH:
                break
    found = search.find(n, query, lambda c: access.sight(n, person, c, units))
    with store.write(n.db):
        search.record(n, user["username"], text, len(found))
    return found


def pairs(n, after: str | None = None, limit: int = paging.PAGE
          ) -> tuple[list[dict], str | None]:
    """A page of the repeat pairs this unit may see, with the units' names."""
    names = ops.node_names(n)
    found, following = repeats.pairs(n, access.subtree(n), after, limit)
    return [{**p, "newer_name": names.get(p["newer_origin"], p["newer_origin"]),
             "older_name": names.get(p["older_origin"], p["older_origin"])}
            for p in found], following


def link(n, user: dict, case_id: str, of_case: str, note: str | None) -> dict:
    with store.write(n.db):
        event = repeats.link(n, ops.actor(user), case_id, of_case, note)
    return {"case": case_id, "of": of_case, "event": event.id}


@bp.get("/search")
@needs()
def page():
    query = (request.args.get("q") or "").strip()
    found, error = [], None
    if query:
        try:
            found = find(node(), g.user, query)
        except NodeError as e:
            error = i18n.message(e, g.lang)
    return render_template("search.html", q=query, rows=found, error=error,
                           names=ops.node_names(node())), 400 if error else 200


@bp.get("/repeats")
@needs("liaison", "handler", "leader")
def repeat_pairs(error=None, status=200):
    after, limit = lists.page_args()
    found, following = pairs(node(), after, limit)
    return render_template("repeats.html", pairs=found, error=error,
                           **lists.links(following, after, "search.repeat_pairs")), status


@bp.post("/repeats/link")
@needs("liaison", "handler", "leader")
def repeat_link():
    try:
        link(node(), g.user, request.form.get("case", ""), request.form.get("of", ""),
             (request.form.get("note") or "").strip() or None)
    except NodeError as e:
        return repeat_pairs(error=i18n.message(e, g.lang), status=e.http_status)
    say(N_("Linked %(case)s as a repeat of %(of)s"), case=request.form.get("case"),
        of=request.form.get("of"))
    return redirect(url_for("search.repeat_pairs"), 303)
