"""One sync session between a child and its parent; the child always dials.

The child pushes its up-bound events as bundles, each answered by the
parent's signed acknowledgement, then pulls down-bound bundles, each pull
carrying the child's signed acknowledgement of what it applied so far. The
functions here take a *transport* (HTTP, files, or in-process in tests) and
do the same steps whatever carries the bytes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Protocol

from node import envelope, figures, membership, pacing, repeats, store
from node.clock import parse
from node.errors import N_, NodeError
from node.sync import blobs, inbox, outbox, parts

log = logging.getLogger("siji.sync")
MAX_ROUNDS = 10000  # a session ends even if a peer keeps producing
FRESH_SECONDS = 300  # an acknowledgement made this close to our clock is taken as fresh
PROGRESS_EVERY = 2.0  # seconds between notes of a long transfer's progress on the link
CUTS_PER_RETRY = 4  # cuts that move nothing, tried again at once, for each retry allowed


class TooLarge(NodeError):
    """The receiver said the bundle was too large (HTTP 413): halve the batch."""

    code = "too_large"


class Busy(NodeError):
    """The parent is busy (HTTP 429); try again after ``retry_after`` seconds."""

    code = "busy"
    http_status = 429

    def __init__(self, retry_after: float | None):
        self.retry_after = retry_after
        super().__init__(N_("the parent node is busy; trying again later"))


class Unreachable(ConnectionError):
    """No connection could be made to the parent (refused, no route, no answer)."""


class Transport(Protocol):
    def push(self, out: parts.Outgoing, pace: pacing.Pace) -> bytes:
        """Send what the receiver does not hold of ``out`` yet (moving ``out.held`` as it
        confirms pieces); returns its signed acknowledgement once the bundle is applied."""

    def pull(self, ack: bytes, into: parts.Incoming, pace: pacing.Pace) -> bytes | None:
        """Send ``ack``; returns the next bundle whole (continuing ``into``, which keeps
        what arrived if the answer is cut), or None if there is nothing."""


@dataclass
class Summary:
    sent: int = 0
    received: int = 0
    bundles_out: int = 0
    bundles_in: int = 0
    counts: dict = field(default_factory=dict)
    up_bytes: int = 0     # bytes of bundles the parent confirmed holding, this session
    down_bytes: int = 0   # bytes of bundles that arrived here
    before_bytes: int = 0  # bytes sent up by the sessions before, since nothing was owed

    @property
    def moved(self) -> int:
        return self.up_bytes + self.down_bytes


def pace_of(node, peer: str) -> pacing.Pace:
    """What the link with ``peer`` has shown of itself so far (node.pacing.Pace)."""
    with store.write(node.db):
        link = outbox.ensure_link(node.db, peer)
    return pacing.Pace(link["batch"], outbox.BATCH, moved=link["moved"], cuts=link["cuts"],
                       rate=link["rate"], event_wire=link["event_wire"],
                       patience=node.settings["SYNC_TIMEOUT"])


def _note(node, peer: str, pace: pacing.Pace, summary: Summary, done: bool = False) -> None:
    """Keep what the link showed, and the progress of what is owed on it (bytes sent since
    nothing was owed: none once a session ends with nothing left), on the link; the
    caller owns the transaction."""
    node.db.conn.execute(
        "UPDATE links SET batch = ?, moved = ?, cuts = ?, rate = ?, event_wire = ?, "
        "sent_bytes = ?, progress_at = ? WHERE peer = ?",
        (pace.batch, pace.moved, pace.cuts, pace.rate, pace.event_wire,
         0 if done else summary.before_bytes + summary.up_bytes, node.now(), peer))


class _Sending:
    """A bundle handed to the sending thread: its link numbers, the Outgoing it is sealed
    to (a future: sealed in a worker thread), and how much of it the parent held then."""

    def __init__(self, first: int, last: int, sealed: Future, held: int = 0,
                 kept: bool = False):
        self.first, self.last, self.sealed, self.held = first, last, sealed, held
        self.reply: Future | None = None
        self.kept = kept  # it is kept on the link (parts.save_outgoing)


def _resumed(out: parts.Outgoing) -> _Sending:
    sealed: Future = Future()
    sealed.set_result(out)
    return _Sending(out.first, out.last, sealed, out.held, kept=True)


def _await(future: Future, tick):
    """The future's result, calling ``tick`` every PROGRESS_EVERY seconds until then."""
    while not wait_for([future], timeout=PROGRESS_EVERY).done:
        tick()
    return future.result()


def push(node, parent: str, transport: Transport, summary: Summary,
         pace: pacing.Pace) -> None:
    """Send every up-bound event in bundles, each answered by a signed acknowledgement.

    While one bundle travels and the parent applies it, the next is numbered
    and read here, and sealed in a worker thread (compression and encryption
    release the GIL): the child's work hides behind the parent's. Events are
    numbered for the link a bundle's worth at a time, so the first bundle
    leaves before the rest are looked at. The transport is called from one
    sending thread, one request at a time; the store is only read and written
    here.

    A bundle that a cut interrupts is kept on the link with what the parent holds of
    it (parts.save_outgoing), and the next attempt sends the rest; while a bundle takes
    long, its progress is noted on the link every PROGRESS_EVERY seconds.
    """
    key = outbox.encryption_key(node, parent)
    with store.write(node.db):
        acked = outbox.link(node.db, parent)["acked"]
        kept = parts.outgoing(node, parent)
        if kept is not None and kept.first != acked + 1:  # acknowledged, or cut anew
            parts.drop(node, parent, "out")
            kept = None

    def prepare(sealer, after: int | None) -> _Sending | None:
        first, evs = next_run(node, parent, pace.batch, after)
        if not evs:
            return None
        return _Sending(first, first + len(evs) - 1, sealer.submit(
            parts.Outgoing.seal, evs, sender=node.id, recipient=parent, first=first,
            sender_key=node.signer, recipient_key=key))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="siji-seal") as sealer, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="siji-send") as sender:

        def send(item: _Sending | None) -> _Sending | None:
            if item is not None:
                item.reply = sender.submit(lambda: transport.push(item.sealed.result(), pace))
            return item

        def progress(item: _Sending) -> None:
            out = item.sealed.result() if item.sealed.done() else None
            if out is None:
                return
            with store.write(node.db):
                if out.held > item.held or item.kept:  # (the parent holds part of it)
                    parts.save_outgoing(node, parent, out)
                    item.kept = True
                _note(node, parent, pace, summary)

        current = send(_resumed(kept) if kept is not None else prepare(sealer, None))
        for _ in range(MAX_ROUNDS):
            if current is None:
                return
            upcoming = prepare(sealer, current.last)
            try:
                reply = _await(current.reply, lambda item=current: progress(item))
            except TooLarge:
                if pace.batch == 1:
                    raise
                pace.too_large()
                if current.kept:
                    with store.write(node.db):
                        parts.drop(node, parent, "out")
                current = send(prepare(sealer, None))
                continue
            except OSError:  # kept, with what the parent holds of it: the same bytes go
                out = current.sealed.result()  # again (sent whole and applied, the parent
                summary.up_bytes += max(0, out.held - current.held)  # knows their digest)
                with store.write(node.db):
                    parts.save_outgoing(node, parent, out)
                    _note(node, parent, pace, summary)
                raise
            # the next bundle leaves at once; this acknowledgement is checked and recorded
            # while it travels (if the acknowledgement falls short, the parent applies
            # nothing of the next bundle, and the session resumes where the parent stands)
            following = send(upcoming)
            out = current.sealed.result()
            ack = envelope.open_ack(reply, me=node.id, sender_key=inbox.neighbour_key(node))
            summary.up_bytes += out.size - current.held
            if ack.upto >= current.last:
                pace.bundled(out.count, out.size)
            with store.write(node.db):
                outbox.acknowledge(node, parent, ack.upto, fresh=True)
                outbox.note_clock(node, parent, ack.at)
                if current.kept:
                    parts.drop(node, parent, "out")
            summary.bundles_out += 1
            summary.sent += max(0, min(ack.upto, current.last) - current.first + 1)
            if ack.upto >= current.last:
                current = following
            else:  # a short acknowledgement (the parent lacked something): resume there
                if following is not None:
                    following.reply.exception()  # wait for it; what it got is superseded
                current = send(prepare(sealer, None))


def next_run(node, peer: str, batch: int, after: int | None) -> tuple[int, list[bytes]]:
    """(first link number, wire events) of the next bundle for ``peer`` after ``after``
    (outbox.pending), numbering more events for the link only as far as it needs."""
    first, evs = outbox.pending(node, peer, batch, after)
    scanned = None
    while len(evs) < batch:  # number more events for the link, if there are any
        with store.write(node.db):
            added = outbox.queue(node, peer, limit=batch)
        if not added:
            # (the scan may have stopped at its budget: on, in another transaction, as
            # long as it gets further)
            before, scanned = scanned, outbox.link(node.db, peer)["scanned_lsn"]
            if scanned == before or not outbox.behind(node.db, scanned):
                break
            continue
        had = len(evs)
        first, evs = outbox.pending(node, peer, batch, after)
        if len(evs) == had:
            break  # full by size (outbox.BUNDLE_BYTES): the rest goes in the next
    return first, evs


def pull(node, parent: str, transport: Transport, summary: Summary,
         pace: pacing.Pace) -> None:
    """Take down-bound bundles until the parent has nothing more. What arrived of a bundle
    whose answer was cut is kept on the link (parts.save_incoming), and the next pull
    asks the parent for the rest."""
    into = parts.incoming(node, parent)
    kept = into.digest is not None
    for _ in range(MAX_ROUNDS):
        arrived = into.received
        try:
            data = transport.pull(inbox.current_ack(node, parent), into, pace)
        except OSError:
            summary.down_bytes += into.received - arrived
            if into.data or kept:
                with store.write(node.db):
                    parts.save_incoming(node, parent, into)
            raise
        summary.down_bytes += into.received - arrived
        if kept:
            with store.write(node.db):
                parts.drop(node, parent, "in")
            kept = False
        if not data:
            return
        _, counts = inbox.apply_bundle(node, data)
        summary.bundles_in += 1
        summary.received += counts["applied"] + counts["waiting"]
        for key, value in counts.items():
            summary.counts[key] = summary.counts.get(key, 0) + value
        if counts.get("gap"):
            return


@contextlib.contextmanager
def one_at_a_time(node):
    """Hold the node's session lock: one session with the parent at a time, whoever starts
    it (the schedule, the long-poll, "sync now", `siji sync` in another process). Two at
    once would be safe (the parent takes duplicates as such) but would send the same
    bundles twice and overwrite each other's kept parts; the second waits instead. (An
    flock belongs to the open file, so it holds between threads as between processes.)"""
    with open(node.dir / "sync.lock", "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


def run(node, transport: Transport, retries: int = 0, wait=time.sleep,
        rand=random.random, reports_first: bool = False) -> Summary:
    """One session with the parent (``_run``), after any other under way (one_at_a_time)."""
    with one_at_a_time(node):
        return _run(node, transport, retries, wait, rand, reports_first)


def _run(node, transport: Transport, retries: int, wait, rand,
         reports_first: bool) -> Summary:
    """One session with the parent: push, then pull. Records the outcome on the link.

    A connection that fails after the parent took more of a bundle (or this node more
    of one of the parent's) is no reason to stop: the session goes on at once, where the
    bytes stand. A cut that moved nothing goes again at once too (the link's next piece
    is smaller), up to CUTS_PER_RETRY times ``retries`` in a row. A parent that cannot
    be reached, or is busy, is tried again after a wait (node.pacing.backoff, or what
    its 429 asked), ``retries`` times in a row. Then the session gives up and raises.

    ``reports_first``: first report the figures that changed (node/figures.py) and relay
    the digests the children sent up (node/repeats.py, relay), as every session of `siji
    serve`, `siji sync` and "sync now" does, so that they go with this push (tests of other
    things leave it out, to keep their sequence numbers).
    """
    parent = node.settings["PARENT_ID"]
    if not parent:
        raise NodeError(N_("this node has no parent yet: enroll it with its parent first "
                           "(or set PARENT_ID)"))
    with store.write(node.db):
        membership.ensure_joined(node)  # a node enrolled before joins existed says so now
        if reports_first:
            repeats.keep_mark(node)  # (from where this push's scan stands, relay or not)
            for what, make in (("figures", figures.report), ("digests", repeats.relay)):
                try:
                    with store.write(node.db):  # (a savepoint: a refusal changes nothing)
                        make(node)
                except NodeError as e:  # they wait; the cases and warnings go up now
                    log.warning("%s not reported: %s", what, e.english())
    pace = pace_of(node, parent)
    summary = Summary(before_bytes=outbox.link(node.db, parent)["sent_bytes"])
    waits = cuts = 0
    try:
        while True:
            moved = summary.moved
            try:
                push(node, parent, transport, summary, pace)
                pull(node, parent, transport, summary, pace)
                break
            except (Busy, Unreachable) as e:
                waits += 1
                if waits > retries:
                    raise
                wait(pacing.busy_delay(e.retry_after, rand()) if isinstance(e, Busy)
                     else pacing.backoff(waits - 1, rand()))
            except OSError:
                if summary.moved > moved:
                    waits = cuts = 0  # it went further: go on from there at once
                    continue
                cuts += 1
                if cuts > CUTS_PER_RETRY * retries:
                    raise
        summary.counts.update(blobs.exchange(node, parent, transport))
    except NodeError as e:
        _record_with(node, parent, pace, summary, f"{e.code}: {e.english()}")
        raise
    except OSError as e:
        _record_with(node, parent, pace, summary, f"network: {type(e).__name__}")
        raise
    _record_with(node, parent, pace, summary, None)
    return summary


def _record_with(node, peer: str, pace: pacing.Pace, summary: Summary,
                 error: str | None) -> None:
    with store.write(node.db):
        _note(node, peer, pace, summary, done=error is None)
        outbox.record_contact(node, peer, error)


# -- the parent's side --------------------------------------------------------------

def serve_push(node, data: bytes, kept: bool = False) -> bytes:
    """Apply a child's bundle; returns the signed acknowledgement (``kept``: see
    inbox.apply_bundle)."""
    ack, _ = inbox.apply_bundle(node, data, kept=kept)
    return ack


def serve_piece(node, piece: envelope.Piece, data: bytes) -> tuple[parts.Taken, bytes | None]:
    """Keep a piece of a child's bundle; once the bundle is whole, apply it as
    serve_push does. Returns what is held and, once the bundle is applied (now or
    before: a piece sent again after the answer was lost), the acknowledgement."""
    if piece.start == 0:  # a piece that starts a part: only from a neighbour, signed
        envelope.check_part(piece, me=node.id, sender_key=inbox.neighbour_key(node))
    with store.write(node.db):
        taken = parts.receive(node, piece, data)
    if taken.done:
        return taken, inbox.current_ack(node, piece.sender)
    if taken.whole is None:
        return taken, None
    try:
        ack, _ = inbox.apply_bundle(node, taken.whole, kept=True)
    except NodeError:
        with store.write(node.db):
            parts.drop(node, piece.sender, "in")
        raise
    return taken, ack


def serve_pull(node, ack_data: bytes, batch: int = outbox.BATCH) -> bytes | None:
    """Take a child's acknowledgement; return its next down-bound bundle, or None."""
    reply = serve_pull_part(node, ack_data, batch)
    return None if reply is None else reply[0].data


def serve_pull_part(node, ack_data: bytes, batch: int = outbox.BATCH,
                    resume: envelope.Piece | None = None) -> tuple[parts.Outgoing, int] | None:
    """Take a child's acknowledgement; return its next down-bound bundle and where its
    bytes start for this child (past what ``resume`` says the child holds of it), or
    None. The bundle is kept until the child acknowledges it (parts.save_outgoing), so
    that a child whose download was cut gets the rest of the same bytes."""
    ack = envelope.open_ack(ack_data, me=node.id, sender_key=inbox.neighbour_key(node))
    child = ack.sender
    with store.write(node.db):
        link = outbox.ensure_link(node.db, child)
        acked = outbox.acknowledge(node, child, ack.upto)  # (never back: a replay moves nothing)
        # The child's contact counts only for an acknowledgement newer than the last one
        # taken, or one made just now by a clock that agrees with ours (a child whose clock
        # was set back): an older one is a replay.
        just_now = abs((parse(ack.at) - node.clock()).total_seconds()) <= FRESH_SECONDS
        if just_now or ack.at >= (link["last_ack_at"] or ""):
            outbox.record_contact(node, child, ack_at=ack.at)
        outbox.queue(node, child, limit=batch)
        out = parts.outgoing(node, child)
        if out is not None and out.first != acked + 1:  # applied by the child
            parts.drop(node, child, "out")
            out = None
    if out is None:
        # (a bundle's worth numbered at a time, each in its own write transaction: a new
        # link's first scan of a long log does not keep every other writer waiting)
        first, evs = next_run(node, child, batch, None)
        if not evs:
            return None
        out = parts.Outgoing.seal(evs, sender=node.id, recipient=child, first=first,
                                  sender_key=node.signer,
                                  recipient_key=outbox.encryption_key(node, child))
        with store.write(node.db):
            parts.save_outgoing(node, child, out)
    fits = resume is not None and resume.digest == out.digest and resume.start <= out.size
    return out, resume.start if fits else 0
