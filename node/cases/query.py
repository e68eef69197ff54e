"""Finding cases: every filter in SQL, pages by keyset, counts from SQL (issue 19).

A list never reads more rows than it shows: the newest first (registration day, then
number), a page at a time, the next page named by a cursor (the last row's day and
number, opaque to callers) so that a case registered meanwhile neither repeats a row nor
skips one. Counts are one ``count(*)`` over the same conditions, served by the indexes
of migration 0015.

``Filters.units`` limits the rows to those a unit may see (web/access.py): registered or
held in its subtree, or referred down by it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

from node import deadlines, paging
from node.cases.fold import CASE_COLUMNS
from node.cases.vocab import CATEGORIES, OPEN, STATES, code_of
from node.errors import N_, ValidationError

DUE = ("soon", "overdue")


@dataclass(frozen=True)
class Filters:
    state: str | None = None
    due: str | None = None  # soon | overdue, relative to today
    category: str | None = None
    origin: str | None = None  # the unit where it was registered
    holder: str | None = None
    not_origin: str | None = None  # registered elsewhere (escalated to a unit)
    open_only: bool = False
    handover: str | None = None  # pending | signed | returned | none
    since: str | None = None  # registered on or after (YYYY-MM-DD)
    until: str | None = None  # registered on or before
    units: tuple[str, ...] | None = None  # visible to: registered or held here
    referred_by: str | None = None  # ... or referred down by this unit
    mine: str | None = None  # registered or held by this unit itself
    urged: bool = False  # urged (催办) at least once

    def checked(self) -> Filters:
        """The same filters with codes and labels made codes; bad values refused."""
        out = {}
        if self.state:
            out["state"] = code_of(STATES, "state", self.state)
        if self.category:
            out["category"] = code_of(CATEGORIES, "category", self.category)
        if self.due and self.due not in DUE:
            raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="due",
                                  value=self.due)
        for name in ("since", "until"):
            value = getattr(self, name)
            if value:
                try:
                    date.fromisoformat(value)
                except (TypeError, ValueError):
                    raise ValidationError(N_("%(field)s: not a date (YYYY-MM-DD)"),
                                          field=name) from None
        return Filters(**{**self.__dict__, **out})


def _where(node, f: Filters, mine_by: str | None = None) -> tuple[str, list]:
    """The conditions of ``f``; ``mine_by`` (origin_node | holder) keeps only that half of
    ``mine``'s OR (page)."""
    sql, params = ["1 = 1"], []

    def add(clause: str, *values) -> None:
        sql.append(clause)
        params.extend(values)

    if f.state:
        add("state = ?", f.state)
    if f.open_only:
        add(f"state IN ({','.join('?' * len(OPEN))})", *OPEN)
    if f.category:
        add("category = ?", f.category)
    if f.origin:
        add("origin_node = ?", f.origin)
    if f.not_origin:
        add("origin_node != ?", f.not_origin)
    if f.holder:
        add("holder = ?", f.holder)
    if f.handover == "none":
        add("handover IS NULL")
    elif f.handover:
        add("handover = ?", f.handover)
    if f.since:
        add("registered_on >= ?", f.since)
    if f.until:
        add("registered_on <= ?", f.until)
    if f.mine and mine_by:
        add(f"{mine_by} = ?", f.mine)
    elif f.mine:
        add("(origin_node = ? OR holder = ?)", f.mine, f.mine)
    if f.urged:
        add("urge_count > 0")
    today = node.today()
    if f.due == "overdue":  # (cases.OVERDUE_SQL)
        add("due_on IS NOT NULL AND due_on < ?", today.isoformat())
    elif f.due == "soon":
        add("due_on >= ? AND due_on <= ?", today.isoformat(),
            (today + timedelta(days=node.settings["DUE_SOON_DAYS"])).isoformat())
    if f.units is not None:
        units = json.dumps(list(f.units))
        add("(origin_node IN (SELECT value FROM json_each(?)) OR holder IN "
            "(SELECT value FROM json_each(?)) OR referred_by = ?)", units, units,
            f.referred_by or "")
    return " AND ".join(sql), params


def origins(node) -> list[str]:
    """Every unit a case here was registered at, found by one index seek each (the index
    cases_origin), not by reading the cases: a few hundred seeks at a city."""
    return [v for (v,) in node.db.conn.execute(
        "WITH RECURSIVE o(v) AS (SELECT min(origin_node) FROM cases UNION ALL "
        "SELECT (SELECT min(origin_node) FROM cases WHERE origin_node > v) FROM o "
        "WHERE v IS NOT NULL) SELECT v FROM o WHERE v IS NOT NULL")]


def count(node, f: Filters) -> int:
    where, params = _where(node, f.checked())
    return node.db.conn.execute(f"SELECT count(*) FROM cases WHERE {where}", params
                                ).fetchone()[0]


def cursor_of(row: dict) -> str:
    return paging.cursor(row["registered_on"], row["id"])


def page(node, f: Filters, after: str | None = None,
         limit: int = paging.PAGE) -> tuple[list[dict], str | None]:
    """(up to ``limit`` rows after the cursor ``after``, the cursor of the next page or
    None); newest first."""
    limit = paging.limit(limit)
    f = f.checked()
    # ``mine`` is an OR of two columns, whose rows no one index gives in order (at a city,
    # 150,000 cases sorted for a page of 16: 0.46 s): each half is read in order from its
    # own index, and the two heads merged.
    halves = ("origin_node", "holder") if f.mine else (None,)
    rows = {}
    for half in halves:
        for r in _head(node, f, half, after, limit + 1):
            rows[r[0]] = r
    ordered = sorted(rows.values(), key=lambda r: (r[_DAY], r[0]), reverse=True)
    out = [with_days(node, dict(zip(CASE_COLUMNS, r, strict=True)))
           for r in ordered[:limit]]
    return out, (cursor_of(out[-1]) if len(ordered) > limit else None)


_DAY = CASE_COLUMNS.index("registered_on")


def _head(node, f: Filters, mine_by: str | None, after: str | None, n: int) -> list[tuple]:
    """The first ``n`` rows after the cursor, newest first (id first in CASE_COLUMNS)."""
    where, params = _where(node, f, mine_by)
    if after:
        day, case_id = paging.after(after)
        where += " AND (registered_on, id) < (?, ?)"
        params += [day, case_id]
    return node.db.conn.execute(
        f"SELECT {', '.join(CASE_COLUMNS)} FROM cases WHERE {where} "
        "ORDER BY registered_on DESC, id DESC LIMIT ?", (*params, n)).fetchall()


def every(node, f: Filters):
    """Every matching row, newest first, read a page at a time (exports)."""
    return paging.every(lambda after, limit: page(node, f, after, limit))


def with_days(node, row: dict) -> dict:
    row["days_overdue"] = (deadlines.days_overdue(date.fromisoformat(row["due_on"]),
                                                  node.today()) if row["due_on"] else 0)
    return row
