"""Who belongs to the network: enrollments and revocations, as events.

``node.enrolled`` is written by a parent when it enrolls a child, carrying
the child's certificate; ``node.revoked`` by the parent (or any node above)
with a reason. Their subject is ``N-<node id>``. Both travel like any event,
so every node above learns each node below: it verifies the certificate
against the issuing parent's key and pins the node, which is what lets it
check relayed events' origin signatures years later. Once a revocation is
applied, the node's events and bundles are refused wherever it has arrived.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node import log, registry, trust, validate
from node.canonical import canonical
from node.errors import N_, NodeError, NotAllowed, NotFound, ValidationError
from node.tiers import CHILD_TIERS

ENROLLED, REVOKED = "node.enrolled", "node.revoked"


def subject_of(node_id: str) -> str:
    return f"N-{node_id}"


def validate_body(event_type: str, body: dict) -> None:
    if event_type == REVOKED:
        if set(body) != {"reason"} or validate.text("reason", body["reason"]) != body["reason"]:
            raise ValidationError(N_("%(field)s: not in normal form"), field="body")
    elif event_type == ENROLLED:
        cert = body.get("certificate")
        if set(body) != {"certificate"} or not isinstance(cert, dict) or set(cert) != {
                "v", "node", "name", "tier", "parent", "sign_pub", "enc_pub", "not_before",
                "not_after", "issuer", "sig"}:
            raise ValidationError(N_("%(field)s: not in normal form"), field="certificate")
    else:
        raise ValidationError(N_("unknown event type %(type)s"), type=event_type, field="type")


@dataclass(frozen=True)
class FoldContext:
    parents: dict
    keys: dict
    tiers: dict = field(default_factory=dict)

    @classmethod
    def of(cls, node) -> FoldContext:
        rows = node.db.conn.execute("SELECT node_id, parent_id, sign_pub, tier FROM nodes"
                                    ).fetchall()
        return cls(parents={r[0]: r[1] for r in rows}, keys={r[0]: bytes(r[2]) for r in rows},
                   tiers={r[0]: r[3] for r in rows})

    def ancestors(self, node_id: str, extra: dict) -> set[str]:
        parents = {**self.parents, **extra}
        seen, current = set(), parents.get(node_id)
        while current and current not in seen:
            seen.add(current)
            current = parents.get(current)
        return seen


@dataclass
class Folded:
    certificate: dict | None = None
    since: tuple[str, str] = ("", "")  # (ts, issuer) of the enrollment that placed it
    revoked: bool = False
    applied: list[str] = field(default_factory=list)
    rejected: dict[str, NodeError] = field(default_factory=dict)


def fold(ordered, ctx: FoldContext) -> Folded:
    folded = Folded()
    for ev, _ancestors in ordered:
        target = ev.subject.removeprefix("N-")
        try:
            if ev.type == ENROLLED:
                cert = ev.body["certificate"]
                issuer_key = ctx.keys.get(ev.origin)
                if cert["node"] != target or cert["parent"] != ev.origin or cert[
                        "issuer"] != ev.origin or issuer_key is None or not _signed(
                        cert, issuer_key):
                    raise NotAllowed(N_("the certificate of %(node)s is not its parent's"),
                                     node=target)
                known = ctx.keys.get(target)
                if known is not None and trust.b64decode(cert["sign_pub"]) != known:
                    raise NotAllowed(N_("node id %(node)s is already taken in this network"),
                                     node=target)
                if cert["tier"] not in CHILD_TIERS.get(ctx.tiers.get(ev.origin), ()):
                    raise NotAllowed(N_("a %(tier)s node may not enroll under a %(parent_tier)s "
                                        "node"), tier=cert["tier"],
                                     parent_tier=ctx.tiers.get(ev.origin))
                before = folded.certificate
                if before is not None and before["parent"] != cert["parent"]:
                    _check_move(before, cert, ctx)
                # Re-enrolled under another parent (a village moved to another area): the
                # later enrollment is the node's place in the tree, whatever the arrival order.
                if before is None or (ev.ts, ev.origin) > folded.since:
                    folded.certificate, folded.since = cert, (ev.ts, ev.origin)
            else:
                extra = {target: folded.certificate["parent"]} if folded.certificate else {}
                if ev.origin not in ctx.ancestors(target, extra):
                    raise NotAllowed(N_("only a node above %(node)s may revoke it"), node=target)
                folded.revoked = True
        except NodeError as err:
            folded.rejected[ev.id] = err
            continue
        folded.applied.append(ev.id)
    return folded


def _check_move(before: dict, after: dict, ctx: FoldContext) -> None:
    """A node moves only as itself (same tier and keys), to another unit of its old parent's
    tier under the same grandparent: a village to another area of the same town. Anything
    else could let one enrolled node take another's place in the tree."""
    same_node = all(before[k] == after[k] for k in ("tier", "sign_pub", "enc_pub"))
    old, new = before["parent"], after["parent"]
    siblings = ctx.tiers.get(old) == ctx.tiers.get(new) and ctx.parents.get(new) is not None \
        and ctx.parents.get(old) == ctx.parents.get(new)
    if not (same_node and siblings):
        raise NotAllowed(N_("%(node)s may move only as itself to another unit of the same tier "
                            "under the same parent"), node=after["node"])


def _signed(cert: dict, issuer_key: bytes) -> bool:
    """The certificate's signature, whatever its dates: validity is checked on use."""
    unsigned = {k: v for k, v in cert.items() if k != "sig"}
    try:
        Ed25519PublicKey.from_public_bytes(issuer_key).verify(
            base64.b64decode(cert["sig"]), trust.CERT_CONTEXT + canonical(unsigned))
    except Exception:  # noqa: BLE001 - any malformed part means "not signed"
        return False
    return True


def write_many(db, items: list[tuple[str, Folded]]) -> None:
    for subject, folded in items:
        write(db, subject, folded)


def write(db, subject: str, folded: Folded) -> None:
    target = subject.removeprefix("N-")
    cert = folded.certificate
    if cert is not None:
        row = db.conn.execute("SELECT parent_id FROM nodes WHERE node_id = ?",
                              (target,)).fetchone()
        if row is None or row[0] != cert["parent"]:  # new, or moved to another parent
            trust.add_node(db, node_id=target, name=cert["name"], tier=cert["tier"],
                           parent_id=cert["parent"], sign_pub=trust.b64decode(cert["sign_pub"]),
                           enc_pub=trust.b64decode(cert["enc_pub"]) if cert["enc_pub"] else None,
                           added_at=cert["not_before"], cert=canonical(cert).decode())
    if folded.revoked:
        db.conn.execute("UPDATE nodes SET status = 'revoked' WHERE node_id = ?", (target,))


def clear(db) -> None:
    db.conn.execute("UPDATE nodes SET status = 'active'")


def record_enrollment(node, certificate: dict):
    """The parent's event for a child it just enrolled (caller owns the transaction)."""
    return log.append(node, log.SYSTEM, ENROLLED,
                      subject_of(certificate["node"]), {"certificate": certificate})


def revoke(node, actor, target: str, reason: str):
    """Revoke a node below this one (caller owns the transaction)."""
    if actor.role != "admin":
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=actor.role,
                         action="revoke")
    if node.db.conn.execute("SELECT 1 FROM nodes WHERE node_id = ?", (target,)).fetchone() is None:
        raise NotFound(N_("unknown node %(node)s"), node=target)
    return log.append(node, actor, REVOKED, subject_of(target),
                      {"reason": validate.text("reason", reason)})


registry.register(registry.Domain(
    kind="node", name="membership", validate_body=validate_body, context=FoldContext.of,
    fold=fold, write_many=write_many, clear=clear))
