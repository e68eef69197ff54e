"""Equivocation: an origin that signed two different events under one number.

A signature makes an event undeniable, so two different events signed by one
origin under one sequence number (or carried under one link number) are proof
that two copies of that node are running: a cloned directory, or one restored
from an old backup. Nothing resolves this silently. The event stored first
stays; the other is refused, both are kept here as evidence (the refused one
whole, the stored one by its digest), the origin is flagged as suspect for
the admin (``node_flags``, shown on the network page and by `siji status`),
and a node that sends its own equivocation is refused whole, with one line
saying what to do (node.sync.inbox). Only validly signed events count: a
forgery with a bad signature proves nothing about its claimed origin.
"""

from __future__ import annotations

from node import events, trust
from node.envelope import EnvelopeError
from node.errors import N_

MAX_PER_ORIGIN = 100  # evidence kept per origin: enough to show, bounded against a flood


class Equivocation(EnvelopeError):
    """The sender signed two different events under one number: its bundle is refused."""

    code = "equivocation"
    http_status = 409
    authenticated = True  # found in a bundle whose signature verified

    def __init__(self, msgid: str, **params):
        super().__init__("equivocation", msgid, **params)


def record(node, kind: str, event: events.Event, kept_digest: bytes | None,
           source: str | None) -> None:
    """Keep the evidence and flag the origin (the caller holds a write transaction)."""
    held = node.db.conn.execute("SELECT count(*) FROM evidence WHERE origin = ?",
                                (event.origin,)).fetchone()[0]
    if held < MAX_PER_ORIGIN:
        node.db.conn.execute(
            "INSERT INTO evidence (at, kind, origin, seq, kept_digest, other, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (node.now(), kind, event.origin, event.seq, kept_digest, events.to_json(event),
             source))
    what = (f"signed two different events numbered {event.seq}" if kind == "event" else
            "sent a different event under a link number it had used")
    trust.set_flag(node.db, event.origin, "suspect",
                   f"{what}: two copies of this node are running (a copied directory, or "
                   "one restored from an old backup)")


def refusal(node_id: str, event_id: str) -> Equivocation:
    """What a node that sent its own equivocation is told, in one line."""
    return Equivocation(N_("%(node)s signed %(event)s differently before: another copy of this "
                           "node's directory, or a restore from an old backup, has synced "
                           "with the parent. Stop every other copy, then enroll this node "
                           "again with a new code (siji enroll); until then the parent "
                           "refuses what it sends"), node=node_id, event=event_id)


def listing(node) -> list[dict]:
    rows = node.db.conn.execute("SELECT at, kind, origin, seq, source FROM evidence "
                                "ORDER BY id DESC LIMIT 200")
    return [dict(zip(("at", "kind", "origin", "seq", "source"), r, strict=True)) for r in rows]
