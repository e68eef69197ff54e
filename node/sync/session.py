"""One sync session between a child and its parent; the child always dials.

The child pushes its up-bound events as bundles, each answered by the
parent's signed acknowledgement, then pulls down-bound bundles, each pull
carrying the child's signed acknowledgement of what it applied so far. The
functions here take a *transport* (HTTP, files, or in-process in tests) and
do the same steps whatever carries the bytes.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from node import envelope, figures, membership, store
from node.clock import parse
from node.errors import N_, NodeError
from node.sync import inbox, outbox

log = logging.getLogger("siji.sync")
MAX_ROUNDS = 10000  # a session ends even if a peer keeps producing
FRESH_SECONDS = 300  # an acknowledgement made this close to our clock is taken as fresh


class TooLarge(NodeError):
    """The receiver said the bundle was too large (HTTP 413): halve the batch."""

    code = "too_large"


class Transport(Protocol):
    def push(self, bundle: bytes) -> bytes: ...          # returns the signed ack
    def pull(self, ack: bytes) -> bytes | None: ...     # returns a bundle, or None if nothing


@dataclass
class Summary:
    sent: int = 0
    received: int = 0
    bundles_out: int = 0
    bundles_in: int = 0
    counts: dict = field(default_factory=dict)


def _record(node, peer: str, error: str | None) -> None:
    with store.write(node.db):
        outbox.record_contact(node, peer, error)


def push(node, parent: str, transport: Transport, summary: Summary) -> None:
    """Send every up-bound event in bundles, each answered by a signed acknowledgement.

    While one bundle travels and the parent applies it, the next is numbered
    and read here, and sealed in a worker thread (compression and encryption
    release the GIL): the child's work hides behind the parent's. Events are
    numbered for the link a bundle's worth at a time, so the first bundle
    leaves before the rest are looked at. The transport is called from one
    sending thread, one request at a time; the store is only read and written
    here.
    """
    with store.write(node.db):
        batch = outbox.ensure_link(node.db, parent)["batch"]
    key = outbox.encryption_key(node, parent)

    def prepare(sealer, after: int | None):
        first, evs = next_run(node, parent, batch, after)
        if not evs:
            return None
        return first, len(evs), sealer.submit(
            envelope.seal, evs, sender=node.id, recipient=parent, first=first,
            sender_key=node.signer, recipient_key=key)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="siji-seal") as sealer, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="siji-send") as sender:

        def send(prepared):
            if prepared is None:
                return None
            return sender.submit(lambda sealed=prepared[2]: transport.push(sealed.result()))

        current = prepare(sealer, None)
        sending = send(current)
        for _ in range(MAX_ROUNDS):
            if current is None:
                return
            first, count, _ = current
            last = first + count - 1
            upcoming = prepare(sealer, last)
            try:
                reply = sending.result()
            except TooLarge:
                if batch == 1:
                    raise
                batch = max(1, batch // 2)
                with store.write(node.db):
                    node.db.conn.execute("UPDATE links SET batch = ? WHERE peer = ?",
                                         (batch, parent))
                current = prepare(sealer, None)
                sending = send(current)
                continue
            # the next bundle leaves at once; this acknowledgement is checked and recorded
            # while it travels (if the acknowledgement falls short, the parent applies
            # nothing of the next bundle, and the session resumes where the parent stands)
            following = send(upcoming)
            ack = envelope.open_ack(reply, me=node.id, sender_key=inbox.neighbour_key(node))
            with store.write(node.db):
                outbox.acknowledge(node, parent, ack.upto, fresh=True)
                outbox.note_clock(node, parent, ack.at)
            summary.bundles_out += 1
            summary.sent += max(0, min(ack.upto, last) - first + 1)
            if ack.upto >= last:
                current, sending = upcoming, following
            else:  # a short acknowledgement (the parent lacked something): resume there
                if following is not None:
                    following.exception()  # wait for it; what it got is superseded
                current = prepare(sealer, None)
                sending = send(current)


def next_run(node, peer: str, batch: int, after: int | None) -> tuple[int, list[bytes]]:
    """(first link number, wire events) of the next bundle for ``peer`` after ``after``
    (outbox.pending), numbering more events for the link only as far as it needs."""
    first, evs = outbox.pending(node, peer, batch, after)
    while len(evs) < batch:  # number more events for the link, if there are any
        with store.write(node.db):
            added = outbox.queue(node, peer, limit=batch)
        if not added:
            break
        had = len(evs)
        first, evs = outbox.pending(node, peer, batch, after)
        if len(evs) == had:
            break  # full by size (outbox.BUNDLE_BYTES): the rest goes in the next
    return first, evs


def pull(node, parent: str, transport: Transport, summary: Summary) -> None:
    for _ in range(MAX_ROUNDS):
        data = transport.pull(inbox.current_ack(node, parent))
        if not data:
            return
        _, counts = inbox.apply_bundle(node, data)
        summary.bundles_in += 1
        summary.received += counts["applied"] + counts["waiting"]
        for key, value in counts.items():
            summary.counts[key] = summary.counts.get(key, 0) + value
        if counts.get("gap"):
            return


def run(node, transport: Transport, report_figures: bool = False) -> Summary:
    """One session with the parent: push, then pull. Records the outcome on the link.

    ``report_figures``: first report the figures that changed (node/figures.py), as
    every session of `siji serve`, `siji sync` and "sync now" does, so that they go with
    this push (tests of other things leave it out, to keep their sequence numbers)."""
    parent = node.settings["PARENT_ID"]
    if not parent:
        raise NodeError(N_("this node has no parent yet: enroll it with its parent first "
                           "(or set PARENT_ID)"))
    summary = Summary()
    with store.write(node.db):
        membership.ensure_joined(node)  # a node enrolled before joins existed says so now
        if report_figures:
            try:
                with store.write(node.db):  # (a savepoint: a refused report changes nothing)
                    figures.report(node)
            except NodeError as e:  # the figures wait; the cases and warnings go up now
                log.warning("figures not reported: %s", e.english())
    try:
        push(node, parent, transport, summary)
        pull(node, parent, transport, summary)
    except NodeError as e:
        _record(node, parent, f"{e.code}: {e.english()}")
        raise
    except OSError as e:
        _record(node, parent, f"network: {type(e).__name__}")
        raise
    _record(node, parent, None)
    return summary


# -- the parent's side --------------------------------------------------------------

def serve_push(node, data: bytes) -> bytes:
    """Apply a child's bundle; returns the signed acknowledgement."""
    ack, _ = inbox.apply_bundle(node, data)
    return ack


def serve_pull(node, ack_data: bytes, batch: int = outbox.BATCH) -> bytes | None:
    """Take a child's acknowledgement; return its next down-bound bundle, or None."""
    ack = envelope.open_ack(ack_data, me=node.id, sender_key=inbox.neighbour_key(node))
    child = ack.sender
    with store.write(node.db):
        link = outbox.ensure_link(node.db, child)
        outbox.acknowledge(node, child, ack.upto)  # (never moves back: a replay moves nothing)
        # The child's contact counts only for an acknowledgement newer than the last one
        # taken, or one made just now by a clock that agrees with ours (a child whose clock
        # was set back): an older one is a replay.
        just_now = abs((parse(ack.at) - node.clock()).total_seconds()) <= FRESH_SECONDS
        if just_now or ack.at >= (link["last_ack_at"] or ""):
            outbox.record_contact(node, child, ack_at=ack.at)
        outbox.queue(node, child)
    first, evs = outbox.pending(node, child, batch)
    if not evs:
        return None
    return envelope.seal(evs, sender=node.id, recipient=child, first=first,
                         sender_key=node.signer, recipient_key=outbox.encryption_key(node, child))
