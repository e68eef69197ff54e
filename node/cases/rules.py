"""信访件 rules: what each action requires and does, as one table.

Every action is one :class:`Rule`: its event type, whether it is a *decision*
(only the holding node, 承办单位, may make it) or a *path* action (any node that
has the case: notes, urges, supervision orders, follow-ups), who may take it
(roles, tiers), the states it applies in, the clean function of its fields,
and the applier that changes the case in the fold, raising when the event
does not fit. The same rule checks a local command before it is signed and a
remote event when it arrives, so every node agrees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from node import deadlines, log, membership, trust
from node.authority import NoAuthority
from node.cases.fields import (
    _clean_appoint,
    _clean_appointment,
    _clean_attach,
    _clean_close,
    _clean_correct,
    _clean_extend,
    _clean_followup,
    _clean_lead,
    _clean_register,
    _date,
    _fields,
    _node,
    _opt_date,
    _opt_line,
    _opt_text,
    _order_id,
    _req_line,
    _req_text,
    _vocab,
)
from node.cases.vocab import (
    ALL_TIERS,
    ANSWERED,
    CLOSED,
    DECIDING_TIERS,
    DECISIONS,
    DELIVERY,
    LEADERS,
    NOT_ACCEPT_GROUNDS,
    OFFICE,
    OPEN,
    STATES,
    TIER_CODES,
    WORKERS,
)
from node.errors import N_, IllegalTransition, NodeError, NotAllowed, NotFound, ValidationError
from node.settings import Setting, declare, non_negative

declare(Setting("COLLECTIVE_MIN_PEOPLE", 5, "A petition by at least this many people is "
                "collective (集体访, practice): it is reported to every level above the same "
                "day (Art. 25).", int, non_negative("COLLECTIVE_MIN_PEOPLE")))


# -- fold context and result ---------------------------------------------------

@dataclass(frozen=True)
class FoldContext:
    tiers: dict[str, str]          # node id -> tier
    parents: dict[str, str | None]  # node id -> parent id
    calendar: deadlines.HolidayCalendar
    limits: dict[str, int]
    tz: object
    collective_min: int = 5
    # node -> {a parent it had: the time it moved on from it}: membership.former_parents
    former_parents: dict[str, dict[str, str]] = field(default_factory=dict)
    # event id -> the time this node received it, for events whose writer's clock was off
    # (log.release_held): their dates, and the deadlines counted from them, start there
    received: dict[str, str] = field(default_factory=dict)
    _dates: dict[str, date] = field(default_factory=dict, repr=False, compare=False)
    _dues: dict[tuple[str, date, int], deadlines.Due] = field(default_factory=dict, repr=False,
                                                            compare=False)
    _prefixes: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, node) -> FoldContext:
        tree, former = trust.tree(node.db), membership.former_parents(node.db)
        return cls(tiers=tree.tiers, parents=tree.parents,
                   received=log.clock_overrides(node.db), calendar=node.calendar,
                   limits=node.settings["LIMITS"], tz=node.tz,
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

    def count(self, key: str, start: date, extra_days: int = 0) -> deadlines.Due:
        """Limit ``key`` from ``start`` (plus an extension): its due date and whether it is
        provisional (deadlines.count)."""
        # the cases of a bundle start on a few days: each limit is counted once a day
        found = self._dues.get((key, start, extra_days))
        if found is None:
            found = self._dues[key, start, extra_days] = deadlines.count(
                self.calendar, self.limits, key, start, extra_days)
        return found

    def due(self, key: str, start: date) -> date:
        return self.count(key, start).on


@dataclass
class Folded:
    case: dict | None
    petitioners: list[dict] = field(default_factory=list)
    orders: dict[str, dict] = field(default_factory=dict)
    appointments: dict[str, dict] = field(default_factory=dict)  # 约访, by number
    attachments: list[dict] = field(default_factory=list)
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
    # who may write it (node.authority.WRITERS), besides the roles: a decision is the
    # holder's; a path action, unless named here, any node of the case's circle's
    path_writer: str = "circle"
    decision_writer: str = "holder"  # a decision someone besides the holder may take

    @property
    def type(self) -> str:
        return "case." + EVENT_NAMES.get(self.action, self.action)

    @property
    def writer(self) -> str:
        if self.action == "register":
            return "own_number"
        return self.decision_writer if self.decision else self.path_writer


# -- appliers: mutate the case in the fold, raising when the event does not fit -

def _on(ctx: FoldContext, ev) -> str:
    """The day an event happened, as this node counts it (see FoldContext.received)."""
    return ctx.local_date(ctx.received.get(ev.id, ev.ts)).isoformat()


def _registered(case, body, ev, ctx, folded):
    raise AssertionError("registration is folded separately")  # pragma: no cover


def _set_state(state):
    def apply(case, body, ev, ctx, folded):
        case["state"] = state
    return apply


def _accept(case, body, ev, ctx, folded):
    case.update(state="accepted", accepted_on=_on(ctx, ev))


def _not_accept(case, body, ev, ctx, folded):
    if body.get("ground") == "no_longer" and not case.get("repeat_of"):
        raise ValidationError(N_("%(field)s: 不再受理 is for a repeat petition of a concluded "
                                 "matter: register it with the earlier case (repeat_of)"),
                              field="ground")
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
    parent = ctx.parents.get(ev.origin)
    # Art. 30: a report against this node's parent goes past it, to the unit above it
    skip = case.get("accused_unit") == parent and parent is not None
    if not _above(ctx, body["to"], parent if skip else ev.origin, ev):
        if skip:
            raise NotAllowed(N_("a report against %(unit)s goes to the unit above it (Art. 30)"),
                             unit=parent)
        raise NotAllowed(N_("a case is escalated one level, to this node's parent"))
    case["_circle"].add(body["to"])
    case.update(holder=body["to"], handover=None, referred_by=None, received_on=_on(ctx, ev))


def _refer(case, body, ev, ctx, folded):
    _not_to_the_accused(case, body["to"])
    if not _above(ctx, ev.origin, body["to"], ev):
        raise NotAllowed(N_("a case is referred down to a child of this node"))
    if body["deadline"] <= _on(ctx, ev):
        raise ValidationError(N_("%(field)s: the date %(value)s is in the past"),
                              field="deadline", value=body["deadline"])
    case["_circle"].add(body["to"])
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
                raise NoAuthority(N_("only the unit that issued the supervision order may do "
                                     "this"))
            raise NoAuthority(N_("only the unit the supervision order is addressed to may do "
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
    limit = ctx.due("settle", date.fromisoformat(case["accepted_on"] or case["registered_on"]))
    if _on(ctx, ev) > limit.isoformat():
        raise IllegalTransition(N_("the time limit ended on %(date)s: it may be extended only "
                                   "before it ends (Art. 34)"), date=limit.isoformat())
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
    # A dissatisfied petitioner's way on is a review (复查, Art. 35), which is theirs to ask
    # for: the follow-up records the rating and that they were told so (告知), and the
    # case stays answered; reopening (发回重办) is the office's own decision.
    case.update(rating=body["rating"], followed_up=True)


def _reopen(case, body, ev, ctx, folded):
    case.update(state="in_progress", reopen_count=case["reopen_count"] + 1)


def _within(key: str, start: str, ev, ctx: FoldContext, msgid: str) -> None:
    limit = ctx.due(key, date.fromisoformat(start)).isoformat()
    if _on(ctx, ev) > limit:
        raise IllegalTransition(msgid, date=limit)


def request_window(case: dict) -> tuple[str, str] | None:
    """The petitioner's open right to ask for review (复查, Art. 35) or re-review (复核,
    Art. 36): (the limit's key, the day it runs from) for the last answer not yet asked
    about, in a state where it may be asked, closed or not (closing a case does not end
    the 30 days); None when there is none."""
    if case["state"] in ("replied", "concluded") and case.get("replied_on") and not (
            case.get("review_requested_on")):
        return "review_request", case.get("delivered_on") or case["replied_on"]
    if case["state"] in ("reviewed", "concluded") and case.get("reviewed_on") and not (
            case.get("recheck_requested_on")):
        return "recheck_request", case["reviewed_on"]
    return None


def _ask(key: str, msgid: str, state: str):
    def apply(case, body, ev, ctx, folded):
        window = request_window(case)
        if window is None or window[0] != key:
            raise IllegalTransition(N_("cannot %(action)s a case that is %(state)s"),
                                    action=key, state=case["state"])
        _within(key, window[1], ev, ctx, msgid)
        # a closed case is open again while the level above answers
        case.update(state=state, closed_on=None, outcome=None)
        case[f"{key}ed_on"] = _on(ctx, ev)
    return apply


_review_request = _ask("review_request", N_(
    "a review could be requested until %(date)s, 30 days after the reply was delivered "
    "(Art. 35)"), "review_requested")


def _reviewed(case, body, ev, ctx, folded):
    # At the city, the top of this network, the level above is the province: the city
    # records the answer it receives.
    if ev.origin == case.get("replied_by") and ctx.tiers.get(ev.origin) != "city":
        raise NotAllowed(N_("a review (复查) is answered by the level above the unit that "
                            "replied (Art. 35): escalate the case first"))
    case.update(state="reviewed", decision=body["decision"], reviewed_on=_on(ctx, ev),
                reviewed_by=ev.origin)


_recheck_request = _ask("recheck_request", N_(
    "a re-review could be requested until %(date)s, 30 days after the review answer "
    "(Art. 36)"), "recheck_requested")


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
    if ev.origin != case["holder"]:  # the unit that referred it down takes it back
        case.update(holder=ev.origin, handover=None, referred_by=None, referral_due=None)
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


def _report(case, body, ev, ctx, folded):
    """Art. 25: a collective petition (集体访) is reported to every level above the same
    day; registering one writes this at once, and it is urgent (it syncs on arrival)."""
    if not case["collective"]:
        raise IllegalTransition(N_("only a collective petition (%(n)s people or more) is "
                                   "reported up the same day"), n=ctx.collective_min)
    if case.get("_reported"):
        raise IllegalTransition(N_("the collective petition is already reported up"))
    case["_reported"] = True  # fold-time only


def _correct(case, body, ev, ctx, folded):
    case.update({k: v for k, v in body.items() if k not in ("reason", "masked")})


def _lead(case, body, ev, ctx, folded):
    """包案: a leader of the writing unit takes charge until the case is resolved."""
    case.update(lead_leader=body["leader_name"], lead_account=body["leader"],
                lead_unit=ev.origin)


def _appoint(case, body, ev, ctx, folded):
    number = body["appointment"]
    if not number.startswith(f"YF-{ev.origin}-"):
        raise NotAllowed(N_("appointment number %(id)s does not belong to node %(node)s"),
                         id=number, node=ev.origin)
    if number in folded.appointments:
        raise IllegalTransition(N_("appointment %(id)s already exists"), id=number)
    folded.appointments[number] = {
        "id": number, "unit": ev.origin, "leader": body["leader"],
        "leader_name": body["leader_name"], "at": body["at"], "place": body["place"],
        "note": body.get("note"), "status": "planned", "outcome": None, "done_on": None}


def _appointment(case, body, ev, ctx, folded):
    found = folded.appointments.get(body["appointment"])
    if found is None:
        raise NotFound(N_("no appointment %(id)s on this case"), id=body["appointment"])
    if ev.origin != found["unit"]:
        raise NoAuthority(N_("only the unit that made the appointment records its outcome"))
    if found["status"] != "planned":
        raise IllegalTransition(N_("the appointment %(id)s is already recorded"),
                                id=body["appointment"])
    found.update(status=body["result"], outcome=body["outcome"], done_on=_on(ctx, ev))


def _attach(case, body, ev, ctx, folded):
    if any(a["sha256"] == body["sha256"] for a in folded.attachments):
        raise IllegalTransition(N_("this file is already attached to the case"))
    up_to = body.get("up_to")
    rank = {"village": 0, "area": 1, "town": 2, "city": 3}
    if up_to and rank[up_to] < rank.get(ctx.tiers.get(ev.origin), 0):
        raise ValidationError(N_("%(field)s: below the tier of the node that attaches it"),
                              field="up_to")
    folded.attachments.append({**body, "origin": ev.origin, "added_on": _on(ctx, ev),
                               "event": ev.id})


_ANY = tuple(STATES)
RULES: dict[str, Rule] = {r.action: r for r in (
    Rule("register", False, WORKERS, (), _clean_register, _registered),
    Rule("accept", True, OFFICE, ("registered",), _fields(note=_opt_text), _accept,
         DECIDING_TIERS),
    Rule("not_accept", True, OFFICE, ("registered",),
         _fields(reason=_req_text, ground=_vocab(NOT_ACCEPT_GROUNDS, False)), _not_accept,
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
    Rule("urge", False, OFFICE, OPEN, _fields(message=_req_text), _urge,
         path_writer="above_holder"),
    Rule("urge_ack", False, WORKERS, OPEN, _fields(urge=_order_id, note=_opt_text), _urge_ack,
         path_writer="holder"),
    Rule("supervise", False, OFFICE, OPEN + ANSWERED,
         _fields(order_id=_order_id, instruction=_req_text, deadline=_date), _supervise,
         ("city", "town", "area"), path_writer="above_holder"),
    Rule("supervision_ack", False, WORKERS, _ANY, _fields(order_id=_order_id),
         _order_step(("issued",), "acknowledged", "target"), path_writer="order_target"),
    Rule("supervision_feedback", False, WORKERS, _ANY,
         _fields(order_id=_order_id, feedback=_req_text),
         _order_step(("issued", "acknowledged"), "feedback", "target"),
         path_writer="order_target"),
    Rule("supervision_close", False, OFFICE, _ANY, _fields(order_id=_order_id),
         _order_step(("feedback",), "closed", "issuer"), path_writer="order_issuer"),
    Rule("extend", True, LEADERS, ("accepted", "in_progress"), _clean_extend, _extend),
    Rule("reply", True, OFFICE, ("accepted", "in_progress"),
         _fields(decision=_vocab(DECISIONS), reply=_req_text,
                 delivery=_vocab(DELIVERY, False), delivered_on=_opt_date), _reply,
         DECIDING_TIERS),
    Rule("followup", False, WORKERS, ("replied",), _clean_followup, _followup),
    Rule("reopen", True, OFFICE, ("replied",), _fields(reason=_req_text), _reopen),
    Rule("review_request", False, WORKERS, ("replied", "concluded"), _fields(note=_opt_text),
         _review_request),
    Rule("review", True, OFFICE, ("review_requested",),
         _fields(decision=_vocab(DECISIONS), answer=_req_text), _reviewed, DECIDING_TIERS),
    Rule("recheck_request", False, WORKERS, ("reviewed", "concluded"), _fields(note=_opt_text),
         _recheck_request),
    Rule("close", True, LEADERS, ("replied", "reviewed", "recheck_requested"), _clean_close,
         _close),
    Rule("withdraw", True, WORKERS, OPEN + ANSWERED, _fields(reason=_req_text), _withdraw,
         decision_writer="holder_or_referrer"),
    Rule("merge", True, OFFICE, OPEN, _fields(into=_req_line, reason=_opt_text), _merge),
    Rule("archive", True, (*OFFICE, "admin"), CLOSED, _fields(note=_opt_text), _archive),
    Rule("note", False, WORKERS, _ANY, _fields(text=_req_text), _note),
    Rule("report", False, WORKERS, _ANY, _fields(note=_opt_text), _report,
         ("village", "area", "town"), path_writer="registrant"),
    Rule("correct", True, WORKERS, OPEN, _clean_correct, _correct),
    Rule("lead", False, OFFICE, OPEN + ANSWERED, _clean_lead, _lead),
    Rule("appoint", False, OFFICE, OPEN + ANSWERED, _clean_appoint, _appoint),
    Rule("appointment", False, WORKERS, _ANY, _clean_appointment, _appointment,
         path_writer="appointer"),
    Rule("attach", False, WORKERS, _ANY, _clean_attach, _attach),
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
               "correct": "corrected", "report": "reported", "lead": "lead_set",
               "appoint": "appointed", "appointment": "appointment_recorded",
               "attach": "attached"}

BY_TYPE = {rule.type: rule for rule in RULES.values()}



def validate_body(event_type: str, body: dict) -> None:
    """Refuse a body that is not exactly what its rule's clean function makes of it."""
    rule = BY_TYPE.get(event_type)
    if rule is None:
        raise ValidationError(N_("unknown event type %(type)s"), type=event_type,
                              field="type")
    if rule.clean(dict(body)) != body:
        raise ValidationError(N_("%(field)s: not in normal form"), field="body")
