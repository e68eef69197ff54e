"""What this node owes each neighbour: events numbered per link, and the checkpoint.

Link numbers are assigned lazily, when a session asks what is pending, by
scanning only events that arrived since the last scan: a session costs time
in proportion to what is new, not to the stored history. The checkpoint
(``acked``) moves only when the neighbour's signed acknowledgement says it
applied every event up to a number; rows at or below it are pruned.

Which events a neighbour gets is decided by :func:`wanted`: a deliberately
small rule until the routing policy lands (issue 5): everything goes up to
the parent except what came from it; a child gets what concerns subjects it
already has, and the whole history of a case referred down to it.
"""

from __future__ import annotations

import json

from node import events
from node.errors import N_, NotFound


def ensure_link(db, peer: str) -> dict:
    db.conn.execute("INSERT OR IGNORE INTO links (peer) VALUES (?)", (peer,))
    return link(db, peer)


def link(db, peer: str) -> dict:
    cur = db.conn.execute("SELECT * FROM links WHERE peer = ?", (peer,))
    row = cur.fetchone()
    if row is None:
        raise NotFound(N_("no link with node %(node)s"), node=peer)
    return dict(zip([c[0] for c in cur.description], row, strict=True))


def record_contact(node, peer: str, error: str | None = None) -> None:
    """Note on the link that we heard from ``peer``: a success, or the error (one place)."""
    ensure_link(node.db, peer)
    if error is None:
        node.db.conn.execute("UPDATE links SET last_contact = ?, last_success = ?, "
                             "last_error = NULL WHERE peer = ?", (node.now(), node.now(), peer))
    else:
        node.db.conn.execute("UPDATE links SET last_contact = ?, last_error = ?, "
                             "errors = errors + 1 WHERE peer = ?", (node.now(), error, peer))


def encryption_key(node, peer: str):
    """The X25519 key bundles for ``peer`` are sealed to."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    row = node.db.conn.execute("SELECT enc_pub FROM nodes WHERE node_id = ?", (peer,)).fetchone()
    if row is None or row[0] is None:
        raise NotFound(N_("no encryption key for node %(node)s: enroll first"), node=peer)
    return X25519PublicKey.from_public_bytes(bytes(row[0]))


def _is_parent(node, peer: str) -> bool:
    return peer == node.settings["PARENT_ID"]


def wanted(node, peer: str, lsn: int, source: str | None, type_: str, subject: str,
           body: dict) -> bool:
    if source == peer:
        return False
    if _is_parent(node, peer):
        return True
    if type_ == "case.referred" and body.get("to") == peer or type_.startswith("node."):
        return True  # a referral to the child; a revocation goes everywhere
    return node.db.conn.execute(
        "SELECT 1 FROM events WHERE subject = ? AND lsn < ? AND (source = ? OR origin = ?) "
        "LIMIT 1", (subject, lsn, peer, peer)).fetchone() is not None


def queue(node, peer: str) -> int:
    """Number the events for ``peer`` that arrived since the last scan; returns how many."""
    row = ensure_link(node.db, peer)
    next_out, scanned, added = row["next_out"], row["scanned_lsn"], 0
    queued: set[int] = set()
    rows = node.db.conn.execute(
        "SELECT lsn, source, type, subject, body FROM events WHERE lsn > ? ORDER BY lsn",
        (scanned,)).fetchall()
    for lsn, source, type_, subject, body in rows:
        scanned = lsn
        body = json.loads(body)
        if not wanted(node, peer, lsn, source, type_, subject, body):
            continue
        batch = [lsn]
        if type_ == "case.referred" and body.get("to") == peer:
            # the child needs the whole case to hold it: everything before, in order
            earlier = [r[0] for r in node.db.conn.execute(
                "SELECT lsn FROM events WHERE subject = ? AND lsn < ? AND "
                "(source IS NULL OR source != ?) AND lsn NOT IN "
                "(SELECT lsn FROM outbox WHERE peer = ?) ORDER BY lsn",
                (subject, lsn, peer, peer))]
            batch = [x for x in earlier if x not in queued] + batch
        for item in batch:
            node.db.conn.execute("INSERT INTO outbox (peer, lseq, lsn) VALUES (?, ?, ?)",
                                 (peer, next_out, item))
            queued.add(item)
            next_out += 1
            added += 1
    node.db.conn.execute("UPDATE links SET scanned_lsn = ?, next_out = ? WHERE peer = ?",
                         (scanned, next_out, peer))
    return added


def pending(node, peer: str, limit: int, after: int | None = None) -> tuple[int, list[bytes]]:
    """(first link number, wire events as canonical JSON) of the next run after ``after``
    (default: the checkpoint), at most ``limit``."""
    acked = link(node.db, peer)["acked"] if after is None else after
    rows = node.db.conn.execute(
        "SELECT o.lseq, e.origin, e.seq, e.ts, e.actor, e.role, e.type, e.subject, e.prev, "
        "e.body, e.sig FROM outbox o JOIN events e ON e.lsn = o.lsn "
        "WHERE o.peer = ? AND o.lseq > ? ORDER BY o.lseq LIMIT ?", (peer, acked, limit)).fetchall()
    if not rows:
        return acked + 1, []
    return rows[0][0], [events.wire_bytes(*r[1:8], json.loads(r[8]), r[9], bytes(r[10]))
                        for r in rows]


def acknowledge(node, peer: str, upto: int) -> int:
    """Move the checkpoint to ``upto`` (never back, never past what was sent)."""
    row = link(node.db, peer)
    acked = max(row["acked"], min(upto, row["next_out"] - 1))
    node.db.conn.execute("UPDATE links SET acked = ? WHERE peer = ?", (acked, peer))
    node.db.conn.execute("DELETE FROM outbox WHERE peer = ? AND lseq <= ?", (peer, acked))
    return acked


def backlog(node, peer: str) -> tuple[int, int]:
    """(events, bytes of their bodies) queued for ``peer`` and not yet acknowledged."""
    row = node.db.conn.execute(
        "SELECT count(*), coalesce(sum(length(e.body) + 200), 0) FROM outbox o "
        "JOIN events e ON e.lsn = o.lsn WHERE o.peer = ?", (peer,)).fetchone()
    return row[0], row[1]
