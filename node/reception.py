"""领导接待日 and a leader's own work: reception days, who is on duty, the reception log,
and each leader's appointments (约访) and 包案 cases.

An office receives petitioners on a fixed day each month (RECEPTION_DAY, e.g. the 25th),
moved to the next working day when it falls on a rest day (the holiday calendar of the
deadlines). Which leader is on duty is this office's own planning (``reception_duty``),
not an event: set it ahead, change it as plans change. A petition received that day is
registered with the channel 领导接待日 and the receiving leader (``received_by``): those
cases are the reception log. Appointments and 包案 are case events (node/cases/).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from node import cases, metrics, validate
from node.errors import N_, ValidationError
from node.settings import Setting, declare


def _day(value):
    if not 0 <= value <= 31:
        raise ValidationError(N_("%(field)s must be between %(min)s and %(max)s"),
                              field="RECEPTION_DAY", min=0, max=31)
    return value


declare(
    Setting("RECEPTION_DAY", 25, "The day of each month on which this office's leaders receive "
            "petitioners (领导接待日), moved to the next working day when it is a rest day; 0: "
            "none (days can still be set one by one).", int, _day),
    Setting("RECEPTION_PLACE", "", "Where the reception day is held (e.g. 镇信访接待室), "
            "printed with the schedule.", str),
)


def _next_workday(node, d: date) -> date:
    while not node.calendar.is_working_day(d):
        d += timedelta(days=1)
    return d


def days(node, months: int = 3, start: date | None = None) -> list[dict]:
    """The reception days from ``start`` (default today) for ``months`` months: the rule's
    days and any other day with a leader on duty, each with its leader, if set."""
    start = start or node.today()
    duty = {r[0]: r for r in node.db.conn.execute(
        "SELECT on_date, leader, place, note FROM reception_duty WHERE on_date >= ?",
        (start.isoformat(),))}
    leaders = dict(node.db.conn.execute("SELECT username, display_name FROM users"))
    found: dict[str, dict] = {}
    rule = node.settings["RECEPTION_DAY"]
    year, month = start.year, start.month
    end = date(year + (month + months - 1) // 12, (month + months - 1) % 12 + 1, 1)
    while rule and date(year, month, 1) < end:
        nominal = date(year, month, min(rule, calendar.monthrange(year, month)[1]))
        actual = _next_workday(node, nominal)
        if actual >= start:
            found[actual.isoformat()] = {"date": actual.isoformat(),
                                         "moved_from": None if actual == nominal
                                         else nominal.isoformat()}
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    for on_date in duty:
        if on_date < end.isoformat():
            found.setdefault(on_date, {"date": on_date, "moved_from": None})
    out = []
    for on_date in sorted(found):
        row = duty.get(on_date)
        out.append({**found[on_date], "leader": row[1] if row else None,
                    "leader_name": leaders.get(row[1]) if row else None,
                    "place": (row[2] if row and row[2] else node.settings["RECEPTION_PLACE"]),
                    "note": row[3] if row else None})
    return out


def set_duty(node, by: str, on_date, leader: str, place: str | None = None,
             note: str | None = None) -> dict:
    """Put a leader of this office on duty on a day (replacing whoever was). The caller
    owns the transaction."""
    day = validate.a_date("date", on_date)
    leader = cases.leader_account(node, leader)[0]
    place = validate.line("place", place, required=False, max_len=100)
    note = validate.text("note", note, required=False)
    node.db.conn.execute(
        "INSERT INTO reception_duty (on_date, leader, place, note, set_by, set_at) VALUES "
        "(?, ?, ?, ?, ?, ?) ON CONFLICT(on_date) DO UPDATE SET leader = excluded.leader, "
        "place = excluded.place, note = excluded.note, set_by = excluded.set_by, "
        "set_at = excluded.set_at", (day.isoformat(), leader, place, note, by, node.now()))
    return {"date": day.isoformat(), "leader": leader, "place": place, "note": note}


def _cases(node, where: str, params: tuple, order: str, limit: int | None) -> list[dict]:
    """Case rows found in SQL (an index of migration 0020 each), with their days overdue."""
    rows = node.db.conn.execute(
        f"SELECT {', '.join(cases.CASE_COLUMNS)} FROM cases WHERE {where} ORDER BY {order}"
        + (" LIMIT ?" if limit else ""), (*params, *((limit,) if limit else ())))
    return [cases.query.with_days(node, dict(zip(cases.CASE_COLUMNS, r, strict=True)))
            for r in rows]


def reception_log(node, start: str | None = None, end: str | None = None,
                  limit: int | None = None) -> list[dict]:
    """Petitions registered here with the channel 领导接待日, newest first (the newest
    ``limit``, if given)."""
    where, params = "channel = 'leader_day' AND origin_node = ?", [node.id]
    if start:
        where, params = where + " AND registered_on >= ?", [*params, start]
    if end:
        where, params = where + " AND registered_on <= ?", [*params, end]
    return _cases(node, where, tuple(params), "registered_on DESC, id DESC", limit)


DONE = ("concluded", "terminated")


def lead_cases(node, username: str) -> list[dict]:
    """The cases this leader (an account here) took charge of (包案), open ones first."""
    return _cases(node, "lead_account = ? AND lead_unit = ?", (username, node.id),
                  f"state IN ({', '.join(repr(s) for s in DONE)}), coalesce(due_on, '9999'), "
                  "id", None)


def leader_work(node, username: str, months: int = 3) -> dict:
    """A leader's page: reception days on duty, appointments, 包案 cases and their figures."""
    led = lead_cases(node, username)
    where, params = "c.lead_account = :leader AND c.lead_unit = :unit", {
        "leader": username, "unit": node.id}
    return {"days": [d for d in days(node, months) if d["leader"] == username],
            "appointments": cases.appointments(node, leader=username, unit=node.id),
            "lead_cases": led,
            # 包案办结率 and 包案息访率 as the figures define them (node/metrics.py)
            "figures": {"lead": len(led),
                        "concluded": len(metrics.counted_by(node, "lead_done", where, params)),
                        "quiet": len(metrics.counted_by(node, "lead_ceased", where, params))}}
