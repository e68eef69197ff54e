"""The simulated links: the real protocol's bytes carried in process, with faults.

:class:`Link` is a child's transport to its parent (node.sync.session.Transport): it
does what the HTTP client and the parent's endpoints do between them (node/sync/http.py)
-- a bundle whole or a piece at a time (``Siji-Piece``), a pull answered from where the
child stands (``Siji-Resume``, ``Siji-Part``) -- by calling the parent's own handlers
(``session.serve_push``, ``serve_piece``, ``serve_pull_part``) with the bytes. On the
way it can fail the connection, cut it, or flip a byte (:class:`Faults`), and it counts
every byte it carries (:class:`Meter`).

A cut falls, with equal chance, inside the request (the parent never sees it: a server
hands a request on only once its body is whole) or inside the answer (the parent did
the work and the answer is lost; an answer carrying a bundle leaves the child with the
bytes that arrived, as a real read does).
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass, field

from node import pacing
from node.envelope import EnvelopeError, Piece
from node.errors import N_, NodeError
from node.sync import inbox, outbox, parts, session

RATE = 125_000.0  # bytes a second a simulated link carries (1 Mbit/s)
RTT = 0.08        # seconds of round trip a request costs


class Refused(NodeError):
    """The parent refused what was sent (HTTP 422 on a real link)."""

    code = "remote_refused"


@dataclass(frozen=True)
class Faults:
    """What goes wrong: ``rate`` of the connections fail (a quarter of those before they
    connect, the rest cut inside the request or the answer); ``corrupt`` of them have a
    byte flipped; ``offline`` of the nodes below the city are off the network for one to
    three days; ``usb`` of the villages have no network at all, only a stick carried to
    the area and back every ``usb_every`` days."""

    rate: float = 0.0
    corrupt: float = 0.0
    offline: float = 0.0
    usb: float = 0.0
    usb_every: int = 2

    @classmethod
    def at(cls, rate: float, offline: float = 0.02, usb: float = 0.02,
           usb_every: int = 2) -> Faults:
        """Faults at a connection failure rate, with a byte flipped in a tenth as many."""
        return cls(rate=rate, corrupt=rate / 10, offline=offline, usb=usb, usb_every=usb_every)


@dataclass
class Meter:
    """Bytes and requests, as carried: by link direction and by the node that served."""

    up: int = 0        # child -> parent, request bodies and heads
    down: int = 0      # parent -> child, answers and heads
    usb: int = 0       # bytes of the bundle and acknowledgement files carried by hand
    requests: int = 0
    failed: int = 0    # never connected
    cuts: int = 0
    corrupted: int = 0
    refused: int = 0   # the parent refused what arrived (a flipped byte in a whole bundle)
    served: dict = field(default_factory=lambda: defaultdict(int))  # node -> requests served
    served_bytes: dict = field(default_factory=lambda: defaultdict(int))  # node -> bytes
    served_seconds: dict = field(default_factory=lambda: defaultdict(float))  # node -> s

    @property
    def total(self) -> int:
        return self.up + self.down + self.usb


def _flip(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:]


def refuse(node, e: EnvelopeError, data: bytes) -> Refused:
    """What the parent's endpoint does with bytes it refuses (node.sync.http._refusal):
    record it, on the sender's link when the sender's signature verified; the child
    hears a refusal."""
    inbox.record_refused(node, e, data)
    return Refused(N_("the parent refused: %(message)s"), message=e.reason)


class Link:
    """A child's connection to its parent, in process, with faults."""

    def __init__(self, parent, faults: Faults, rng: random.Random, meter: Meter):
        self.parent, self.faults, self.rng, self.meter = parent, faults, rng, meter

    # -- one request and its answer ------------------------------------------------------

    def _exchange(self, data: bytes, heads: str, pace: pacing.Pace, serve):
        """Carry ``data`` (and its header line ``heads``) to the parent, whose ``serve``
        turns it into (status, answer bytes, answer heads); returns that, or raises as a
        dropped connection would. ``serve`` gets the bytes as they arrived."""
        meter, rng, faults = self.meter, self.rng, self.faults
        meter.requests += 1
        fate = rng.random()
        if fate < faults.rate / 4:
            meter.failed += 1
            raise session.Unreachable("simulated: no connection")
        cut = fate < faults.rate
        in_request = cut and rng.random() < 0.5
        request = len(data) + len(heads) + pacing.HEADS // 2
        if in_request:
            got = rng.randrange(request)
            meter.up += got
            meter.cuts += 1
            pace.cut(got)
            raise ConnectionError("simulated: cut inside the request")
        flip = data and rng.random() < faults.corrupt
        if flip and rng.random() < 0.5:
            data = _flip(data, rng)
            meter.corrupted += 1
            flip = False
        meter.up += request
        meter.served[self.parent.id] += 1
        started = time.perf_counter()
        try:
            status, answer, answer_heads = serve(data)
        except EnvelopeError as e:
            meter.refused += 1
            raise refuse(self.parent, e, data) from None
        finally:
            meter.served_bytes[self.parent.id] += request
            meter.served_seconds[self.parent.id] += time.perf_counter() - started
        if flip and answer:
            answer = _flip(answer, rng)
            meter.corrupted += 1
        reply = len(answer) + len(answer_heads) + pacing.HEADS // 2
        meter.served_bytes[self.parent.id] += reply
        if cut:
            got = rng.randrange(reply)
            meter.down += got
            meter.cuts += 1
            pace.cut(request + got)
            return "cut", answer[:max(0, got - len(answer_heads) - pacing.HEADS // 2)], \
                answer_heads
        meter.down += reply
        pace.carried(request + reply, (request + reply) / RATE + RTT)
        return status, answer, answer_heads

    # -- the Transport protocol ----------------------------------------------------------

    def push(self, out: parts.Outgoing, pace: pacing.Pace) -> bytes:
        """As HttpTransport.push: whole on a link that has not cut, else piece by piece
        from what the parent holds."""
        parent, stuck = self.parent, 0
        while True:
            size = min(pace.piece(), out.size - out.held)
            if out.held == 0 and size == out.size:
                def serve(data):
                    return 200, session.serve_push(parent, data, kept=True), ""
                status, body, heads = self._exchange(out.data, "", pace, serve)
            else:
                line = out.piece(out.held).text()

                def serve(data, line=line):
                    taken, ack = session.serve_piece(parent, Piece.parse(line), data)
                    if ack is not None:
                        return 200, ack, ""
                    return (409 if taken.gap else 202), b"", f"Siji-Held: {taken.held}"
                status, body, heads = self._exchange(
                    out.data[out.held:out.held + size], "Siji-Piece: " + line, pace, serve)
            if status == "cut":
                raise ConnectionError("simulated: cut inside the answer")
            if status == 200:
                return body
            held = int(heads.removeprefix("Siji-Held: "))
            stuck = stuck + 1 if held <= out.held else 0
            if stuck > 3:
                raise Refused(N_("the parent refused: %(message)s"),
                              message=f"it keeps {held} bytes of the bundle")
            out.held = held

    def pull(self, ack: bytes, into: parts.Incoming, pace: pacing.Pace) -> bytes | None:
        """As HttpTransport.pull: the parent's next bundle, or the rest of one whose
        answer was cut; what arrives is kept in ``into`` as it arrives."""
        parent = self.parent
        resume = into.resume()
        line = f"Siji-Batch: {pace.batch}" + (f"\nSiji-Resume: {resume.text()}" if resume else "")
        batch = min(outbox.BATCH, pace.batch)

        def serve(data):
            reply = session.serve_pull_part(parent, data, batch,
                                            Piece.parse(resume.text()) if resume else None)
            if reply is None:
                return 204, b"", ""
            out, start = reply
            part = Piece(parent.id, out.digest, start, out.size)
            return 200, out.data[start:], "Siji-Part: " + part.text()

        status, body, heads = self._exchange(ack, line, pace, serve)
        if status == 204:
            return None
        if not heads:  # cut inside an answer that carried nothing
            raise ConnectionError("simulated: cut inside the answer")
        part = Piece.parse(heads.removeprefix("Siji-Part: "))
        if not into.follow(part):
            raise Refused(N_("the parent refused: %(message)s"),
                          message="a part that does not follow what arrived")
        into.data += body
        into.received += len(body)
        if status == "cut":
            raise ConnectionError("simulated: cut inside the answer")
        whole = into.whole()
        if whole is None:  # damaged on the way: dropped, and asked for again
            raise ConnectionError("simulated: the bundle does not match its digest")
        into.data = bytearray()
        return whole
