"""Enrollment: a child joins the network under its parent.

1. The parent's admin makes a one-time code (``new_code``), valid for
   ENROLL_HOURS (default 72), and gives it to the child's admin by phone or
   on paper. Only its SHA-256 is stored.
2. The child makes its request (``make_request``): its id, name, tier and
   public keys, signed with its own signing key (proof it holds the key) and
   authenticated with an HMAC keyed by the code (proof it was given the code).
3. The parent checks both and the tier rule, spends the code, signs a
   certificate for the child and answers with it, its own certificate chain
   and keys, under an HMAC keyed by the same code (``accept_request``).
4. The child checks the answer (``install``) and both pin each other. Both
   show the same pair fingerprint for the admins to compare by phone.

Everything travels as JSON, over HTTP or as files (``--request-file``,
``--certificate-file``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from datetime import UTC, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node import settings, trust
from node.errors import N_, NodeError, NotAllowed
from node.events import canonical

REQUEST_CONTEXT = b"siji/enroll-request/v1\x00"
CODE_CONTEXT = b"siji/enroll-code/v1\x00"
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
ENROLL_HOURS = 72
CERT_DAYS = 1095
CHILD_TIERS = {"city": ("town",), "town": ("area", "village"), "area": ("village",),
               "village": ()}


class EnrollError(NodeError):
    """Enrollment was refused; nothing was pinned or spent."""

    code = "enroll_refused"
    http_status = 403


def _normal(code: str) -> str:
    return re.sub(r"[\s-]", "", str(code)).upper()


def _mac_key(code: str) -> bytes:
    return hashlib.sha256(CODE_CONTEXT + _normal(code).encode()).digest()


def _mac(key: bytes, data: dict) -> str:
    return base64.b64encode(hmac.new(key, canonical(data), "sha256").digest()).decode()


def pair_fingerprint(parent_pub: bytes, child_pub: bytes) -> str:
    """What both admins read to each other: the same on both sides, or something is wrong."""
    digest = hashlib.sha256(b"siji/pair/v1\x00" + parent_pub + child_pub).digest()
    text = f"{int.from_bytes(digest[:8], 'big') % 10**12:012d}"
    return " ".join(text[i:i + 4] for i in range(0, 12, 4))


def new_code(node, hours: int = ENROLL_HOURS) -> str:
    """Make a one-time code (caller owns the transaction); returns it, e.g. 7KQM-4HXA-P2ZD."""
    if not CHILD_TIERS[node.tier]:
        raise NotAllowed(N_("a %(tier)s node has no children to enroll"), tier=node.tier)
    raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
    expires = node.clock() + timedelta(hours=hours)
    node.db.conn.execute(
        "INSERT INTO enroll_codes (id, mac_key, created_at, expires_at) VALUES (?, ?, ?, ?)",
        (raw[:4], _mac_key(raw), node.now(), expires.astimezone(UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ")))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _public(node) -> dict:
    return {"node": node.id, "name": node.settings["NODE_NAME"], "tier": node.tier,
            "sign_pub": trust.b64(node.signer.public_key().public_bytes_raw()),
            "enc_pub": trust.b64(node.enc_key.public_key().public_bytes_raw())}


def make_request(node, code: str) -> dict:
    """The child's request; the code's first group travels in the clear to find it."""
    request = {"v": 1, "kind": "enroll-request", **_public(node), "at": node.now()}
    sig = base64.b64encode(node.signer.sign(REQUEST_CONTEXT + canonical(request))).decode()
    signed = {"code_id": _normal(code)[:4], "request": request, "sig": sig}
    return {**signed, "mac": _mac(_mac_key(code), signed)}


def _key(value, field: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        raise EnrollError(N_("malformed enrollment request: %(field)s is not a key"),
                          field=field)
    return raw


def accept_request(node, payload) -> dict:
    """Check a child's request against an unspent code; pin the child; return its answer.

    The caller owns the transaction: a refusal changes nothing (the code stays unspent).
    """
    from node import validate
    if not isinstance(payload, dict) or set(payload) != {"code_id", "request", "sig", "mac"} \
            or not isinstance(payload["request"], dict) or set(payload["request"]) != {
            "v", "kind", "node", "name", "tier", "sign_pub", "enc_pub", "at"} \
            or payload["request"]["kind"] != "enroll-request":
        raise EnrollError(N_("malformed enrollment request"))
    request = payload["request"]
    row = node.db.conn.execute("SELECT mac_key, expires_at, used_at FROM enroll_codes "
                               "WHERE id = ?", (str(payload["code_id"]),)).fetchone()
    signed = {k: payload[k] for k in ("code_id", "request", "sig")}
    if row is None or not hmac.compare_digest(_mac(bytes(row[0]), signed),
                                              str(payload["mac"])):
        raise EnrollError(N_("the enrollment code is wrong"))
    if row[2] is not None:
        raise EnrollError(N_("the enrollment code was already used"))
    if node.now() > row[1]:
        raise EnrollError(N_("the enrollment code expired at %(at)s: ask for a new one"),
                          at=row[1])
    child = validate.node_id("node", request["node"])
    name = validate.line("name", request["name"], max_len=50)
    if request["tier"] not in CHILD_TIERS[node.tier]:
        raise EnrollError(N_("a %(tier)s node may not enroll under a %(parent_tier)s node"),
                          tier=request["tier"], parent_tier=node.tier)
    sign_pub, enc_pub = _key(request["sign_pub"], "sign_pub"), _key(request["enc_pub"],
                                                                    "enc_pub")
    try:
        Ed25519PublicKey.from_public_bytes(sign_pub).verify(
            base64.b64decode(payload["sig"]), REQUEST_CONTEXT + canonical(request))
    except (InvalidSignature, ValueError, TypeError):
        raise EnrollError(N_("the enrollment request is not signed by its key")) from None
    known = node.db.conn.execute("SELECT sign_pub, status FROM nodes WHERE node_id = ?",
                                 (child,)).fetchone()
    if child == node.id or (known is not None and bytes(known[0]) != sign_pub):
        raise EnrollError(N_("node id %(node)s is already taken in this network"), node=child)
    today = node.today()
    cert = trust.issue_certificate(
        node.signer, node.id, node=child, name=name, tier=request["tier"], parent=node.id,
        sign_pub=sign_pub, enc_pub=enc_pub, not_before=today,
        not_after=today + timedelta(days=CERT_DAYS))
    trust.add_node(node.db, node_id=child, name=name, tier=request["tier"], parent_id=node.id,
                   sign_pub=sign_pub, enc_pub=enc_pub, added_at=node.now(),
                   cert=canonical(cert).decode())
    node.db.conn.execute("UPDATE enroll_codes SET used_at = ?, used_by = ? WHERE id = ?",
                         (node.now(), child, payload["code_id"]))
    from node import membership
    membership.record_enrollment(node, cert)  # so the nodes above learn the child
    answer = {"certificate": cert, "parent": _public(node), "chain": _chain(node)}
    return {**answer, "mac": _mac(bytes(row[0]), answer)}


def _chain(node) -> list[dict]:
    """This node's certificate and those above it, up to the root certificate."""
    key_dir = node.dir / node.settings["KEY_DIR"]
    chain = []
    for name in (trust.NODE_CERT, "chain.json", trust.ROOT_CERT):
        path = key_dir / name
        if path.exists():
            data = json.loads(path.read_text("utf-8"))
            chain.extend(data if isinstance(data, list) else [data])
    return chain


def install(node, answer, code: str) -> dict:
    """Check the parent's answer and pin the parent (caller owns the transaction)."""
    if not isinstance(answer, dict) or set(answer) != {"certificate", "parent", "chain", "mac"}:
        raise EnrollError(N_("malformed enrollment answer"))
    unsigned = {k: answer[k] for k in ("certificate", "parent", "chain")}
    if not hmac.compare_digest(_mac(_mac_key(code), unsigned), str(answer["mac"])):
        raise EnrollError(N_("the enrollment answer does not match the code: do not trust it"))
    cert, parent = answer["certificate"], answer["parent"]
    mine = _public(node)
    if not isinstance(cert, dict) or not isinstance(parent, dict) or any(
            cert.get(k) != mine[k] for k in ("node", "tier", "sign_pub", "enc_pub")):
        raise EnrollError(N_("the certificate is not for this node's keys"))
    parent_sign = _key(parent.get("sign_pub"), "parent sign_pub")
    if cert.get("parent") != parent.get("node") or not trust.certificate_valid(
            cert, parent_sign, node.today()):
        raise EnrollError(N_("the certificate is not signed by the parent"))
    trust.add_node(node.db, node_id=parent["node"], name=parent["name"], tier=parent["tier"],
                   parent_id=None, sign_pub=parent_sign,
                   enc_pub=_key(parent.get("enc_pub"), "parent enc_pub"), added_at=node.now(),
                   cert=canonical(answer["chain"][0]).decode() if answer["chain"] else None)
    node.db.conn.execute("UPDATE nodes SET parent_id = ? WHERE node_id = ?",
                         (parent["node"], node.id))
    key_dir = node.dir / node.settings["KEY_DIR"]
    (key_dir / trust.NODE_CERT).write_bytes(canonical(cert))
    (key_dir / "chain.json").write_bytes(canonical(answer["chain"]))
    _set_parent_id(node, parent["node"])
    return {"parent": parent["node"], "fingerprint": pair_fingerprint(
        parent_sign, node.signer.public_key().public_bytes_raw())}


def _set_parent_id(node, parent_id: str) -> None:
    path = node.dir / settings.CONFIG_NAME
    text = path.read_text("utf-8")
    text, n = re.subn(r"(?m)^PARENT_ID = .*$", f'PARENT_ID = "{parent_id}"', text)
    if n != 1:
        text += f'\nPARENT_ID = "{parent_id}"\n'
    path.write_text(text, "utf-8")
    node.settings["PARENT_ID"] = parent_id
