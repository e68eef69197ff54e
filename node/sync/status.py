"""Sync state both ways: per neighbour, last contact and success, backlog, last error."""

from __future__ import annotations

from node import trust
from node.sync import outbox

_LINK_COLUMNS = ("last_contact", "last_success", "last_error", "errors", "acked", "applied",
                 "batch")


def links(node, only: str | None = None) -> list[dict]:
    """Each neighbour's link: the parent's and every active child's, dialled yet or not
    (with ``only``, that neighbour's alone).

    Read only. The backlog counts what a session would number next as well as
    what is numbered and not yet acknowledged (``outbox.unqueued``, in
    proportion to what is new), so a link whose neighbour has been away for
    days shows everything that waits for it, and a case kept here is never
    counted as waiting.
    """
    parent = node.settings["PARENT_ID"]
    rows = {r[0]: dict(zip(_LINK_COLUMNS, r[1:], strict=True)) for r in node.db.conn.execute(
        f"SELECT peer, {', '.join(_LINK_COLUMNS)} FROM links")}
    neighbours = {r[0] for r in node.db.conn.execute(
        "SELECT node_id FROM nodes WHERE parent_id = ? AND status = 'active'", (node.id,))}
    if parent:
        neighbours.add(parent)
    peers = neighbours | set(rows)
    out = []
    for peer in sorted(peers if only is None else peers & {only}):
        waiting, size = outbox.backlog(node, peer)
        if peer in neighbours:  # (a link row of a revoked or moved child only drains)
            more, more_size = outbox.unqueued(node, peer)
            waiting, size = waiting + more, size + more_size
        link = rows.get(peer) or dict.fromkeys(_LINK_COLUMNS)
        out.append({"peer": peer, "role": "parent" if peer == parent else "child",
                    "last_contact": link["last_contact"], "last_success": link["last_success"],
                    "last_error": link["last_error"], "errors": link["errors"] or 0,
                    "backlog_events": waiting, "backlog_bytes": size, "acked": link["acked"],
                    "applied": link["applied"], "batch": link["batch"]})
    return out


def summary(node, every_link: bool = True) -> dict:
    """What a liaison needs: last synced, and how many events wait to go up; and, unless
    ``every_link`` is False (a page that shows only the parent's), every link."""
    parent = node.settings["PARENT_ID"]
    shown = links(node) if every_link else links(node, parent) if parent else []
    up = next((link for link in shown if link["peer"] == parent), None) if parent else None
    refused = node.db.conn.execute("SELECT count(*) FROM refusals").fetchone()[0]
    out = {"node": node.id, "parent": parent or None,
           "last_synced": up["last_success"] if up else None,
           "last_error": up["last_error"] if up else None,
           "waiting": up["backlog_events"] if up else 0, "refusals": refused,
           "flags": trust.flags(node.db)}
    if every_link:
        out["links"] = shown
    return out
