"""Who belongs to the network, and where: enrollments, consents, confirmations and
revocations, as events on the subject ``N-<node id>``.

- ``node.enrolled``: a parent enrolls a child, with the certificate it signed.
- ``node.joined``: the child's own consent, signed with its own key, naming the parent
  it joined. A child's joins are ordered by its own sequence numbers, so they order
  its placements causally, never by a clock: the latest join says where it is.
- ``node.confirmed``: the city's confirmation of an enrollment. The city settles who a
  node id belongs to when two keys claim it: the first it confirmed.
- ``node.revoked``: a node above revokes one below; its events are refused from then on.

All four travel everywhere (up so that the city knows every node, down so that every
node knows whom to trust), and every node folds them the same way:

1. An enrollment counts only if its certificate is signed by its origin, names the
   origin as parent and issuer, and fits the tier rule; anything else is refused.
2. The node's key is the one the city confirmed; without a confirmation, the one key
   all enrollments agree on. Two keys and no confirmation: the key this node already
   trusted stays (the newcomer gains nothing), or, if it trusted neither, the id is held
   (``nodes.held`` says why) and none of its events or bundles is accepted. Either way
   the admin sees the conflict, until the city's confirmation reaches here.
3. Its place is the parent of its latest join, once that parent's enrollment is here.
   Without a join (nodes enrolled before joins existed, which write one at their next
   sync), the one parent all enrollments agree on and the trust table already has; any
   other claim is held for the admin, the trust table keeping what it has meanwhile.

So a node can move only by joining another parent itself, and no sibling can take
another unit's child by enrolling its public keys.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node import events, log, registry, trust, validate
from node.authority import NoAuthority, Row
from node.canonical import canonical
from node.errors import N_, NodeError, NotAllowed, NotFound, ValidationError
from node.tiers import CHILD_TIERS

ENROLLED, JOINED, CONFIRMED, REVOKED = "node.enrolled", "node.joined", "node.confirmed", \
    "node.revoked"
_CERT_FIELDS = {"v", "node", "name", "tier", "parent", "sign_pub", "enc_pub", "not_before",
                "not_after", "issuer", "sig"}


def subject_of(node_id: str) -> str:
    return f"N-{node_id}"


def _normal(ok: bool, name: str = "body") -> None:
    if not ok:
        raise ValidationError(N_("%(field)s: not in normal form"), field=name)


def validate_body(event_type: str, body: dict) -> None:
    if event_type == REVOKED:
        _normal(set(body) == {"reason"} and validate.text("reason", body["reason"]) == body[
            "reason"])
    elif event_type == ENROLLED:
        cert = body.get("certificate")
        _normal(set(body) == {"certificate"} and isinstance(cert, dict)
                and set(cert) == _CERT_FIELDS, "certificate")
    elif event_type == JOINED:
        _normal(set(body) == {"parent"} and validate.node_id("parent", body["parent"]) == body[
            "parent"])
    elif event_type == CONFIRMED:
        _normal(set(body) == {"enrollment"} and isinstance(body["enrollment"], str)
                and validate.line("enrollment", body["enrollment"], max_len=80) == body[
                    "enrollment"])
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
    certificate: dict | None = None   # the effective placement
    held: str | None = None           # why no key (or no placement) can be chosen
    conflict: str | None = None       # a claim the admin above must sort out
    revoked: bool = False
    # the parents the node had, in the order it joined them, each with the time it moved on
    former: dict[str, str] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    rejected: dict[str, NodeError] = field(default_factory=dict)


def fold(ordered, ctx: FoldContext) -> Folded:
    folded = Folded()
    enrollments: list[tuple[object, dict]] = []  # (event, certificate), valid ones
    joins: list[object] = []
    confirmed: list[str] = []
    for ev, _ancestors in ordered:
        target = ev.subject.removeprefix("N-")
        try:
            if ev.role != "admin":  # the node itself (system) or, to revoke, an admin
                raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=ev.role,
                                 action=ev.type)
            if ev.type == ENROLLED:
                enrollments.append((ev, _valid_enrollment(ev, target, ctx)))
            elif ev.type == JOINED:
                if ev.origin != target:
                    raise NoAuthority(N_("only %(node)s itself says which parent it joined"),
                                      node=target)
                joins.append(ev)
            elif ev.type == CONFIRMED:
                if ctx.tiers.get(ev.origin) != "city":
                    raise NoAuthority(N_("only the city confirms an enrollment"))
                confirmed.append(ev.body["enrollment"])
            else:
                placed = _placement(folded, enrollments, joins, confirmed, ctx, target)
                extra = {target: placed["parent"]} if placed else {}
                if ev.origin not in ctx.ancestors(target, extra):
                    raise NoAuthority(N_("only a node above %(node)s may revoke it"),
                                      node=target)
                folded.revoked = True
        except NodeError as err:
            folded.rejected[ev.id] = err
            continue
        folded.applied.append(ev.id)
    folded.certificate = _placement(folded, enrollments, joins, confirmed, ctx, target)
    return folded


def _valid_enrollment(ev, target: str, ctx: FoldContext) -> dict:
    cert = ev.body["certificate"]
    issuer_key = ctx.keys.get(ev.origin)
    if cert["node"] != target or cert["parent"] != ev.origin or cert[
            "issuer"] != ev.origin or issuer_key is None or not _signed(cert, issuer_key):
        raise NoAuthority(N_("the certificate of %(node)s is not its parent's"), node=target)
    if cert["tier"] not in CHILD_TIERS.get(ctx.tiers.get(ev.origin), ()):
        raise NoAuthority(N_("a %(tier)s node may not enroll under a %(parent_tier)s node"),
                          tier=cert["tier"], parent_tier=ctx.tiers.get(ev.origin))
    return cert


def _placement(folded: Folded, enrollments, joins, confirmed: list[str], ctx: FoldContext,
               target: str) -> dict | None:
    """The effective certificate: the key, then the place (see the module's docstring)."""
    folded.held = folded.conflict = None
    if not enrollments:
        return None
    keys = list(dict.fromkeys(cert["sign_pub"] for _, cert in enrollments))
    sure = [cert["sign_pub"] for ev, cert in enrollments if ev.id in set(confirmed)]
    known = ctx.keys.get(target)
    known = trust.b64(known) if known else None
    if sure:
        key = sure[0]
        if len(keys) > 1:
            folded.conflict = "two keys claim this node id; the city confirmed the first"
    elif len(keys) == 1:
        key = keys[0]
    else:
        folded.conflict = "two keys claim this node id; the city has confirmed neither yet"
        if known not in keys:
            folded.held = folded.conflict
            return None
        key = known
    mine = [(ev, cert) for ev, cert in enrollments if cert["sign_pub"] == key]
    by_parent: dict[str, tuple] = {}
    for ev, cert in mine:  # the latest enrollment by each parent
        by_parent[cert["parent"]] = (ev, cert)
    # the node's own joins, signed by this key, in its own order: the latest says where it
    # is. Until that parent's enrollment arrives here too, the placement is pending and
    # the trust table keeps what it has (the joining node itself knows its parent already).
    public = trust.b64decode(key)
    chosen = sorted((j for j in joins if _joined_with(j, public)), key=lambda j: j.seq)
    folded.former = {}
    for before, after in zip(chosen, chosen[1:], strict=False):
        if before.body["parent"] != after.body["parent"]:
            folded.former[before.body["parent"]] = after.ts
    if chosen:
        latest = by_parent.get(chosen[-1].body["parent"])
        return latest[1] if latest else None
    # no consent known: one parent all agree on, and that the trust table already has for
    # this key (if it has any), places the node; anything else is a claim the admin must
    # sort out, and the trust table keeps what it has meanwhile
    pinned = ctx.parents.get(target) if known == key else None
    if len(by_parent) == 1 and (pinned is None or pinned in by_parent):
        return mine[0][1]
    folded.conflict = (f"enrolled by {', '.join(sorted(by_parent))} without the node's own "
                       "consent")
    return by_parent[pinned][1] if pinned in by_parent else None


def _joined_with(join, public: bytes) -> bool:
    """Whether a join was signed with this key (a node id two keys claimed has the joins of
    both in the log: only the settled key's count)."""
    return events.verify(join, public)


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
        row = db.conn.execute("SELECT parent_id, sign_pub FROM nodes WHERE node_id = ?",
                              (target,)).fetchone()
        key = trust.b64decode(cert["sign_pub"])
        if row is None or row[0] != cert["parent"] or bytes(row[1]) != key:
            trust.add_node(db, node_id=target, name=cert["name"], tier=cert["tier"],
                           parent_id=cert["parent"], sign_pub=key,
                           enc_pub=trust.b64decode(cert["enc_pub"]) if cert["enc_pub"] else None,
                           added_at=cert["not_before"], cert=canonical(cert).decode())
    # the whole state, as ``clear`` and this write would leave it: a rebuild projects a
    # subject again without clearing first (log.rebuild)
    status = "revoked" if folded.revoked else "active"
    db.conn.execute("UPDATE nodes SET status = ?, held = ? WHERE node_id = ? AND (status IS "
                    "NOT ? OR held IS NOT ?)",  # (only a change: the trust table's mark moves
                    (status, folded.held, target, status, folded.held))  # with each one)
    trust.set_flag(db, target, "membership", folded.held or folded.conflict)


def clear(db) -> None:
    db.conn.execute("UPDATE nodes SET status = 'active', held = NULL")
    db.conn.execute("DELETE FROM node_flags WHERE kind = 'membership'")


_NO_EVENTS = ("NOT EXISTS (SELECT 1 FROM events WHERE subject = 'N-' || {0} "
              "AND type LIKE 'node.%')")


def prune(db) -> None:
    """What ``clear`` leaves for the nodes no membership event names."""
    db.conn.execute("UPDATE nodes SET status = 'active', held = NULL WHERE (status != 'active' "
                    "OR held IS NOT NULL) AND " + _NO_EVENTS.format("nodes.node_id"))
    db.conn.execute("DELETE FROM node_flags WHERE kind = 'membership' AND "
                    + _NO_EVENTS.format("node_flags.node_id"))


def former_parents(db) -> dict[str, dict[str, str]]:
    """node -> {a parent it had: the time it moved on from it}, from the nodes' own joins
    (what the folds of cases and warnings need to honour the history a node made under
    its old parent, and only that); kept while the trust table is unchanged (trust.kept).
    """
    return trust.kept(db, "former_parents", _read_former_parents)


def _read_former_parents(db) -> dict[str, dict[str, str]]:
    joins: dict[str, list[tuple[int, str, str]]] = {}
    for origin, seq, ts, body in db.conn.execute(
            "SELECT origin, seq, ts, json_extract(body, '$.parent') FROM events "
            "WHERE subject >= 'N-' AND subject < 'N.' AND type = ?", (JOINED,)):
        joins.setdefault(origin, []).append((seq, ts, body))
    former: dict[str, dict[str, str]] = {}
    for child, seen in joins.items():
        seen.sort()
        for (_, _, parent), (_, moved, after) in zip(seen, seen[1:], strict=False):
            if parent != after:
                former.setdefault(child, {})[parent] = moved
    return former


# -- commands ---------------------------------------------------------------------

def record_enrollment(node, certificate: dict):
    """The parent's event for a child it just enrolled (caller owns the transaction)."""
    return log.append(node, log.SYSTEM, ENROLLED,
                      subject_of(certificate["node"]), {"certificate": certificate})


def record_join(node, parent: str):
    """This node's own consent to the parent it just joined (caller owns the transaction)."""
    return log.append(node, log.SYSTEM, JOINED, subject_of(node.id), {"parent": parent})


def ensure_joined(node) -> bool:
    """Record this node's join of its parent if its parent's enrollment of it is here and
    it never joined that parent (a node enrolled before joins existed); True if it wrote
    one. The caller owns the transaction."""
    parent = node.settings["PARENT_ID"]
    subject = subject_of(node.id)
    if not parent or not node.db.conn.execute(
            "SELECT 1 FROM events WHERE subject = ? AND type = ? AND origin = ?",
            (subject, ENROLLED, parent)).fetchone():
        return False
    last = node.db.conn.execute(
        "SELECT json_extract(body, '$.parent') FROM events WHERE subject = ? AND type = ? "
        "AND origin = ? ORDER BY seq DESC LIMIT 1", (subject, JOINED, node.id)).fetchone()
    if last is not None and last[0] == parent:
        return False
    record_join(node, parent)
    return True


def confirm_enrollments(node, subjects=None) -> list[str]:
    """At the city: confirm each enrollment here that counts and is not confirmed yet
    (only in ``subjects`` if given); returns the enrollment ids. The city confirms the
    first key it learns for a node id, which settles the id everywhere. The caller holds
    a write transaction."""
    if node.tier != "city":
        return []
    sql = ("SELECT e.subject, e.origin, e.seq FROM events e WHERE e.type = ? AND NOT EXISTS "
           "(SELECT 1 FROM events c WHERE c.subject = e.subject AND c.type = ? AND "
           "json_extract(c.body, '$.enrollment') = e.origin || ':' || e.seq)")
    params: list = [ENROLLED, CONFIRMED]
    if subjects is not None:
        wanted = sorted({s for s in subjects if s.startswith("N-")})[:500]
        if not wanted:
            return []
        sql += f" AND e.subject IN ({','.join('?' * len(wanted))})"
        params += wanted
    done = []
    for subject, origin, seq in node.db.conn.execute(sql + " ORDER BY e.lsn", params).fetchall():
        row = node.db.conn.execute("SELECT sign_pub, held FROM nodes WHERE node_id = ?",
                                   (subject.removeprefix("N-"),)).fetchone()
        event = log.get_event(node.db, f"{origin}:{seq}")
        cert = event.body["certificate"]
        if row is None or row[1] is not None or bytes(row[0]) != trust.b64decode(
                cert["sign_pub"]):
            continue  # not the key the city knows for this id: never confirmed
        log.append(node, log.SYSTEM, CONFIRMED, subject, {"enrollment": event.id})
        done.append(event.id)
    return done


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
    fold=fold, write_many=write_many, clear=clear, prune=prune, authority=(
        Row(ENROLLED, "parent_named", ("admin",), ("city", "town", "area")),
        Row(JOINED, "itself", ("admin",), ("town", "area", "village")),
        Row(CONFIRMED, "city", ("admin",), ("city",)),
        Row(REVOKED, "above_target", ("admin",), ("city", "town", "area")))))
