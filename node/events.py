"""Events: the unit of storage and of sync. Pure: no I/O, no clock, no keys on disk.

An event is an immutable, signed fact. Its canonical form is the UTF-8 JSON
of its fields other than ``sig`` with keys sorted, no insignificant
whitespace, non-ASCII characters as themselves, and no floating-point
numbers anywhere (so every implementation produces the same bytes). The
origin node signs ``SIGNING_CONTEXT + canonical`` with Ed25519; the context
string makes an event signature useless for any other purpose (a bundle, an
acknowledgement, a certificate). See docs/protocol.md for a test vector.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field, fields
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.signing import VerifyKey

from node import disclosure
from node import verifier as _verifier
from node.canonical import canonical, loads  # noqa: F401 - loads is part of this module's API
from node.errors import N_, EventRefused

VERSION = 1
SIGNING_CONTEXT = b"siji/event/v1\x00"
MAX_EVENT_BYTES = 64 * 1024
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,31}")
# kind.name; the kind must be one a domain registers, which the log checks (node.registry)
_TYPE = re.compile(r"[a-z]{2,20}\.[a-z_]{2,40}")
_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


def is_timestamp(value) -> bool:
    """Whether ``value`` is a time as events carry it (UTC, ISO 8601, ``Z``)."""
    return isinstance(value, str) and _TS.fullmatch(value) is not None


class _once:  # noqa: N801 - used as a decorator, like functools.cached_property
    """``functools.cached_property`` without the lock Python 3.11 takes on every first
    read (it cost a tenth of applying a bundle): an Event is read by one thread."""

    def __init__(self, func):
        self.func, self.name, self.__doc__ = func, func.__name__, func.__doc__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


@dataclass(frozen=True)
class Event:
    origin: str           # node id of the writer
    seq: int              # the origin's own sequence number, from 1, without gaps
    ts: str               # UTC wall-clock stamp for people, e.g. 2026-11-23T06:00:00Z
    actor: str            # username at the origin
    role: str             # the actor's role when acting
    type: str             # e.g. case.registered
    subject: str          # the case or warning id
    prev: tuple[str, ...]  # ids of the subject's events this one was based on
    body: dict = field(hash=False)
    sig: bytes = b""
    # values of committed fields, beside the signature (node/disclosure.py): path -> [salt, value]
    disclosed: dict = field(default_factory=dict, hash=False, compare=False, repr=False)

    @_once
    def id(self) -> str:
        return event_id(self.origin, self.seq)

    @_once
    def revealed(self) -> dict:
        """The body with the disclosed values in place of their commitments."""
        return disclosure.reveal(self.body, self.disclosed)

    def unsigned(self) -> dict:
        return {"v": VERSION, "origin": self.origin, "seq": self.seq, "ts": self.ts,
                "actor": self.actor, "role": self.role, "type": self.type,
                "subject": self.subject, "prev": list(self.prev), "body": self.body}

    @_once
    def body_bytes(self) -> bytes:
        """The canonical JSON of the body alone (what the store keeps)."""
        return canonical(self.body, check=False)

    @_once
    def disclosed_json(self) -> str | None:
        """The canonical JSON of the disclosures (what the store keeps), or None."""
        return canonical(self.disclosed, check=False).decode("utf-8") if self.disclosed else None

    def signing_bytes(self) -> bytes:
        """SIGNING_CONTEXT + canonical(unsigned()), assembled around the body's bytes.

        The same bytes as encoding ``unsigned()`` whole (a test checks it), but
        the body, by far the largest part, is encoded once and reused for storage.
        """
        head = canonical({"actor": self.actor}, check=False)[:-1]
        tail = canonical({"origin": self.origin, "prev": list(self.prev), "role": self.role,
                          "seq": self.seq, "subject": self.subject, "ts": self.ts,
                          "type": self.type, "v": VERSION}, check=False)[1:]
        return b"".join((SIGNING_CONTEXT, head, b',"body":', self.body_bytes, b",", tail))

    def digest(self, signing_bytes: bytes | None = None) -> bytes:
        return digest_of(signing_bytes or self.signing_bytes())


_FIELDS = tuple(f.name for f in fields(Event))


def _made(*values) -> Event:
    """``Event(*values)``, every field given in order, without the frozen dataclass's
    ``__init__``, which sets each field through ``object.__setattr__``: a third of
    ``from_wire``'s time. The same object (a test holds the two equal)."""
    event = object.__new__(Event)
    event.__dict__.update(zip(_FIELDS, values, strict=True))
    return event


def digest_of(signing_bytes: bytes) -> bytes:
    """An event's digest (what tells two events of the same number apart)."""
    return hashlib.sha256(signing_bytes).digest()


def event_id(origin: str, seq: int) -> str:
    return f"{origin}:{seq}"


def sign(key: Ed25519PrivateKey, **fields) -> Event:
    """Make and sign an event; raises ValueError if a field is not canonical-safe."""
    fields["prev"] = tuple(sorted(fields.get("prev", ())))
    unsigned = Event(**fields)
    canonical(unsigned.unsigned())  # fail early on floats and the like
    return Event(**{**fields, "sig": key.sign(unsigned.signing_bytes())})


def verifier(public_key: Ed25519PublicKey | bytes) -> VerifyKey:
    """The key that checks origin signatures, from a public key or its 32 raw bytes.

    Origin signatures, one per event, are checked with libsodium (PyNaCl): the
    same RFC 8032 Ed25519 as ``cryptography`` everywhere else, about 1.6 times
    faster to verify on this machine's CPUs, which is what bounds sync.
    """
    raw = public_key if isinstance(public_key, bytes) else public_key.public_bytes_raw()
    return VerifyKey(raw)


def verify(event: Event, public_key: Ed25519PublicKey | bytes | VerifyKey,
           signing_bytes: bytes | None = None) -> bool:
    key = public_key if isinstance(public_key, VerifyKey) else verifier(public_key)
    return _verifier.check([(key, event.sig, signing_bytes or event.signing_bytes())])[0]


def to_wire(event: Event) -> dict:
    wire = {**event.unsigned(), "sig": base64.b64encode(event.sig).decode("ascii")}
    if event.disclosed:
        wire["sd"] = event.disclosed
    return wire


def wire_bytes(origin: str, seq: int, ts: str, actor: str, role: str, type_: str,
               subject: str, prev: list[str], body_json: bytes, sig: bytes,
               disclosed: dict | None = None) -> bytes:
    """``canonical(to_wire(event))`` built from stored columns without parsing the body.

    ``body_json`` is the body's canonical JSON (UTF-8) as the store keeps it; the
    bundle sealer uses this to skip decoding and re-encoding every body (a
    test checks the bytes are the same).
    """
    head = canonical({"actor": actor}, check=False)[:-1]
    rest = {"origin": origin, "prev": prev, "role": role, "seq": seq,
            "sig": base64.b64encode(sig).decode("ascii"), "subject": subject,
            "ts": ts, "type": type_, "v": VERSION}
    if disclosed:
        rest["sd"] = disclosed
    tail = canonical(rest, check=False)[1:]
    return b"".join((head, b',"body":', body_json, b",", tail))


def to_json(event: Event) -> str:
    return canonical(to_wire(event)).decode("utf-8")


def _refuse(problem: str, **params):
    raise EventRefused(N_("malformed event: %(problem)s"), problem=problem % params)


_WIRE_FIELDS = frozenset({"v", "origin", "seq", "ts", "actor", "role", "type", "subject", "prev",
                          "body", "sig"})
_WIRE_COUNT = len(_WIRE_FIELDS)


def from_wire(data: Any, parsed_strictly: bool = False) -> Event:
    """Parse and shape-check a wire event; raises EventRefused naming the problem.

    ``parsed_strictly``: ``data`` came from :func:`loads`, so the walk over its
    values for floats and huge integers is already done.
    """
    if not isinstance(data, dict):
        _refuse("not an object")
    if not (_WIRE_FIELDS.issubset(data) and len(data) == _WIRE_COUNT + ("sd" in data)):
        _refuse("fields %(fields)s", fields=sorted((data.keys() - {"sd"}) ^ _WIRE_FIELDS))
    if data["v"] != VERSION:
        _refuse("unknown version %(v)s", v=data["v"])
    origin, seq, ts, actor, role, type_, subject, prev, body, sig = (
        data["origin"], data["seq"], data["ts"], data["actor"], data["role"], data["type"],
        data["subject"], data["prev"], data["body"], data["sig"])
    for name, value in (("origin", origin), ("ts", ts), ("actor", actor), ("role", role),
                        ("type", type_), ("subject", subject), ("sig", sig)):
        if not isinstance(value, str):
            _refuse("%(name)s must be a string", name=name)
    if not _ID.fullmatch(origin):
        _refuse("bad origin")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= 2**53:
        _refuse("bad seq")
    if not _TS.fullmatch(ts):
        _refuse("bad ts")
    if not _TYPE.fullmatch(type_):
        _refuse("bad type")
    if not (1 <= len(subject) <= 80 and 1 <= len(actor) <= 64):
        _refuse("bad subject or actor")
    if not isinstance(prev, list) or len(prev) > 16 or not all(
            isinstance(p, str) and ":" in p for p in prev) or prev != sorted(set(prev)):
        _refuse("bad prev")
    if not isinstance(body, dict):
        _refuse("body must be an object")
    try:
        signature = binascii.a2b_base64(sig.encode("ascii"), strict_mode=True)
        if not parsed_strictly:
            canonical(data)
    except ValueError as e:
        _refuse("%(e)s", e=str(e))
    if len(signature) != 64:
        _refuse("bad signature length")
    disclosed = {}
    if "sd" in data:  # disclosures: each must open a commitment of the signed body
        disclosed = data["sd"]
        if not disclosed:
            _refuse("empty sd")
        try:
            disclosure.check(body, disclosed)
        except (ValueError, TypeError) as e:
            _refuse("%(e)s", e=str(e))
    return _made(origin, seq, ts, actor, role, type_, subject, tuple(prev), body, signature,
                 disclosed)


def from_json(text: str | bytes) -> Event:
    if len(text) > MAX_EVENT_BYTES:
        _refuse("larger than %(n)s bytes", n=MAX_EVENT_BYTES)
    try:
        data = loads(text)
    except (ValueError, UnicodeError):
        _refuse("not JSON")
    return from_wire(data, parsed_strictly=True)
