"""Bundles in transit: what a receiver holds of a bundle so far, and the sealed bundle a
sender has in flight, each bound to the SHA-256 of the whole bundle.

A connection that dies after a few kilobytes still leaves the receiver with more than
it had: every piece that arrived whole stays (``receive``), and the next attempt, in
this session or a later one, goes on from there. NNCP keeps a ``.part`` file of an
incoming packet the same way. The sender keeps the sealed bytes (``save_outgoing``):
sealing again would give other bytes (HPKE encrypts to a fresh key each time), which
the part could not continue.

At most one part each way per neighbour: a sender that starts another bundle (it cut
its events anew) replaces what it sent of the last, so a neighbour can make this node
store at most one bundle's bytes (envelope.MAX_BUNDLE), and only a neighbour, since a
part starts with a piece the sender signed (envelope.check_part).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from node import envelope
from node.envelope import EnvelopeError, Piece
from node.errors import N_

# A piece that does not reach the end of its bundle carries at least this many bytes, so
# that the rows one part may take stay few (pacing.MIN_PIECE is what senders use).
MIN_STORED = 256


class Outgoing:
    """A sealed bundle on its way to a neighbour, and how much of it the neighbour holds.

    Its digest and the signed claim that starts its part are made when first asked
    for: a bundle that goes whole over a link that never cuts needs neither."""

    def __init__(self, data: bytes, first: int, last: int, *, sender: str, recipient: str,
                 key, held: int = 0):
        self.data, self.first, self.last = data, first, last
        self.sender, self.recipient, self._key = sender, recipient, key
        self.held = held  # bytes the receiver confirmed holding
        self._claim: Piece | None = None

    @classmethod
    def seal(cls, events: list, *, sender: str, recipient: str, first: int, sender_key,
             recipient_key) -> Outgoing:
        data = envelope.seal(events, sender=sender, recipient=recipient, first=first,
                             sender_key=sender_key, recipient_key=recipient_key)
        return cls(data, first, first + len(events) - 1, sender=sender, recipient=recipient,
                   key=sender_key)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    @property
    def claim(self) -> Piece:
        """The first piece's header, signed: it starts the part at the receiver (the
        signature is deterministic, Ed25519: made again, it is the same)."""
        if self._claim is None:
            self._claim = envelope.sign_part(self._key, self.recipient, Piece(
                self.sender, hashlib.sha256(self.data).digest(), 0, self.size))
        return self._claim

    @property
    def digest(self) -> bytes:
        return self.claim.digest

    def piece(self, start: int) -> Piece:
        """The header of the piece starting at ``start`` (signed only where a part starts)."""
        if start == 0:
            return self.claim
        return Piece(self.sender, self.digest, start, self.size)


@dataclass
class Incoming:
    """What this node holds of a bundle a neighbour is sending it: the bytes so far."""

    sender: str = ""
    digest: bytes | None = None
    size: int = 0
    data: bytearray = field(default_factory=bytearray)
    received: int = 0   # bytes that arrived while this object was in use (progress)

    def follow(self, piece: Piece) -> bool:
        """Get ready for the bytes of ``piece``; False if they cannot follow what is held
        (the bytes of another bundle must start at 0)."""
        if (piece.sender, piece.digest, piece.size) == (self.sender, self.digest, self.size) \
                and piece.start == len(self.data):
            return True
        if piece.start != 0:
            return False
        self.sender, self.digest, self.size, self.data = (piece.sender, piece.digest,
                                                          piece.size, bytearray())
        return True

    def resume(self) -> Piece | None:
        """Where the rest of the bundle begins, if part of one is held."""
        if self.digest is None or not self.data:
            return None
        return Piece(self.sender, self.digest, len(self.data), self.size)

    def whole(self) -> bytes | None:
        """The bundle, once every byte is here and they hash to its digest, else None
        (bytes that do not hash right are dropped: the next attempt starts over)."""
        if self.digest is None or len(self.data) < self.size:
            return None
        data = bytes(self.data)
        if len(data) != self.size or hashlib.sha256(data).digest() != self.digest:
            self.digest, self.size, self.data = None, 0, bytearray()
            return None
        return data


# -- the store --------------------------------------------------------------------------

def outgoing(node, peer: str) -> Outgoing | None:
    row = node.db.conn.execute(
        "SELECT data, first, last, held FROM parts WHERE peer = ? AND way = 'out'",
        (peer,)).fetchone()
    if row is None:
        return None
    return Outgoing(bytes(row[0]), row[1], row[2], sender=node.id, recipient=peer,
                    key=node.signer, held=row[3])


def save_outgoing(node, peer: str, out: Outgoing) -> None:
    """Keep ``out`` (or, if it is kept already, how much of it the neighbour holds)."""
    changed = node.db.conn.execute(
        "UPDATE parts SET held = ?, at = ? WHERE peer = ? AND way = 'out' AND digest = ?",
        (out.held, node.now(), peer, out.digest)).rowcount
    if not changed:
        node.db.conn.execute(
            "INSERT OR REPLACE INTO parts (peer, way, digest, size, held, first, last, data, "
            "at) VALUES (?, 'out', ?, ?, ?, ?, ?, ?, ?)",
            (peer, out.digest, out.size, out.held, out.first, out.last, out.data, node.now()))


def drop(node, peer: str, way: str) -> None:
    node.db.conn.execute("DELETE FROM parts WHERE peer = ? AND way = ?", (peer, way))
    if way == "in":
        node.db.conn.execute("DELETE FROM part_pieces WHERE peer = ?", (peer,))


def expire(node, before: str) -> int:
    """Drop what has not moved since ``before`` (an ISO stamp): a neighbour that never came
    back for the rest of a bundle, or a digest of one applied long ago. Nothing is lost:
    an outgoing bundle is sealed again from the outbox, an incoming one asked for again
    from its start. Returns how many went; the caller owns the transaction."""
    gone = node.db.conn.execute("DELETE FROM parts WHERE at < ? RETURNING peer, way",
                                (before,)).fetchall()
    for peer, way in gone:
        if way == "in":
            node.db.conn.execute("DELETE FROM part_pieces WHERE peer = ? AND NOT EXISTS "
                                 "(SELECT 1 FROM parts WHERE peer = ? AND way = 'in')",
                                 (peer, peer))
    return len(gone)


def incoming(node, peer: str) -> Incoming:
    """What this node holds of the bundle ``peer`` is sending it (nothing: an empty one)."""
    row = node.db.conn.execute(
        "SELECT digest, size, done FROM parts WHERE peer = ? AND way = 'in'",
        (peer,)).fetchone()
    if row is None or row[2]:
        return Incoming()
    return Incoming(peer, bytes(row[0]), row[1], bytearray(_joined(node, peer)))


def save_incoming(node, peer: str, into: Incoming) -> None:
    """Keep what arrived of a bundle (a download cut short), for the next attempt."""
    drop(node, peer, "in")
    if into.digest is None or not into.data:
        return
    node.db.conn.execute(
        "INSERT INTO parts (peer, way, digest, size, held, at) VALUES (?, 'in', ?, ?, ?, ?)",
        (peer, into.digest, into.size, len(into.data), node.now()))
    node.db.conn.execute("INSERT INTO part_pieces (peer, start, data) VALUES (?, 0, ?)",
                         (peer, bytes(into.data)))


def held(node, peer: str, way: str) -> tuple[int, int] | None:
    """(bytes held, bundle size) of the part in transit with ``peer`` that way, if any."""
    row = node.db.conn.execute(
        "SELECT held, size FROM parts WHERE peer = ? AND way = ? AND NOT done",
        (peer, way)).fetchone()
    return (row[0], row[1]) if row else None


@dataclass(frozen=True)
class Taken:
    """What a receiver holds of a part after a piece: ``held`` bytes; ``whole``, the bundle
    once every byte is here; ``done``, the bundle was whole and applied before (its
    acknowledgement was lost); ``gap``, the piece starts past what is held."""

    held: int
    whole: bytes | None = None
    done: bool = False
    gap: bool = False


def receive(node, piece: Piece, data: bytes) -> Taken:
    """Keep the bytes of ``piece`` a part does not hold yet; the caller owns the
    transaction and has checked a piece that starts a part (envelope.check_part).

    Bytes already held are skipped (a piece sent again after its answer was lost), so
    pieces may overlap; a piece past what is held keeps nothing and says how much is."""
    end = piece.start + len(data)
    if end > piece.size or (len(data) < MIN_STORED and end < piece.size):
        raise EnvelopeError("malformed", N_("malformed piece: %(problem)s"),
                            problem="bytes outside the bundle or too few")
    peer = piece.sender
    row = node.db.conn.execute(
        "SELECT digest, size, held, done FROM parts WHERE peer = ? AND way = 'in'",
        (peer,)).fetchone()
    if row is not None and bytes(row[0]) == piece.digest and row[1] == piece.size:
        if row[3]:
            return Taken(piece.size, done=True)
        have = row[2]
    elif piece.start == 0:
        drop(node, peer, "in")
        node.db.conn.execute(
            "INSERT INTO parts (peer, way, digest, size, held, at) VALUES (?, 'in', ?, ?, 0, ?)",
            (peer, piece.digest, piece.size, node.now()))
        have = 0
    else:
        return Taken(0, gap=True)
    if piece.start > have:
        return Taken(have, gap=True)
    fresh = data[have - piece.start:]
    if fresh:
        node.db.conn.execute("INSERT INTO part_pieces (peer, start, data) VALUES (?, ?, ?)",
                             (peer, have, fresh))
        have += len(fresh)
        node.db.conn.execute("UPDATE parts SET held = ?, at = ? WHERE peer = ? AND way = 'in'",
                             (have, node.now(), peer))
    if have < piece.size:
        return Taken(have)
    whole = _joined(node, peer)
    if hashlib.sha256(whole).digest() != piece.digest:  # (a piece damaged on the way)
        drop(node, peer, "in")
        return Taken(0, gap=True)
    return Taken(have, whole=whole)


def applied(node, peer: str, digest: bytes, size: int) -> None:
    """The bundle ``digest`` from ``peer`` is applied: drop what was held of it (or of
    another), keep its digest, so that a piece of it sent again (its acknowledgement was
    lost) is answered with the acknowledgement, not taken as a new part."""
    node.db.conn.execute("DELETE FROM part_pieces WHERE peer = ?", (peer,))
    node.db.conn.execute(
        "INSERT OR REPLACE INTO parts (peer, way, digest, size, held, done, at) "
        "VALUES (?, 'in', ?, ?, ?, 1, ?)", (peer, digest, size, size, node.now()))


def _joined(node, peer: str) -> bytes:
    return b"".join(bytes(r[0]) for r in node.db.conn.execute(
        "SELECT data FROM part_pieces WHERE peer = ? ORDER BY start", (peer,)))
