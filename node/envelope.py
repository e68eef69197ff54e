"""Bundles and acknowledgements as bytes. Pure: no I/O, no clock, no randomness but HPKE's.

A bundle carries a bounded run of events from one node to its neighbour
over one link. Its bytes, on HTTP or on a USB stick alike:

    u32 header length | header (canonical JSON) | 64-byte Ed25519 signature | HPKE ciphertext

* The header names sender, recipient, link and the link sequence range
  [first, last] of the events inside, and their count.
* The plaintext is the compressed canonical JSON of the same header fields
  plus the events. It is encrypted to the recipient's X25519 key with HPKE
  (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305),
  with ``info`` = BUNDLE_INFO + header, so the ciphertext opens only under
  that exact header (RFC 9180 section 8.1 for single-shot use).
* The sender signs SIGN_CONTEXT + u32 header length + header + ciphertext,
  so header and ciphertext are bound together and to their purpose.

The receiver checks the cheap things first (size, shape, recipient, known
sender, signature) and decrypts only an authentic bundle; it decompresses
with a hard limit, so a decompression bomb costs nothing. Every event inside
still carries its origin's own signature, checked when it is applied.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from node.canonical import canonical, loads
from node.errors import N_, NodeError

VERSION = 1
SIGN_CONTEXT = b"siji/bundle/v1\x00"
BUNDLE_INFO = b"siji/bundle-hpke/v1\x00"
ACK_CONTEXT = b"siji/ack/v1\x00"
PART_CONTEXT = b"siji/part/v1\x00"
SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305)
MAX_HEADER = 1024
MAX_BUNDLE = 4 * 1024 * 1024       # bytes on the wire
MAX_PLAINTEXT = 16 * 1024 * 1024   # bytes after decompression
MAX_EVENTS = 10000
# zlib level 3: a 200-event bundle of petitions compresses to 189 bytes an event in half
# the time level 6 (the default) takes for 167 (1.25 ms against 2.46 here); that half was
# a quarter of what the sender spent preparing a bundle, and 189 is well inside the
# 300 bytes an event the wire may take.
ZLIB_LEVEL = 3
_HEADER_FIELDS = {"v", "kind", "sender", "recipient", "link", "first", "last", "count"}


class EnvelopeError(NodeError):
    """A bundle or acknowledgement was refused before anything in it was applied."""

    code = "bundle_refused"
    http_status = 422
    # whether the sender's signature verified before the refusal: only then may the
    # refusal touch what this node records about the sender (its link)
    authenticated = False

    def __init__(self, reason: str, msgid: str, **params):
        self.reason = reason  # a stable machine code: too_large, bad_signature, ...
        super().__init__(msgid, **params)


@dataclass(frozen=True)
class Header:
    sender: str
    recipient: str
    link: str
    first: int     # link sequence number of the first event inside
    last: int      # ... and of the last; last - first + 1 == count
    count: int

    def as_dict(self) -> dict:
        return {"v": VERSION, "kind": "bundle", "sender": self.sender,
                "recipient": self.recipient, "link": self.link, "first": self.first,
                "last": self.last, "count": self.count}


@dataclass(frozen=True)
class Bundle:
    header: Header
    events: list[dict]  # wire events (node.events.from_wire checks each)


def link_name(sender: str, recipient: str) -> str:
    return f"{sender}>{recipient}"


def seal(events: list[bytes | dict], *, sender: str, recipient: str, first: int,
         sender_key: Ed25519PrivateKey, recipient_key: X25519PublicKey) -> bytes:
    """Compress, encrypt to the recipient, sign. ``events`` have link seqs first.. in order."""
    if not events:
        raise ValueError("a bundle carries at least one event")
    header = Header(sender, recipient, link_name(sender, recipient), first,
                    first + len(events) - 1, len(events))
    header_bytes = canonical(header.as_dict())
    # Events come from the store as canonical wire JSON (or as wire dicts), checked when
    # they were signed or parsed; the content is the canonical JSON of the header's
    # fields plus "events", assembled around the already encoded events.
    encoded = b",".join(e if isinstance(e, bytes) else canonical(e, check=False)
                        for e in events)
    before, _, after = canonical({**header.as_dict(), "events": []}).partition(b'"events":[]')
    plaintext = zlib.compress(b"".join((before, b'"events":[', encoded, b"]", after)),
                              ZLIB_LEVEL)
    ciphertext = SUITE.encrypt(plaintext, recipient_key, info=BUNDLE_INFO + header_bytes)
    prefix = struct.pack(">I", len(header_bytes)) + header_bytes
    signature = sender_key.sign(SIGN_CONTEXT + prefix + ciphertext)
    return prefix + signature + ciphertext


def _refuse(reason: str, msgid: str, **params):
    raise EnvelopeError(reason, msgid, **params)


def read_header(data: bytes) -> Header:
    """Parse the clear header only (to route or to reject early); nothing is verified."""
    if len(data) > MAX_BUNDLE:
        _refuse("too_large", N_("bundle of %(n)s bytes is over the limit of %(max)s"),
                n=len(data), max=MAX_BUNDLE)
    if len(data) < 4:
        _refuse("malformed", N_("malformed bundle: %(problem)s"), problem="too short")
    (size,) = struct.unpack(">I", data[:4])
    if not 0 < size <= MAX_HEADER:
        _refuse("malformed", N_("malformed bundle: %(problem)s"), problem="bad header length")
    try:
        raw = json.loads(data[4:4 + size])
    except (ValueError, UnicodeDecodeError):
        raw = None
    if len(data) < 4 + size + 64 + 1 and (len(data) < 4 + size or isinstance(raw, dict)):
        _refuse("truncated", N_("truncated bundle: its %(n)s bytes end before its "
                                "signature and contents (an interrupted copy or transfer)"),
                n=len(data))
    if raw is None:
        _refuse("malformed", N_("malformed bundle: %(problem)s"), problem="header is not JSON")
    if not isinstance(raw, dict) or set(raw) != _HEADER_FIELDS or raw["v"] != VERSION or raw[
            "kind"] != "bundle":
        _refuse("malformed", N_("malformed bundle: %(problem)s"), problem="header fields")
    ints = [raw[k] for k in ("first", "last", "count")]
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i <= 2**53 for i in ints):
        _refuse("malformed", N_("malformed bundle: %(problem)s"), problem="header numbers")
    header = Header(*(raw[k] for k in ("sender", "recipient", "link", "first", "last",
                                       "count")))
    if not all(isinstance(x, str) for x in (header.sender, header.recipient, header.link)) or (
            header.link != link_name(header.sender, header.recipient)
            or header.last - header.first + 1 != header.count or header.count > MAX_EVENTS
            or canonical(raw) != data[4:4 + size]):
        _refuse("malformed", N_("malformed bundle: %(problem)s"), problem="inconsistent header")
    return header


def open_bundle(data: bytes, *, me: str, my_key: X25519PrivateKey,
                sender_key: Callable[[str], Ed25519PublicKey | None]) -> Bundle:
    """Check and decrypt a bundle addressed to ``me``; raises EnvelopeError with a reason.

    ``sender_key`` gives the signing key of a node allowed to send here (a
    pinned, unrevoked, unexpired neighbour) or None.
    """
    header = read_header(data)
    if header.recipient != me:
        _refuse("wrong_recipient", N_("bundle is for %(recipient)s, not this node"),
                recipient=header.recipient)
    public = sender_key(header.sender)
    if public is None:
        _refuse("unknown_sender", N_("bundle from %(sender)s, which may not send here"),
                sender=header.sender)
    size = struct.unpack(">I", data[:4])[0]
    prefix, signature, ciphertext = data[:4 + size], data[4 + size:68 + size], data[68 + size:]
    try:
        public.verify(signature, SIGN_CONTEXT + prefix + ciphertext)
    except InvalidSignature:
        _refuse("bad_signature", N_("bundle from %(sender)s: the signature does not verify"),
                sender=header.sender)
    try:
        return _open_authentic(header, data, size, ciphertext, my_key)
    except EnvelopeError as e:
        e.authenticated = True  # the sender is who it says: what it sent is its own doing
        raise


def _open_authentic(header: Header, data: bytes, size: int, ciphertext: bytes,
                    my_key: X25519PrivateKey) -> Bundle:
    try:
        compressed = SUITE.decrypt(ciphertext, my_key, info=BUNDLE_INFO + data[4:4 + size])
    except (InvalidTag, ValueError):
        _refuse("decrypt_failed", N_("bundle from %(sender)s does not decrypt"),
                sender=header.sender)
    inflater = zlib.decompressobj()
    try:
        plaintext = inflater.decompress(compressed, MAX_PLAINTEXT)
    except zlib.error:
        _refuse("malformed", N_("malformed bundle: %(problem)s"), problem="not zlib")
    if inflater.unconsumed_tail or not inflater.eof:
        _refuse("too_large", N_("bundle expands past %(max)s bytes (refused unread)"),
                max=MAX_PLAINTEXT)
    try:
        inner = loads(plaintext)
    except (ValueError, UnicodeDecodeError):
        _refuse("malformed", N_("malformed bundle: %(problem)s"), problem="content is not JSON")
    if not isinstance(inner, dict) or not isinstance(inner.get("events"), list) or {
            k: v for k, v in inner.items() if k != "events"} != header.as_dict() or len(
            inner["events"]) != header.count:
        _refuse("malformed", N_("malformed bundle: %(problem)s"),
                problem="content does not match its header")
    return Bundle(header, inner["events"])


@dataclass(frozen=True)
class Ack:
    sender: str      # the node that received the bundles and acknowledges them
    recipient: str   # the node that sent them
    link: str        # the link acknowledged (recipient>sender)
    upto: int        # every event of the link up to this sequence number is applied
    # when the acknowledging node made it, by its clock (UTC, to the second): a replayed
    # acknowledgement is older than the last one seen, and a neighbour's clock shows in it
    at: str = ""


_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def seal_ack(ack: Ack, key: Ed25519PrivateKey) -> bytes:
    body = canonical({"v": VERSION, "kind": "ack", "sender": ack.sender,
                      "recipient": ack.recipient, "link": ack.link, "upto": ack.upto,
                      "at": ack.at})
    return struct.pack(">I", len(body)) + body + key.sign(ACK_CONTEXT + body)


def open_ack(data: bytes, *, me: str,
             sender_key: Callable[[str], Ed25519PublicKey | None]) -> Ack:
    if not 4 < len(data) <= MAX_HEADER + 68:
        _refuse("malformed", N_("malformed acknowledgement: %(problem)s"), problem="size")
    (size,) = struct.unpack(">I", data[:4])
    if size <= MAX_HEADER and len(data) < 4 + size + 64:
        _refuse("truncated", N_("truncated acknowledgement: %(n)s bytes (an interrupted copy "
                                "or transfer)"), n=len(data))
    body, signature = data[4:4 + size], data[4 + size:]
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raw = None
    if (len(signature) != 64 or not isinstance(raw, dict)
            or set(raw) != {"v", "kind", "sender", "recipient", "link", "upto", "at"}
            or raw["kind"] != "ack" or raw["v"] != VERSION or canonical(raw) != body
            or not isinstance(raw["upto"], int) or isinstance(raw["upto"], bool)
            or raw["upto"] < 0 or not isinstance(raw["at"], str)
            or not _AT.fullmatch(raw["at"])):
        _refuse("malformed", N_("malformed acknowledgement: %(problem)s"), problem="fields")
    ack = Ack(raw["sender"], raw["recipient"], raw["link"], raw["upto"], raw["at"])
    if ack.recipient != me or ack.link != link_name(me, ack.sender):
        _refuse("wrong_recipient", N_("acknowledgement is for %(recipient)s, not this node"),
                recipient=ack.recipient)
    public = sender_key(ack.sender)
    if public is None:
        _refuse("unknown_sender", N_("bundle from %(sender)s, which may not send here"),
                sender=ack.sender)
    try:
        public.verify(signature, ACK_CONTEXT + body)
    except InvalidSignature:
        _refuse("bad_signature", N_("acknowledgement from %(sender)s does not verify"),
                sender=ack.sender)
    return ack


# -- pieces: a bundle sent a range of bytes at a time -----------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Piece:
    """Where a range of a bundle's bytes belongs: the bundle's sender, the SHA-256 of the
    whole bundle, the range's first byte and the whole bundle's length. The piece that
    starts a part (``start`` 0) carries the sender's signature over the rest (part_claim),
    so that a receiver keeps bytes only for a bundle a neighbour said it is sending; the
    pieces after it name the digest, which only the sender and the path have seen. The
    bundle's own signature is checked when the part is whole, as for any bundle."""

    sender: str
    digest: bytes
    start: int
    size: int
    signature: bytes | None = None

    def text(self) -> str:
        """The piece as one line of ASCII (the HTTP header ``Siji-Piece``)."""
        words = [self.sender, _b64(self.digest), str(self.start), str(self.size)]
        if self.signature is not None:
            words.append(_b64(self.signature))
        return " ".join(words)

    @classmethod
    def parse(cls, text: str) -> Piece:
        words = text.split(" ") if text.isascii() else []
        try:
            if len(words) not in (4, 5) or not all(w.isdigit() for w in words[2:4]):
                raise ValueError
            piece = cls(words[0], _unb64(words[1]), int(words[2]), int(words[3]),
                        _unb64(words[4]) if len(words) == 5 else None)
        except (ValueError, binascii.Error):
            _refuse("malformed", N_("malformed piece: %(problem)s"), problem="fields")
        if len(piece.digest) != 32 or (piece.signature is not None and len(
                piece.signature) != 64) or not 0 < piece.size <= MAX_BUNDLE or (
                piece.start > piece.size):
            _refuse("malformed", N_("malformed piece: %(problem)s"), problem="fields")
        return piece


def part_claim(sender: str, recipient: str, digest: bytes, size: int) -> bytes:
    """What the sender signs to start a part: canonical JSON naming the bundle it sends."""
    return canonical({"v": VERSION, "kind": "part", "sender": sender, "recipient": recipient,
                      "digest": digest.hex(), "size": size})


def sign_part(key: Ed25519PrivateKey, recipient: str, piece: Piece) -> Piece:
    """The piece, with the sender's signature that starts a part at ``recipient``."""
    claim = part_claim(piece.sender, recipient, piece.digest, piece.size)
    return Piece(piece.sender, piece.digest, piece.start, piece.size,
                 key.sign(PART_CONTEXT + claim))


def check_part(piece: Piece, *, me: str,
               sender_key: Callable[[str], Ed25519PublicKey | None]) -> None:
    """Raise EnvelopeError unless ``piece`` is signed by a node allowed to send here."""
    public = sender_key(piece.sender)
    if public is None:
        _refuse("unknown_sender", N_("bundle from %(sender)s, which may not send here"),
                sender=piece.sender)
    try:
        if piece.signature is None:
            raise InvalidSignature
        public.verify(piece.signature, PART_CONTEXT + part_claim(
            piece.sender, me, piece.digest, piece.size))
    except InvalidSignature:
        _refuse("bad_signature", N_("bundle from %(sender)s: the signature does not verify"),
                sender=piece.sender)
