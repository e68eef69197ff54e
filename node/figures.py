"""Figures (统计数): counts without personal data, which travel all the way up.

A case's detail stays in its circle (node.sync.policy), so a level above it
learns of it only through figures. Each node reports, as a signed
``figures.reported`` event with subject ``F-<node id>-<UTC date>``, the counts of the
cases and warnings *registered there*: by category and state, overdue,
collective, and warnings by risk level. Each case is counted once, by the
node that registered it, which is always in its circle and so always sees
its current state. A level's totals are the sum of the latest report of
every node under it and its own.

A node reports when its counts have changed since its last report
(``report``, run by `siji serve` every FIGURES_INTERVAL seconds and by
`siji figures --report`). The reports are read from the log when asked for:
there is no derived table to rebuild. A day's reports share a subject, so
that appending one (which folds its subject) does not slow down as a node
keeps reporting for years.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from node import cases, log, reception, registry, repeats, trust, validate, warnings
from node.authority import NoAuthority, Row
from node.errors import N_, NodeError, NotAllowed, ValidationError
from node.settings import Setting, declare, non_negative

REPORTED = "figures.reported"


def subject_of(node_id: str, ts: str) -> str:
    """The subject of ``node_id``'s reports on the UTC day of ``ts``."""
    return f"F-{node_id}-{ts[:10]}"


def _own_subject(ev) -> bool:
    day = r"\d{4}-\d{2}-\d{2}"
    return re.fullmatch(f"F-{re.escape(ev.origin)}-{day}", ev.subject) is not None


# -- the body ----------------------------------------------------------------------

def _count(field_name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**9:
        raise ValidationError(N_("%(field)s must be a whole number >= 0"), field=field_name)
    return value


def clean(body: dict) -> dict:
    """The one normal form of a report; raises ValidationError naming the field."""
    if not isinstance(body, dict) or set(body) - {"office"} != {
            "as_of", "cases", "overdue", "collective", "warnings"}:
        raise ValidationError(N_("%(field)s: not in normal form"), field="body")
    as_of = validate.a_date("as_of", body["as_of"]).isoformat()
    by_category = body["cases"]
    if not isinstance(by_category, dict):
        raise ValidationError(N_("%(field)s: not in normal form"), field="cases")
    out_cases = {}
    for category, by_state in sorted(by_category.items()):
        if category not in cases.CATEGORIES or not isinstance(by_state, dict) or not by_state:
            raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="cases",
                                  value=str(category)[:40])
        for state, n in by_state.items():
            if state not in cases.STATES:
                raise ValidationError(N_("%(field)s: unknown value %(value)s"),
                                      field="cases", value=str(state)[:40])
            _count("cases", n)
        out_cases[category] = dict(sorted(by_state.items()))
    levels = body["warnings"]
    if not isinstance(levels, dict) or set(levels) - set(warnings.LEVELS):
        raise ValidationError(N_("%(field)s: not in normal form"), field="warnings")
    out = {"as_of": as_of, "cases": out_cases,
           "overdue": _count("overdue", body["overdue"]),
           "collective": _count("collective", body["collective"]),
           "warnings": {k: _count("warnings", levels[k]) for k in sorted(levels)}}
    if "office" in body:  # issue 21: 包案, 息访, first-time and repeat petitions
        office = body["office"]
        if not isinstance(office, dict) or set(office) != set(OFFICE):
            raise ValidationError(N_("%(field)s: not in normal form"), field="office")
        out["office"] = {k: _count("office", office[k]) for k in sorted(office)}
    return out


# the office's own figures (issue 21), counted like the rest by the registering node:
# cases with a lead leader (包案), of those concluded, of those with no new petition of the
# same person within XIFANG_DAYS (息访), first-time petitions, and repeats (a repeat_of, a
# link an office made, or not a first-time petition)
OFFICE = ("lead", "lead_concluded", "lead_quiet", "first_time", "repeats")


def office(node) -> dict:
    rows = [c for c in cases.listing(node) if c["origin_node"] == node.id]
    linked = repeats.linked_cases(node)
    led = [c for c in rows if c["lead_account"] or c["lead_leader"]]
    done = [c for c in led if c["state"] in reception.DONE]
    return {"lead": len(led), "lead_concluded": len(done),
            "lead_quiet": sum(1 for c in done if reception.quiet(node, c)),
            "first_time": sum(1 for c in rows if c["first_time"] and c["id"] not in linked),
            "repeats": sum(1 for c in rows if not c["first_time"] or c["repeat_of"]
                           or c["id"] in linked)}


def validate_body(event_type: str, body: dict) -> None:
    if event_type != REPORTED:
        raise ValidationError(N_("unknown event type %(type)s"), type=event_type, field="type")
    if clean(body) != body:
        raise ValidationError(N_("%(field)s: not in normal form"), field="body")


# -- the fold: only who may report; the reports are read from the log ----------------

@dataclass(frozen=True)
class FoldContext:
    @classmethod
    def of(cls, node) -> FoldContext:
        return cls()


@dataclass
class Folded:
    applied: list[str] = field(default_factory=list)
    rejected: dict[str, NodeError] = field(default_factory=dict)


def fold(ordered, ctx: FoldContext) -> Folded:
    folded = Folded()
    for ev, _ancestors in ordered:
        if not _own_subject(ev):
            folded.rejected[ev.id] = NoAuthority(
                N_("a node reports only its own figures, not %(id)s"), id=ev.subject)
            continue
        if ev.role != log.SYSTEM.role or ev.actor != log.SYSTEM.username:
            folded.rejected[ev.id] = NotAllowed(N_("only the node itself records %(action)s"),
                                                action="figures")
            continue
        folded.applied.append(ev.id)
    return folded


def write_many(db, items: list[tuple[str, Folded]]) -> None:
    """Nothing is derived: ``totals`` reads the latest reports from the log."""


def clear(db) -> None:
    """Nothing is derived (see ``write``)."""


# -- reporting and reading -----------------------------------------------------------

def current(node) -> dict:
    """This node's counts now: the cases and warnings registered here."""
    by_category: dict[str, dict[str, int]] = {}
    for category, state, n in node.db.conn.execute(
            "SELECT category, state, count(*) FROM cases WHERE origin_node = ? "
            "GROUP BY category, state", (node.id,)):
        by_category.setdefault(category, {})[state] = n
    today = node.today().isoformat()
    marks = ",".join("?" * len(cases.OPEN))
    overdue, collective = node.db.conn.execute(
        f"SELECT coalesce(sum(state IN ({marks}) AND due_on < ?), 0), coalesce(sum(collective), 0)"
        " FROM cases WHERE origin_node = ?", (*cases.OPEN, today, node.id)).fetchone()
    levels = dict(node.db.conn.execute(
        "SELECT risk_level, count(*) FROM warnings WHERE origin_node = ? GROUP BY risk_level",
        (node.id,)).fetchall())
    return clean({"as_of": today, "cases": by_category, "overdue": overdue,
                  "collective": collective, "warnings": levels, "office": office(node)})


def latest(node, origin: str | None = None) -> dict[str, dict]:
    """The newest report of every node whose reports are here (or of ``origin``), by id."""
    mine = " AND origin = ?" if origin else ""
    rows = node.db.conn.execute(  # only the newest of each origin's bodies is read
        "SELECT e.origin, e.body FROM events e JOIN (SELECT origin, max(seq) AS seq FROM events "
        f"WHERE subject >= 'F-' AND subject < 'F.' AND type = ?{mine} GROUP BY origin) newest "
        "ON e.origin = newest.origin AND e.seq = newest.seq",
        (REPORTED, origin) if origin else (REPORTED,))
    return {origin: json.loads(body) for origin, body in rows}


def report(node):
    """Append a report if the counts changed since the last one (caller owns the
    transaction); returns the event, or None."""
    now = current(node)
    last = latest(node, node.id).get(node.id)
    if last is not None and {**last, "as_of": now["as_of"]} == now:
        return None
    return log.append(node, log.SYSTEM, REPORTED,
                      subject_of(node.id, node.now()), now)


def totals(node, under: str | None = None) -> dict:
    """The sum of the latest reports of ``under`` (default: this node) and every node
    below it, with how many units reported."""
    top = under or node.id
    trust.get_node(node.db, top)  # an unknown node is an error, not empty figures
    tree = trust.tree(node.db)
    reports = latest(node)
    units = sorted(n for n in reports if top in tree.ancestry(n))
    out = {"units": units, "cases": {}, "overdue": 0, "collective": 0, "warnings": {},
           "office": dict.fromkeys(OFFICE, 0)}
    for unit in units:
        r = reports[unit]
        for category, by_state in r["cases"].items():
            into = out["cases"].setdefault(category, {})
            for state, n in by_state.items():
                into[state] = into.get(state, 0) + n
        out["overdue"] += r["overdue"]
        out["collective"] += r["collective"]
        for level, n in r["warnings"].items():
            out["warnings"][level] = out["warnings"].get(level, 0) + n
        for key, n in r.get("office", {}).items():
            out["office"][key] = out["office"].get(key, 0) + n
    o = out["office"]  # 包案办结率 and 息访率, in percent (None without cases to count)
    o["lead_concluded_rate"] = round(100 * o["lead_concluded"] / o["lead"]) if o["lead"] else None
    o["lead_quiet_rate"] = (round(100 * o["lead_quiet"] / o["lead_concluded"])
                            if o["lead_concluded"] else None)
    return out


declare(Setting(
    "FIGURES_INTERVAL", 3600, "Seconds between checks whether this node's figures (counts "
    "without personal data, node/figures.py) changed; a changed report goes up with the next "
    "sync.", int, non_negative("FIGURES_INTERVAL")))
registry.register(registry.Domain(
    kind="figures", name="figures", validate_body=validate_body, context=FoldContext.of,
    fold=fold, write_many=write_many, clear=clear,
    authority=(Row(REPORTED, "own_subject", ("admin",)),)))
