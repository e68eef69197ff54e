"""Bundles and acknowledgements: sealed, signed, bound to their link, refused when wrong."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from node import envelope
from node.envelope import Ack, EnvelopeError
from node.events import canonical

VILLAGE_SIGN, TOWN_SIGN = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
VILLAGE_ENC, TOWN_ENC = X25519PrivateKey.generate(), X25519PrivateKey.generate()
KNOWN = {"cun": VILLAGE_SIGN.public_key(), "zhen": TOWN_SIGN.public_key()}
EVENTS = [{"origin": "cun", "seq": i, "body": {"text": "低保金未按时发放" * 20}}
          for i in range(1, 6)]


def seal(events=EVENTS, sender="cun", recipient="zhen", first=1, key=VILLAGE_SIGN,
         to=TOWN_ENC):
    return envelope.seal(events, sender=sender, recipient=recipient, first=first,
                         sender_key=key, recipient_key=to.public_key())


def open_(data, me="zhen", key=TOWN_ENC, known=KNOWN):
    return envelope.open_bundle(data, me=me, my_key=key, sender_key=known.get)


def refused(data, reason, **kw):
    with pytest.raises(EnvelopeError) as info:
        open_(data, **kw)
    assert info.value.reason == reason, info.value
    return info.value


def test_round_trip():
    bundle = open_(seal(first=41))
    assert bundle.events == EVENTS
    assert (bundle.header.first, bundle.header.last, bundle.header.count) == (41, 45, 5)
    assert bundle.header.link == "cun>zhen"


def test_same_content_seals_differently_each_time():
    assert seal() != seal()  # a fresh HPKE ephemeral key every time


def test_the_clear_header_hides_the_content():
    data = seal()
    assert "低保".encode() not in data and b"origin" not in data


def test_forged_sender_is_refused():
    refused(seal(key=Ed25519PrivateKey.generate()), "bad_signature")


def test_unknown_sender_is_refused():
    refused(seal(sender="stranger"), "unknown_sender")


def test_bundle_for_another_node_is_refused():
    refused(seal(recipient="xiang"), "wrong_recipient")


def test_bundle_encrypted_to_another_key_does_not_open():
    refused(seal(to=X25519PrivateKey.generate()), "decrypt_failed")


@pytest.mark.parametrize("where", ["length", "header", "signature", "ciphertext", "tail"])
def test_any_flipped_byte_is_refused(where):
    data = bytearray(seal())
    size = struct.unpack(">I", data[:4])[0]
    offset = {"length": 3, "header": 4 + size // 2, "signature": 4 + size + 10,
              "ciphertext": 4 + size + 64 + 40, "tail": len(data) - 1}[where]
    data[offset] ^= 0x01
    with pytest.raises(EnvelopeError):
        open_(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0), st.integers(1, 255))
def test_no_single_byte_change_is_accepted(position, flip):
    data = bytearray(SEALED)
    data[position % len(data)] ^= flip
    with pytest.raises(EnvelopeError):
        open_(bytes(data))


SEALED = seal()


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0))
def test_truncation_is_refused(cut):
    with pytest.raises(EnvelopeError):
        open_(SEALED[:cut % len(SEALED)])


@pytest.mark.parametrize("data", [b"", b"\x00\x00\x00\x05hello", b"x" * 100,
                                  struct.pack(">I", 10**6) + b"{}" * 50])
def test_garbage_is_refused(data):
    refused(data, "malformed")


def test_oversize_is_refused_unread():
    refused(b"\x00" * (envelope.MAX_BUNDLE + 1), "too_large")


def craft(plaintext: bytes, header: dict) -> bytes:
    """A correctly signed and encrypted bundle around any plaintext, as a hostile sender."""
    header_bytes = canonical(header)
    ciphertext = envelope.SUITE.encrypt(plaintext, TOWN_ENC.public_key(),
                                        info=envelope.BUNDLE_INFO + header_bytes)
    prefix = struct.pack(">I", len(header_bytes)) + header_bytes
    return prefix + VILLAGE_SIGN.sign(envelope.SIGN_CONTEXT + prefix + ciphertext) + ciphertext


HEADER = {"v": 1, "kind": "bundle", "sender": "cun", "recipient": "zhen", "link": "cun>zhen",
          "first": 1, "last": 1, "count": 1}


def test_decompression_bomb_is_refused():
    bomb = zlib.compress(b"\x00" * (envelope.MAX_PLAINTEXT + 1024), 9)
    assert len(bomb) < 100_000
    err = refused(craft(bomb, HEADER), "too_large")
    assert "refused unread" in str(err)


def test_content_that_contradicts_its_header_is_refused():
    inner = {**HEADER, "first": 7, "last": 7, "events": [{}]}
    refused(craft(zlib.compress(canonical(inner)), HEADER), "malformed")
    wrong_count = {**HEADER, "events": [{}, {}]}
    refused(craft(zlib.compress(canonical(wrong_count)), HEADER), "malformed")


def test_header_must_be_canonical_and_consistent():
    refused(craft(b"", {**HEADER, "link": "zhen>cun"}), "malformed")
    refused(craft(b"", {**HEADER, "last": 5}), "malformed")


def test_signature_contexts_do_not_mix():
    """An acknowledgement's signature is no bundle signature, and the reverse."""
    body = canonical({"v": 1, "kind": "ack", "sender": "zhen", "recipient": "cun",
                      "link": "cun>zhen", "upto": 5, "at": "2026-11-23T02:00:00Z"})
    sig = TOWN_SIGN.sign(envelope.SIGN_CONTEXT + body)  # signed in the wrong context
    forged = struct.pack(">I", len(body)) + body + sig
    with pytest.raises(EnvelopeError, match="does not verify"):
        envelope.open_ack(forged, me="cun", sender_key=KNOWN.get)


def test_ack_round_trip_and_refusals():
    ack = Ack(sender="zhen", recipient="cun", link="cun>zhen", upto=45,
              at="2026-11-23T02:00:00Z")
    data = envelope.seal_ack(ack, TOWN_SIGN)
    assert envelope.open_ack(data, me="cun", sender_key=KNOWN.get) == ack
    with pytest.raises(EnvelopeError, match="not this node"):
        envelope.open_ack(data, me="xiang", sender_key=KNOWN.get)
    tampered = data.replace(b'"upto":45', b'"upto":99')
    with pytest.raises(EnvelopeError, match="does not verify"):
        envelope.open_ack(tampered, me="cun", sender_key=KNOWN.get)
    forged = envelope.seal_ack(ack, Ed25519PrivateKey.generate())
    with pytest.raises(EnvelopeError, match="does not verify"):
        envelope.open_ack(forged, me="cun", sender_key=KNOWN.get)
    with pytest.raises(EnvelopeError):
        envelope.open_ack(data[:-5], me="cun", sender_key=KNOWN.get)


def test_a_copy_cut_short_is_refused_as_truncated_not_as_a_bad_signature():
    """Cut inside its header or signature, a bundle says so; an acknowledgement cut
    anywhere too. (Cut inside its contents, only its length tells: file names carry it.)"""
    header_size = struct.unpack(">I", SEALED[:4])[0]
    for cut in (2 + 4, 4 + header_size, 4 + header_size + 63):
        assert "truncated" in str(refused(SEALED[:cut], "truncated"))
    ack = envelope.seal_ack(Ack("zhen", "cun", "cun>zhen", 5, "2026-11-23T02:00:00Z"),
                            TOWN_SIGN)
    for cut in (10, len(ack) - 1):
        with pytest.raises(EnvelopeError, match="truncated") as info:
            envelope.open_ack(ack[:cut], me="cun", sender_key=KNOWN.get)
        assert info.value.reason == "truncated"


def test_a_piece_names_its_bundle_in_one_line_and_back():
    digest = bytes(range(32))
    claim = envelope.sign_part(VILLAGE_SIGN, "zhen", envelope.Piece("cun", digest, 0, 5000))
    for piece in (claim, envelope.Piece("cun", digest, 4096, 5000)):
        text = piece.text()
        assert text.isascii() and "\n" not in text and len(text) < 170
        assert envelope.Piece.parse(text) == piece
    for bad in ("", "cun", "cun xx 0 10", f"cun {claim.text().split()[1]} 11 10",
                f"cun {claim.text().split()[1]} 0 {envelope.MAX_BUNDLE + 1}",
                f"cun {claim.text().split()[1]} -1 10", "cun 低保 0 10"):
        with pytest.raises(EnvelopeError, match="malformed piece"):
            envelope.Piece.parse(bad)


def test_only_a_neighbour_can_start_a_part_and_only_for_its_recipient():
    digest = bytes(32)
    claim = envelope.sign_part(VILLAGE_SIGN, "zhen", envelope.Piece("cun", digest, 0, 5000))
    envelope.check_part(claim, me="zhen", sender_key=KNOWN.get)
    for piece, me, known, reason in (
            (claim, "xiang", KNOWN, "bad_signature"),          # signed for another node
            (claim, "zhen", {}, "unknown_sender"),
            (envelope.Piece("cun", digest, 0, 5000), "zhen", KNOWN, "bad_signature"),
            (envelope.Piece("cun", digest, 0, 5001, claim.signature), "zhen", KNOWN,
             "bad_signature"),                                 # the claim names its size
            (envelope.sign_part(Ed25519PrivateKey.generate(), "zhen", claim), "zhen", KNOWN,
             "bad_signature")):
        with pytest.raises(EnvelopeError) as info:
            envelope.check_part(piece, me=me, sender_key=known.get)
        assert info.value.reason == reason


def test_part_claim_vector():
    """docs/protocol.md 2.5: the claim that starts a part, its signature and the header."""
    vector = json.loads((Path(__file__).parent / "vectors" / "part-v1.json").read_text("utf-8"))
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["seed_hex"]))
    assert key.public_key().public_bytes_raw().hex() == vector["public_key_hex"]
    digest = bytes.fromhex(vector["digest_hex"])
    assert digest == hashlib.sha256(b"siji").digest()
    claim = envelope.part_claim(vector["sender"], vector["recipient"], digest, vector["size"])
    assert claim.decode() == vector["claim"]
    piece = envelope.sign_part(key, vector["recipient"],
                               envelope.Piece(vector["sender"], digest, 0, vector["size"]))
    assert piece.signature.hex() == vector["signature_hex"]
    assert piece.text() == vector["header_first_piece"]
    assert envelope.Piece.parse(vector["header_piece_at_4096"]) == envelope.Piece(
        vector["sender"], digest, 4096, vector["size"])
    envelope.check_part(piece, me=vector["recipient"], sender_key=lambda _: key.public_key())


def test_envelope_module_is_pure():
    text = Path(envelope.__file__).read_text("utf-8")
    for module in ("flask", "requests", "sqlite3", "import time", "import os"):
        assert module not in text, module
