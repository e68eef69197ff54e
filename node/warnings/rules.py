"""预警 rules and fold: what each action requires and does, and a warning's rows.

Status: raised 已上报 -> acknowledged 已签收 -> handling 处置中 -> defused 已化解
| escalated 已升级 | occurred 已发生. Besides the actions people take, two events
are written by a node itself, with the actor ``system``: ``warning.received``
and ``warning.alarmed`` (the same-day chain, ``node.warnings.chain``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

from node import i18n, log, membership, registry, trust, validate
from node.authority import NoAuthority, Row, check_role, is_above
from node.cases.vocab import CATEGORIES, OFFICE, WORKERS, code_of
from node.causal import heads
from node.clock import parse
from node.errors import N_, IllegalTransition, NodeError, NotAllowed, ValidationError
from node.warnings.risk import DESTINATIONS, SOURCES, STATUSES, risk, sensitive_overlap


@dataclass(frozen=True)
class FoldContext:
    risk: dict
    sensitive: list
    tz: object
    tiers: dict = field(default_factory=dict)     # node id -> tier
    parents: dict = field(default_factory=dict)   # node id -> parent id
    former_parents: dict = field(default_factory=dict)  # membership.former_parents

    @classmethod
    def of(cls, node) -> FoldContext:
        tree = trust.tree(node.db)
        return cls(risk=node.settings["RISK"], sensitive=node.settings["SENSITIVE_DATES"],
                   tz=node.tz, tiers=tree.tiers, parents=tree.parents,
                   former_parents=membership.former_parents(node.db))

    def above(self, upper: str, lower: str, ts: str) -> bool:
        return is_above(self.parents, self.former_parents, upper, lower, ts)


@dataclass
class Folded:
    warning: dict | None
    acks: list[dict] = field(default_factory=list)
    receipts: list[dict] = field(default_factory=list)
    alarms: list[dict] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    rejected: dict[str, NodeError] = field(default_factory=dict)


def _bool(name, value):
    if value in (None, ""):
        return False
    if not isinstance(value, bool):
        raise ValidationError(N_("%(field)s must be true or false"), field=name)
    return value


def _clean_raise(body: dict) -> dict:
    allowed = {"source", "subject", "category", "place", "trigger", "expected_size",
               "expected_date", "destination", "skip_level_risk", "beijing_risk",
               "lead_leader", "linked_cases", "measures"}
    unknown = set(body) - allowed
    if unknown:
        raise ValidationError(N_("unknown field %(field)s"), field=sorted(unknown)[0])
    fields = validate.Fields()
    out = {
        "source": fields.check(code_of, SOURCES, "source", body.get("source") or "screening"),
        "subject": fields.check(validate.line, "subject", body.get("subject")),
        "category": fields.check(code_of, CATEGORIES, "category",
                                 body.get("category") or "other"),
        "place": fields.check(validate.line, "place", body.get("place")),
        "expected_size": fields.check(validate.integer, "expected_size",
                                      body.get("expected_size"), minimum=1, maximum=100000),
        "destination": fields.check(code_of, DESTINATIONS, "destination",
                                    body.get("destination") or "town"),
        "skip_level_risk": fields.check(_bool, "skip_level_risk", body.get("skip_level_risk")),
        "beijing_risk": fields.check(_bool, "beijing_risk", body.get("beijing_risk")),
    }
    expected = fields.check(validate.a_date, "expected_date", body.get("expected_date"),
                            required=False)
    if expected:
        out["expected_date"] = expected.isoformat()
    for name, check in (("trigger", validate.text), ("measures", validate.text),
                        ("lead_leader", validate.line)):
        value = fields.check(check, name, body.get(name), required=False)
        if value:
            out[name] = value
    linked = body.get("linked_cases") or []
    if not isinstance(linked, list):
        fields.errors.append(ValidationError(N_("%(field)s must be a list"),
                                             field="linked_cases"))
    elif linked:
        out["linked_cases"] = [fields.check(validate.line, "linked_cases", c, max_len=80)
                               for c in linked]
    fields.done()
    return out


def _clean(**spec):
    def clean(body):
        unknown = set(body) - set(spec)
        if unknown:
            raise ValidationError(N_("unknown field %(field)s"), field=sorted(unknown)[0])
        fields = validate.Fields()
        out = {k: v for k, check in spec.items()
               if (v := fields.check(check, k, body.get(k), required=False)) is not None}
        fields.done()
        return out
    return clean


@dataclass(frozen=True)
class Rule:
    action: str
    type: str
    roles: tuple[str, ...]
    states: tuple[str, ...]
    clean: object
    to: str | None
    writer: str = "raiser_or_above"  # node.authority.WRITERS


_OPEN = ("raised", "acknowledged", "handling")
RULES = {r.action: r for r in (
    Rule("raise", "warning.raised", WORKERS, (), _clean_raise, "raised", "own_number"),
    Rule("acknowledge", "warning.acknowledged", WORKERS, _OPEN, _clean(note=validate.text),
         None, "above_raiser"),
    Rule("handle", "warning.handling", WORKERS, _OPEN,
         _clean(measures=validate.text, lead_leader=validate.line), "handling"),
    Rule("defuse", "warning.defused", OFFICE, _OPEN, _clean(note=validate.text), "defused"),
    Rule("escalate", "warning.escalated", OFFICE, _OPEN, _clean(note=validate.text),
         "escalated"),
    Rule("occurred", "warning.occurred", OFFICE, _OPEN, _clean(note=validate.text),
         "occurred"),
    Rule("note", "warning.note", WORKERS, tuple(STATUSES), _clean(note=validate.text), None),
)}

# Automatic events of the same-day chain: written by a node itself (never through ``act``),
# with the actor ``system`` as node.membership writes enrollments.
RECEIVED, ALARMED = "warning.received", "warning.alarmed"
OPEN = _OPEN


def _clean_alarm(body: dict) -> dict:
    unknown = set(body) - {"node", "hours"}
    if unknown:
        raise ValidationError(N_("unknown field %(field)s"), field=sorted(unknown)[0])
    return {"node": validate.node_id("node", body.get("node")),
            "hours": validate.integer("hours", body.get("hours"), minimum=1, maximum=24 * 30)}


AUTO = {r.action: r for r in (
    Rule("receive", RECEIVED, (log.SYSTEM.role,), tuple(STATUSES), _clean(), None,
         "above_raiser"),
    Rule("alarm", ALARMED, (log.SYSTEM.role,), tuple(STATUSES), _clean_alarm, None,
         "above_raiser"),
)}
AUTO_LABELS = {"receive": ("收到", "received"),
               "alarm": ("超时未签收告警", "alarm: not acknowledged in time")}
BY_TYPE = {r.type: r for r in (*RULES.values(), *AUTO.values())}
i18n.add_labels("state", STATUSES)
i18n.add_labels("action", AUTO_LABELS)


def validate_body(event_type: str, body: dict) -> None:
    rule = BY_TYPE.get(event_type)
    if rule is None:
        raise ValidationError(N_("unknown event type %(type)s"), type=event_type, field="type")
    if rule.clean(dict(body)) != body:
        raise ValidationError(N_("%(field)s: not in normal form"), field="body")
    if rule.action == "handle" and not body.get("measures"):
        raise ValidationError(N_("%(field)s is required"), field="measures")


def _local(ts: str, tz) -> str:
    return parse(ts).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def fold(ordered, ctx: FoldContext) -> Folded:
    folded = Folded(warning=None)
    evs = []
    for ev, _ancestors in ordered:
        evs.append(ev)
        rule = BY_TYPE[ev.type]
        try:
            _apply(folded, rule, ev, ctx)
        except NodeError as err:
            folded.rejected[ev.id] = err
            continue
        folded.applied.append(ev.id)
    if folded.warning is not None:
        folded.warning.update(heads=json.dumps(list(heads(evs))), event_count=len(evs),
                              updated_at=max(e.ts for e in evs))
    return folded


def _apply(folded: Folded, rule: Rule, ev, ctx: FoldContext) -> None:
    w = folded.warning
    if rule.action == "raise":
        if w is not None:
            raise IllegalTransition(N_("warning %(id)s is already raised"), id=ev.subject)
        if not ev.subject.startswith(f"YJ-{ev.origin}-"):
            raise NoAuthority(N_("warning number %(id)s does not belong to node %(node)s"),
                              id=ev.subject, node=ev.origin)
        check_role(ev.role, ctx.tiers.get(ev.origin), rule.roles, rule.action)
        b = ev.revealed
        expected = date.fromisoformat(b["expected_date"]) if b.get("expected_date") else None
        sensitive = sensitive_overlap(expected, ctx.sensitive, ctx.risk["window_days"])
        score, level = risk(b, ctx.risk, sensitive)
        folded.warning = {
            "id": ev.subject, "origin_node": ev.origin, "status": "raised",
            "source": b["source"], "subject": b["subject"], "category": b["category"],
            "place": b["place"], "trigger_desc": b.get("trigger"),
            "expected_size": b["expected_size"], "expected_date": b.get("expected_date"),
            "destination": b["destination"], "skip_level_risk": int(b["skip_level_risk"]),
            "beijing_risk": int(b["beijing_risk"]), "sensitive_date": sensitive,
            "risk_score": score, "risk_level": level, "measures": b.get("measures"),
            "lead_leader": b.get("lead_leader"),
            "linked_cases": json.dumps(b.get("linked_cases", []), ensure_ascii=False),
            "raised_at": _local(ev.ts, ctx.tz)}
        return
    if w is None:
        raise IllegalTransition(N_("no warning %(id)s"), id=ev.subject)
    check_role(ev.role, ctx.tiers.get(ev.origin), rule.roles, rule.action)
    raiser = w["origin_node"]
    if ev.origin == raiser:
        if rule.writer == "above_raiser":
            raise NoAuthority(N_("the node that raised warning %(id)s does not %(action)s it"),
                              id=ev.subject, action=rule.action)
    elif not ctx.above(ev.origin, raiser, ev.ts):
        raise NoAuthority(N_("%(node)s is not above %(raiser)s, which raised warning %(id)s: "
                             "it may not %(action)s it"), node=ev.origin, raiser=raiser,
                          id=ev.subject, action=rule.action)
    if w["status"] not in rule.states:
        raise IllegalTransition(N_("cannot %(action)s a warning that is %(state)s"),
                                action=rule.action, state=w["status"])
    if rule.action in AUTO:
        _apply_auto(folded, rule, ev, ctx)
        return
    if rule.action == "acknowledge":
        if any(a["node_id"] == ev.origin for a in folded.acks):
            raise IllegalTransition(N_("this node has already acknowledged the warning"))
        folded.acks.append({"node_id": ev.origin, "actor": ev.actor, "at": _local(ev.ts, ctx.tz)})
        if w["status"] == "raised":
            w["status"] = "acknowledged"
        return
    if rule.action == "handle":
        w["measures"] = ev.revealed["measures"]
        if ev.body.get("lead_leader"):
            w["lead_leader"] = ev.body["lead_leader"]
    if rule.to:
        w["status"] = rule.to


def _apply_auto(folded: Folded, rule: Rule, ev, ctx: FoldContext) -> None:
    """A receipt or an alarm: a node's own record, once per node, never at the origin."""
    if ev.actor != log.SYSTEM.username:
        raise NotAllowed(N_("only the node itself records %(action)s"), action=rule.action)
    if rule.action == "receive":
        if any(r["node_id"] == ev.origin for r in folded.receipts):
            raise IllegalTransition(N_("this node has already recorded receiving the warning"))
        folded.receipts.append({"node_id": ev.origin, "at": _local(ev.ts, ctx.tz), "ts": ev.ts})
        return
    late = ev.body["node"]
    if late != ev.origin:
        raise NotAllowed(N_("a node raises the alarm only for its own acknowledgement"))
    if any(a["node_id"] == late for a in folded.alarms):
        raise IllegalTransition(N_("this node has already raised the alarm for the warning"))
    if any(a["node_id"] == late for a in folded.acks):
        raise IllegalTransition(N_("this node has already acknowledged the warning"))
    folded.alarms.append({"node_id": late, "hours": ev.body["hours"],
                          "at": _local(ev.ts, ctx.tz)})


COLUMNS = ("id", "origin_node", "status", "source", "subject", "category", "place",
           "trigger_desc", "expected_size", "expected_date", "destination", "skip_level_risk",
           "beijing_risk", "sensitive_date", "risk_score", "risk_level", "measures",
           "lead_leader", "linked_cases", "raised_at", "heads", "event_count", "updated_at")


def write_many(db, items: list[tuple[str, Folded]]) -> None:
    for warning_id, folded in items:
        write(db, warning_id, folded)


def write(db, warning_id: str, folded: Folded) -> None:
    db.conn.execute("DELETE FROM warnings WHERE id = ?", (warning_id,))
    if folded.warning is None:
        return
    db.conn.execute(f"INSERT INTO warnings ({', '.join(COLUMNS)}) VALUES "
                    f"({', '.join('?' * len(COLUMNS))})",
                    [folded.warning[c] for c in COLUMNS])
    for ack in folded.acks:
        db.conn.execute("INSERT INTO warning_acks (warning_id, node_id, actor, at) "
                        "VALUES (?, ?, ?, ?)", (warning_id, ack["node_id"], ack["actor"],
                                                ack["at"]))
    db.conn.executemany("INSERT INTO warning_receipts (warning_id, node_id, at, ts) "
                        "VALUES (?, ?, ?, ?)", [(warning_id, r["node_id"], r["at"], r["ts"])
                                                for r in folded.receipts])
    db.conn.executemany("INSERT INTO warning_alarms (warning_id, node_id, hours, at) "
                        "VALUES (?, ?, ?, ?)", [(warning_id, a["node_id"], a["hours"], a["at"])
                                                for a in folded.alarms])


def clear(db) -> None:
    db.conn.execute("DELETE FROM warnings")  # acks, receipts, alarms cascade


def prune(db) -> None:
    db.conn.execute("DELETE FROM warnings WHERE NOT EXISTS (SELECT 1 FROM events WHERE "
                    "subject = warnings.id AND type LIKE 'warning.%')")


registry.register(registry.Domain(
    kind="warning", name="warnings", validate_body=validate_body, context=FoldContext.of,
    fold=fold, write_many=write_many, clear=clear, prune=prune,
    urgent=frozenset({"warning.raised", "warning.escalated", ALARMED}),
    free_text=frozenset({"trigger", "measures", "note"}),
    authority=tuple(Row(r.type, r.writer, r.roles) for r in (*RULES.values(), *AUTO.values()))))
