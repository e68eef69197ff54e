"""信访件 fold: a case's rows from its events, in the log's causal order.

Two decisions made concurrently (neither writer saw the other) are never
resolved silently: the fixed causal order picks the outcome and the case
is flagged ``needs_review``, listing the event that lost.
"""

from __future__ import annotations

import json
from datetime import date

from node import disclosure, registry, store
from node.authority import NoAuthority, Row, above, check_role
from node.canonical import canonical
from node.cases.rules import (
    BY_TYPE,
    RULES,
    FoldContext,
    Folded,
    Rule,
    _on,
    request_window,
    validate_body,
)
from node.cases.vocab import ANSWERED, DECIDING_TIERS, FREE_TEXT, OPEN, WORKERS
from node.causal import heads
from node.errors import N_, IllegalTransition, NodeError, NotAllowed, NotFound
from node.tiers import TIER_RANK


def _new_case(ev, ctx: FoldContext) -> dict:
    b = ev.revealed
    return {
        "id": ev.subject, "origin_node": ev.origin, "holder": ev.origin, "state": "registered",
        "handover": None, "referred_by": None, "archived": 0, "query_code": b["query_code"],
        "channel": b["channel"], "nature": b["nature"], "category": b["category"],
        "summary": b["summary"], "request": b.get("request"), "facts": b.get("facts"),
        "people_count": b["people_count"],
        "collective": int(b["people_count"] >= ctx.collective_min),
        "first_time": int(b["first_time"]), "repeat_of": b.get("repeat_of"),
        "skip_level": int(b["skip_level"]), "lead_leader": None, "assignee": None,
        "decision": None, "reply": None, "delivery": None, "rating": None, "reopen_count": 0,
        "urge_count": 0, "extended_days": 0, "merged_into": None, "outcome": None,
        "registered_on": _on(ctx, ev), "accepted_on": None,
        "replied_on": None, "closed_on": None,
        "decided_in_time": None, "done_in_time": None, "reviewed": 0,
        "accused_unit": b.get("accused_unit"),  # Art. 30: the unit a report accuses
        "received_by": b.get("received_by"), "lead_account": None, "lead_unit": None,
        "_circle": {ev.origin},  # the nodes that have had the case (fold-time only)
    }


def _up_the_same_day(case: dict, ctx: FoldContext) -> None:
    """Art. 25: every level above the registrant has a collective petition (as far as the
    unit it accuses), as routing.case_circle sends it: each may note, urge, supervise."""
    if not case["collective"]:
        return
    node, seen = ctx.parents.get(case["origin_node"]), set()
    while node and node not in seen and node != case.get("accused_unit"):
        seen.add(node)
        case["_circle"].add(node)
        node = ctx.parents.get(node)


def _against_itself(case: dict, ctx: FoldContext) -> None:
    """Art. 30: a report against the unit that registers it is not held there: it goes at
    once to the unit above (the registration hands it over, as an escalation would)."""
    parent = ctx.parents.get(case["origin_node"])
    if case.get("accused_unit") == case["origin_node"] and parent:
        case["_circle"].add(parent)
        case.update(holder=parent, received_on=case["registered_on"])


def _numbered_by(case_id: str, origin: str, ctx: FoldContext) -> bool:
    """A case number names the node that registered it: no node numbers another's cases."""
    prefix = ctx.case_prefix(origin)
    rest = case_id[len(prefix):]
    return case_id.startswith(prefix) and len(rest) >= 6 and rest[4] == "-" and (
        rest[:4] + rest[5:]).isdigit()


def _check(rule: Rule, case: dict | None, ev, ctx: FoldContext) -> None:
    """The rule's authority (who, in which role) and state, in the case as the event's
    causal past left it."""
    if case is None:
        raise NotFound(N_("no case %(id)s"), id=ev.subject)
    tier = ctx.tiers.get(ev.origin)
    if tier not in rule.tiers:
        raise NotAllowed(N_("a %(tier)s node may not %(action)s"), tier=tier,
                         action=rule.action)
    check_role(ev.role, tier, rule.roles, rule.action)
    writer = rule.writer
    if writer == "holder":
        if ev.origin != case["holder"]:
            raise NoAuthority(N_("only the node holding the case (%(holder)s) may %(action)s"),
                              holder=case["holder"], action=rule.action)
    elif writer == "holder_or_referrer":
        if ev.origin == case["holder"] and case.get("handover") == "pending":
            raise NoAuthority(N_("%(node)s has not signed for the referral of case %(id)s: it "
                                 "may not %(action)s it"), node=ev.origin, id=ev.subject,
                              action=rule.action)
        if ev.origin not in (case["holder"], case.get("referred_by")):
            raise NoAuthority(N_("only the node holding the case (%(holder)s), or the one that "
                                 "referred it down, may %(action)s"),
                              holder=case["holder"], action=rule.action)
    elif ev.origin not in case["_circle"]:
        raise NoAuthority(N_("%(node)s has never had case %(id)s: it may not %(action)s"),
                          node=ev.origin, id=ev.subject, action=rule.action)
    elif writer == "registrant" and ev.origin != case["origin_node"]:
        raise NoAuthority(N_("only the node that registered case %(id)s may %(action)s"),
                          id=ev.subject, action=rule.action)
    elif writer == "above_holder" and not above(ctx.tiers, ev.origin, case["holder"]):
        raise NoAuthority(N_("only a unit above the one holding the case may %(action)s"),
                          action=rule.action)
    if case["state"] not in rule.states:
        raise IllegalTransition(N_("cannot %(action)s a case that is %(state)s"),
                                action=rule.action, state=case["state"])


def fold(ordered, ctx: FoldContext) -> Folded:
    """Fold a case's events (in ``log.causal_order``) into its rows."""
    folded = Folded(case=None)
    decisions: list[str] = []
    evs = []
    for ev, ancestors in ordered:
        evs.append(ev)
        rule = BY_TYPE.get(ev.type)
        try:
            if ev.type == "case.registered":
                if folded.case is not None:
                    raise IllegalTransition(N_("case %(id)s is already registered"), id=ev.subject)
                if not _numbered_by(ev.subject, ev.origin, ctx):
                    raise NotAllowed(N_("case number %(id)s does not belong to node %(node)s"),
                                     id=ev.subject, node=ev.origin)
                check_role(ev.role, ctx.tiers.get(ev.origin), WORKERS, "register")
                folded.case = _new_case(ev, ctx)
                _against_itself(folded.case, ctx)
                _up_the_same_day(folded.case, ctx)
                folded.petitioners = ev.revealed["petitioners"]
            else:
                _check(rule, folded.case, ev, ctx)
                before = folded.case["state"]
                due = _current_deadline(folded.case, ctx)[0] if rule.decision else None
                rule.apply(folded.case, ev.revealed, ev, ctx, folded)
                _timed(folded.case, before, due, _on(ctx, ev))
        except NodeError as err:
            folded.rejected[ev.id] = err
            continue
        if rule.decision:
            if any(d not in ancestors for d in decisions):
                folded.case.setdefault("_concurrent", []).append(ev.id)
            decisions.append(ev.id)
        folded.applied.append(ev.id)
    if folded.case is not None:
        _finish(folded, evs, ctx)
    return folded


# 办结 (docs/metrics.md): answered, or ended after an answer or by withdrawal
DONE = (*ANSWERED, "concluded", "terminated")


def _timed(case: dict, before: str, due: str | None, on: str) -> None:
    """Record whether a decision on acceptance (the case leaves ``registered``) and an
    answer (it becomes 办结) came within the limit in force just before (``due``)."""
    after = case["state"]
    in_time = int(due is None or on <= due)
    if before == "registered" and after != "registered":
        case["decided_in_time"] = in_time
    if before not in DONE and after in DONE:
        case["done_in_time"] = in_time
    if after == "review_requested":
        case["reviewed"] = 1


def _top(circle: set[str], tiers: dict[str, str]) -> str:
    """The highest node of a circle (one, since a circle is connected in the tree): it
    counts the case in the figures (node/figures.py)."""
    return max(circle, key=lambda n: (TIER_RANK.get(tiers.get(n), -1), n))


def _finish(folded: Folded, evs, ctx: FoldContext) -> None:
    case = folded.case
    case["circle_top"] = _top(case["_circle"], ctx.tiers)
    conflicts = sorted(set(folded.rejected) | set(case.pop("_concurrent", [])))
    case["conflicts"] = canonical(conflicts, check=False).decode()
    case["needs_review"] = int(bool(conflicts))
    case["heads"] = canonical(list(heads(evs)), check=False).decode()
    case["event_count"] = len(evs)
    case["updated_at"] = max(e.ts for e in evs)
    case["due_on"], case["due_kind"], case["due_provisional"] = _current_deadline(case, ctx)
    (case["request_until"], case["request_kind"],
     case["request_provisional"]) = _request_deadline(case, ctx)


def _current_deadline(case: dict, ctx: FoldContext) -> tuple[str | None, str | None, int]:
    """The earliest deadline the holder must meet in the current state: (date, kind,
    whether it is provisional)."""
    d = date.fromisoformat
    found: list[tuple[date, str, bool]] = []
    state = case["state"]

    def add(key: str, start: str, kind: str, extra_days: int = 0) -> None:
        due = ctx.count(key, d(start), extra_days)
        found.append((due.on, kind, due.provisional))
    if state == "registered":
        # 15 days from when the holder received it (Art. 22/23), not from registration
        key = "accept" if ctx.tiers.get(case["holder"]) in DECIDING_TIERS else "forward"
        add(key, case.get("received_on") or case["registered_on"], key)
    if state in ("accepted", "in_progress"):
        add("settle", case["accepted_on"] or case["registered_on"], "settle",
            case["extended_days"])
    if state in OPEN and case.get("handover") in ("pending", "signed") and case.get(
            "referral_due"):
        found.append((d(case["referral_due"]), "referral", False))  # set by the referrer
    if state == "replied" and not case.get("followed_up"):
        add("followup_workdays", case["replied_on"], "followup")
    if state == "review_requested":
        add("review_answer", case["review_requested_on"], "review")
    if state == "recheck_requested":
        add("recheck_answer", case["recheck_requested_on"], "recheck")
    if not found:
        return None, None, 0
    due, kind, provisional = min(found)
    return due.isoformat(), kind, int(provisional)


def _request_deadline(case: dict, ctx: FoldContext) -> tuple[str | None, str | None, int]:
    """The last day of the petitioner's open right to ask for review or re-review."""
    window = request_window(case)
    if window is None:
        return None, None, 0
    key, start = window
    due = ctx.count(key, date.fromisoformat(start))
    return due.on.isoformat(), key, int(due.provisional)


# -- rows ------------------------------------------------------------------------

CASE_COLUMNS = (
    "id", "origin_node", "holder", "state", "handover", "referred_by", "archived",
    "needs_review", "conflicts", "query_code", "channel", "nature", "category", "summary",
    "request", "facts", "people_count", "collective", "first_time", "repeat_of", "skip_level",
    "lead_leader", "assignee", "decision", "reply", "delivery", "rating", "reopen_count",
    "urge_count", "extended_days", "merged_into", "outcome", "registered_on", "accepted_on",
    "replied_on", "closed_on", "due_on", "due_kind", "heads", "event_count", "updated_at",
    "referred_on", "referral_due", "due_provisional", "request_until", "request_kind",
    "request_provisional", "delivered_on", "accused_unit", "circle_top", "decided_in_time",
    "done_in_time", "reviewed", "lead_account", "lead_unit", "received_by")
APPOINTMENT_COLUMNS = ("id", "case_id", "unit", "leader", "leader_name", "at", "place", "note",
                       "status", "outcome", "done_on")
ATTACHMENT_COLUMNS = ("case_id", "sha256", "size", "type", "kind", "name", "up_to", "origin",
                      "added_on", "event")
ORDER_COLUMNS = ("id", "case_id", "issuer", "target", "instruction", "deadline", "status",
                 "issued_on", "acknowledged_on", "feedback", "feedback_on", "closed_on")


def write(db, case_id: str, folded: Folded) -> None:
    write_many(db, [(case_id, folded)])


def write_many(db, items: list[tuple[str, Folded]]) -> None:
    """Replace the rows of many cases (a run of received events) in a few statements."""
    ids = [case_id for case_id, _ in items]
    for chunk, marks in store.chunks(ids):
        db.conn.execute(f"DELETE FROM cases WHERE id IN ({marks})", chunk)
    folded_cases = [(case_id, f) for case_id, f in items if f.case is not None]
    db.conn.executemany(f"INSERT INTO cases ({', '.join(CASE_COLUMNS)}) VALUES "
                        f"({', '.join('?' * len(CASE_COLUMNS))})",
                        [list(map(f.case.get, CASE_COLUMNS)) for _, f in folded_cases])
    people = []
    for case_id, f in folded_cases:
        for i, p in enumerate(f.petitioners):
            # a field withheld from this tier is stored as where it stays, not as its value
            withheld = {k: v["up_to"] for k, v in p.items()
                        if isinstance(v, dict) and disclosure.is_commitment(v)}
            value = {k: None if k in withheld else v for k, v in p.items()}
            people.append((case_id, i, value["name"] or "", value.get("id_number"),
                           value.get("phone"), value.get("address"),
                           int(p.get("representative", False)),
                           json.dumps(withheld) if withheld else None))
    db.conn.executemany("INSERT INTO petitioners (case_id, idx, name, id_number, phone, address,"
                        " representative, withheld) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", people)
    db.conn.executemany(f"INSERT INTO supervision_orders ({', '.join(ORDER_COLUMNS)}) VALUES "
                        f"({', '.join('?' * len(ORDER_COLUMNS))})",
                        [[{**order, "case_id": case_id}[c] for c in ORDER_COLUMNS]
                         for case_id, f in folded_cases for order in f.orders.values()])
    db.conn.executemany(f"INSERT INTO appointments ({', '.join(APPOINTMENT_COLUMNS)}) VALUES "
                        f"({', '.join('?' * len(APPOINTMENT_COLUMNS))})",
                        [[{**a, "case_id": case_id}[c] for c in APPOINTMENT_COLUMNS]
                         for case_id, f in folded_cases for a in f.appointments.values()])
    db.conn.executemany(f"INSERT INTO attachments ({', '.join(ATTACHMENT_COLUMNS)}) VALUES "
                        f"({', '.join('?' * len(ATTACHMENT_COLUMNS))})",
                        [[{"name": None, "up_to": None, **a, "case_id": case_id}[c]
                          for c in ATTACHMENT_COLUMNS]
                         for case_id, f in folded_cases for a in f.attachments])


def clear(db) -> None:
    db.conn.execute("DELETE FROM cases")  # petitioners, orders, appointments... cascade


def prune(db) -> None:
    db.conn.execute("DELETE FROM cases WHERE NOT EXISTS (SELECT 1 FROM events WHERE "
                    "subject = cases.id AND type LIKE 'case.%')")


registry.register(registry.Domain(
    kind="case", name="cases", validate_body=validate_body, context=FoldContext.of, fold=fold,
    write_many=write_many, clear=clear, prune=prune,
    urgent=frozenset({"case.escalated", "case.reported"}),
    free_text=FREE_TEXT,
    authority=tuple(Row(r.type, r.writer, r.roles, r.tiers) for r in RULES.values())))
