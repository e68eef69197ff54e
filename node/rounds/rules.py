"""排查 rules and folds: a screening round and its units' reports (``round.*``), and the
entries of a unit's register (``entry.*``), each its own subject.

A round (``PC-<node>-<year>-<n>``) is scheduled by an area, a town or the city with a
period, a deadline and the units it names (its scope); each unit of the scope reports it
done (``round.reported``) with what it checked and found. An entry of a register
(``DJ-<node>-<year>-<n>``: a hot spot, a key person or a matter) is recorded by its unit,
updated in later rounds (each update keeps the round it was checked in: its history) and
closed when resolved (化解).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from node import disclosure, i18n, registry, trust, validate
from node.authority import NoAuthority, Row, check_role
from node.cases.vocab import CATEGORIES, OFFICE, WORKERS, code_of
from node.causal import heads
from node.errors import N_, IllegalTransition, NodeError, NotAllowed, NotFound, ValidationError

ENTRY_KINDS = {"hotspot": ("矛盾纠纷热点", "Hot spot"), "person": ("重点人员", "Key person"),
               "matter": ("不稳定因素", "Unstable matter")}
RISKS = {"general": ("一般", "General"), "major": ("较大", "Major"),
         "serious": ("重大", "Serious")}
ENTRY_STATES = {"open": ("稳控中", "Being handled"), "resolved": ("已化解", "Resolved")}
i18n.add_labels("entry_kind", ENTRY_KINDS)
i18n.add_labels("risk", RISKS)
i18n.add_labels("entry_state", ENTRY_STATES)
i18n.add_fields({"title": N_("Title"), "responsible": N_("Responsible (稳控/化解责任人)"),
                 "risk": N_("Risk"), "round": N_("Screening round"), "scope": N_("Scope"),
                 "start": N_("From"), "end": N_("To"), "focus": N_("Focus"),
                 "people": N_("People"), "people[]": N_("%(field)s of person %(n)s"),
                 "checked": N_("Checked"), "added": N_("New"), "high": N_("Serious"),
                 "q": N_("Search"), "fields": N_("Fields")})

SCHEDULED, REPORTED = "round.scheduled", "round.reported"
RECORDED, UPDATED, RESOLVED = "entry.recorded", "entry.updated", "entry.resolved"
ROUND_ID = re.compile(r"PC-([A-Za-z0-9][A-Za-z0-9_-]{1,31})-\d{4}-\d{4,6}")
ENTRY_ID = re.compile(r"DJ-([A-Za-z0-9][A-Za-z0-9_-]{1,31})-\d{4}-\d{4,6}")
SCHEDULING_TIERS = ("city", "town", "area")


def _only(body: dict, allowed) -> None:
    if not set(allowed).issuperset(body):
        raise ValidationError(N_("unknown field %(field)s"),
                              field=sorted(set(body) - set(allowed))[0])


def round_number(name, value, required=False) -> str | None:
    value = validate.line(name, value, required=required, max_len=50)
    if value is not None and not ROUND_ID.fullmatch(value):
        raise ValidationError(N_("%(field)s: %(value)s is not a screening round number (like "
                                 "PC-qingshui-2026-0001)"), field=name, value=value)
    return value


def _count(name, value) -> int:
    return validate.integer(name, value if value not in (None, "") else 0, minimum=0,
                            maximum=100000)


def clean_schedule(body: dict) -> dict:
    _only(body, {"title", "start", "end", "deadline", "scope", "focus", "note"})
    scope = body.get("scope")
    if isinstance(scope, str):
        scope = [s for s in re.split(r"[,，\s]+", scope) if s]
    if not isinstance(scope, list) or not scope:
        raise ValidationError(N_("%(field)s: name at least one unit"), field="scope")
    out = {"title": validate.line("title", body.get("title"), max_len=100),
           "start": validate.a_date("start", body.get("start")).isoformat(),
           "end": validate.a_date("end", body.get("end")).isoformat(),
           "deadline": validate.a_date("deadline", body.get("deadline")).isoformat(),
           "scope": sorted({validate.node_id("scope", u) for u in scope})}
    if out["end"] < out["start"] or out["deadline"] < out["start"]:
        raise ValidationError(N_("%(field)s: the period ends before it starts"), field="end")
    for name in ("focus", "note"):
        value = validate.text(name, body.get(name), required=False)
        if value:
            out[name] = value
    return out


def clean_report(body: dict) -> dict:
    _only(body, {"checked", "added", "high", "note"})
    out = {k: _count(k, body.get(k)) for k in ("checked", "added", "high")}
    note = validate.text("note", body.get("note"), required=False)
    if note:
        out["note"] = note
    return out


def _person(i: int, p) -> dict:
    if not isinstance(p, dict):
        raise ValidationError(N_("%(field)s must be a list of people"), field="people")
    _only(p, {"name", "id_number", "phone"})
    where = f"people[{i}]."
    out = {}
    for key, check in (("name", lambda f, v: validate.line(f, v, max_len=50)),
                       ("id_number", validate.id_number), ("phone", validate.phone)):
        value = p.get(key)
        if not (isinstance(value, dict) and disclosure.is_commitment(value)):
            value = check(where + key, value)
        if value:
            out[key] = value
    return out


_ENTRY_LINES = {"title": 100, "place": 100, "responsible": 50}


def clean_record(body: dict) -> dict:
    _only(body, {"kind", "title", "category", "place", "people", "risk", "responsible",
                 "measures", "note", "round"})
    people = body.get("people") or []
    if not isinstance(people, list) or len(people) > 50:
        raise ValidationError(N_("%(field)s must be a list of people"), field="people")
    out = {"kind": code_of(ENTRY_KINDS, "kind", body.get("kind") or "matter"),
           "title": validate.line("title", body.get("title"), max_len=100),
           "category": code_of(CATEGORIES, "category", body.get("category") or "other"),
           "risk": code_of(RISKS, "risk", body.get("risk") or "general"),
           "responsible": validate.line("responsible", body.get("responsible"), max_len=50)}
    if people:
        out["people"] = [_person(i, p) for i, p in enumerate(people)]
    if out["kind"] == "person" and not people:
        raise ValidationError(N_("%(field)s: a key person's entry names the person"),
                              field="people")
    place = validate.line("place", body.get("place"), required=False, max_len=100)
    if place:
        out["place"] = place
    for name in ("measures", "note"):
        value = validate.text(name, body.get(name), required=False)
        if value:
            out[name] = value
    if body.get("round"):
        out["round"] = round_number("round", body["round"])
    return out


def clean_update(body: dict) -> dict:
    _only(body, {"title", "place", "risk", "responsible", "measures", "note", "round"})
    out = {}
    for name in ("title", "place", "responsible"):
        value = validate.line(name, body.get(name), required=False, max_len=_ENTRY_LINES[name])
        if value:
            out[name] = value
    if body.get("risk"):
        out["risk"] = code_of(RISKS, "risk", body["risk"])
    for name in ("measures", "note"):
        value = validate.text(name, body.get(name), required=False)
        if value:
            out[name] = value
    if body.get("round"):
        out["round"] = round_number("round", body["round"])
    if not out:
        raise ValidationError(N_("%(field)s: say what to correct"), field="fields")
    return out


def clean_resolve(body: dict) -> dict:
    _only(body, {"note", "round"})
    out = {"note": validate.text("note", body.get("note"))}
    if body.get("round"):
        out["round"] = round_number("round", body["round"])
    return out


CLEAN = {SCHEDULED: clean_schedule, REPORTED: clean_report, RECORDED: clean_record,
         UPDATED: clean_update, RESOLVED: clean_resolve}
clean_schedule.fields = ("title", "start", "end", "deadline", "scope", "focus", "note")
clean_report.fields = ("checked", "added", "high", "note")
clean_record.fields = ("kind", "title", "category", "place", "risk", "responsible",
                       "measures", "note", "round")
clean_update.fields = ("round", "risk", "responsible", "measures", "title", "place", "note")
clean_resolve.fields = ("note", "round")


def validate_body(event_type: str, body: dict) -> None:
    validate.normal_form(CLEAN, event_type, body, copy=lambda b: json.loads(json.dumps(b)))


# -- folds ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FoldContext:
    tiers: dict
    tz: object

    @classmethod
    def of(cls, node) -> FoldContext:
        return cls(trust.tree(node.db).tiers, node.tz)

    def day(self, ts: str) -> str:
        return datetime.fromisoformat(ts[:19]).replace(tzinfo=UTC).astimezone(
            self.tz).date().isoformat()


@dataclass
class Folded:
    row: dict | None = None
    units: dict[str, dict] = field(default_factory=dict)       # a round's units
    people: list[dict] = field(default_factory=list)           # an entry's people
    history: list[dict] = field(default_factory=list)          # an entry's history
    applied: list[str] = field(default_factory=list)
    rejected: dict[str, NodeError] = field(default_factory=dict)


def _finish(folded: Folded, evs) -> None:
    if folded.row is not None and evs:
        folded.row.update(heads=json.dumps(list(heads(evs))), event_count=len(evs))


def fold_round(ordered, ctx: FoldContext) -> Folded:
    folded, evs = Folded(), []
    for ev, _ancestors in ordered:
        evs.append(ev)
        try:
            check_role(ev.role, ctx.tiers.get(ev.origin),
                       OFFICE if ev.type == SCHEDULED else WORKERS, ev.type)
            if ev.type == SCHEDULED:
                m = ROUND_ID.fullmatch(ev.subject)
                if folded.row is not None:
                    raise IllegalTransition(N_("%(id)s is already recorded"), id=ev.subject)
                if m is None or m.group(1) != ev.origin:
                    raise NoAuthority(N_("round number %(id)s does not belong to node "
                                         "%(node)s"), id=ev.subject, node=ev.origin)
                if ctx.tiers.get(ev.origin) not in SCHEDULING_TIERS:
                    raise NotAllowed(N_("a %(tier)s node may not %(action)s"),
                                     tier=ctx.tiers.get(ev.origin), action="schedule")
                b = ev.body
                folded.row = {"id": ev.subject, "origin_node": ev.origin, "title": b["title"],
                              "focus": b.get("focus"), "period_start": b["start"],
                              "period_end": b["end"], "deadline": b["deadline"],
                              "scheduled_on": ctx.day(ev.ts), "note": b.get("note"),
                              "updated_at": ev.ts}
                folded.units = {u: {"unit": u, "reported_on": None, "reporter": None,
                                    "checked": None, "added": None, "high": None,
                                    "note": None} for u in b["scope"]}
            else:
                if folded.row is None:
                    raise NotFound(N_("no screening round %(id)s"), id=ev.subject)
                if ev.origin not in folded.units:
                    raise NoAuthority(N_("%(node)s is not a unit of screening round %(id)s"),
                                      node=ev.origin, id=ev.subject)
                folded.units[ev.origin].update(
                    reported_on=ctx.day(ev.ts), reporter=ev.actor, note=ev.revealed.get("note"),
                    **{k: ev.body[k] for k in ("checked", "added", "high")})
                folded.row["updated_at"] = max(folded.row["updated_at"], ev.ts)
        except NodeError as err:
            folded.rejected[ev.id] = err
            continue
        folded.applied.append(ev.id)
    _finish(folded, evs)
    return folded


def fold_entry(ordered, ctx: FoldContext) -> Folded:
    folded, evs = Folded(), []
    for ev, _ancestors in ordered:
        evs.append(ev)
        try:
            check_role(ev.role, ctx.tiers.get(ev.origin), WORKERS, ev.type)
            b, day = ev.revealed, ctx.day(ev.ts)
            row = folded.row
            if ev.type == RECORDED:
                m = ENTRY_ID.fullmatch(ev.subject)
                if row is not None:
                    raise IllegalTransition(N_("%(id)s is already recorded"), id=ev.subject)
                if m is None or m.group(1) != ev.origin:
                    raise NoAuthority(N_("register entry %(id)s does not belong to node "
                                         "%(node)s"), id=ev.subject, node=ev.origin)
                folded.row = {"id": ev.subject, "origin_node": ev.origin, "kind": b["kind"],
                              "title": b["title"], "category": b["category"],
                              "place": b.get("place"), "risk": b["risk"],
                              "responsible": b["responsible"], "measures": b.get("measures"),
                              "status": "open", "first_round": b.get("round"),
                              "last_round": b.get("round"), "recorded_on": day,
                              "updated_on": day, "closed_on": None, "note": b.get("note")}
                folded.people = b.get("people", [])
            else:
                if row is None:
                    raise NotFound(N_("no register entry %(id)s"), id=ev.subject)
                if ev.origin != row["origin_node"]:
                    raise NoAuthority(N_("only the unit whose register holds %(id)s may "
                                         "change it"), id=ev.subject)
                if row["status"] != "open":
                    raise IllegalTransition(N_("register entry %(id)s is resolved"),
                                            id=ev.subject)
                changed = {k: v for k, v in b.items() if k != "round"}
                if ev.type == RESOLVED:
                    row.update(status="resolved", closed_on=day)
                    changed.pop("note", None)
                row.update(changed)
                if b.get("note"):
                    row["note"] = b["note"]
                row["updated_on"] = day
                if b.get("round"):
                    row["last_round"] = b["round"]
                    row["first_round"] = row["first_round"] or b["round"]
            folded.history.append({"n": len(folded.history) + 1, "on_day": day,
                                   "round": b.get("round"), "origin": ev.origin,
                                   "actor": ev.actor, "action": ev.type.split(".")[1],
                                   "what": json.dumps({k: v for k, v in b.items()
                                                       if k not in ("people", "round")},
                                                      ensure_ascii=False, sort_keys=True)})
        except NodeError as err:
            folded.rejected[ev.id] = err
            continue
        folded.applied.append(ev.id)
    _finish(folded, evs)
    return folded


ROUND_COLUMNS = ("id", "origin_node", "title", "focus", "period_start", "period_end",
                 "deadline", "scheduled_on", "note", "heads", "event_count", "updated_at")
UNIT_COLUMNS = ("unit", "reported_on", "reporter", "checked", "added", "high", "note")
ENTRY_COLUMNS = ("id", "origin_node", "kind", "title", "category", "place", "risk",
                 "responsible", "measures", "status", "first_round", "last_round",
                 "recorded_on", "updated_on", "closed_on", "note", "heads", "event_count")
HISTORY_COLUMNS = ("n", "on_day", "round", "origin", "actor", "action", "what")


def _insert(db, table: str, columns, rows) -> None:
    db.conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                        f"({', '.join('?' * len(columns))})", rows)


def write_rounds(db, items) -> None:
    for subject, folded in items:
        db.conn.execute("DELETE FROM rounds WHERE id = ?", (subject,))
        if folded.row is None:
            continue
        _insert(db, "rounds", ROUND_COLUMNS, [[folded.row[c] for c in ROUND_COLUMNS]])
        _insert(db, "round_units", ("round_id", *UNIT_COLUMNS),
                [[subject, *(u[c] for c in UNIT_COLUMNS)] for u in folded.units.values()])


def write_entries(db, items) -> None:
    for subject, folded in items:
        db.conn.execute("DELETE FROM register_entries WHERE id = ?", (subject,))
        if folded.row is None:
            continue
        _insert(db, "register_entries", ENTRY_COLUMNS, [[folded.row[c] for c in ENTRY_COLUMNS]])
        people = []
        for i, p in enumerate(folded.people):
            withheld = {k: v["up_to"] for k, v in p.items()
                        if isinstance(v, dict) and disclosure.is_commitment(v)}
            value = {k: None if k in withheld else v for k, v in p.items()}
            people.append((subject, i, value.get("name") or "", value.get("id_number"),
                           value.get("phone"), json.dumps(withheld) if withheld else None))
        _insert(db, "register_people", ("entry_id", "idx", "name", "id_number", "phone",
                                        "withheld"), people)
        _insert(db, "register_history", ("entry_id", *HISTORY_COLUMNS),
                [[subject, *(h[c] for c in HISTORY_COLUMNS)] for h in folded.history])


def clear_rounds(db) -> None:
    db.conn.execute("DELETE FROM rounds")


def clear_entries(db) -> None:
    db.conn.execute("DELETE FROM register_entries")


def prune_rounds(db) -> None:
    db.conn.execute("DELETE FROM rounds WHERE NOT EXISTS (SELECT 1 FROM events WHERE "
                    "subject = rounds.id AND type LIKE 'round.%')")


def prune_entries(db) -> None:
    db.conn.execute("DELETE FROM register_entries WHERE NOT EXISTS (SELECT 1 FROM events "
                    "WHERE subject = register_entries.id AND type LIKE 'entry.%')")


registry.register(registry.Domain(
    kind="round", name="screening rounds", validate_body=validate_body,
    context=FoldContext.of, fold=fold_round, write_many=write_rounds, clear=clear_rounds,
    prune=prune_rounds,
    urgent=frozenset(), free_text=frozenset({"focus", "note"}),
    authority=(Row(SCHEDULED, "own_number", OFFICE, SCHEDULING_TIERS),
               Row(REPORTED, "round_unit", WORKERS))))
registry.register(registry.Domain(
    kind="entry", name="register entries", validate_body=validate_body,
    context=FoldContext.of, fold=fold_entry, write_many=write_entries, clear=clear_entries,
    prune=prune_entries,
    free_text=frozenset({"measures", "note"}),
    authority=(Row(RECORDED, "own_number", WORKERS), Row(UPDATED, "own_entry", WORKERS),
               Row(RESOLVED, "own_entry", WORKERS))))

