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

Guessing a code online is throttled (``accept_online``). Every wrong code
that reaches ``/sync/enroll`` is recorded in ``refusals`` with the client's
address (``addr:...`` in ``origin``, never confused with a node id) and the
code ``enroll_wrong_code``. While ENROLL_MAX_FAILURES of them from one address,
or ENROLL_MAX_FAILURES_ALL from all addresses together, are younger than
ENROLL_FAILURE_MINUTES, every request is refused with HTTP 429 before its
code is even looked at, so a right code cannot unlock it. Refusals during the
lock are not recorded, so hammering does not prolong it, and a success resets
nothing. The code's first group travels in the clear, so the parent also
knows which code a wrong MAC was aimed at: a code that gets
ENROLL_MAX_FAILURES of them is withdrawn for good. The file path
(``enroll-accept``) is not throttled: whoever runs it is the parent's admin.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node import log, membership, netkeys, settings, store, trust, validate
from node.canonical import canonical
from node.errors import N_, NodeError, NotAllowed, ValidationError
from node.settings import Setting, at_least_one, declare
from node.tiers import CHILD_TIERS

logger = logging.getLogger("siji.enroll")

REQUEST_CONTEXT = b"siji/enroll-request/v1\x00"
CODE_CONTEXT = b"siji/enroll-code/v1\x00"
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
ENROLL_HOURS = 72
CERT_DAYS = 1095

class EnrollError(NodeError):
    """Enrollment was refused; nothing was pinned or spent."""

    code = "enroll_refused"
    http_status = 403


class WrongCode(EnrollError):
    """The MAC does not verify: a wrong code. ``code_id`` is set when it names a code here."""

    code = "enroll_wrong_code"

    def __init__(self, code_id: str | None = None):
        self.code_id = code_id
        super().__init__(N_("the enrollment code is wrong"))


class EnrollThrottled(EnrollError):
    """Too many wrong codes lately: enrollment is refused for ``retry_after`` seconds (429)."""

    code = "enroll_throttled"
    http_status = 429

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(N_("the parent refuses enrollment after too many wrong codes: check "
                            "the code with its admin and try again in %(minutes)s minutes"),
                         minutes=max(1, math.ceil(retry_after / 60)))


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
    while True:  # the first group finds the code, so it must be free
        raw = "".join(secrets.choice(ALPHABET) for _ in range(12))
        if node.db.conn.execute("SELECT 1 FROM enroll_codes WHERE id = ?",
                                (raw[:4],)).fetchone() is None:
            break
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


QR_PREFIX = "siji-enroll:"


def parse_qr(text: str) -> dict:
    """What the parent's QR code holds, ``siji-enroll:CODE?parent=URL&id=ID``, as its parts.

    Returns ``{"code", "parent_url", "parent_id"}``; anything else is a ValidationError.
    """
    def bad():
        return ValidationError(N_("%(field)s: not an enrollment QR text "
                                  "(siji-enroll:CODE?parent=URL&id=ID)"), field="--code")

    text = str(text).strip()
    if not text.startswith(QR_PREFIX) or "?" not in text:
        raise bad()
    code, _, query = text[len(QR_PREFIX):].partition("?")
    try:
        fields = parse_qs(query, strict_parsing=True, max_num_fields=2)
    except ValueError:
        raise bad() from None
    if set(fields) != {"parent", "id"} or any(len(v) != 1 for v in fields.values()):
        raise bad()
    raw = _normal(code)
    url = fields["parent"][0]
    parts = urlsplit(url)
    if len(raw) != 12 or any(c not in ALPHABET for c in raw) or parts.scheme not in (
            "http", "https") or not parts.netloc:
        raise bad()
    return {"code": f"{raw[:4]}-{raw[4:8]}-{raw[8:]}", "parent_url": url.rstrip("/"),
            "parent_id": validate.node_id("id", fields["id"][0])}


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
    if not isinstance(payload, dict) or set(payload) != {"code_id", "request", "sig", "mac"} \
            or not isinstance(payload["request"], dict) or set(payload["request"]) != {
            "v", "kind", "node", "name", "tier", "sign_pub", "enc_pub", "at"} \
            or payload["request"]["kind"] != "enroll-request":
        raise EnrollError(N_("malformed enrollment request"))
    request = payload["request"]
    row = node.db.conn.execute("SELECT mac_key, expires_at, used_at FROM enroll_codes "
                               "WHERE id = ?", (str(payload["code_id"]),)).fetchone()
    signed = {k: payload[k] for k in ("code_id", "request", "sig")}
    if row is not None:
        wrong = _counter(node, _wrong_name(payload["code_id"]))
        if wrong >= node.settings["ENROLL_MAX_FAILURES"]:  # before the MAC: no more answers
            raise EnrollError(N_("the enrollment code was withdrawn after %(n)s wrong "
                                 "attempts: ask for a new one"), n=wrong)
    if row is None or not hmac.compare_digest(_mac(bytes(row[0]), signed),
                                              str(payload["mac"])):
        raise WrongCode(str(payload["code_id"]) if row is not None else None)
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
    event = membership.record_enrollment(node, cert)  # so the nodes above learn the child
    membership.confirm_enrollments(node, {event.subject})  # at the city: settled at once
    # where the child stands here: a child restored from an old backup, enrolling again,
    # goes on above the numbers it already used (install)
    seq = node.db.conn.execute("SELECT coalesce(max(seq), 0) FROM events WHERE origin = ?",
                               (child,)).fetchone()[0]
    # (the link's applied mark is node.sync.outbox's; read here, where the answer is made)
    link = node.db.conn.execute("SELECT applied FROM links WHERE peer = ?", (child,)).fetchone()
    answer = {"certificate": cert, "parent": _public(node), "chain": _chain(node),
              "resume": {"seq": seq, "link": link[0] if link else 0}}
    keys = netkeys.sealed_for(node, child, enc_pub)  # the repeats' network key, sealed to it
    if keys:
        answer["network_keys"] = keys
    return {**answer, "mac": _mac(bytes(row[0]), answer)}


def client_key(address: str | None) -> str:
    """Who a request came from, for counting: ``addr:`` + the IP, an IPv6 one as its /64.

    One machine on IPv6 usually holds a whole /64, so counting single addresses there
    would count nothing.
    """
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "addr:unknown"
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return f"addr:{ipaddress.ip_network((ip, 64), strict=False)}"
    return f"addr:{ip}"


def _wrong_name(code_id) -> str:
    return f"enroll-wrong:{code_id}"


def _counter(node, name: str) -> int:
    row = node.db.conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
    return row[0] if row else 0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_after(node, key: str) -> int:
    """Seconds until ``key`` (a client_key) may try a code again; 0 if it may now.

    Locked while the address's last ENROLL_MAX_FAILURES wrong codes, or everyone's last
    ENROLL_MAX_FAILURES_ALL, all fall within the last ENROLL_FAILURE_MINUTES: until the
    oldest of them ages out.
    """
    window = timedelta(minutes=node.settings["ENROLL_FAILURE_MINUTES"])
    now = node.clock()
    wait = 0
    for clause, args, limit in (
            ("AND origin = ?", (key,), node.settings["ENROLL_MAX_FAILURES"]),
            ("", (), node.settings["ENROLL_MAX_FAILURES_ALL"])):
        row = node.db.conn.execute(
            f"SELECT at FROM refusals WHERE code = ? AND at > ? {clause} "
            "ORDER BY at DESC, id DESC LIMIT 1 OFFSET ?",
            (WrongCode.code, _iso(now - window), *args, limit - 1)).fetchone()
        if row is not None:
            at = datetime.strptime(row[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            left = min(at + window - now, window).total_seconds()  # a clock set back: cap
            wait = max(wait, math.ceil(left))
    return max(wait, 0)


def accept_online(node, payload, client: str | None) -> dict:
    """``accept_request`` for a request from ``client`` over the network, throttled.

    Unlike the rest of this module it owns its transaction: the refusal of a wrong
    code must be kept (it is what the throttle counts), while the attempt itself
    changes nothing. Check, attempt and record run in one BEGIN IMMEDIATE
    transaction, so requests served at once cannot slip past the count together.
    """
    key = client_key(client)
    with store.write(node.db):
        wait = retry_after(node, key)
        if wait:
            raise EnrollThrottled(wait)  # not recorded: hammering must not prolong the lock
        try:
            with store.write(node.db):  # a savepoint: a refusal changes nothing
                return accept_request(node, payload)
        except NodeError as e:
            refusal = e
            log.record_refusal(node, key, None, e)
            if isinstance(e, WrongCode):
                _count_wrong(node, key, e.code_id)
    raise refusal


def _count_wrong(node, key: str, code_id: str | None) -> None:
    limit = node.settings["ENROLL_MAX_FAILURES"]
    if code_id is not None and store.next_value(node.db, _wrong_name(code_id)) == limit:
        logger.warning("enrollment code %s-... withdrawn after %s wrong attempts; make a new "
                       "one", code_id, limit)
    wait = retry_after(node, key)
    if wait:
        logger.warning("too many wrong enrollment codes (the last from %s): enrollment refused "
                       "for %s s", key.removeprefix("addr:"), wait)


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


def issuer_of(answer) -> str | None:
    """The node id of the parent that issued an enrollment answer, if it names one."""
    issuer = answer.get("parent") if isinstance(answer, dict) else None
    return issuer.get("node") if isinstance(issuer, dict) else None


def check_parent(expected: str | None, answering, url: str) -> None:
    """Refuse (before anything is installed) a parent other than the QR text's."""
    if expected and answering != expected:
        raise ValidationError(N_("%(field)s: the QR text names the parent %(expected)s, but "
                                 "%(url)s is %(other)s"), field="--code", expected=expected,
                              url=url, other=str(answering))


def install(node, answer, code: str) -> dict:
    """Check the parent's answer and pin the parent (caller owns the transaction)."""
    if not isinstance(answer, dict) or set(answer) - {"network_keys"} != {
            "certificate", "parent", "chain", "resume", "mac"}:
        raise EnrollError(N_("malformed enrollment answer"))
    unsigned = {k: answer[k] for k in ("certificate", "parent", "chain", "resume",
                                       "network_keys") if k in answer}
    if not hmac.compare_digest(_mac(_mac_key(code), unsigned), str(answer["mac"])):
        raise EnrollError(N_("the enrollment answer does not match the code: do not trust it"))
    cert, parent, resume = answer["certificate"], answer["parent"], answer["resume"]
    if not (isinstance(resume, dict) and set(resume) == {"seq", "link"} and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in resume.values())):
        raise EnrollError(N_("malformed enrollment answer"))
    mine = _public(node)
    if not isinstance(cert, dict) or not isinstance(parent, dict) or any(
            cert.get(k) != mine[k] for k in ("node", "tier", "sign_pub", "enc_pub")):
        raise EnrollError(N_("the certificate is not for this node's keys"))
    parent_sign = _key(parent.get("sign_pub"), "parent sign_pub")
    if cert.get("parent") != parent.get("node") or not trust.certificate_valid(
            cert, parent_sign, node.today()):
        raise EnrollError(N_("the certificate is not signed by the parent"))
    ancestors = _ancestors(answer["chain"], parent, parent_sign, node.today())
    trust.add_node(node.db, node_id=parent["node"], name=parent["name"], tier=parent["tier"],
                   parent_id=ancestors[0]["parent"] if ancestors else None,
                   sign_pub=parent_sign,
                   enc_pub=_key(parent.get("enc_pub"), "parent enc_pub"), added_at=node.now(),
                   cert=canonical(answer["chain"][0]).decode() if answer["chain"] else None)
    for above in ancestors[1:]:  # the nodes above the parent: their events come down too
        trust.add_node(node.db, node_id=above["node"], name=above["name"], tier=above["tier"],
                       parent_id=above["parent"], sign_pub=trust.b64decode(above["sign_pub"]),
                       enc_pub=trust.b64decode(above["enc_pub"]) if above["enc_pub"] else None,
                       added_at=node.now(), cert=canonical(above).decode())
    node.db.conn.execute("UPDATE nodes SET parent_id = ? WHERE node_id = ?",
                         (parent["node"], node.id))
    key_dir = node.dir / node.settings["KEY_DIR"]
    (key_dir / trust.NODE_CERT).write_bytes(canonical(cert))
    (key_dir / "chain.json").write_bytes(canonical(answer["chain"]))
    old = node.settings["PARENT_ID"]
    if old and old != parent["node"]:
        # Moved under another parent: what waited for the old one goes by the new link,
        # whose scan starts from the beginning of the log (the policy decides again).
        node.db.conn.execute("DELETE FROM outbox WHERE peer = ?", (old,))
        node.db.conn.execute("DELETE FROM link_subjects WHERE peer = ?", (old,))
    set_setting(node, "PARENT_ID", parent["node"])
    # a node restored from a backup goes on above every number it signed before
    store.raise_counter(node.db, "seq", resume["seq"])
    membership.record_join(node, parent["node"])  # its own consent: where it is, in its order
    netkeys.install(node, answer.get("network_keys"))
    return {"parent": parent["node"], "resume_link": resume["link"],
            "fingerprint": pair_fingerprint(parent_sign,
                                            node.signer.public_key().public_bytes_raw())}


def _ancestors(chain, parent: dict, parent_sign: bytes, today) -> list[dict]:
    """The node certificates of the parent and the nodes above it, each checked.

    The chain is the parent's certificate, those above it in order, and the
    root's. Each must be signed by the next one's key and name it as issuer;
    the parent's must carry the parent's key. Anything else refuses the
    enrollment, since a node above is trusted to send events down.
    """
    if not isinstance(chain, list) or not chain:
        return []
    try:
        keys = [trust.b64decode(c["sign_pub"]) for c in chain]
    except (TypeError, KeyError, ValueError):
        raise EnrollError(N_("the certificate chain does not verify")) from None
    if chain[0].get("node") != parent.get("node") or keys[0] != parent_sign:
        raise EnrollError(N_("the certificate chain does not start with the parent"))
    for cert, issuer, key in zip(chain, chain[1:], keys[1:], strict=False):
        if cert.get("issuer") != issuer.get("node") or not trust.certificate_valid(
                cert, key, today):
            raise EnrollError(N_("the certificate chain does not verify"))
    return [c for c in chain if c.get("node") != "root" and isinstance(c.get("tier"), str)]


def set_setting(node, name: str, value: str) -> None:
    """Write one string setting into siji.toml (PARENT_ID, PARENT_URL) and the open node."""
    settings.write_values(node.dir, {name: value})
    node.settings[name] = value


declare(
    Setting("ENROLL_MAX_FAILURES", 5, "Wrong enrollment codes from one client address within "
            "ENROLL_FAILURE_MINUTES before /sync/enroll refuses it (HTTP 429) until the oldest "
            "ages out; a code that gets this many wrong attempts is withdrawn.", int,
            at_least_one("ENROLL_MAX_FAILURES")),
    Setting("ENROLL_MAX_FAILURES_ALL", 20, "Wrong enrollment codes from all addresses "
            "together within ENROLL_FAILURE_MINUTES before /sync/enroll refuses everyone.", int,
            at_least_one("ENROLL_MAX_FAILURES_ALL")),
    Setting("ENROLL_FAILURE_MINUTES", 15, "Minutes for which a wrong enrollment code counts "
            "against its address and against all.", int,
            at_least_one("ENROLL_FAILURE_MINUTES")),
)
