"""Sync state both ways: per neighbour, last contact and success, backlog, last error, and
the transfer under way (bytes sent of bytes owed, time to finish at the rate measured)."""

from __future__ import annotations

import math

from node import figures, pacing, trust
from node.sync import outbox, parts

_LINK_COLUMNS = ("last_contact", "last_success", "last_error", "errors", "acked", "applied",
                 "batch", "moved", "cuts", "rate", "event_wire", "sent_bytes", "progress_at")


def links(node, only: str | None = None) -> list[dict]:
    """Each neighbour's link: the parent's and every active child's, dialled yet or not
    (with ``only``, that neighbour's alone).

    Read only. The backlog counts what a session would number next as well as what is
    numbered and not yet acknowledged (``outbox.unqueued``, in proportion to what is new),
    so a link whose neighbour has been away for days shows everything that waits for it,
    and a case kept here is never counted as waiting; past outbox.SCAN_BUDGET new events
    (a new child of a node with a long log) it counts no further and says so
    (``backlog_at_least``). ``owed_bytes`` is what the backlog takes on the wire (at the
    bytes an event took in the bundles sent so far, less what the neighbour holds of the
    bundle in flight); ``eta_seconds``, the time it takes at the rate measured on the link
    (None until a link this node dials has carried something).
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
        whole = True  # (False: the backlog is at least that; a new link's long log)
        if peer in neighbours:  # (a link row of a revoked or moved child only drains)
            more, more_size, whole = outbox.unqueued(node, peer)
            waiting, size = waiting + more, size + more_size
        link = rows.get(peer) or dict.fromkeys(_LINK_COLUMNS)
        pace = pacing.Pace(link["batch"] or outbox.BATCH, outbox.BATCH,
                           moved=link["moved"] or 0.0, cuts=link["cuts"] or 0.0,
                           rate=link["rate"], event_wire=link["event_wire"])
        sending, receiving = parts.held(node, peer, "out"), parts.held(node, peer, "in")
        owed = max(0, math.ceil(waiting * (pace.event_wire or pacing.EVENT_WIRE))
                   - (sending[0] if sending else 0)) if waiting else 0
        eta = pace.eta(owed)
        out.append({"peer": peer, "role": "parent" if peer == parent else "child",
                    "last_contact": link["last_contact"], "last_success": link["last_success"],
                    "last_error": link["last_error"], "errors": link["errors"] or 0,
                    "backlog_events": waiting, "backlog_bytes": size,
                    "backlog_at_least": not whole, "acked": link["acked"],
                    "applied": link["applied"], "batch": link["batch"],
                    "rate": round(pace.rate) if pace.rate else None,
                    "piece": pace.piece() if pace.cuts else None,
                    "sending": list(sending) if sending else None,
                    "receiving": list(receiving) if receiving else None,
                    "sent_bytes": link["sent_bytes"] or 0, "owed_bytes": owed,
                    "eta_seconds": math.ceil(eta) if eta is not None else None,
                    "progress_at": link["progress_at"]})
    return out


def summary(node, every_link: bool = True) -> dict:
    """What a liaison needs: last synced, how many events wait to go up, and, while they
    do, the bytes sent of the bytes owed and the time to finish; and, unless
    ``every_link`` is False (a page that shows only the parent's), every link."""
    parent = node.settings["PARENT_ID"]
    shown = links(node) if every_link else links(node, parent) if parent else []
    up = next((link for link in shown if link["peer"] == parent), None) if parent else None
    refused = node.db.conn.execute("SELECT count(*) FROM refusals").fetchone()[0]
    out = {"node": node.id, "parent": parent or None,
           "last_synced": up["last_success"] if up else None,
           "last_error": up["last_error"] if up else None,
           "waiting": up["backlog_events"] if up else 0, "refusals": refused,
           "flags": trust.flags(node.db), "progress": progress(up),
           "figures": figures.stored(node)}
    if every_link:
        out["links"] = shown
    return out


def progress(link: dict | None) -> dict | None:
    """While events wait on ``link``: bytes sent (in the session under way or the last one)
    and the total with what is still owed, in KiB rounded up, and the minutes left at
    the rate measured (None before it is)."""
    if not link or not link["owed_bytes"]:
        return None
    sent = link["sent_bytes"]
    return {"sent_kib": math.ceil(sent / 1024),
            "total_kib": math.ceil((sent + link["owed_bytes"]) / 1024),
            "minutes": math.ceil(link["eta_seconds"] / 60) if link["eta_seconds"] else None}
