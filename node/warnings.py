"""预警 early warnings of group petitions: their own record, risk and status flow.

Status: raised 已上报 -> acknowledged 已签收 -> handling 处置中 -> defused 已化解
| escalated 已升级 | occurred 已发生. The risk level (一般 / 较大 / 重大) is
computed from a formula kept in config, so a node's rebuild re-rates old
warnings after the formula changes.

The same-day chain (当日链): every node above the origin that a warning
reaches records, as an automatic event it signs, that it received it
(``warning.received``, actor ``system``); a person there acknowledges it
(``warning.acknowledged``); a node that has not acknowledged it within
WARNING_ACK_HOURS of receiving it raises the alarm (``warning.alarmed``),
which the routing policy carries to its parent, the next level up. All three
are events, so every node on the path folds the same chain and a rebuild
gives it back. ``chain`` reads it for the pages and the API.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from node import log, validate
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
    Rule("receive", RECEIVED, (log.SYSTEM.role,), tuple(STATUSES), _clean(), None),
    Rule("alarm", ALARMED, (log.SYSTEM.role,), tuple(STATUSES), _clean_alarm, None),
)}
AUTO_LABELS = {"receive": ("收到", "received"),
               "alarm": ("超时未签收告警", "alarm: not acknowledged in time")}
BY_TYPE = {r.type: r for r in (*RULES.values(), *AUTO.values())}


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
        w["measures"] = ev.body["measures"]
        if ev.body.get("lead_leader"):
            w["lead_leader"] = ev.body["lead_leader"]
    if rule.to:
        w["status"] = rule.to


def _apply_auto(folded: Folded, rule: Rule, ev, ctx: FoldContext) -> None:
    """A receipt or an alarm: a node's own record, once per node, never at the origin."""
    w = folded.warning
    if ev.actor != log.SYSTEM.username:
        raise NotAllowed(N_("only the node itself records %(action)s"), action=rule.action)
    if ev.origin == w["origin_node"]:
        raise NotAllowed(N_("the node that raised warning %(id)s does not %(action)s it"),
                         id=ev.subject, action=rule.action)
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
    db.conn.execute("DELETE FROM warnings")


def raise_warning(node, actor, fields: dict):
    """Raise an early warning (上报预警); returns the event."""
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


# -- the same-day chain ----------------------------------------------------------------

def receipts(node, warning_id: str) -> list[dict]:
    rows = node.db.conn.execute("SELECT node_id, at, ts FROM warning_receipts WHERE "
                                "warning_id = ? ORDER BY ts, node_id", (warning_id,))
    return [dict(zip(("node_id", "at", "ts"), r, strict=True)) for r in rows]


def alarms(node, warning_id: str) -> list[dict]:
    rows = node.db.conn.execute("SELECT node_id, hours, at FROM warning_alarms WHERE "
                                "warning_id = ? ORDER BY at, node_id", (warning_id,))
    return [dict(zip(("node_id", "hours", "at"), r, strict=True)) for r in rows]


def _parents(db) -> dict[str, str | None]:
    return dict(db.conn.execute("SELECT node_id, parent_id FROM nodes").fetchall())


def _ancestry(parents: dict, node_id: str) -> list[str]:
    """``node_id`` and the nodes above it in ``parents`` (the trust table), nearest first."""
    chain = [node_id]
    while (parent := parents.get(chain[-1])) and parent not in chain:
        chain.append(parent)
    return chain


def _utc(ts: str) -> datetime:
    return datetime.fromisoformat(ts[:19]).replace(tzinfo=UTC)


def chain(node, warning_id: str) -> list[dict]:
    """The same-day chain: one row per level, from the origin up, as this node knows it.

    Each row has the unit (``node_id``, ``tier``), when it raised the warning
    (the origin) or received it, who acknowledged it and when, the alarm it
    raised for not acknowledging in time, and, while it has not acknowledged,
    ``ack_due`` (the time the alarm falls due) and ``late`` (whether that time has
    passed, counted now, so a page shows a lapse before the alarm's job has run).
    Times are in this node's time zone.
    """
    w = get(node, warning_id)
    hours = node.settings["WARNING_ACK_HOURS"]
    now = node.clock()
    tiers = dict(node.db.conn.execute("SELECT node_id, tier FROM nodes").fetchall())
    acked = {a["node_id"]: a for a in acks(node, warning_id)}
    received = {r["node_id"]: r for r in receipts(node, warning_id)}
    alarmed = {a["node_id"]: a for a in alarms(node, warning_id)}
    path = _ancestry(_parents(node.db), w["origin_node"])
    others = sorted((set(acked) | set(received) | set(alarmed)) - set(path))
    out = []
    for unit in path + others:
        if unit != w["origin_node"] and unit not in received and unit not in acked \
                and unit not in alarmed:
            continue  # a level the warning has not reached (or not yet told us about)
        row = {"node_id": unit, "tier": tiers.get(unit), "origin": unit == w["origin_node"],
               "raised_at": w["raised_at"] if unit == w["origin_node"] else None,
               "received_at": None, "acknowledged_at": None, "acknowledged_by": None,
               "alarmed_at": None, "alarm_hours": None, "ack_due": None, "late": False}
        if unit in received:
            row["received_at"] = received[unit]["at"]
        if unit in acked:
            row["acknowledged_at"] = acked[unit]["at"]
            row["acknowledged_by"] = acked[unit]["actor"]
        if unit in alarmed:
            row["alarmed_at"] = alarmed[unit]["at"]
            row["alarm_hours"] = alarmed[unit]["hours"]
        if unit in received and unit not in acked and w["status"] in OPEN:
            due = _utc(received[unit]["ts"]) + timedelta(hours=hours)
            row["ack_due"] = due.astimezone(node.tz).strftime("%Y-%m-%d %H:%M")
            row["late"] = now >= due
        out.append(row)
    return out


def _system_event(node, event_type: str, warning_id: str, body: dict) -> bool:
    """Append an automatic event in a savepoint; False (nothing written) if the fold refuses."""
    from node import store
    try:
        with store.write(node.db):
            log.append(node, log.SYSTEM, event_type, warning_id, body)
    except NodeError as e:
        logging.getLogger("siji.warnings").warning("%s %s not recorded: %s", event_type,
                                                   warning_id, e.english())
        return False
    return True


def record_receipts(node, subjects=None) -> list[str]:
    """Record ``warning.received`` for each warning this node holds from a node below it and
    has no receipt of yet (only those in ``subjects`` if given); returns their ids.

    Idempotent: one receipt per node per warning. Called where a bundle from a
    neighbour is applied, in its transaction, and by the periodic warning job for
    anything that arrived otherwise. The caller holds a write transaction.
    """
    sql = ("SELECT id, origin_node FROM warnings w WHERE origin_node != ? AND NOT EXISTS "
           "(SELECT 1 FROM warning_receipts r WHERE r.warning_id = w.id AND r.node_id = ?)")
    params: list = [node.id, node.id]
    if subjects is not None:
        # a bundle's warnings (more than 500 at once is not real; the job would get the rest)
        params += sorted({s for s in subjects if s.startswith("YJ-")})[:500]
        if len(params) == 2:
            return []
        sql += f" AND id IN ({','.join('?' * (len(params) - 2))})"
    rows = node.db.conn.execute(sql + " ORDER BY id", params).fetchall()
    parents, done = _parents(node.db), []
    for warning_id, origin in rows:
        if node.id not in _ancestry(parents, origin)[1:]:
            continue  # only a level above the origin receives a warning
        if _system_event(node, RECEIVED, warning_id, {}):
            done.append(warning_id)
    return done


def raise_alarms(node) -> list[str]:
    """Raise ``warning.alarmed`` for each open warning this node received more than
    WARNING_ACK_HOURS ago and has not acknowledged; returns their ids.

    One alarm per node per warning; the routing policy takes it to this node's
    parent, the next level up. The top of the network (no parent) has no level
    to alarm and raises none. The caller holds a write transaction.
    """
    if not node.settings["PARENT_ID"]:
        return []
    from node.core import iso
    hours = node.settings["WARNING_ACK_HOURS"]
    cutoff = iso(node.clock() - timedelta(hours=hours))
    marks = ",".join("?" * len(OPEN))
    rows = node.db.conn.execute(
        "SELECT r.warning_id FROM warning_receipts r JOIN warnings w ON w.id = r.warning_id "
        f"WHERE r.node_id = ? AND r.ts <= ? AND w.status IN ({marks}) "
        "AND NOT EXISTS (SELECT 1 FROM warning_acks a WHERE a.warning_id = r.warning_id "
        "AND a.node_id = r.node_id) "
        "AND NOT EXISTS (SELECT 1 FROM warning_alarms x WHERE x.warning_id = r.warning_id "
        "AND x.node_id = r.node_id) ORDER BY r.warning_id",
        (node.id, cutoff, *OPEN)).fetchall()
    return [warning_id for (warning_id,) in rows
            if _system_event(node, ALARMED, warning_id, {"node": node.id, "hours": hours})]


def alarms_below(node) -> list[dict]:
    """Open warnings a node directly below this one did not acknowledge in time and still
    has not: its alarm came up here. One row per warning and late node, newest first."""
    marks = ",".join("?" * len(OPEN))
    rows = node.db.conn.execute(
        "SELECT x.warning_id, x.node_id, x.hours, x.at FROM warning_alarms x "
        "JOIN warnings w ON w.id = x.warning_id JOIN nodes n ON n.node_id = x.node_id "
        f"WHERE n.parent_id = ? AND x.node_id != ? AND w.status IN ({marks}) "
        "AND NOT EXISTS (SELECT 1 FROM warning_acks a WHERE a.warning_id = x.warning_id "
        "AND a.node_id = x.node_id) ORDER BY x.at DESC, x.warning_id",
        (node.id, node.id, *OPEN)).fetchall()
    return [{**get(node, warning_id), "late_node": late, "alarm_hours": hours, "alarmed_at": at}
            for warning_id, late, hours, at in rows]
