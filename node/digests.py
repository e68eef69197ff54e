"""Keyed digests of a petitioner's ID number and phone, and the network key's sealed copies.
Pure: the key, the values and the recipients' keys are parameters.

A digest is HMAC-SHA256 under the network key (``network key``: 32 random bytes the city
makes, distributed at enrollment and rotated by the city, each version numbered) of the
normalised value: an ID number upper-cased, a phone number as its digits without the
country code. The same person registered at two nodes gives the same digest at both,
so repeats are found by comparing digests, and the ID numbers themselves need not
travel. What a digest protects and what it does not: docs/office-work.md.

A key travels to a node sealed to that node's X25519 key with HPKE (the suite of the
bundles), so a relay or a copy of the log cannot read it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from node.envelope import SUITE

CONTEXT = b"siji/person-digest/v1\x00"
SEAL_INFO = b"siji/network-key/v1\x00"
KINDS = ("id", "phone")
KEY_BYTES = 32


def normal(kind: str, value: str | None) -> str | None:
    """The form a value is digested in; None when there is nothing to digest."""
    if not isinstance(value, str) or not value.strip():
        return None
    if kind == "id":
        return value.strip().upper()
    digits = re.sub(r"\D", "", value)
    for prefix in ("0086", "86"):
        if len(digits) == 11 + len(prefix) and digits.startswith(prefix):
            digits = digits[len(prefix):]
    return digits or None


def digest(key: bytes, kind: str, value: str) -> str:
    """The digest of an already normalised value (base64url, 43 characters)."""
    mac = hmac.new(key, CONTEXT + kind.encode() + b"\x00" + value.encode("utf-8"), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode("ascii").rstrip("=")


def of_person(key: bytes, person: dict) -> dict[str, str]:
    """``kind -> digest`` of a person's ID number and phone, those it has."""
    out = {}
    for kind, field in (("id", "id_number"), ("phone", "phone")):
        value = normal(kind, person.get(field))
        if value:
            out[kind] = digest(key, kind, value)
    return out


def _info(version: int, node_id: str) -> bytes:
    return SEAL_INFO + f"{version}:{node_id}".encode()


def seal(key: bytes, version: int, node_id: str, recipient: bytes) -> str:
    """The key sealed to ``recipient`` (a node's raw X25519 public key), bound to the
    version and the node it is for."""
    public = X25519PublicKey.from_public_bytes(recipient)
    return base64.b64encode(SUITE.encrypt(key, public, info=_info(version, node_id))).decode()


def unseal(sealed: str, version: int, node_id: str, private: X25519PrivateKey) -> bytes:
    """Open a sealed copy; raises ValueError if it is not for this key, version and node."""
    try:
        key = SUITE.decrypt(base64.b64decode(sealed, validate=True), private,
                            info=_info(version, node_id))
    except Exception as e:  # InvalidTag, binascii.Error: not ours or damaged
        raise ValueError("the sealed network key does not open") from e
    if len(key) != KEY_BYTES:
        raise ValueError("the sealed network key has the wrong length")
    return key
