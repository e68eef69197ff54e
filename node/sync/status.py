"""Sync state both ways: per neighbour, last contact and success, backlog, last error."""

from __future__ import annotations

from node.sync import outbox


def links(node) -> list[dict]:
    rows = node.db.conn.execute(
        "SELECT peer, last_contact, last_success, last_error, errors, acked, applied, batch "
        "FROM links ORDER BY peer").fetchall()
    out = []
    for peer, contact, success, error, errors, acked, applied, batch in rows:
        waiting, size = outbox.backlog(node, peer)
        out.append({"peer": peer, "role": "parent" if peer == node.settings["PARENT_ID"]
                    else "child", "last_contact": contact, "last_success": success,
                    "last_error": error, "errors": errors, "backlog_events": waiting,
                    "backlog_bytes": size, "acked": acked, "applied": applied, "batch": batch})
    return out


def summary(node) -> dict:
    """What a liaison needs: last synced, N waiting (events not yet queued count too)."""
    parent = node.settings["PARENT_ID"]
    row = node.db.conn.execute("SELECT scanned_lsn, last_success, last_error FROM links "
                               "WHERE peer = ?", (parent,)).fetchone() if parent else None
    scanned = row[0] if row else 0
    unscanned = node.db.conn.execute(
        "SELECT count(*) FROM events WHERE lsn > ? AND (source IS NULL OR source != ?)",
        (scanned, parent or "")).fetchone()[0]
    queued = outbox.backlog(node, parent)[0] if row else 0
    refused = node.db.conn.execute("SELECT count(*) FROM refusals").fetchone()[0]
    return {"node": node.id, "parent": parent or None,
            "last_synced": row[1] if row else None, "last_error": row[2] if row else None,
            "waiting": (queued + unscanned) if parent else 0, "refusals": refused,
            "links": links(node)}
