"""预警 early warnings of group petitions: their own record, risk and status flow.

Status: raised 已上报 -> acknowledged 已签收 -> handling 处置中 -> defused 已化解
| escalated 已升级 | occurred 已发生. Every level that receives a warning
acknowledges it once; the acknowledgements form the same-day chain. The
risk level (一般 / 较大 / 重大) is computed from a formula kept in config,
so a node's rebuild re-rates old warnings after the formula changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from node import validate
from node.cases import CATEGORIES, OFFICE, WORKERS, code_of
from node.errors import N_, ConfigError, IllegalTransition, NodeError, NotAllowed, ValidationError

STATUSES = {
    "raised": ("已上报", "Raised"), "acknowledged": ("已签收", "Acknowledged"),
    "handling": ("处置中", "Being handled"), "defused": ("已化解", "Defused"),
    "escalated": ("已升级", "Escalated"), "occurred": ("已发生", "Occurred"),
}
FINAL = ("defused", "escalated", "occurred")
SOURCES = {"screening": ("排查", "Screening"), "village_report": ("村级报告", "Village report"),
           "visit_signs": ("来访苗头", "Signs at a visit"), "opinion": ("舆情", "Public opinion")}
DESTINATIONS = {"town": ("镇", "Town"), "city": ("市", "City"),
                "province": ("省", "Province"), "beijing": ("京", "Beijing")}
LEVELS = {"general": ("一般", "General"), "major": ("较大", "Major"),
          "serious": ("重大", "Serious")}

DEFAULT_RISK = {
    # points for the expected number of people
    "size_5": 1, "size_20": 2, "size_50": 3,
    # points for where they intend to go
    "dest_town": 0, "dest_city": 1, "dest_province": 2, "dest_beijing": 3,
    # points for stated risks and for falling near a sensitive date
    "skip_level": 1, "beijing": 2, "sensitive": 2, "window_days": 3,
    # a score at or above these is 较大 / 重大
    "major": 3, "serious": 6,
}
DEFAULT_SENSITIVE = (
    {"from": "03-01", "to": "03-15", "name": "全国两会"},
    {"from": "06-28", "to": "07-02", "name": "七一"},
    {"from": "09-28", "to": "10-08", "name": "国庆"},
)


def validate_risk(value: dict) -> dict:
    out = dict(DEFAULT_RISK)
    for key, points in value.items():
        if key not in DEFAULT_RISK:
            raise ConfigError(N_("setting RISK: unknown key %(key)s"), key=key)
        if not isinstance(points, int) or isinstance(points, bool) or points < 0:
            raise ConfigError(N_("setting RISK: %(key)s must be a whole number >= 0"), key=key)
        out[key] = points
    if out["major"] > out["serious"]:
        raise ConfigError(N_("setting RISK: major must not be above serious"))
    return out


def validate_sensitive_dates(value: list) -> list[dict]:
    out = list(DEFAULT_SENSITIVE)
    for item in value:
        if not isinstance(item, dict) or set(item) != {"from", "to", "name"}:
            raise ConfigError(N_("setting SENSITIVE_DATES: each entry needs from, to and name"))
        for key in ("from", "to"):
            try:
                datetime.strptime("2000-" + str(item[key]), "%Y-%m-%d")
            except ValueError:
                raise ConfigError(N_("setting SENSITIVE_DATES: %(value)r is not MM-DD"),
                                  value=item[key]) from None
        out.append(dict(item))
    return out


def sensitive_overlap(expected: date | None, periods: list[dict], window: int) -> str | None:
    """The name of a sensitive period within ``window`` days of the expected date."""
    if expected is None:
        return None
    for period in periods:
        for year in (expected.year - 1, expected.year, expected.year + 1):
            start = date.fromisoformat(f"{year}-{period['from']}")
            end = date.fromisoformat(f"{year}-{period['to']}")
            if end < start:
                end = end.replace(year=year + 1)
            if (start - expected).days <= window and (expected - end).days <= window:
                return period["name"]
    return None


def risk(body: dict, risk_table: dict, sensitive: str | None) -> tuple[int, str]:
    r = risk_table
    size = body["expected_size"]
    score = r["size_50"] if size >= 50 else r["size_20"] if size >= 20 else (
        r["size_5"] if size >= 5 else 0)
    score += r["dest_" + body["destination"]]
    score += r["skip_level"] * body["skip_level_risk"] + r["beijing"] * body["beijing_risk"]
    score += r["sensitive"] if sensitive else 0
    level = "serious" if score >= r["serious"] else "major" if score >= r["major"] else "general"
    return score, level


@dataclass(frozen=True)
class FoldContext:
    risk: dict
    sensitive: list
    tz: object

    @classmethod
    def of(cls, node) -> FoldContext:
        return cls(risk=node.settings["RISK"], sensitive=node.settings["SENSITIVE_DATES"],
                   tz=node.tz)


@dataclass
class Folded:
    warning: dict | None
    acks: list[dict] = field(default_factory=list)
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
    out = {
        "source": code_of(SOURCES, "source", body.get("source") or "screening"),
        "subject": validate.line("subject", body.get("subject")),
        "category": code_of(CATEGORIES, "category", body.get("category") or "other"),
        "place": validate.line("place", body.get("place")),
        "expected_size": validate.integer("expected_size", body.get("expected_size"),
                                          minimum=1, maximum=100000),
        "destination": code_of(DESTINATIONS, "destination", body.get("destination") or "town"),
        "skip_level_risk": _bool("skip_level_risk", body.get("skip_level_risk")),
        "beijing_risk": _bool("beijing_risk", body.get("beijing_risk")),
    }
    expected = validate.a_date("expected_date", body.get("expected_date"), required=False)
    if expected:
        out["expected_date"] = expected.isoformat()
    for name, check in (("trigger", validate.text), ("measures", validate.text),
                        ("lead_leader", validate.line)):
        value = check(name, body.get(name), required=False)
        if value:
            out[name] = value
    linked = body.get("linked_cases") or []
    if not isinstance(linked, list):
        raise ValidationError(N_("%(field)s must be a list"), field="linked_cases")
    if linked:
        out["linked_cases"] = [validate.line("linked_cases", c, max_len=80) for c in linked]
    return out


def _clean(**spec):
    def clean(body):
        unknown = set(body) - set(spec)
        if unknown:
            raise ValidationError(N_("unknown field %(field)s"), field=sorted(unknown)[0])
        return {k: v for k, check in spec.items()
                if (v := check(k, body.get(k), required=False)) is not None}
    return clean


@dataclass(frozen=True)
class Rule:
    action: str
    type: str
    roles: tuple[str, ...]
    states: tuple[str, ...]
    clean: object
    to: str | None


_OPEN = ("raised", "acknowledged", "handling")
RULES = {r.action: r for r in (
    Rule("raise", "warning.raised", WORKERS, (), _clean_raise, "raised"),
    Rule("acknowledge", "warning.acknowledged", WORKERS, _OPEN, _clean(note=validate.text),
         None),
    Rule("handle", "warning.handling", WORKERS, _OPEN,
         _clean(measures=validate.text, lead_leader=validate.line), "handling"),
    Rule("defuse", "warning.defused", OFFICE, _OPEN, _clean(note=validate.text), "defused"),
    Rule("escalate", "warning.escalated", OFFICE, _OPEN, _clean(note=validate.text),
         "escalated"),
    Rule("occurred", "warning.occurred", OFFICE, _OPEN, _clean(note=validate.text),
         "occurred"),
    Rule("note", "warning.note", WORKERS, tuple(STATUSES), _clean(note=validate.text), None),
)}
BY_TYPE = {r.type: r for r in RULES.values()}


def validate_body(event_type: str, body: dict) -> None:
    rule = BY_TYPE.get(event_type)
    if rule is None:
        raise ValidationError(N_("unknown event type %(type)s"), type=event_type, field="type")
    if rule.clean(dict(body)) != body:
        raise ValidationError(N_("%(field)s: not in normal form"), field="body")
    if rule.action == "handle" and not body.get("measures"):
        raise ValidationError(N_("%(field)s is required"), field="measures")


def _local(ts: str, tz) -> str:
    moment = datetime.fromisoformat(ts[:19]).replace(tzinfo=UTC)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


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
        from node.log import heads
        folded.warning.update(heads=json.dumps(list(heads(evs))), event_count=len(evs),
                              updated_at=max(e.ts for e in evs))
    return folded


def _apply(folded: Folded, rule: Rule, ev, ctx: FoldContext) -> None:
    w = folded.warning
    if rule.action == "raise":
        if w is not None:
            raise IllegalTransition(N_("warning %(id)s is already raised"), id=ev.subject)
        if not ev.subject.startswith(f"YJ-{ev.origin}-"):
            raise NotAllowed(N_("warning number %(id)s does not belong to node %(node)s"),
                             id=ev.subject, node=ev.origin)
        if ev.role not in rule.roles:
            raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=ev.role,
                             action=rule.action)
        b = ev.body
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
    if ev.role not in rule.roles:
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=ev.role,
                         action=rule.action)
    if w["status"] not in rule.states:
        raise IllegalTransition(N_("cannot %(action)s a warning that is %(state)s"),
                                action=rule.action, state=w["status"])
    if rule.action == "acknowledge":
        if any(a["node_id"] == ev.origin for a in folded.acks):
            raise IllegalTransition(N_("this node has already acknowledged the warning"))
        folded.acks.append({"node_id": ev.origin, "actor": ev.actor, "at": _local(ev.ts, ctx.tz)})
        if w["status"] == "raised":
            w["status"] = "acknowledged"
        return
    if rule.action == "handle":
        w["measures"] = ev.body["measures"]
        if ev.body.get("lead_leader"):
            w["lead_leader"] = ev.body["lead_leader"]
    if rule.to:
        w["status"] = rule.to


COLUMNS = ("id", "origin_node", "status", "source", "subject", "category", "place",
           "trigger_desc", "expected_size", "expected_date", "destination", "skip_level_risk",
           "beijing_risk", "sensitive_date", "risk_score", "risk_level", "measures",
           "lead_leader", "linked_cases", "raised_at", "heads", "event_count", "updated_at")


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


def clear(db) -> None:
    db.conn.execute("DELETE FROM warnings")


def raise_warning(node, actor, fields: dict):
    """Raise an early warning (上报预警); returns the event."""
    from node import log
    from node.store import next_value
    rule = RULES["raise"]
    if actor.role not in rule.roles:
        raise NotAllowed(N_("the role %(role)s may not %(action)s"), role=actor.role,
                         action="raise")
    body = rule.clean(fields)
    year = node.today().year
    warning_id = f"YJ-{node.id}-{year}-{next_value(node.db, f'warning:{year}'):04d}"
    return log.append(node, actor, rule.type, warning_id, body)


def act(node, actor, warning_id: str, action: str, fields: dict):
    from node import log
    rule = RULES.get(action)
    if rule is None or action == "raise":
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="action",
                              value=action)
    get(node, warning_id)
    body = rule.clean(fields)
    if action == "handle" and not body.get("measures"):
        raise ValidationError(N_("%(field)s is required"), field="measures")
    return log.append(node, actor, rule.type, warning_id, body)


def get(node, warning_id: str) -> dict:
    row = node.db.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM warnings WHERE id = ?",
                               (warning_id,)).fetchone()
    if row is None:
        from node.errors import NotFound
        raise NotFound(N_("no warning %(id)s"), id=warning_id)
    return dict(zip(COLUMNS, row, strict=True))


def acks(node, warning_id: str) -> list[dict]:
    rows = node.db.conn.execute("SELECT node_id, actor, at FROM warning_acks WHERE warning_id "
                                "= ? ORDER BY at, node_id", (warning_id,))
    return [dict(zip(("node_id", "actor", "at"), r, strict=True)) for r in rows]


def listing(node, status: str | None = None) -> list[dict]:
    sql = f"SELECT {', '.join(COLUMNS)} FROM warnings"
    params = []
    if status:
        sql += " WHERE status = ?"
        params.append(code_of(STATUSES, "status", status))
    rows = node.db.conn.execute(sql + " ORDER BY risk_score DESC, raised_at DESC", params)
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]
