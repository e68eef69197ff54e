"""信访件 petitions: fields, states, the rules of every transition, and the fold.

A case's rows are a deterministic fold of its events (see node.log). Every
action is one rule: its event type, whether it is a *decision* (only the
holding node, 承办单位, may make it) or a *path* action (any node that has
the case: notes, urges, supervision orders, follow-ups), who may take it
(roles, tiers), the states it applies in, and a function that checks and
cleans its fields. The same rule checks a local command before it is
signed and a remote event when it arrives, so every node agrees.

Two decisions made concurrently (neither writer saw the other) are never
resolved silently: the fixed causal order picks the outcome and the case
is flagged ``needs_review``, listing the event that lost.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from node import deadlines, disclosure, log, validate
from node.errors import N_, IllegalTransition, NodeError, NotAllowed, NotFound, ValidationError
from node.events import canonical
from node.store import next_value

# -- vocabularies: codes are stored; labels (zh first) are shown -----------------

STATES = {
    "registered": ("已登记", "Registered"),
    "accepted": ("已受理", "Accepted"),
    "in_progress": ("办理中", "In progress"),
    "replied": ("已答复", "Replied"),
    "review_requested": ("复查中", "Review requested"),
    "reviewed": ("已复查", "Reviewed"),
    "recheck_requested": ("复核中", "Re-review requested"),
    "concluded": ("已办结", "Concluded"),
    "terminated": ("已终结", "Terminated"),
    "not_accepted": ("不予受理", "Not accepted"),
    "referred_out": ("已转出", "Referred out"),
    "merged": ("已合并", "Merged"),
}
OPEN = ("registered", "accepted", "in_progress")
ANSWERED = ("replied", "review_requested", "reviewed", "recheck_requested")
CLOSED = ("concluded", "terminated", "not_accepted", "referred_out", "merged")
CHANNELS = {
    "letter": ("来信", "Letter"), "visit": ("来访", "Visit"), "phone": ("来电", "Phone"),
    "online": ("网上", "Online"), "leader_day": ("领导接待日", "Leader reception day"),
    "field_visit": ("下访", "Field visit"), "screening": ("村级排查", "Village screening"),
    "assigned": ("上级交办", "Assigned from above"),
}
NATURES = {
    "suggestion": ("建议意见", "Suggestion"), "accusation": ("检举控告", "Report or accusation"),
    "request": ("申诉求决", "Appeal or request"),
}
CATEGORIES = {
    "youfu": ("优抚", "Veterans' benefits"), "dibao": ("低保", "Minimum living allowance"),
    "tekun": ("特困供养与临时救助", "Extreme poverty and temporary relief"),
    "elderly": ("养老服务", "Elderly care"), "children": ("儿童福利", "Child welfare"),
    "disability": ("残疾人福利", "Disability welfare"),
    "marriage": ("婚姻登记", "Marriage registration"), "funeral": ("殡葬", "Funeral services"),
    "placenames": ("区划地名", "Administrative divisions and place names"),
    "grassroots": ("基层政权与村务(选举)", "Village affairs and elections"),
    "social_org": ("社会组织", "Social organisations"), "charity": ("慈善", "Charity"),
    "other": ("其他", "Other"),
}
ORDER_STATES = {"issued": ("已下发", "Issued"), "acknowledged": ("已签收", "Acknowledged"),
                "feedback": ("已反馈", "Feedback given"), "closed": ("已办结", "Closed")}
DECISIONS = {"support": ("支持", "Supported"), "explain": ("解释说明", "Explained"),
             "reject": ("不予支持", "Not supported")}
RATINGS = {"satisfied": ("满意", "Satisfied"), "basic": ("基本满意", "Basically satisfied"),
           "dissatisfied": ("不满意", "Dissatisfied")}
DELIVERY = {"in_person": ("当面送达", "In person"), "post": ("邮寄", "By post"),
            "phone": ("电话告知", "By phone"), "online": ("网上答复", "Online")}
TIER_CODES = {"city": "S", "town": "Z", "area": "P", "village": "C"}  # 市 镇 片 村
MAX_REPRESENTATIVES = 5  # Art. 20: a group visit sends at most five representatives

WORKERS = ("liaison", "handler", "leader")
OFFICE = ("handler", "leader")
LEADERS = ("leader",)
ALL_TIERS = ("city", "town", "area", "village")
DECIDING_TIERS = ("town", "city")  # 受理 and formal replies are for the 信访 offices


def code_of(vocabulary: dict, field_name: str, value, required: bool = True) -> str | None:
    """Accept a code or either label (低保 / dibao / Minimum living allowance)."""
    if value in (None, "") and not required:
        return None
    for code, labels in vocabulary.items():
        if value == code or value in labels:
            return code
    raise ValidationError(N_("%(field)s: unknown value %(value)s"), field=field_name,
                          value=value)


# -- fold context and result ---------------------------------------------------

@dataclass(frozen=True)
class FoldContext:
    tiers: dict[str, str]          # node id -> tier
    parents: dict[str, str | None]  # node id -> parent id
    calendar: deadlines.HolidayCalendar
    limits: dict[str, int]
    tz: object
    collective_min: int = 5
    # node -> {a parent it had: the time it moved on from it}, from node.enrolled events
    former_parents: dict[str, dict[str, str]] = field(default_factory=dict)
    _dates: dict[str, date] = field(default_factory=dict, repr=False, compare=False)
    _dues: dict[tuple[str, date], date] = field(default_factory=dict, repr=False, compare=False)
    _prefixes: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, node) -> FoldContext:
        rows = node.db.conn.execute("SELECT node_id, tier, parent_id FROM nodes").fetchall()
        enrollments: dict[str, list[tuple[str, str]]] = {}
        for subject, origin, ts in node.db.conn.execute(  # membership subjects: N-<node id>
                "SELECT subject, origin, ts FROM events WHERE subject >= 'N-' AND subject < 'N.' "
                "AND type = 'node.enrolled'"):
            enrollments.setdefault(subject.removeprefix("N-"), []).append((ts, origin))
        former: dict[str, dict[str, str]] = {}
        for child, under in enrollments.items():
            under.sort()
            for (_, parent), (moved, _) in zip(under, under[1:], strict=False):
                former.setdefault(child, {})[parent] = moved
        return cls(tiers={r[0]: r[1] for r in rows}, parents={r[0]: r[2] for r in rows},
                   calendar=node.calendar, limits=node.settings["LIMITS"], tz=node.tz,
                   collective_min=node.settings["COLLECTIVE_MIN_PEOPLE"],
                   former_parents=former)

    def local_date(self, ts: str) -> date:
        # A zone's offset changes only on a whole minute, so the local date is the same for
        # every stamp of one UTC minute: a run of events made together converts once.
        minute = ts[:16]
        found = self._dates.get(minute)
        if found is None:
            found = self._dates[minute] = datetime.fromisoformat(minute).replace(
                tzinfo=UTC).astimezone(self.tz).date()
        return found

    def case_prefix(self, origin: str) -> str:
        """What the numbers of the cases ``origin`` registers start with."""
        found = self._prefixes.get(origin)
        if found is None:
            found = self._prefixes[origin] = (
                f"{TIER_CODES.get(self.tiers.get(origin), '?')}-{origin}-")
        return found

    def due(self, key: str, start: date) -> date:
        # the cases of a bundle start on a few days: each limit is counted once a day
        found = self._dues.get((key, start))
        if found is None:
            found = self._dues[key, start] = deadlines.due_for(self.calendar, self.limits, key,
                                                               start)
        return found


@dataclass
class Folded:
    case: dict | None
    petitioners: list[dict] = field(default_factory=list)
    orders: dict[str, dict] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    rejected: dict[str, NodeError] = field(default_factory=dict)


# -- rules ---------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    action: str
    decision: bool
    roles: tuple[str, ...]
    states: tuple[str, ...]
    clean: Callable[[dict], dict]
    apply: Callable[[dict, dict, object, FoldContext, Folded], None]
    tiers: tuple[str, ...] = ALL_TIERS

    @property
    def type(self) -> str:
        return "case." + EVENT_NAMES.get(self.action, self.action)


def _only(body: dict, allowed: set[str] | frozenset[str]) -> None:
    if not allowed.issuperset(body):
        raise ValidationError(N_("unknown field %(field)s"), field=sorted(set(body) - allowed)[0])


def _fields(**spec):
    """A clean function from field validators: name -> callable(field, value)."""
    allowed = frozenset(spec)

    def clean(body: dict) -> dict:
        _only(body, allowed)
        out = {}
        for name, check in spec.items():
            value = check(name, body.get(name))
            if value is not None:
                out[name] = value.isoformat() if isinstance(value, date) else value
        return out
    clean.fields = tuple(spec)
    return clean


def _req_text(name, value):
    return validate.text(name, value)


def _opt_text(name, value):
    return validate.text(name, value, required=False)


def _req_line(name, value):
    return validate.line(name, value)


def _opt_line(name, value):
    return validate.line(name, value, required=False)


def _date(name, value):
    return validate.a_date(name, value)


def _opt_date(name, value):
    return validate.a_date(name, value, required=False)


def _vocab(vocabulary, required=True):
    return lambda name, value: code_of(vocabulary, name, value, required)


def _node(name, value):
    return validate.node_id(name, value)


def _order_id(name, value):
    return validate.line(name, value, max_len=40)


_PETITIONER_FIELDS = frozenset({"name", "id_number", "phone", "address", "representative"})


def _clean_petitioner(index: int, p) -> dict:
    if not isinstance(p, dict):
        raise ValidationError(N_("%(field)s must be a list of people"), field="petitioners")
    _only(p, _PETITIONER_FIELDS)
    where = f"petitioners[{index}]."
    out = {}
    for key, check in (("name", _person_name), ("id_number", validate.id_number),
                       ("phone", validate.phone), ("address", _address)):
        value = p.get(key)
        # a field limited to a lower tier is a commitment to its value (node/disclosure.py)
        if not (isinstance(value, dict) and disclosure.is_commitment(value)):
            value = check(where + key, value)
        if value:
            out[key] = value
    representative = p.get("representative")
    # (a type test, not `in (False, True)`: 1 and 1.0 equal True, and a body holding them
    # would pass validate_body's comparison with its normal form)
    if representative is not None and not isinstance(representative, bool):
        raise ValidationError(N_("%(field)s must be true or false"), field=where + "representative")
    if representative:
        out["representative"] = True
    return out


def _person_name(name, value):
    return validate.line(name, value, max_len=50)


def _address(name, value):
    return validate.line(name, value, required=False)


_REGISTER_FIELDS = frozenset({
    "channel", "nature", "category", "summary", "request", "facts", "people_count",
    "petitioners", "first_time", "repeat_of", "skip_level", "query_code", "accused_unit"})


def _clean_register(body: dict) -> dict:
    _only(body, _REGISTER_FIELDS)
    people = body.get("petitioners")
    if not isinstance(people, list) or not people:
        raise ValidationError(N_("%(field)s: at least one petitioner is required"),
                              field="petitioners")
    if len(people) > 200:
        raise ValidationError(N_("%(field)s: too many people"), field="petitioners")
    petitioners = [_clean_petitioner(i, p) for i, p in enumerate(people)]
    if sum(1 for p in petitioners if p.get("representative")) > MAX_REPRESENTATIVES:
        raise ValidationError(N_("%(field)s: a group visit has at most %(n)s representatives "
                                 "(Art. 20)"), field="petitioners", n=MAX_REPRESENTATIVES)
    out = {
        "channel": code_of(CHANNELS, "channel", body.get("channel") or "visit"),
        "nature": code_of(NATURES, "nature", body.get("nature") or "request"),
        "category": code_of(CATEGORIES, "category", body.get("category")),
        "summary": validate.text("summary", body.get("summary"), max_len=2000),
        "petitioners": petitioners,
        "people_count": validate.integer("people_count", body.get("people_count",
                                         len(petitioners)), minimum=len(petitioners),
                                         maximum=100000),
    }
    for name in ("request", "facts"):
        value = validate.text(name, body.get(name), required=False)
        if value:
            out[name] = value
    repeat_of = validate.line("repeat_of", body.get("repeat_of"), required=False, max_len=80)
    for flag, default in (("first_time", repeat_of is None), ("skip_level", False)):
        value = body.get(flag, default)
        if not isinstance(value, bool):
            raise ValidationError(N_("%(field)s must be true or false"), field=flag)
        out[flag] = value
    if repeat_of:
        out["repeat_of"] = repeat_of
        out["first_time"] = False
    accused = body.get("accused_unit")
    if accused not in (None, ""):
        # Art. 30: a report against an official never reaches the official's own unit
        out["accused_unit"] = validate.node_id("accused_unit", accused)
    code = body.get("query_code") or new_query_code()
    out["query_code"] = validate.line("query_code", code, max_len=16)
    return out


def _clean_days(body: dict) -> dict:
    """Fields: days (1-30), approver, reason."""
    _only(body, {"days", "approver", "reason"})
    return {"days": validate.integer("days", body.get("days"), minimum=1, maximum=30),
            "approver": validate.line("approver", body.get("approver"), max_len=50),
            "reason": validate.text("reason", body.get("reason"))}


def _clean_close(body: dict) -> dict:
    _only(body, {"report", "signers", "answer"})
    signers = body.get("signers")
    if isinstance(signers, str):
        signers = [s for s in signers.replace("，", ",").split(",") if s.strip()]
    if not isinstance(signers, list) or not signers:
        raise ValidationError(N_("%(field)s: the closing report needs at least one signer"),
                              field="signers")
    out = {"report": validate.text("report", body.get("report")),
           "signers": [validate.line("signers", s, max_len=50) for s in signers]}
    answer = validate.text("answer", body.get("answer"), required=False)
    if answer:
        out["answer"] = answer
    return out


def _clean_correct(body: dict) -> dict:
    editable = {"summary": _req_text, "request": _opt_text, "facts": _opt_text,
                "category": _vocab(CATEGORIES), "nature": _vocab(NATURES),
                "channel": _vocab(CHANNELS)}
    _only(body, set(editable) | {"reason"})
    fields = {k: editable[k](k, v) for k, v in body.items() if k in editable}
    if not fields:
        raise ValidationError(N_("%(field)s: say what to correct"), field="fields")
    return {**fields, "reason": validate.text("reason", body.get("reason"))}


# -- appliers: mutate the case in the fold, raising when the event does not fit -

def _on(ctx: FoldContext, ev) -> str:
    return ctx.local_date(ev.ts).isoformat()


def _registered(case, body, ev, ctx, folded):
    raise AssertionError("registration is folded separately")  # pragma: no cover


def _set_state(state):
    def apply(case, body, ev, ctx, folded):
        case["state"] = state
    return apply


def _accept(case, body, ev, ctx, folded):
    case.update(state="accepted", accepted_on=_on(ctx, ev))


def _not_accept(case, body, ev, ctx, folded):
    case.update(state="not_accepted", outcome=body["reason"], closed_on=_on(ctx, ev))


def _settle(case, body, ev, ctx, folded):
    case.update(state="replied", decision=body.get("decision", "explain"),
                reply=body["reply"], replied_on=_on(ctx, ev), delivery="in_person",
                delivered_on=_on(ctx, ev), replied_by=ev.origin)


def _assign(case, body, ev, ctx, folded):
    if not (body.get("assignee") or body.get("lead_leader")):
        raise ValidationError(N_("%(field)s: name an assignee or a lead leader (包案领导)"),
                              field="assignee")
    case["state"] = "in_progress"
    for key in ("assignee", "lead_leader"):
        if body.get(key):
            case[key] = body[key]


def _refer_out(case, body, ev, ctx, folded):
    case.update(state="referred_out", outcome=body["department"], closed_on=_on(ctx, ev))


def _above(ctx: FoldContext, upper: str, lower: str, ev) -> bool:
    """``upper`` is ``lower``'s parent, or was at the time of ``ev`` (a village moved to
    another area keeps the history it made under the old one, and only that)."""
    until = ctx.former_parents.get(lower, {}).get(upper)
    return ctx.parents.get(lower) == upper or (until is not None and ev.ts < until)


def _not_to_the_accused(case, to: str) -> None:
    if case.get("accused_unit") == to:
        raise NotAllowed(N_("a report against %(unit)s may not go to that unit (Art. 30)"),
                         unit=to)


def _escalate(case, body, ev, ctx, folded):
    _not_to_the_accused(case, body["to"])
    if not _above(ctx, body["to"], ev.origin, ev):
        raise NotAllowed(N_("a case is escalated one level, to this node's parent"))
    case.update(holder=body["to"], handover=None, referred_by=None, received_on=_on(ctx, ev))


def _refer(case, body, ev, ctx, folded):
    _not_to_the_accused(case, body["to"])
    if not _above(ctx, ev.origin, body["to"], ev):
        raise NotAllowed(N_("a case is referred down to a child of this node"))
    if body["deadline"] <= _on(ctx, ev):
        raise ValidationError(N_("%(field)s: the date %(value)s is in the past"),
                              field="deadline", value=body["deadline"])
    case.update(holder=body["to"], handover="pending", referred_by=ev.origin,
                referred_on=_on(ctx, ev), referral_due=body["deadline"],
                received_on=_on(ctx, ev))


def _sign(case, body, ev, ctx, folded):
    if case.get("handover") != "pending":
        raise IllegalTransition(N_("there is no referral waiting to be signed for"))
    case["handover"] = "signed"


def _return(case, body, ev, ctx, folded):
    if case.get("handover") != "pending":
        raise IllegalTransition(N_("there is no referral waiting to be signed for"))
    limit = ctx.due("object_workdays", date.fromisoformat(case["referred_on"])).isoformat()
    if _on(ctx, ev) > limit:
        raise IllegalTransition(N_("a misrouted referral must be returned within %(n)s "
                                   "working days (by %(date)s)"),
                                n=ctx.limits["object_workdays"], date=limit)
    case.update(holder=case["referred_by"], handover="returned", referral_due=None,
                received_on=_on(ctx, ev))


def _urge(case, body, ev, ctx, folded):
    case["urge_count"] += 1
    case.setdefault("_urges", []).append(ev.id)  # fold-time only: not a column


def _urge_ack(case, body, ev, ctx, folded):
    if ev.origin != case["holder"]:
        raise NotAllowed(N_("only the node holding the case (%(holder)s) may %(action)s"),
                         holder=case["holder"], action="urge_ack")
    if body["urge"] not in case.get("_urges", ()):
        raise IllegalTransition(N_("there is no urge %(id)s on this case"), id=body["urge"])
    if body["urge"] in case.setdefault("_urges_acked", []):
        raise IllegalTransition(N_("the urge %(id)s is already acknowledged"), id=body["urge"])
    case["_urges_acked"].append(body["urge"])


def _supervise(case, body, ev, ctx, folded):
    if not body["order_id"].startswith(f"DB-{ev.origin}-"):
        raise NotAllowed(N_("supervision order number %(id)s does not belong to node %(node)s"),
                         id=body["order_id"], node=ev.origin)
    if body["order_id"] in folded.orders:
        raise IllegalTransition(N_("supervision order %(id)s already exists"), id=body["order_id"])
    if body["deadline"] <= _on(ctx, ev):
        raise ValidationError(N_("%(field)s: the date %(value)s is in the past"),
                              field="deadline", value=body["deadline"])
    if case["holder"] == ev.origin:
        raise NotAllowed(N_("a supervision order goes to the unit holding the case, "
                            "not to oneself"))
    folded.orders[body["order_id"]] = {
        "id": body["order_id"], "issuer": ev.origin, "target": case["holder"],
        "instruction": body["instruction"], "deadline": body["deadline"], "status": "issued",
        "issued_on": _on(ctx, ev), "acknowledged_on": None, "feedback": None,
        "feedback_on": None, "closed_on": None}


def _order_step(status_from: tuple[str, ...], status_to: str, by: str):
    def apply(case, body, ev, ctx, folded):
        order = folded.orders.get(body["order_id"])
        if order is None:
            raise NotFound(N_("no supervision order %(id)s on this case"), id=body["order_id"])
        if ev.origin != order[by]:
            if by == "issuer":
                raise NotAllowed(N_("only the unit that issued the supervision order may do "
                                    "this"))
            raise NotAllowed(N_("only the unit the supervision order is addressed to may do "
                                "this"))
        if order["status"] not in status_from:
            raise IllegalTransition(N_("the supervision order is %(order_state)s"),
                                    order_state=order["status"])
        order["status"] = status_to
        order[{"acknowledged": "acknowledged_on", "feedback": "feedback_on",
               "closed": "closed_on"}[status_to]] = _on(ctx, ev)
        if status_to == "feedback":
            order["feedback"] = body["feedback"]
    return apply


def _extend(case, body, ev, ctx, folded):
    if case["extended_days"]:
        raise IllegalTransition(N_("the time limit can be extended only once (Art. 34)"))
    if body["days"] > ctx.limits["extend_max"]:
        raise ValidationError(N_("%(field)s: at most %(n)s days"), field="days",
                              n=ctx.limits["extend_max"])
    case["extended_days"] = body["days"]


def _reply(case, body, ev, ctx, folded):
    case.update(state="replied", decision=body["decision"], reply=body["reply"],
                delivery=body.get("delivery", "in_person"), replied_on=_on(ctx, ev),
                delivered_on=body.get("delivered_on") or _on(ctx, ev), followed_up=False,
                replied_by=ev.origin)


def _followup(case, body, ev, ctx, folded):
    case.update(rating=body["rating"], followed_up=True)
    if body["rating"] == "dissatisfied":  # 发回重办: a dissatisfied follow-up reopens
        case.update(state="in_progress", reopen_count=case["reopen_count"] + 1)


def _reopen(case, body, ev, ctx, folded):
    case.update(state="in_progress", reopen_count=case["reopen_count"] + 1)


def _within(key: str, start: str, ev, ctx: FoldContext, msgid: str) -> None:
    limit = ctx.due(key, date.fromisoformat(start)).isoformat()
    if _on(ctx, ev) > limit:
        raise IllegalTransition(msgid, date=limit)


def _review_request(case, body, ev, ctx, folded):
    _within("review_request", case["delivered_on"] or case["replied_on"], ev, ctx,
            N_("a review could be requested until %(date)s, 30 days after the reply was "
               "delivered (Art. 35)"))
    case.update(state="review_requested", review_requested_on=_on(ctx, ev))


def _reviewed(case, body, ev, ctx, folded):
    # At the city, the top of this network, the level above is the province: the city
    # records the answer it receives.
    if ev.origin == case.get("replied_by") and ctx.tiers.get(ev.origin) != "city":
        raise NotAllowed(N_("a review (复查) is answered by the level above the unit that "
                            "replied (Art. 35): escalate the case first"))
    case.update(state="reviewed", decision=body["decision"], reviewed_on=_on(ctx, ev),
                reviewed_by=ev.origin)


def _recheck_request(case, body, ev, ctx, folded):
    _within("recheck_request", case["reviewed_on"], ev, ctx,
            N_("a re-review could be requested until %(date)s, 30 days after the review "
               "answer (Art. 36)"))
    case.update(state="recheck_requested", recheck_requested_on=_on(ctx, ev))


def _close(case, body, ev, ctx, folded):
    final = "terminated" if case["state"] == "recheck_requested" else "concluded"
    if final == "terminated" and not body.get("answer"):
        raise ValidationError(N_("%(field)s: the re-review answer is required"), field="answer")
    if final == "terminated" and ev.origin == case.get("reviewed_by") and ctx.tiers.get(
            ev.origin) != "city":
        raise NotAllowed(N_("a re-review (复核) is answered by the level above the unit that "
                            "reviewed (Art. 36): escalate the case first"))
    case.update(state=final, outcome="closed", closed_on=_on(ctx, ev),
                closing_report={"report": body["report"], "signers": body["signers"]})


def _withdraw(case, body, ev, ctx, folded):
    case.update(state="terminated", outcome="withdrawn", closed_on=_on(ctx, ev))


def _merge(case, body, ev, ctx, folded):
    if body["into"] == case["id"]:
        raise ValidationError(N_("%(field)s: a case cannot be merged into itself"), field="into")
    case.update(state="merged", merged_into=body["into"], closed_on=_on(ctx, ev))


def _archive(case, body, ev, ctx, folded):
    if case["archived"]:
        raise IllegalTransition(N_("the case is already archived"))
    case["archived"] = 1


def _note(case, body, ev, ctx, folded):
    pass


def _correct(case, body, ev, ctx, folded):
    case.update({k: v for k, v in body.items() if k != "reason"})


_ANY = tuple(STATES)
RULES: dict[str, Rule] = {r.action: r for r in (
    Rule("register", False, WORKERS, (), _clean_register, _registered),
    Rule("accept", True, OFFICE, ("registered",), _fields(note=_opt_text), _accept,
         DECIDING_TIERS),
    Rule("not_accept", True, OFFICE, ("registered",), _fields(reason=_req_text), _not_accept,
         DECIDING_TIERS),
    Rule("settle", True, WORKERS, ("registered",),
         _fields(reply=_req_text, decision=_vocab(DECISIONS, False)), _settle),
    Rule("assign", True, OFFICE, ("accepted", "in_progress"),
         _fields(assignee=_opt_line, lead_leader=_opt_line, note=_opt_text), _assign),
    Rule("refer_out", True, OFFICE, OPEN, _fields(department=_req_line, reason=_req_text),
         _refer_out),
    Rule("escalate", True, WORKERS, (*OPEN, "review_requested", "recheck_requested"),
         _fields(to=_node, reason=_req_text), _escalate,
         ("village", "area", "town")),
    Rule("refer", True, OFFICE, OPEN,
         _fields(to=_node, instruction=_req_text, deadline=_date), _refer,
         ("city", "town", "area")),
    Rule("sign", True, WORKERS, OPEN, _fields(note=_opt_text), _sign),
    Rule("return", True, WORKERS, OPEN, _fields(reason=_req_text), _return),
    Rule("urge", False, OFFICE, OPEN, _fields(message=_req_text), _urge),
    Rule("urge_ack", False, WORKERS, OPEN, _fields(urge=_order_id, note=_opt_text), _urge_ack),
    Rule("supervise", False, OFFICE, OPEN + ANSWERED,
         _fields(order_id=_order_id, instruction=_req_text, deadline=_date), _supervise,
         ("city", "town", "area")),
    Rule("supervision_ack", False, WORKERS, _ANY, _fields(order_id=_order_id),
         _order_step(("issued",), "acknowledged", "target")),
    Rule("supervision_feedback", False, WORKERS, _ANY,
         _fields(order_id=_order_id, feedback=_req_text),
         _order_step(("issued", "acknowledged"), "feedback", "target")),
    Rule("supervision_close", False, OFFICE, _ANY, _fields(order_id=_order_id),
         _order_step(("feedback",), "closed", "issuer")),
    Rule("extend", True, LEADERS, ("accepted", "in_progress"), _clean_days, _extend),
    Rule("reply", True, OFFICE, ("accepted", "in_progress"),
         _fields(decision=_vocab(DECISIONS), reply=_req_text,
                 delivery=_vocab(DELIVERY, False), delivered_on=_opt_date), _reply,
         DECIDING_TIERS),
    Rule("followup", False, WORKERS, ("replied",),
         _fields(rating=_vocab(RATINGS), note=_opt_text), _followup),
    Rule("reopen", True, OFFICE, ("replied",), _fields(reason=_req_text), _reopen),
    Rule("review_request", False, WORKERS, ("replied",), _fields(note=_opt_text),
         _review_request),
    Rule("review", True, OFFICE, ("review_requested",),
         _fields(decision=_vocab(DECISIONS), answer=_req_text), _reviewed, DECIDING_TIERS),
    Rule("recheck_request", False, WORKERS, ("reviewed",), _fields(note=_opt_text),
         _recheck_request),
    Rule("close", True, LEADERS, ("replied", "reviewed", "recheck_requested"), _clean_close,
         _close),
    Rule("withdraw", True, WORKERS, OPEN + ANSWERED, _fields(reason=_req_text), _withdraw),
    Rule("merge", True, OFFICE, OPEN, _fields(into=_req_line, reason=_opt_text), _merge),
    Rule("archive", True, (*OFFICE, "admin"), CLOSED, _fields(note=_opt_text), _archive),
    Rule("note", False, WORKERS, _ANY, _fields(text=_req_text), _note),
    Rule("correct", True, WORKERS, OPEN, _clean_correct, _correct),
)}
EVENT_NAMES = {"register": "registered", "accept": "accepted", "not_accept": "not_accepted",
               "settle": "settled", "assign": "assigned", "refer_out": "referred_out",
               "escalate": "escalated", "refer": "referred", "sign": "signed",
               "return": "returned", "urge": "urged", "supervise": "supervision_issued",
               "supervision_ack": "supervision_acknowledged", "extend": "extended",
               "urge_ack": "urge_acknowledged",
               "reply": "replied", "followup": "followed_up", "reopen": "reopened",
               "review_request": "review_requested", "review": "reviewed",
               "recheck_request": "recheck_requested", "close": "closed",
               "withdraw": "withdrawn", "merge": "merged", "archive": "archived",
               "correct": "corrected"}
_clean_register.fields = ("category", "summary", "petitioners", "channel", "nature", "request",
                          "facts", "people_count", "first_time", "repeat_of", "skip_level")
_clean_days.fields = ("days", "approver", "reason")
_clean_close.fields = ("report", "signers", "answer")
_clean_correct.fields = ("summary", "request", "facts", "category", "nature", "channel",
                         "reason")
BY_TYPE = {rule.type: rule for rule in RULES.values()}
ACTION_LABELS = {
    "register": ("登记", "register"), "accept": ("受理", "accept"),
    "not_accept": ("不予受理", "not accept"), "settle": ("当场化解", "settle on the spot"),
    "assign": ("交办/包案", "assign"), "refer_out": ("转出", "refer out"),
    "escalate": ("上报", "escalate"), "refer": ("交办下级", "refer down"),
    "sign": ("签收", "sign for"), "return": ("退回", "return"), "urge": ("催办", "urge"),
    "supervise": ("督办", "supervise"), "supervision_ack": ("签收督办单", "acknowledge order"),
    "urge_ack": ("签收催办", "acknowledge urge"),
    "supervision_feedback": ("督办反馈", "report on order"),
    "supervision_close": ("督办办结", "close order"), "extend": ("延期", "extend"),
    "reply": ("答复", "reply"), "followup": ("回访", "follow up"),
    "reopen": ("发回重办", "reopen"), "review_request": ("申请复查", "request review"),
    "review": ("复查答复", "answer review"), "recheck_request": ("申请复核", "request re-review"),
    "close": ("结案", "close"), "withdraw": ("撤回", "withdraw"), "merge": ("合并", "merge"),
    "archive": ("归档", "archive"), "note": ("备注", "add a note"), "correct": ("更正", "correct"),
    # warnings
    "raise": ("上报预警", "raise"), "acknowledge": ("签收", "acknowledge"),
    "revoke": ("吊销", "revoke"),
    "handle": ("处置", "handle"), "defuse": ("化解", "defuse"), "occurred": ("已发生", "occurred"),
}


def validate_body(event_type: str, body: dict) -> None:
    """Refuse a body that is not exactly what its rule's clean function makes of it."""
    rule = BY_TYPE.get(event_type)
    if rule is None:
        raise ValidationError(N_("unknown event type %(type)s"), type=event_type,
                              field="type")
    if rule.clean(dict(body)) != body:
        raise ValidationError(N_("%(field)s: not in normal form"), field="body")


# -- the fold ------------------------------------------------------------------

def _new_case(ev, ctx: FoldContext) -> dict:
    b = ev.body
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
        "registered_on": ctx.local_date(ev.ts).isoformat(), "accepted_on": None,
        "replied_on": None, "closed_on": None,
        "accused_unit": b.get("accused_unit"),  # for the fold's checks; not a column
    }


def _numbered_by(case_id: str, origin: str, ctx: FoldContext) -> bool:
    """A case number names the node that registered it: no node numbers another's cases."""
    prefix = ctx.case_prefix(origin)
    rest = case_id[len(prefix):]
    return case_id.startswith(prefix) and len(rest) >= 6 and rest[4] == "-" and (
        rest[:4] + rest[5:]).isdigit()


def _check(rule: Rule, case: dict | None, ev, ctx: FoldContext) -> None:
    if case is None:
        raise NotFound(N_("no case %(id)s"), id=ev.subject)
    if ev.role not in rule.roles:
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=ev.role,
                         action=rule.action)
    if ctx.tiers.get(ev.origin) not in rule.tiers:
        raise NotAllowed(N_("a %(tier)s node may not %(action)s"),
                         tier=ctx.tiers.get(ev.origin), action=rule.action)
    if rule.decision and ev.origin != case["holder"]:
        raise NotAllowed(N_("only the node holding the case (%(holder)s) may %(action)s"),
                         holder=case["holder"], action=rule.action)
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
                if ev.role not in WORKERS:
                    raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=ev.role,
                                     action="register")
                folded.case = _new_case(ev, ctx)
                folded.petitioners = ev.revealed["petitioners"]
            else:
                _check(rule, folded.case, ev, ctx)
                rule.apply(folded.case, ev.body, ev, ctx, folded)
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


def _finish(folded: Folded, evs, ctx: FoldContext) -> None:
    case = folded.case
    conflicts = sorted(set(folded.rejected) | set(case.pop("_concurrent", [])))
    case["conflicts"] = canonical(conflicts, check=False).decode()
    case["needs_review"] = int(bool(conflicts))
    case["heads"] = canonical(list(log.heads(evs)), check=False).decode()
    case["event_count"] = len(evs)
    case["updated_at"] = max(e.ts for e in evs)
    case["due_on"], case["due_kind"] = _current_deadline(case, ctx)


def _current_deadline(case: dict, ctx: FoldContext) -> tuple[str | None, str | None]:
    """The earliest deadline the holder must meet in the current state."""
    d = date.fromisoformat
    found: list[tuple[date, str]] = []
    state = case["state"]
    if state == "registered":
        # 15 days from when the holder received it (Art. 22/23), not from registration
        key = "accept" if ctx.tiers.get(case["holder"]) in DECIDING_TIERS else "forward"
        found.append((ctx.due(key, d(case.get("received_on") or case["registered_on"])), key))
    if state in ("accepted", "in_progress"):
        settle = deadlines.due_date(ctx.calendar, d(case["accepted_on"] or case["registered_on"]),
                                    ctx.limits["settle"] + case["extended_days"])
        found.append((settle, "settle"))
    if state in OPEN and case.get("handover") in ("pending", "signed") and case.get(
            "referral_due"):
        found.append((d(case["referral_due"]), "referral"))
    if state == "replied" and not case.get("followed_up"):
        found.append((ctx.due("followup_workdays", d(case["replied_on"])), "followup"))
    if state == "review_requested":
        found.append((ctx.due("review_answer", d(case["review_requested_on"])), "review"))
    if state == "recheck_requested":
        found.append((ctx.due("recheck_answer", d(case["recheck_requested_on"])), "recheck"))
    if not found:
        return None, None
    due, kind = min(found)
    return due.isoformat(), kind


# -- rows ------------------------------------------------------------------------

CASE_COLUMNS = (
    "id", "origin_node", "holder", "state", "handover", "referred_by", "archived",
    "needs_review", "conflicts", "query_code", "channel", "nature", "category", "summary",
    "request", "facts", "people_count", "collective", "first_time", "repeat_of", "skip_level",
    "lead_leader", "assignee", "decision", "reply", "delivery", "rating", "reopen_count",
    "urge_count", "extended_days", "merged_into", "outcome", "registered_on", "accepted_on",
    "replied_on", "closed_on", "due_on", "due_kind", "heads", "event_count", "updated_at",
    "referred_on", "referral_due")
ORDER_COLUMNS = ("id", "case_id", "issuer", "target", "instruction", "deadline", "status",
                 "issued_on", "acknowledged_on", "feedback", "feedback_on", "closed_on")


def write(db, case_id: str, folded: Folded) -> None:
    write_many(db, [(case_id, folded)])


def write_many(db, items: list[tuple[str, Folded]]) -> None:
    """Replace the rows of many cases (a run of received events) in a few statements."""
    ids = [case_id for case_id, _ in items]
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        db.conn.execute(f"DELETE FROM cases WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
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


def clear(db) -> None:
    db.conn.execute("DELETE FROM cases")  # petitioners and orders cascade


# -- commands: what the CLI and the pages call -----------------------------------

def new_query_code() -> str:
    alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(8))


def new_case_id(node) -> str:
    year = node.today().year
    serial = next_value(node.db, f"case:{year}")
    return f"{TIER_CODES[node.tier]}-{node.id}-{year}-{serial:04d}"


def register(node, actor, fields: dict):
    """Register a petition (登记); returns the event. The caller owns the transaction."""
    rule = RULES["register"]
    if actor.role not in rule.roles:
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=actor.role,
                         action="register")
    people = fields.get("petitioners")
    for i, person in enumerate(people if isinstance(people, list) else ()):
        for key in disclosure.FIELDS:  # a commitment is this node's to make, not the user's
            if isinstance(person, dict) and isinstance(person.get(key), dict):
                raise ValidationError(N_("%(field)s must be text"),
                                      field=f"petitioners[{i}].{key}")
    body = rule.clean(fields)
    if body.get("repeat_of"):
        get(node, body["repeat_of"])  # a repeat petition must point at a case we know
    # fields that never go above a tier are signed as commitments (node/disclosure.py)
    body, disclosed = disclosure.commit(body, node.settings["NEVER_ABOVE"], node.tier)
    return log.append(node, actor, "case.registered", new_case_id(node), body, disclosed)


def act(node, actor, case_id: str, action: str, fields: dict):
    """Take one action on a case; refuses with a reason if it is not allowed now."""
    rule = RULES.get(action)
    if rule is None or action == "register":
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="action",
                              value=action)
    if actor.role not in rule.roles:
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=actor.role,
                         action=action)
    case = get(node, case_id)
    fields = dict(fields)
    if action == "escalate":
        fields.setdefault("to", node.settings["PARENT_ID"] or None)
        if not fields["to"]:
            raise NotAllowed(N_("this node has no parent yet: enroll it with its parent first "
                                "(or set PARENT_ID)"))

    if action == "supervise" and not fields.get("order_id"):
        year = node.today().year
        fields["order_id"] = f"DB-{node.id}-{year}-{next_value(node.db, f'order:{year}'):04d}"
    body = rule.clean(fields)
    today = node.today().isoformat()
    for key in ("deadline",):
        if key in body and body[key] <= today:
            raise ValidationError(N_("%(field)s: the date %(value)s is in the past"),
                                  field=key, value=body[key])
    if action == "merge":
        target = get(node, body["into"])
        if target["state"] in CLOSED:
            raise IllegalTransition(N_("a repeat petition joins an open case; %(id)s is closed"),
                                    id=body["into"])
    return log.append(node, actor, rule.type, case["id"], body)


def get(node, case_id: str) -> dict:
    cur = node.db.conn.execute(f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE id = ?",
                               (case_id,))
    row = cur.fetchone()
    if row is None:
        raise NotFound(N_("no case %(id)s"), id=case_id)
    return dict(zip(CASE_COLUMNS, row, strict=True))


def petitioners(node, case_id: str) -> list[dict]:
    """The case's petitioners; ``withheld`` names the fields kept below this tier and the
    tier each stays at (node/disclosure.py)."""
    rows = node.db.conn.execute("SELECT name, id_number, phone, address, representative, "
                                "withheld FROM petitioners WHERE case_id = ? ORDER BY idx",
                                (case_id,))
    return [{**dict(zip(("name", "id_number", "phone", "address", "representative"), r[:5],
                        strict=True)), "withheld": json.loads(r[5]) if r[5] else {}}
            for r in rows]


def orders(node, case_id: str) -> list[dict]:
    rows = node.db.conn.execute(f"SELECT {', '.join(ORDER_COLUMNS)} FROM supervision_orders "
                                "WHERE case_id = ? ORDER BY issued_on, id", (case_id,))
    return [dict(zip(ORDER_COLUMNS, r, strict=True)) for r in rows]


def listing(node, *, state: str | None = None, due: str | None = None,
            holder: str | None = None) -> list[dict]:
    """Cases, newest first; ``due`` is 'soon' or 'overdue' (relative to today)."""
    sql = f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE 1 = 1"
    params: list = []
    if state:
        sql += " AND state = ?"
        params.append(code_of(STATES, "state", state))
    if holder:
        sql += " AND holder = ?"
        params.append(holder)
    if due:
        if due not in ("soon", "overdue"):
            raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="due",
                                  value=due)
        sql += " AND due_on IS NOT NULL"
    rows = [dict(zip(CASE_COLUMNS, r, strict=True))
            for r in node.db.conn.execute(sql + " ORDER BY registered_on DESC, id DESC", params)]
    today = node.today()
    for row in rows:
        row["days_overdue"] = (deadlines.days_overdue(date.fromisoformat(row["due_on"]), today)
                               if row["due_on"] else 0)
    if due == "overdue":
        rows = [r for r in rows if r["days_overdue"] > 0]
    elif due == "soon":
        rows = [r for r in rows if deadlines.is_due_soon(
            date.fromisoformat(r["due_on"]), today, node.settings["DUE_SOON_DAYS"])]
    return rows


def allowed_actions(node, actor, case: dict) -> list[str]:
    """The actions this user may take on this case now (for pages and `case show`)."""
    tier = node.tier
    case_orders = orders(node, case["id"])
    targets = {o["status"] for o in case_orders if o["target"] == node.id}
    issued = {o["status"] for o in case_orders if o["issuer"] == node.id}
    fits = {
        "sign": case["handover"] == "pending", "return": case["handover"] == "pending",
        "extend": not case["extended_days"], "archive": not case["archived"],
        "escalate": bool(node.settings["PARENT_ID"]),
        "refer": bool(node.db.conn.execute("SELECT 1 FROM nodes WHERE parent_id = ?",
                                           (node.id,)).fetchone()),
        "supervise": case["holder"] != node.id,
        "supervision_ack": "issued" in targets,
        "supervision_feedback": bool(targets & {"issued", "acknowledged"}),
        "supervision_close": "feedback" in issued,
        "urge_ack": case["holder"] == node.id and case["urge_count"] > node.db.conn.execute(
            "SELECT count(*) FROM events WHERE subject = ? AND type = 'case.urge_acknowledged'",
            (case["id"],)).fetchone()[0],
    }
    return [a for a, rule in RULES.items() if a != "register" and actor.role in rule.roles
            and tier in rule.tiers and case["state"] in rule.states
            and (not rule.decision or case["holder"] == node.id) and fits.get(a, True)]


def orders_by(node, *, issuer: str | None = None, target: str | None = None) -> list[dict]:
    """Supervision orders across cases, issued by or addressed to a unit, newest first."""
    sql = f"SELECT {', '.join(ORDER_COLUMNS)} FROM supervision_orders WHERE 1 = 1"
    params: list = []
    for column, value in (("issuer", issuer), ("target", target)):
        if value:
            sql += f" AND {column} = ?"
            params.append(value)
    rows = node.db.conn.execute(sql + " ORDER BY issued_on DESC, id DESC", params)
    return [dict(zip(ORDER_COLUMNS, r, strict=True)) for r in rows]
