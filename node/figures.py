"""Figures up the tree: each node's counts of its subtree, without personal data.

Each case is counted once, by the highest node of its circle (``cases.
circle_top``, kept by the fold), under the day it was registered; each
warning by the highest node that has it (as the routing policy decides what
goes up). A node reports to its parent, as signed ``figures.rolled_up``
events, one per month of registration (subject ``FR-<node>-<month>-<UTC
day>``), the cells of what it counts itself plus the latest reports of its
children for that month: counts by day, category and channel
(node/metrics.py), and the supervision list of the overdue cases among
them (number, holder, category, state, deadline; nothing of the
petitioner). So each level sends one rollup of its subtree, and the parent
sees it as the row of that child.

A node's own figures, on a page, are counted from its own rows when asked
for (every case of its subtree it has, whoever counts it above), plus its
children's latest reports, which leave out what this node has. A node
reports before each sync session with its parent (``siji serve``'s sync
job, `siji sync`, "sync now"), and only the months that changed; a report
goes on to the parent at once (it is urgent to the scheduler), so a change
at a village is in the city's figures within one sync of it. Every
FIGURES_INTERVAL the scheduler also checks, since days overdue grow
without any event. The newest report of each unit and month is kept in
``figures_latest``, derived from the log like a case's rows.
"""

from __future__ import annotations

import calendar
import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from node import cases, log, metrics, registry, routing, store, trust, validate, warnings
from node.authority import NoAuthority, Row
from node.canonical import canonical
from node.causal import causal_order
from node.errors import N_, NodeError, NotAllowed, ValidationError
from node.settings import Setting, declare, non_negative

REPORTED = "figures.reported"    # issue 5's totals, no longer made: still valid, not read
ROLLED_UP = "figures.rolled_up"
_MONTH = r"\d{4}-(?:0[1-9]|1[0-2])"
_DAY = r"\d{4}-\d{2}-\d{2}"


def subject_of(node_id: str, month: str, ts: str) -> str:
    """The subject of ``node_id``'s reports for ``month`` made on the UTC day of ``ts``."""
    return f"FR-{node_id}-{month}-{ts[:10]}"


def _own_subject(ev) -> bool:
    if ev.type == REPORTED:
        return re.fullmatch(f"F-{re.escape(ev.origin)}-{_DAY}", ev.subject) is not None
    found = re.fullmatch(f"FR-{re.escape(ev.origin)}-({_MONTH})-{_DAY}", ev.subject)
    return found is not None and found.group(1) == ev.body.get("month")


# -- the body ----------------------------------------------------------------------

def _count(field_name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**9:
        raise ValidationError(N_("%(field)s must be a whole number >= 0"), field=field_name)
    return value


def _bad(field_name: str) -> ValidationError:
    return ValidationError(N_("%(field)s: not in normal form"), field=field_name)


def _vector(field_name: str, values: list, names: tuple[str, ...], items: str) -> None:
    """Counts in measure order, trailing zeros dropped; none exceeds the item count but
    those of people, which are at least it."""
    if not values or len(values) > len(names) or values[-1] == 0:
        raise _bad(field_name)
    counts = dict(zip(names, (_count(field_name, v) for v in values), strict=False))
    whole = counts[items]
    if whole < 1 or any(n > whole for m, n in counts.items() if m not in metrics.PEOPLE) or \
            any(n < whole for m, n in counts.items() if m == "people"):
        raise _bad(field_name)


def clean(body: dict) -> dict:
    """Check a rolled-up report; returns it (it must already be in its one normal form)."""
    if not isinstance(body, dict) or set(body) != {"month", "cases", "warnings", "overdue"}:
        raise _bad("body")
    month = body["month"]
    if not isinstance(month, str) or not re.fullmatch(_MONTH, month):
        raise _bad("month")
    days = calendar.monthrange(int(month[:4]), int(month[5:]))[1]
    keys = []
    for row in _rows(body["cases"], "cases"):
        if len(row) < 4 or not isinstance(row[0], int) or isinstance(row[0], bool) or not (
                1 <= row[0] <= days) or row[1] not in cases.CATEGORIES or (
                row[2] not in cases.CHANNELS):
            raise _bad("cases")
        _vector("cases", row[3:], metrics.CASE_MEASURES, "n")
        keys.append(tuple(row[:3]))
    if keys != sorted(set(keys)):
        raise _bad("cases")
    keys = []
    for row in _rows(body["warnings"], "warnings"):
        if len(row) < 3 or not isinstance(row[0], int) or isinstance(row[0], bool) or not (
                1 <= row[0] <= days) or row[1] not in cases.CATEGORIES:
            raise _bad("warnings")
        _vector("warnings", row[2:], metrics.WARNING_MEASURES, "warnings")
        keys.append(tuple(row[:2]))
    if keys != sorted(set(keys)):
        raise _bad("warnings")
    ids = []
    for row in _rows(body["overdue"], "overdue"):
        if len(row) != 6 or row[2] not in cases.CATEGORIES or row[3] not in cases.STATES:
            raise _bad("overdue")
        validate.line("overdue", row[0], max_len=80)
        validate.node_id("overdue", row[1])
        validate.a_date("overdue", row[4])
        validate.line("overdue", row[5], max_len=20)
        ids.append(row[0])
    overdue = sum(row[3 + metrics.CASE_MEASURES.index("overdue")]
                  for row in body["cases"] if len(row) > 3 + metrics.CASE_MEASURES.index(
                      "overdue"))
    if ids != sorted(set(ids)) or len(ids) > overdue:
        raise _bad("overdue")
    return body


def _rows(value, field_name: str) -> list[list]:
    if not isinstance(value, list) or not all(isinstance(r, list) for r in value):
        raise _bad(field_name)
    return value


def _clean_legacy(body: dict) -> dict:
    """Issue 5's ``figures.reported``: {as_of, cases: {category: {state: n}}, overdue,
    collective, warnings: {level: n}}."""
    if not isinstance(body, dict) or set(body) != {"as_of", "cases", "overdue", "collective",
                                                  "warnings"}:
        raise _bad("body")
    validate.a_date("as_of", body["as_of"])
    by_category = body["cases"]
    if not isinstance(by_category, dict) or list(by_category) != sorted(by_category):
        raise _bad("cases")
    for category, by_state in by_category.items():
        if category not in cases.CATEGORIES or not isinstance(by_state, dict) or not by_state \
                or set(by_state) - set(cases.STATES) or list(by_state) != sorted(by_state):
            raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="cases",
                                  value=str(category)[:40])
        for n in by_state.values():
            _count("cases", n)
    levels = body["warnings"]
    if not isinstance(levels, dict) or set(levels) - set(warnings.LEVELS) or list(
            levels) != sorted(levels):
        raise _bad("warnings")
    for n in (body["overdue"], body["collective"], *levels.values()):
        _count("figures", n)
    return body


def validate_body(event_type: str, body: dict) -> None:
    if event_type == ROLLED_UP:
        clean(body)
    elif event_type == REPORTED:
        _clean_legacy(body)
    else:
        raise ValidationError(N_("unknown event type %(type)s"), type=event_type, field="type")


# -- the fold: who may report; the newest report of each unit and month ----------------

@dataclass(frozen=True)
class FoldContext:
    @classmethod
    def of(cls, node) -> FoldContext:
        return cls()


@dataclass
class Folded:
    applied: list[str] = field(default_factory=list)
    rejected: dict[str, NodeError] = field(default_factory=dict)
    newest: object = None  # the applied rolled-up report of the highest seq


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
        if ev.type == ROLLED_UP and (folded.newest is None or ev.seq > folded.newest.seq):
            folded.newest = ev
    return folded


def write_many(db, items: list[tuple[str, Folded]]) -> None:
    """Keep the newest report of each (origin, month): a later seq replaces an earlier."""
    db.conn.executemany(
        "INSERT INTO figures_latest (origin, month, seq, ts, body) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (origin, month) DO UPDATE SET seq = excluded.seq, ts = excluded.ts, "
        "body = excluded.body WHERE excluded.seq > figures_latest.seq",
        [(f.newest.origin, f.newest.body["month"], f.newest.seq, f.newest.ts,
          canonical(f.newest.body).decode()) for _, f in items if f.newest is not None])


def clear(db) -> None:
    db.conn.execute("DELETE FROM figures_latest")


# A row of figures_latest is fed by every subject of its unit and month, one a day: a
# rebuild keeps them together, empties the row and writes it again from all of them.
_GROUP = re.compile(f"(FR-.+-{_MONTH})-{_DAY}")


def group(subject: str) -> str:
    """The unit and month a subject's reports feed, as ``FR-<node>-<month>``."""
    found = _GROUP.fullmatch(subject)
    return found.group(1) if found else subject


def _unit_month(key: str) -> tuple[str, str] | None:
    return (key[3:-8], key[-7:]) if key.startswith("FR-") and _GROUP.fullmatch(
        key + "-2000-01-01") else None


def reset(db, keys: list[str]) -> None:
    db.conn.executemany("DELETE FROM figures_latest WHERE origin = ? AND month = ?",
                        [um for um in map(_unit_month, keys) if um is not None])


def prune(db) -> None:
    """Delete a row that is not one of its own unit and month's reports (none is left, or
    the row was never one), and write that unit and month again from the log."""
    stale = db.conn.execute(
        "SELECT origin, month FROM figures_latest f WHERE NOT EXISTS (SELECT 1 FROM events e "
        "WHERE e.origin = f.origin AND e.seq = f.seq AND e.type = ? AND e.subject > "
        "'FR-' || f.origin || '-' || f.month || '-' AND e.subject < "
        "'FR-' || f.origin || '-' || f.month || '.')", (ROLLED_UP,)).fetchall()
    for origin, month in stale:
        db.conn.execute("DELETE FROM figures_latest WHERE origin = ? AND month = ?",
                        (origin, month))
        prefix = f"FR-{origin}-{month}-"
        subjects = [r[0] for r in db.conn.execute(
            "SELECT DISTINCT subject FROM events WHERE subject > ? AND subject < ?",
            (prefix, prefix[:-1] + "."))]
        write_many(db, [(s, fold(causal_order(log.subject_events(db, s)), FoldContext()))
                        for s in subjects])


# -- compaction: a superseded report carries nothing ---------------------------------------
#
# A report is its unit's whole figures for one month: the newest of each unit and month is
# all that totals and the history by month read (``figures_latest``), and one superseded by
# a newer carries nothing anyone reads. Without compaction every report ever made stays in
# the log: a subject a day for each month that changed, at its maker and at its parent.
# docs/architecture.md ("Superseded figures reports are compacted") gives the design.

COMPACTED = "figures:compacted"  # the counter of report events compacted away here


def superseded(db, evs: list) -> set[str]:
    """The ids of the arriving reports older than the newest of their unit and month here
    (registry.Domain.superseded): answered as duplicates and not stored, so that a report
    compacted away, replayed or arriving late, never comes back or counts. The newest is
    always kept in the log, so ``siji rebuild`` gives ``figures_latest`` the same mark."""
    out = set()
    for ev in evs:
        if ev.type != ROLLED_UP:
            continue
        row = db.conn.execute("SELECT seq FROM figures_latest WHERE origin = ? AND month = ?",
                              (ev.origin, ev.body["month"])).fetchone()
        if row is not None and ev.seq < row[0]:
            out.add(ev.id)
    return out


def _subject_range(origin: str | None) -> tuple[str, str]:
    """The bounds of the report subjects (of ``origin``) in the order of the subject index:
    '.' follows '-'."""
    prefix = "FR-" if origin is None else f"FR-{origin}-"
    return prefix, prefix[:-1] + "."


def compact(node, origins=None) -> int:
    """Delete the reports (of ``origins``; default: every unit's) that a newer one of the
    same unit and month supersedes, a subject (one unit's reports of one month made on one
    day) at a time, once none of its events is the newest: ``log.forget`` keeps what a
    neighbour is still owed. Returns how many events went, also added to the COMPACTED
    counter (`siji status`). Cheap: it reads only the report subjects of ``origins``, by
    the subject index, and those are few once compacted. The caller holds a write
    transaction."""
    db = node.db
    if origins is not None:
        origins = sorted(set(origins))
        if not origins:
            return 0
    newest = {(o, m): seq for o, m, seq in db.conn.execute(
        "SELECT origin, month, seq FROM figures_latest" if origins is None else
        "SELECT origin, month, seq FROM figures_latest WHERE origin IN (SELECT value FROM "
        "json_each(?))", () if origins is None else (json.dumps(origins),))}
    by_subject: dict[str, list[tuple]] = {}
    for origin in [None] if origins is None else origins:
        for subject, who, seq, type_ in db.conn.execute(
                "SELECT subject, origin, seq, type FROM events WHERE subject >= ? AND "
                "subject < ?", _subject_range(origin)):
            if origin is None or who == origin:  # (another id may start with this one's)
                by_subject.setdefault(subject, []).append((who, seq, type_))

    def outdated(subject: str, who: str, seq: int, type_: str) -> bool:
        month = subject[len(who) + 4:len(who) + 11]  # FR-<origin>-<month>-<day>
        return type_ == ROLLED_UP and subject.startswith(f"FR-{who}-") and seq < newest.get(
            (who, month), -1)

    doomed = [s for s, rows in by_subject.items() if all(outdated(s, *r) for r in rows)]
    n = log.forget(node, doomed)[1] if doomed else 0
    if n:
        store.add_to_counter(db, COMPACTED, n)
    return n


def stored(node) -> dict[str, int]:
    """For `siji status`: the report events in the log, and how many were compacted here."""
    kept = node.db.conn.execute("SELECT count(*) FROM events WHERE subject >= ? AND "
                                "subject < ?", _subject_range(None)).fetchone()[0]
    return {"reports": kept, "compacted": store.counter(node.db, COMPACTED)}


# -- the tree ---------------------------------------------------------------------------

def below(tree: routing.Tree, top: str) -> set[str]:
    """``top`` and every node under it in ``tree``."""
    kids: dict[str, list[str]] = {}
    for child, parent in tree.parents.items():
        if child != parent:
            kids.setdefault(parent, []).append(child)
    seen, todo = {top}, [top]
    while todo:
        for child in kids.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def children(tree: routing.Tree, node_id: str) -> list[str]:
    return sorted(n for n, p in tree.parents.items() if p == node_id and n != node_id)


def branch(tree: routing.Tree, top: str, unit: str) -> str:
    """The child of ``top`` whose subtree holds ``unit`` (``top`` for itself)."""
    chain = tree.ancestry(unit)
    return chain[chain.index(top) - 1] if top in chain[1:] else top


def latest(node, origins: list[str] | None = None) -> dict[tuple[str, str], tuple]:
    """(origin, month) -> (ts, body) of the newest reports here (of ``origins``)."""
    if origins is None:
        rows = node.db.conn.execute("SELECT origin, month, ts, body FROM figures_latest")
    else:  # (by the key: a node's own reports, or its children's, not every unit's)
        rows = node.db.conn.execute(
            "SELECT origin, month, ts, body FROM figures_latest WHERE origin IN "
            "(SELECT value FROM json_each(?))", (json.dumps(sorted(set(origins))),))
    return {(o, m): (ts, json.loads(b)) for o, m, ts, b in rows}


# -- what this node counts, and what it reports ----------------------------------------

def _sent_up(node, tree: routing.Tree) -> set[str]:
    """The warnings this node's parent has or gets: the routing policy's rule
    (routing.warning_circle), and whatever was shared with it already."""
    parent = node.settings["PARENT_ID"]
    if not parent:
        return set()
    history: dict[str, list] = {}
    for subject, origin, type_ in node.db.conn.execute(
            "SELECT subject, origin, type FROM events WHERE type LIKE 'warning.%' "
            "ORDER BY lsn"):
        history.setdefault(subject, []).append((origin, type_))
    levels = dict(node.db.conn.execute("SELECT id, risk_level FROM warnings"))
    shared = {r[0] for r in node.db.conn.execute(
        "SELECT subject FROM link_subjects WHERE peer = ?", (parent,))}
    return shared | {s for s, h in history.items() if parent in routing.warning_circle(
        h, tree, levels.get(s), node.settings["WARNING_TO_CITY"])}


def _own_part(node, tree: routing.Tree) -> dict[str, dict]:
    """month -> {cases, warnings, overdue} of what this node counts for its parent: the
    cases whose circle tops here, the warnings of its subtree its parent does not get."""
    units = json.dumps(sorted(below(tree, node.id)))
    mine = ("coalesce(c.circle_top, c.origin_node) = :me AND c.origin_node IN "
            "(SELECT value FROM json_each(:units))")
    params = {"me": node.id, "units": units}
    months: dict[str, dict] = {}

    def month(day: str) -> dict:
        return months.setdefault(day[:7], {"cases": {}, "warnings": {}, "overdue": []})

    for (day, category, channel, _origin), vector in metrics.case_cells(
            node, mine, params):
        metrics.add(month(day)["cases"].setdefault((int(day[8:]), category, channel), []),
                    vector)
    up = _sent_up(node, tree)
    for (day, category, _origin), vector in metrics.warning_cells(
            node, "w.origin_node IN (SELECT value FROM json_each(:units)) AND w.id NOT IN "
                  "(SELECT value FROM json_each(:up))",
            {"units": units, "up": json.dumps(sorted(up))}):
        metrics.add(month(day)["warnings"].setdefault((int(day[8:]), category), []), vector)
    for row in metrics.overdue_rows(node, mine, params):
        month(row[6])["overdue"].append(row[:6])
    return months


def _body(month: str, part: dict) -> dict:
    def trimmed(vector):
        vector = list(vector)
        while vector and vector[-1] == 0:
            vector.pop()
        return vector
    return {"month": month,
            "cases": [[*k, *trimmed(v)] for k, v in sorted(part["cases"].items())
                      if trimmed(v)],
            "warnings": [[*k, *trimmed(v)] for k, v in sorted(part["warnings"].items())
                         if trimmed(v)],
            # (a case counted twice for a moment, while its escalation and its registrant's
            # new report travel together, is listed once)
            "overdue": sorted({row[0]: list(row) for row in part["overdue"]}.values())}


def rollup(node) -> dict[str, dict]:
    """month -> the body this node reports for its subtree now: its own part plus its
    children's newest reports."""
    tree = trust.tree(node.db)
    months = _own_part(node, tree)
    for (_origin, month), (_ts, body) in latest(node, children(tree, node.id)).items():
        part = months.setdefault(month, {"cases": {}, "warnings": {}, "overdue": []})
        for row in body["cases"]:
            metrics.add(part["cases"].setdefault(tuple(row[:3]), []), row[3:])
        for row in body["warnings"]:
            metrics.add(part["warnings"].setdefault(tuple(row[:2]), []), row[2:])
        part["overdue"].extend(body["overdue"])
    return {month: _body(month, part) for month, part in sorted(months.items())}


def report(node) -> list:
    """Append a report for each month whose figures changed since this node's last report
    of it, and compact this node's own reports that are superseded (caller owns the
    transaction); returns the events."""
    now = rollup(node)
    last = {m: body for (_o, m), (_ts, body) in latest(node, [node.id]).items()}
    made = []
    for month in sorted(set(now) | set(last)):
        body = now.get(month) or _body(month, {"cases": {}, "warnings": {}, "overdue": []})
        if last.get(month, _body(month, {"cases": {}, "warnings": {}, "overdue": []})) == body:
            continue
        made.append(log.append(node, log.SYSTEM, ROLLED_UP,
                               subject_of(node.id, month, node.now()), body))
    compact(node, [node.id])  # what the new reports supersede, once the parent has it
    return made


# -- reading: the facts of a node's dashboard -------------------------------------------

# The cases of a node's subtree it counts itself, now: those it has, unless the top of their
# circle is below it (then it is not in the circle: a child counts the case, and a stray
# copy, which routing never sends, is not counted twice).
_LIVE = ("c.origin_node IN (SELECT value FROM json_each(:units)) AND coalesce(c.circle_top, "
         "c.origin_node) NOT IN (SELECT value FROM json_each(:below))")


class _Counted(NamedTuple):
    """Facts kept (``facts``): of which version of the log and day, counted when (by
    ``_monotonic``) and in how long."""

    version: tuple
    facts: metrics.Facts
    at: float
    took: float


_FACTS: dict[str, _Counted] = {}  # node directory -> its facts as last counted
_COUNTING: dict[str, threading.Lock] = {}  # node directory -> held while counting them
SLOW_COUNT = 0.5  # seconds: a count this long is not made again at once (facts)
RECOUNT_SHARE = 0.1  # ... but when this share of the time since it was made pays for it
MAX_STALE = 60  # seconds, at most, whatever the count took (a count slowed by load)
_monotonic = time.monotonic
_COUNTING_LOCK = threading.Lock()


def facts(node) -> metrics.Facts:
    """What this node knows of its subtree, by unit (itself and each child): its own rows
    of every case and warning of the subtree, counted now, and each child's newest reports
    (which leave out what this node has).

    Kept while nothing new is in the log and the day is the same (rows and reports change
    only with events, days overdue with the day): a dashboard does not count them again.
    One thread of a process counts them at a time (issue 19: at a city of 50,000 cases of
    its own that takes 2 s, and ten pages after a sync each counted them, all ten times
    slower): meanwhile others take the facts as they were before the newest events, of the
    same day, or wait for the count if there are none.

    A count that took long (SLOW_COUNT seconds: a city of a million events takes 5) is not
    made again, the same day, until RECOUNT_SHARE of the time since it was made would pay
    for it: a city receiving events every few seconds would otherwise keep a core counting,
    and the sync's thread waiting on the interpreter lock. Its figures are then up to a
    minute old, and say when they were made (``Facts.made_at``)."""
    version = (node.db.conn.execute("SELECT coalesce(max(lsn), 0) FROM events").fetchone()[0],
               node.today().isoformat(), node.id)
    key = str(node.dir)

    def same_day(found) -> bool:
        return found is not None and found.version[1:] == version[1:]

    def current(found) -> bool:  # counted with everything asked for (or more), the same day
        return same_day(found) and found.version[0] >= version[0]

    found = _FACTS.get(key)
    if current(found) or same_day(found) and found.took >= SLOW_COUNT and (
            _monotonic() - found.at < min(found.took / RECOUNT_SHARE, MAX_STALE)):
        return found.facts
    with _COUNTING_LOCK:
        counting = _COUNTING.setdefault(key, threading.Lock())
    if not counting.acquire(blocking=False):
        if same_day(found):
            return found.facts  # being counted again: as they were a moment ago
        counting.acquire()
    try:
        found = _FACTS.get(key)
        if current(found):  # counted while this thread waited
            return found.facts
        if len(_FACTS) > 64:  # (a process with many nodes: tests)
            _FACTS.clear()
        start, made_at = _monotonic(), node.now()
        made = _facts(node)
        made.made_at, end = made_at, _monotonic()
        _FACTS[key] = _Counted(version, made, end, end - start)
        return made
    finally:
        counting.release()


# (node directory, origin, month, seq) -> the Part of that report and its overdue list: a
# report never changes, so it is read, parsed and summed once per process, however many
# events arrive after it
_PARTS: dict[tuple, tuple[metrics.Part, list]] = {}


def _report(node, origin: str, month: str, seq: int) -> tuple[metrics.Part, list]:
    key = (str(node.dir), origin, month, seq)
    found = _PARTS.get(key)
    if found is None:
        if len(_PARTS) > 50_000:
            _PARTS.clear()
        body = json.loads(node.db.conn.execute(
            "SELECT body FROM figures_latest WHERE origin = ? AND month = ?",
            (origin, month)).fetchone()[0])
        part = metrics.Part(origin, month)
        for row in body["cases"]:
            part.add(0, (f"{month}-{row[0]:02d}", row[1], row[2]), row[3:])
        for row in body["warnings"]:
            part.add(1, (f"{month}-{row[0]:02d}", row[1]), row[2:])
        part.month_sums()
        found = _PARTS[key] = (part, body["overdue"])
    return found


def _facts(node) -> metrics.Facts:
    tree = trust.tree(node.db)
    units = json.dumps(sorted(below(tree, node.id)))
    out = metrics.Facts()
    kids = children(tree, node.id)
    out.made = {node.id: None, **dict.fromkeys(kids)}
    own: dict[tuple, metrics.Part] = {}

    def part(unit: str, day: str) -> metrics.Part:
        key = (unit, day[:7])
        if key not in own:
            own[key] = metrics.Part(unit, day[:7])
        return own[key]

    for (day, category, channel, origin), vector in metrics.case_cells(
            node, _LIVE, {"units": units, "below": json.dumps(sorted(
                below(tree, node.id) - {node.id}))}):
        part(branch(tree, node.id, origin), day).add(0, (day, category, channel), vector)
    for (day, category, origin), vector in metrics.warning_cells(
            node, "w.origin_node IN (SELECT value FROM json_each(:units))",
            {"units": units}):
        part(branch(tree, node.id, origin), day).add(1, (day, category), vector)
    wanted = set(kids)
    reports = {}
    for origin, month, seq, ts in node.db.conn.execute(
            "SELECT origin, month, seq, ts FROM figures_latest"):
        if origin in wanted:
            out.made[origin] = max(ts, out.made.get(origin) or "")
            reports[origin, month] = _report(node, origin, month, seq)
    for p in own.values():
        p.month_sums()
    out.parts = list(own.values()) + [p for p, _ in reports.values()]
    out.overdue = _supervision(node, tree, {k: o for k, (_, o) in reports.items()})
    return out


def supervision(node) -> Supervision:
    """The supervision list (督办清单): every overdue case of this node's subtree, from its
    own rows and its children's reports: number, unit (the child it is under), holder,
    category, state, deadline and its kind, the month it was registered (the day too, from
    its own rows), the most overdue first. Kept with ``facts``."""
    return facts(node).overdue


class Overdue(NamedTuple):
    """A row of the supervision list, as ``supervision`` gives it."""

    id: str
    unit: str  # the child of this node it is under (this node for its own)
    holder: str
    category: str
    state: str
    due_on: str
    due_kind: str
    registered_on: str | None  # (from this node's own rows only)
    month: str
    here: bool  # this node has the case


class Supervision(Sequence):
    """The supervision list kept with the facts: a city's runs to 100,000 rows. Kept as
    plain tuples whose repeated values (units, days, states) are one string each, which
    the garbage collector leaves alone (as dicts they took 75 MB, and a full collection
    looked at each); each row read is an ``Overdue``."""

    def __init__(self, rows: list[tuple]):
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [Overdue._make(r) for r in self._rows[i]]
        return Overdue._make(self._rows[i])

    def __iter__(self):
        return map(Overdue._make, self._rows)


def _supervision(node, tree: routing.Tree, reports: dict) -> Supervision:
    units = json.dumps(sorted(below(tree, node.id)))
    out, one = {}, {}
    strict = json.dumps(sorted(below(tree, node.id) - {node.id}))

    def shared(value):
        return one.setdefault(value, value)
    for case_id, holder, category, state, due_on, due_kind, registered, origin in \
            metrics.overdue_rows(node, _LIVE, {"units": units, "below": strict}):
        out[case_id] = (case_id, shared(branch(tree, node.id, origin)), shared(holder),
                        shared(category), shared(state), shared(due_on), shared(due_kind),
                        shared(registered), shared(registered[:7]), True)
    for (origin, month), listed in reports.items():
        for case_id, holder, category, state, due_on, due_kind in listed:
            if case_id not in out:
                out[case_id] = (case_id, shared(origin), shared(holder), shared(category),
                                shared(state), shared(due_on), shared(due_kind), None,
                                shared(month), False)
    return Supervision(sorted(out.values(), key=lambda r: (r[5], r[0])))


declare(Setting(
    "FIGURES_INTERVAL", 3600, "Seconds between checks whether this node's figures changed "
    "with no sync (days overdue grow without any event); a node also reports before every "
    "sync session with its parent (node/figures.py).", int,
    non_negative("FIGURES_INTERVAL")))
registry.register(registry.Domain(
    kind="figures", name="figures", validate_body=validate_body, context=FoldContext.of,
    fold=fold, write_many=write_many, clear=clear, prune=prune, group=group, reset=reset,
    superseded=superseded,
    # (not Art. 25's same day: forwarded on receipt, so that a change at a village is in the
    # city's figures within one sync of it; a node reports at most once a session)
    urgent=frozenset({ROLLED_UP}),
    authority=(Row(REPORTED, "own_subject", ("admin",)),
               Row(ROLLED_UP, "own_subject", ("admin",)))))
