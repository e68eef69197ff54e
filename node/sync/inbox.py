"""Applying a bundle from a neighbour: in order, exactly once, in one transaction.

A bundle that starts past what this node has applied from the link (a gap)
applies nothing, and its acknowledgement tells the sender where to resume;
one wholly applied already is acknowledged again and changes nothing. An event inside
that fails its own checks is recorded in ``refusals`` and skipped, so one
bad event cannot block a link forever; every other event is applied.
"""

from __future__ import annotations

import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node import envelope, events, evidence, figures, log, membership, notices, store, warnings
from node.envelope import Ack
from node.errors import EventRefused
from node.sync import outbox, parts


def neighbour_key(node, skip: bool = False):
    """A lookup of the signing keys of the neighbours allowed to send to this node: its
    parent, its children, and a child it enrolled that has not yet said it joined (its
    join, node.joined, travels in its first bundle). With ``skip`` (files carried by
    hand, node/sync/files.py), also the node two levels up or down: what goes past a
    unit a report accuses (Art. 30) goes that way, never through it."""
    skipping = ("OR node_id = (SELECT parent_id FROM nodes WHERE node_id = ?) OR parent_id IN "
                "(SELECT node_id FROM nodes WHERE parent_id = ? AND node_id != ?)")

    def lookup(peer: str) -> Ed25519PublicKey | None:
        parent = node.settings["PARENT_ID"]
        row = node.db.conn.execute(
            "SELECT sign_pub, cert FROM nodes WHERE node_id = ? AND status = 'active' AND "
            "held IS NULL AND (node_id = ? OR parent_id = ? OR node_id IN "
            "(SELECT used_by FROM enroll_codes WHERE used_by IS NOT NULL) "
            f"{skipping if skip else ''})",
            (peer, parent, node.id, *((parent, node.id, node.id) if skip else ()))).fetchone()
        if row is None or not _current(row[1], node.today().isoformat()):
            return None
        return Ed25519PublicKey.from_public_bytes(bytes(row[0]))
    return lookup


def _current(cert: str | None, today: str) -> bool:
    """A neighbour whose certificate has expired (or is not yet valid) may not send."""
    if not cert:
        return True  # pinned without a certificate (the city's root, tests)
    try:
        data = json.loads(cert)
        return data["not_before"] <= today <= data["not_after"]
    except (ValueError, KeyError, TypeError):
        return False


def apply_bundle(node, data: bytes, *, skip: bool = False,
                 kept: bool = False) -> tuple[bytes, dict]:
    """Open, check and apply a bundle; returns the signed acknowledgement and counts.
    ``skip``: it may come from two levels up or down (``neighbour_key``).

    A bundle in which the sender's own events contradict what this node holds (it
    signed two different events under one number: two copies of it are running) is
    refused whole with evidence.Equivocation, once the evidence is kept.

    ``kept``: the bundle came over a link that can send it again (HTTP), so its digest
    is kept as applied (parts.applied), in the same transaction: if the answer is lost
    and the sender sends it again a piece at a time, its first piece gets the
    acknowledgement instead of the whole bundle going again.
    """
    bundle = envelope.open_bundle(data, me=node.id, my_key=node.enc_key,
                                  sender_key=neighbour_key(node, skip))
    peer, first, last = bundle.header.sender, bundle.header.first, bundle.header.last
    counts = {"applied": 0, "duplicate": 0, "waiting": 0, "refused": 0}
    two: tuple | None = None
    with store.write(node.db):
        try:
            with store.write(node.db):  # a savepoint: undone if the sender equivocates
                applied = _apply(node, bundle, peer, first, last, counts)
                if kept:
                    parts.applied(node, peer, hashlib.sha256(data).digest(), len(data))
        except _Equivocal as e:
            two = e.args
            evidence.record(node, "event", two[0], two[1], peer)  # kept, though undone
            outbox.record_contact(node, peer, f"equivocation: {two[0].id}")
    if two is not None:
        raise evidence.refusal(peer, two[0].id)
    return _ack(node, peer, applied), counts


class _Equivocal(Exception):
    """The sender's own event contradicts a stored one: (the event, the stored digest)."""


def _apply(node, bundle, peer: str, first: int, last: int, counts: dict) -> int:
    applied = outbox.ensure_link(node.db, peer)["applied"]
    if first > applied + 1:
        # A gap: something before this bundle is missing. Apply nothing; the
        # acknowledgement of what we have tells the sender where to resume.
        counts["gap"] = 1
        last = applied
        bundle = envelope.Bundle(bundle.header, [])
    parsed, refused = [], []
    for lseq, wire in enumerate(bundle.events, start=first):
        if lseq <= applied:
            counts["duplicate"] += 1
            if isinstance(wire, dict) and wire.get("origin") == peer:
                _same_as_before(node, wire)  # a link number used again: for the same event?
            continue
        try:
            parsed.append(events.from_wire(wire, parsed_strictly=True))
        except EventRefused as e:
            refused.append((wire, e))
    arrived = []
    for event, outcome in zip(parsed, log.receive_many(node, parsed, source=peer),
                              strict=True):
        if isinstance(outcome, log.Conflict) and event.origin == peer and _signed(node, event):
            raise _Equivocal(event, _stored_digest(node, event))
        if isinstance(outcome, EventRefused):
            refused.append(({"origin": event.origin, "seq": event.seq}, outcome))
        else:
            counts[outcome] += 1
            if outcome == "applied":
                arrived.append(event)
    # a warning arriving above its origin: this node records receiving it, in the
    # same transaction, so the same-day chain starts when it arrives (node/warnings.py)
    warnings.record_receipts(node, {e.subject for e in parsed if e.type.startswith(
        "warning.")})
    notices.for_events(node, arrived)  # people here are told at once of what needs them
    # a child's new report supersedes its older ones of the month: they go at once
    figures.compact(node, {e.origin for e in arrived if e.type == figures.ROLLED_UP})
    # the city settles who each node id belongs to: it confirms each enrollment it took
    membership.confirm_enrollments(node, {e.subject for e in parsed if e.type ==
                                          membership.ENROLLED})
    for wire, error in refused:
        counts["refused"] += 1
        origin, seq = (wire.get("origin"), wire.get("seq")) if isinstance(
            wire, dict) else (None, None)
        log.record_refusal(node, origin if isinstance(origin, str) else None,
                           seq if isinstance(seq, int) else None, error)
    applied = max(applied, last)
    node.db.conn.execute("UPDATE links SET applied = ? WHERE peer = ?", (applied, peer))
    outbox.record_contact(node, peer)
    # which neighbours may be owed what arrived, decided once for all of them: a child
    # waiting on a long-poll (and its next pull) reads what is due to it, not all of this
    outbox.route(node)
    return applied


def _stored_digest(node, event) -> bytes | None:
    row = node.db.conn.execute("SELECT digest FROM events WHERE origin = ? AND seq = ?",
                               (event.origin, event.seq)).fetchone()
    return bytes(row[0]) if row else None


def _signed(node, event) -> bool:
    row = node.db.conn.execute("SELECT sign_pub FROM nodes WHERE node_id = ?",
                               (event.origin,)).fetchone()
    return row is not None and events.verify(event, bytes(row[0]))


def _same_as_before(node, wire: dict) -> None:
    """Raise _Equivocal if the sender's event under a link number it used before differs
    from the one stored under that event's own number (a copy of the sender numbered
    other events on the same link)."""
    try:
        event = events.from_wire(wire, parsed_strictly=True)
    except EventRefused:
        return
    stored = _stored_digest(node, event)
    if stored is not None and stored != event.digest() and _signed(node, event):
        raise _Equivocal(event, stored)


def record_refused(node, e, data: bytes) -> None:
    """Record bytes refused at the receiving end (an EnvelopeError ``e``): on the sender's
    link and in the refusals when the sender's signature verified; otherwise nothing of
    the sender is proven (anyone can send such bytes), so no link changes and it is
    counted, with only a sample kept in the refusals (log.record_unverified)."""
    try:
        sender = envelope.read_header(data).sender
    except envelope.EnvelopeError:
        sender = None
    with store.write(node.db):
        if e.authenticated:
            log.record_refusal(node, sender, None, e)
            outbox.ensure_link(node.db, sender)
            node.db.conn.execute("UPDATE links SET last_error = ?, errors = errors + 1 "
                                 "WHERE peer = ?", (f"{e.reason}: {e.english()}", sender))
        else:
            log.record_unverified(node, e, claimed=sender)


def current_ack(node, peer: str) -> bytes:
    """The signed acknowledgement of everything applied from ``peer`` so far."""
    with store.write(node.db):
        applied = outbox.ensure_link(node.db, peer)["applied"]
    return _ack(node, peer, applied)


def _ack(node, peer: str, upto: int) -> bytes:
    return envelope.seal_ack(Ack(sender=node.id, recipient=peer,
                                 link=envelope.link_name(peer, node.id), upto=upto,
                                 at=node.now()), node.signer)
