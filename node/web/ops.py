"""What the pages and the API do, once: unit checks, transactions, domain calls.

Each function takes the node and the logged-in user (a dict from
``users.get_user``) and either reads or opens one ``store.write``
transaction around one domain command, as the CLI does. No rule of the
petition workflow is decided here: ``cases``, ``warnings`` and
``membership`` decide; this module only chooses what a user may see.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from node import (
    attachments,
    cases,
    disclosure,
    documents,
    drafts,
    enroll,
    events,
    figures,
    log,
    membership,
    notices,
    oversight,
    repeats,
    screening,
    store,
    trust,
    users,
    warnings,
)
from node.errors import N_, NodeError, NotAllowed, NotFound, ValidationError
from node.sync import delivery, session
from node.sync.http import HttpTransport
from node.web import access

TEXT_FIELDS = ("reason", "reply", "instruction", "message", "text", "note", "feedback",
               "report", "answer", "measures", "department", "assignee", "lead_leader",
               "approver", "into", "summary", "request", "facts", "decision", "rating",
               "delivery", "delivered_on", "deadline", "days", "to", "order_id", "signers",
               "category", "channel", "nature", "subject", "place", "expected_size",
               "expected_date", "destination", "trigger", "leader_name", "at", "place", "outcome",
               "result", "appointment", "kind", "name")


def actor(user: dict) -> log.Actor:
    return log.Actor(user["username"], user["role"])


# -- writing ---------------------------------------------------------------------

def register_case(node, user: dict, fields: dict, key: str | None = None) -> dict:
    """Register a case; with a draft ``key``, a repeat answers the first case (drafts.once).
    ``repeats``: the other cases of the same petitioners this node knows (open or recent),
    which the person registering is told of at once."""
    found = repeats.matches(node, fields.get("petitioners"))
    with store.write(node.db):
        case_id, _ = drafts.once(node, user["username"], "case", key, fields,
                                 lambda: cases.register(node, actor(user), fields).subject)
        code = cases.get(node, case_id)["query_code"]
    names = node_names(node)
    return {"id": case_id, "query_code": code,
            "repeats": [{**m, "origin_name": names.get(m["origin"], m["origin"])}
                        for m in found if m["case"] != case_id]}


def raise_warning(node, user: dict, fields: dict, key: str | None = None) -> dict:
    """Raise a warning; with a draft ``key``, a repeat answers the first warning."""
    with store.write(node.db):
        warning_id, _ = drafts.once(
            node, user["username"], "warning", key, fields,
            lambda: warnings.raise_warning(node, actor(user), fields).subject)
        w = warnings.get(node, warning_id)
    return {"id": w["id"], "risk_level": w["risk_level"], "risk_score": w["risk_score"]}


def act_case(node, user: dict, case_id: str, action: str, fields: dict) -> dict:
    access.get_case(node, case_id)
    with store.write(node.db):
        event = cases.act(node, actor(user), case_id, action, fields)
        case = cases.get(node, case_id)
    return {"id": case_id, "event": event.id, "state": case["state"], "holder": case["holder"],
            "handover": case["handover"], "due_on": case["due_on"], "due_kind": case["due_kind"]}


def act_warning(node, user: dict, warning_id: str, action: str, fields: dict) -> dict:
    access.get_warning(node, warning_id)
    if action not in warnings.RULES or action == "raise":
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="action",
                              value=action)
    if user["role"] not in warnings.RULES[action].roles:
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=user["role"],
                         action=action)
    with store.write(node.db):
        event = warnings.act(node, actor(user), warning_id, action, fields)
        status = warnings.get(node, warning_id)["status"]
    return {"id": warning_id, "event": event.id, "status": status}


def request_oversight(node, user: dict, fields: dict) -> dict:
    """A supervision request (督办请求) about a case of this node's supervision list."""
    case_id = fields.get("case")
    listed = next((r for r in figures.supervision(node) if r.id == case_id), None)
    if listed is None:
        raise NotFound(N_("no case %(id)s"), id=str(case_id)[:80])
    with store.write(node.db):
        event = oversight.request(node, actor(user), {
            **{k: fields.get(k) or None for k in ("action", "message", "deadline")},
            "case": case_id, "holder": listed.holder})
    return {"id": event.subject, "to": event.body["to"]}


def answer_oversight(node, user: dict, request_id: str, fields: dict) -> dict:
    """Answer a supervision request addressed to this node: urged, ordered or noted."""
    if oversight.get(node, request_id)["to_unit"] != node.id:
        raise NotFound(N_("no supervision request %(id)s"), id=request_id)
    with store.write(node.db):
        oversight.answer(node, actor(user), request_id,
                         {k: fields.get(k) or None for k in ("outcome", "note")})
    return oversight.get(node, request_id)


def unmask(node, user: dict, case_id: str) -> None:
    access.get_case(node, case_id)
    access.check_unmask(user)
    with store.write(node.db):
        access.audit(node, user["username"], "unmask", case_id)


def sync_now(node) -> dict:
    """One sync session with the parent, as `siji sync` does it once."""
    url = node.settings["PARENT_URL"]
    if not url or not node.settings["PARENT_ID"]:
        raise NodeError(N_("this node has no parent yet: enroll it with its parent first "
                           "(or set PARENT_ID)"))
    try:
        summary = session.run(node, HttpTransport(url, timeout=SYNC_NOW_TIMEOUT),
                              reports_first=True)
    except OSError as e:
        raise Unreachable(N_("The parent node cannot be reached just now. Everything is "
                             "saved here and goes up by itself once the link is back."),
                          detail=f"{url}: {type(e).__name__}") from None
    return {"sent": summary.sent, "received": summary.received}


# "Sync now" from a page: seconds of patience beyond what the link needs for the bytes in
# flight (SYNC_TIMEOUT's part, node/sync/http.py). Short, so a page never hangs on a dead
# link; the scheduled sync, with its longer patience, does the rest.
SYNC_NOW_TIMEOUT = 10


class Unreachable(NodeError):
    """The parent did not answer: said in plain words; ``detail`` (address and error) is
    for an admin's eyes, behind a fold."""

    code = "parent_unreachable"
    http_status = 503

    def __init__(self, msgid: str, detail: str = "", **params):
        super().__init__(msgid, **params)
        self.detail = detail


def revoke(node, user: dict, target: str, reason: str) -> None:
    if target not in {c["node_id"] for c in children(node)}:
        raise NotAllowed(N_("only a node enrolled below this one can be revoked here"))
    with store.write(node.db):
        membership.revoke(node, actor(user), target, reason)


def new_enroll_code(node, hours) -> str:
    try:
        hours = int(hours or enroll.ENROLL_HOURS)
    except (TypeError, ValueError):
        raise ValidationError(N_("%(field)s must be a whole number"), field="hours") from None
    if not 1 <= hours <= 24 * 30:
        raise ValidationError(N_("%(field)s must be between %(min)s and %(max)s"),
                              field="hours", min=1, max=24 * 30)
    with store.write(node.db):
        return enroll.new_code(node, hours)


# -- accounts (admin) ------------------------------------------------------------

def add_user(node, admin: dict, fields: dict) -> dict:
    """Add an account as `siji user add` does; ``password_again``, if given, must match."""
    password = fields.get("password")
    if "password_again" in fields and fields["password_again"] != password:
        raise ValidationError(N_("%(field)s: the two passwords differ"), field="password")
    with store.write(node.db):
        user = users.add_user(node, fields.get("username"), fields.get("display_name"),
                              fields.get("role"), password)
        access.audit(node, admin["username"], "user_add", user["username"])
    return user


def change_password(node, user: dict, fields: dict, keep: str | None) -> None:
    """A user changes their own password; their other sessions end (``keep``: this one)."""
    if fields.get("password_again") is not None and fields.get("password_again") != fields.get(
            "password"):
        raise ValidationError(N_("%(field)s: the two passwords differ"), field="password")
    with store.write(node.db):
        users.change_password(node, user["username"], fields.get("old_password") or "",
                              fields.get("password"), keep=keep)
        access.audit(node, user["username"], "password_change", user["username"])


def end_sessions(node, admin: dict, username: str) -> int:
    """An admin signs a user out everywhere."""
    with store.write(node.db):
        users.get_user(node, username)
        n = users.end_sessions(node, username, "admin")
        access.audit(node, admin["username"], "sessions_end", username)
    return n


def set_user_disabled(node, admin: dict, username: str, disabled: bool) -> dict:
    """Disable (its sessions end at once) or enable an account; never one's own."""
    if disabled and username == admin["username"]:
        raise NotAllowed(N_("you cannot disable your own account"))
    with store.write(node.db):
        user = users.set_disabled(node, username, disabled)
        access.audit(node, admin["username"], "user_disable" if disabled else "user_enable",
                     user["username"])
    return user


# -- reading ---------------------------------------------------------------------

def petitioners_for(node, user: dict, case: dict, unmasked: bool) -> tuple[list[dict], bool]:
    """The petitioners as this user may see them now, and whether they are masked.

    Showing an identity is logged, as `siji case show` logs it.
    """
    people = cases.petitioners(node, case["id"])
    if access.masked(node, user, case) and not (unmasked and access.may_unmask(user)):
        return [access.mask(p) for p in people], True
    with store.write(node.db):
        access.audit(node, user["username"], "read_identity", case["id"])
    return people, False


def readable(text, masked: bool, names=()):
    """Free text as a viewer may read it: a value withheld from this tier shown as withheld
    (disclosure.shown); for a masked viewer, ID numbers, phone numbers and the case's
    petitioners' names masked too (node/screening.py)."""
    if not isinstance(text, str):
        return text
    text = disclosure.shown(text)
    return screening.mask(text, names) if masked else text


CASE_TEXT = ("summary", "request", "facts", "reply", "outcome")


def readable_case(node, user: dict, case: dict, masked: bool | None = None) -> dict:
    """The case with its free text as ``user`` may read it (``readable``)."""
    if masked is None:
        masked = access.masked(node, user, case)
    names = [p["name"] for p in cases.petitioners(node, case["id"]) if p["name"]]
    return {**case, **{k: readable(case.get(k), masked, names) for k in CASE_TEXT}}


def timeline(node, case_id: str, masked: bool = False, names=()) -> list[dict]:
    """Every event of a subject: what, who, which node, when, and whether its signature
    holds; its free text as a viewer (``masked`` or not) may read it."""
    rows = node.db.conn.execute("SELECT node_id, name, sign_pub FROM nodes").fetchall()
    names = {r[0]: r[1] for r in rows}
    keys = {r[0]: bytes(r[2]) for r in rows}
    staff = people(node)
    out = []
    for ev in log.subject_events(node.db, case_id):
        verified = False
        if ev.origin in keys:
            try:
                verified = events.verify(ev, Ed25519PublicKey.from_public_bytes(keys[ev.origin]))
            except ValueError:
                verified = False
        rule = cases.BY_TYPE.get(ev.type) or warnings.BY_TYPE.get(ev.type)
        body = ev.revealed
        details = [(k, readable(body[k], masked, names)) for k in TEXT_FIELDS
                   if k in body and k != "to"]
        if "to" in ev.body:
            details.insert(0, ("to", names.get(ev.body["to"], ev.body["to"])))
        out.append({"id": ev.id, "type": ev.type, "action": rule.action if rule else ev.type,
                    "actor": ev.actor, "role": ev.role, "origin": ev.origin,
                    "who": who(ev.actor, ev.origin, node.id, staff),
                    "origin_name": names.get(ev.origin, ev.origin), "ts": ev.ts,
                    "verified": verified, "details": details})
    return out


def people(node) -> dict[str, str]:
    """This node's accounts: username -> the name people know them by."""
    return {u["username"]: u["display_name"] for u in users.list_users(node)}


def who(username: str, origin: str, here: str, staff: dict[str, str]) -> str | None:
    """The name of who signed an event, where this node knows it (its own accounts); None
    for the node itself acting (system) or a person of another node (the page then says
    their role and unit)."""
    if username == log.SYSTEM.username:
        return None
    return staff.get(username) if origin == here else None


def closing_report(node, case_id: str) -> dict | None:
    """The signed closing report (结案报告) as its event holds it, with who and when."""
    for item in reversed(timeline(node, case_id)):
        if item["type"] == "case.closed":
            ev = log.get_event(node.db, item["id"])
            body = {k: readable(v, False) for k, v in ev.revealed.items()}
            return {**body, "actor": ev.actor, "role": ev.role, "who": item["who"],
                    "origin": ev.origin,
                    "origin_name": item["origin_name"], "ts": ev.ts,
                    "verified": item["verified"], "event": ev.id}
    return None


def case_document(node, user: dict, case_id: str, kind: str, n: int, lang: str) -> dict:
    """A formal document of the case (node/documents.py), its text as ``user`` may read it."""
    case = access.get_case(node, case_id)
    masked = access.masked(node, user, case)
    names = [p["name"] for p in cases.petitioners(node, case_id) if p["name"]]
    doc = documents.document(node, case_id, kind, n, lang,
                             lambda text: readable(text, masked, names))
    if masked:
        doc["petitioners"] = [access.mask_name(p) for p in doc["petitioners"]]
    return doc


def case_detail(node, user: dict, case_id: str, unmasked: bool = False) -> dict:
    case = access.get_case(node, case_id)
    people, masked = petitioners_for(node, user, case, unmasked)
    names = node_names(node)
    recorded = [p["name"] for p in cases.petitioners(node, case_id) if p["name"]]
    return {"case": readable_case(node, user, case, masked), "petitioners": people,
            "masked": masked, "may_unmask": masked and access.may_unmask(user),
            "orders": cases.orders(node, case_id),
            "timeline": timeline(node, case_id, masked, recorded),
            "actions": cases.allowed_actions(node, actor(user), case),
            "others": cases.others_may(node, actor(user), case),
            "urges": urges_of(node, case_id, names) if case["urge_count"] else [],
            "documents": documents.available(node, case_id),
            "office": {"attachments": attachments.listing(node, case_id),
                       "appointments": cases.appointments(node, case_id),
                       "repeats": repeats.links_of(node, case_id)},
            "deadline_changes": cases.deadline_changes(node, case_id), "names": names}


def warning_detail(node, user: dict, warning_id: str) -> dict:
    warning = access.get_warning(node, warning_id)
    acks = warnings.acks(node, warning_id)
    acked = any(a["node_id"] == node.id for a in acks)
    actions = warnings.allowed_actions(node, actor(user), warning)
    return {"warning": warning, "acks": acks, "acked": acked, "people": people(node),
            "chain": warnings.chain(node, warning_id),
            "timeline": timeline(node, warning_id), "actions": actions,
            "names": node_names(node)}


def card(node, case: dict, names: dict[str, str]) -> dict:
    """What a case's card shows beside its number: the summary (personal data masked, as
    for any viewer above the holder), the unit that registered it, and the first
    petitioner's masked name with how many there are. Never an identity read: nothing is
    audited, nothing unmasked."""
    rows = node.db.conn.execute("SELECT name, withheld FROM petitioners WHERE case_id = ? "
                                "ORDER BY idx", (case["id"],)).fetchall()
    people = [name for name, withheld in rows
              if not (withheld and '"name"' in withheld) and name]
    return {"summary": readable(case.get("summary"), True, people),
            "unit": names.get(case["origin_node"], case["origin_node"]),
            "person": access.mask_name(people[0]) if people else None, "people": len(rows)}


def node_names(node) -> dict[str, str]:
    return trust.names(node.db)


def children(node) -> list[dict]:
    """Nodes enrolled directly below this one, revoked ones included."""
    rows = node.db.conn.execute(
        "SELECT node_id, name, tier, status, sign_pub, added_at FROM nodes "
        "WHERE parent_id = ? AND node_id != ? ORDER BY node_id", (node.id, node.id)).fetchall()
    mine = node.signer.public_key().public_bytes_raw()
    return [{"node_id": r[0], "name": r[1], "tier": r[2], "status": r[3],
             "fingerprint": trust.fingerprint(bytes(r[4])),
             "pair_fingerprint": enroll.pair_fingerprint(mine, bytes(r[4])),
             "added_at": r[5]} for r in rows]


def urges_of(node, case_id: str, names: dict[str, str]) -> list[dict]:
    """A case's urges (催办): id, who and when, the message, whether it is signed for;
    ``names`` are the nodes' names (node_names)."""
    evs = log.subject_events(node.db, case_id)
    acked = {e.body["urge"] for e in evs if e.type == "case.urge_acknowledged"}
    return [{"id": e.id, "ts": e.ts, "origin": e.origin,
             "origin_name": names.get(e.origin, e.origin), "message": e.body["message"],
             "acknowledged": e.id in acked} for e in evs if e.type == "case.urged"]


SHORT = 20  # rows of each section of an inbox or overview; the rest behind "see all"


def from_above(node, limit: int = SHORT) -> dict:
    """Referrals waiting to be signed for, urges, supervision orders addressed here and
    supervision requests: the newest ``limit`` of each, with ``counts`` of all."""
    Filters = cases.query.Filters
    referrals_at = Filters(holder=node.id, handover="pending")
    referrals, _ = cases.query.page(node, referrals_at, limit=limit)
    names = node_names(node)
    urged, _ = cases.query.page(node, Filters(holder=node.id, open_only=True, urged=True),
                                limit=limit)
    urges = [{**u, "case": c} for c in urged for u in urges_of(node, c["id"], names)]
    urges.sort(key=lambda u: u["ts"], reverse=True)
    orders = cases.orders_by(node, target=node.id, statuses=("issued", "acknowledged"))
    units = access.subtree(node)
    requests = []  # 督办请求 from above, with whether this node has the case to act on
    for r in oversight.listing(node, to_unit=node.id):
        try:
            here = access.case_visible(node, cases.get(node, r["case_id"]), units)
        except NotFound:
            here = False
        requests.append({**r, "here": here})
    return {"referrals": referrals, "urges": urges, "orders": orders[:limit],
            "requests": requests,
            "counts": {"referrals": cases.query.count(node, referrals_at),
                       "orders": len(orders)}}


def inbox(node, limit: int = SHORT) -> dict:
    """What needs action at an area or town office: the newest ``limit`` of each section,
    found in SQL, with ``counts`` of all and the lists they come from."""
    above = from_above(node, limit)
    escalated_here = dict(holder=node.id, not_origin=node.id, open_only=True,
                          handover="none")
    escalated, _ = cases.query.page(node, cases.query.Filters(**escalated_here), limit=limit)
    waiting = warnings.waiting_here(node, limit)["warnings"]
    warns = []
    for item in waiting["items"]:
        w = warnings.get(node, item["id"])
        mine = [c for c in warnings.chain(node, w["id"]) if c["node_id"] == node.id]
        warns.append({**w, "ack_due": mine[0]["ack_due"] if mine else None})
    soon, _ = access.case_page(node, None, limit, due="soon")
    overdue, _ = access.case_page(node, None, limit, due="overdue")
    return {**above, "escalated": escalated, "warnings": warns, "alarms": alarms(node),
            "due_soon": soon, "overdue": overdue,
            "counts": {**above["counts"],
                       "escalated": cases.query.count(node, cases.query.Filters(
                           **escalated_here)),
                       "warnings": waiting["count"],
                       "due_soon": access.case_count(node, due="soon"),
                       "overdue": access.case_count(node, due="overdue")}}


def alarms(node) -> list[dict]:
    """Warnings a unit directly below did not acknowledge in time: their alarm came here."""
    units = access.subtree(node)
    return [w for w in warnings.alarms_below(node) if access.warning_visible(node, w, units)]


# -- notices (admin) ---------------------------------------------------------------

def add_channel(node, admin: dict, fields: dict) -> dict:
    """Add a notice channel from the network page or the API (audited)."""
    with store.write(node.db):
        channel = notices.add_channel(node, fields)
        access.audit(node, admin["username"], "channel_add", channel["name"])
    return channel


def remove_channel(node, admin: dict, name: str) -> None:
    with store.write(node.db):
        notices.remove_channel(node, name)
        access.audit(node, admin["username"], "channel_remove", name)


def test_channel(node, admin: dict, name: str) -> str | None:
    """Send a test through a channel now; the error, or None."""
    error = delivery.send_test(node, name)
    with store.write(node.db):
        access.audit(node, admin["username"], "channel_test", name)
    return error


def enroll_codes(node) -> list[dict]:
    # read-only view of node.enroll's table: the codes themselves are never stored
    rows = node.db.conn.execute("SELECT id, created_at, expires_at, used_at, used_by FROM "
                                "enroll_codes ORDER BY created_at DESC LIMIT 20").fetchall()
    keys = ("id", "created_at", "expires_at", "used_at", "used_by")
    return [dict(zip(keys, r, strict=True)) for r in rows]
