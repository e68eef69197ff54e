"""Deadlines counted again when the holiday calendar changes, without a manual rebuild.

A case's deadlines are stored by its fold, counted with the node's calendar
(node/holidays.py). That calendar changes under a running network: the State
Council publishes next year's arrangement and a node adds it as a file, or a
release of the chinese-calendar package brings it. The node remembers the
fingerprint of the calendar its rows were counted with (``calendar_seen``);
opening the node with another one folds every case with an open deadline
again (the same fold as ever, so ``siji rebuild`` gives the same rows) and
records each deadline that moved in ``deadline_changes``, which the case's
timeline shows. The caller owns the transaction.
"""

from __future__ import annotations

import json

from node import deadlines, i18n, log
from node.cases.fold import fold, write_many
from node.cases.rules import FoldContext
from node.causal import causal_order
from node.errors import N_

_WATCHED = (("due_on", "due_kind", "due_provisional"),
            ("request_until", "request_kind", "request_provisional"))


def _sources(cal) -> dict[str, str]:
    return {str(year): source for year, source in cal.sources}


def changed(node) -> bool:
    """Whether the stored deadlines were counted with another calendar than the node's."""
    row = node.db.conn.execute("SELECT fingerprint FROM calendar_seen").fetchone()
    return row is None or row[0] != node.calendar.fingerprint()


def recount(node) -> list[dict]:
    """If the calendar changed, fold every case with a deadline again and record what
    moved; returns the changes. The caller holds a write transaction."""
    cal = node.calendar
    row = node.db.conn.execute("SELECT fingerprint, sources FROM calendar_seen").fetchone()
    if row is not None and row[0] == cal.fingerprint():
        return []
    new = _sources(cal)
    if row is None:  # first count with a calendar this node remembers (a new or older db)
        years, where = "", ""
    else:
        old = json.loads(row[1])
        years = ",".join(sorted({y for y in old.keys() | new.keys()
                                 if old.get(y) != new.get(y)}))
        where = " AND (due_on IS NOT NULL OR request_until IS NOT NULL)"
    cols = [c for group in _WATCHED for c in group]
    before = {r[0]: dict(zip(cols, r[1:], strict=True)) for r in node.db.conn.execute(
        f"SELECT id, {', '.join(cols)} FROM cases WHERE 1 = 1{where}")}
    ctx = FoldContext.of(node)
    items = [(case_id, fold(causal_order(log.subject_events(node.db, case_id)), ctx))
             for case_id in sorted(before)]
    write_many(node.db, items)
    changes = []
    now = node.now()
    for case_id, folded in items:
        for on, kind, provisional in _WATCHED:
            was, now_case = before[case_id], folded.case or dict.fromkeys(cols)
            if (was[on], was[provisional]) == (now_case[on], now_case[provisional]) or (
                    was[on] is None and row is None):
                continue
            changes.append({"case_id": case_id, "at": now,
                            "kind": now_case[kind] or was[kind], "old_on": was[on],
                            "new_on": now_case[on], "old_provisional": was[provisional] or 0,
                            "new_provisional": now_case[provisional], "years": years})
    node.db.conn.executemany(
        "INSERT INTO deadline_changes (case_id, at, kind, old_on, new_on, old_provisional, "
        "new_provisional, years) VALUES (:case_id, :at, :kind, :old_on, :new_on, "
        ":old_provisional, :new_provisional, :years)", changes)
    node.db.conn.execute(
        "INSERT INTO calendar_seen (id, fingerprint, sources, at) VALUES (1, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET fingerprint = excluded.fingerprint, "
        "sources = excluded.sources, at = excluded.at",
        (cal.fingerprint(), json.dumps(new, sort_keys=True), now))
    return changes


def changes_of(node, case_id: str) -> list[dict]:
    """The deadlines of a case that a new calendar moved, oldest first."""
    cur = node.db.conn.execute(
        "SELECT at, kind, old_on, new_on, old_provisional, new_provisional, years FROM "
        "deadline_changes WHERE case_id = ? ORDER BY id", (case_id,))
    keys = [c[0] for c in cur.description]
    return [dict(zip(keys, r, strict=True)) for r in cur]


def describe_change(change: dict, lang: str) -> str:
    """A deadline a new calendar moved, as the timeline says it."""
    def shown(on, provisional) -> str:
        if on is None:
            return "—"
        return on + (f" ({i18n.translate(deadlines.PROVISIONAL, lang)})" if provisional else "")
    old = shown(change["old_on"], change["old_provisional"])
    new = shown(change["new_on"], change["new_provisional"])
    if change["years"]:
        return i18n.translate(N_("%(due_kind)s counted again with the new holiday arrangement of "
                                 "%(years)s: %(old)s → %(new)s"), lang,
                              due_kind=change["kind"], years=change["years"], old=old, new=new)
    return i18n.translate(N_("%(due_kind)s counted again with this version's holiday calendar: "
                             "%(old)s → %(new)s"), lang, due_kind=change["kind"], old=old, new=new)


# the first day of the year after the day ``v``; a step on only while it is later than
# ``v`` (a year 9999 would give '10000-01-01', which sorts before it: no end)
_NEXT_YEAR = "((CAST(substr(v, 1, 4) AS INTEGER) + 1) || '-01-01')"


def calendar_gaps(node) -> list[int]:
    """The years without an official holiday arrangement that this node counts in: this
    year and the next, and any year a stored deadline falls in (for the admin's banner)."""
    today = node.today()
    years = {today.year, today.year + 1}
    for column, flag in (("due_on", "due_provisional"), ("request_until", "request_provisional")):
        # each year's first such day, by one seek of a partial index each (migration 0023)
        years |= {int(r[0][:4]) for r in node.db.conn.execute(
            f"WITH RECURSIVE y(v) AS (SELECT min({column}) FROM cases WHERE {flag} = 1 "
            f"UNION ALL SELECT (SELECT min({column}) FROM cases WHERE {flag} = 1 AND "
            f"{column} >= {_NEXT_YEAR}) FROM y WHERE v IS NOT NULL AND {_NEXT_YEAR} > v) "
            "SELECT v FROM y WHERE v IS NOT NULL")}
    return sorted(y for y in years if not node.calendar.covers(y))
