"""Sync state both ways: per neighbour, last contact and success, backlog, last error."""

from __future__ import annotations

from node import store
from node.sync import outbox


def links(node) -> list[dict]:
    """Each link's state, the parent's and every child's.

    The backlog counts what arrived since the last session too: the new events a
    neighbour may have are numbered first, as a session would number them
    (``outbox.queue``, in proportion to what is new), so a link whose neighbour has
    been away for days shows everything that waits for it.
    """
    parent = node.settings["PARENT_ID"]
    with store.write(node.db):
        # the parent and every active child, whether or not it has dialled yet
        peers = {r[0] for r in node.db.conn.execute(
            "SELECT peer FROM links UNION SELECT node_id FROM nodes WHERE parent_id = ? AND "
            "status = 'active'", (node.id,))}
        for peer in sorted(peers | ({parent} if parent else set())):
            outbox.queue(node, peer)
    rows = node.db.conn.execute(
        "SELECT peer, last_contact, last_success, last_error, errors, acked, applied, batch "
        "FROM links ORDER BY peer").fetchall()
    out = []
    for peer, contact, success, error, errors, acked, applied, batch in rows:
        waiting, size = outbox.backlog(node, peer)
        out.append({"peer": peer, "role": "parent" if peer == parent else "child",
                    "last_contact": contact, "last_success": success,
                    "last_error": error, "errors": errors, "backlog_events": waiting,
                    "backlog_bytes": size, "acked": acked, "applied": applied, "batch": batch})
    return out


def summary(node) -> dict:
    """What a liaison needs: last synced, and how many events wait to go up."""
    parent = node.settings["PARENT_ID"]
    every = links(node)
    up = next((link for link in every if link["peer"] == parent), None) if parent else None
    refused = node.db.conn.execute("SELECT count(*) FROM refusals").fetchone()[0]
    return {"node": node.id, "parent": parent or None,
            "last_synced": up["last_success"] if up else None,
            "last_error": up["last_error"] if up else None,
            "waiting": up["backlog_events"] if up else 0, "refusals": refused,
            "links": every}
