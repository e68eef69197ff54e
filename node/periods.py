"""Periods of the figures (统计期): a day, week, month, quarter, year or any range of days.

A period is a closed range of local dates, ``start`` to ``end``. The same
period last year (上年同期) is the same range a year earlier (29 February
becomes the 28th). Parsing takes what a page or the API sends (``period``,
``at``, ``from``, ``to``) and refuses anything else with a message naming
the field. Pure: today is a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from node import i18n
from node.errors import N_, ValidationError

KINDS = ("day", "week", "month", "quarter", "year", "range")
LONGEST = 366 * 20  # days in a range: twenty years is plenty for any report
i18n.add_labels("period", {"day": ("日", "Day"), "week": ("周", "Week"), "month": ("月", "Month"),
                           "quarter": ("季度", "Quarter"), "year": ("年", "Year"),
                           "range": ("时段", "Range")})


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date

    @property
    def months(self) -> list[str]:
        """The months (YYYY-MM) the period touches, in order."""
        out, y, m = [], self.start.year, self.start.month
        while (y, m) <= (self.end.year, self.end.month):
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out

    def contains(self, day: str) -> bool:
        """Whether an ISO date (YYYY-MM-DD) is in the period."""
        return self.start.isoformat() <= day <= self.end.isoformat()

    def last_year(self) -> Period:
        return Period(self.kind, _year_back(self.start), _year_back(self.end))

    @property
    def label(self) -> str:
        """How a report names it: 2026-11, 2026-Q4, 2026, 2026-11-23, or from..to."""
        s = self.start
        if self.kind == "year":
            return f"{s.year}"
        if self.kind == "quarter":
            return f"{s.year}-Q{(s.month - 1) // 3 + 1}"
        if self.kind == "month":
            return f"{s.year}-{s.month:02d}"
        if self.kind == "day":
            return s.isoformat()
        return f"{s.isoformat()}..{self.end.isoformat()}"

    def query(self) -> dict[str, str]:
        """The query parameters that give this period back (for links)."""
        if self.kind == "range":
            return {"from": self.start.isoformat(), "to": self.end.isoformat()}
        return {"period": self.kind, "at": self.start.isoformat()}


def _year_back(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


def _day(field: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationError(N_("%(field)s: %(value)s is not a date (YYYY-MM-DD)"),
                              field=field, value=str(value)[:40]) from None


def around(kind: str, at: date) -> Period:
    """The period of this kind that contains ``at``."""
    if kind == "day":
        return Period(kind, at, at)
    if kind == "week":  # Monday to Sunday
        start = at - timedelta(days=at.weekday())
        return Period(kind, start, start + timedelta(days=6))
    if kind == "month":
        start = at.replace(day=1)
        nxt = (start + timedelta(days=32)).replace(day=1)
        return Period(kind, start, nxt - timedelta(days=1))
    if kind == "quarter":
        start = date(at.year, (at.month - 1) // 3 * 3 + 1, 1)
        nxt = (start + timedelta(days=93)).replace(day=1)
        return Period(kind, start, nxt - timedelta(days=1))
    if kind == "year":
        return Period(kind, date(at.year, 1, 1), date(at.year, 12, 31))
    raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="period",
                          value=str(kind)[:40])


def parse(args, today: date, default: str = "month") -> Period:
    """The period a request asks for: ``from`` and ``to`` (a range), or ``period`` (one of
    KINDS) around ``at`` (default today). Refuses a malformed or reversed one."""
    start, end = args.get("from") or None, args.get("to") or None
    if start or end:
        if not (start and end):
            raise ValidationError(N_("%(field)s is required"), field="to" if start else "from")
        period = Period("range", _day("from", start), _day("to", end))
        if period.start > period.end:
            raise ValidationError(N_("%(field)s: the period ends before it starts"),
                                  field="to")
        if (period.end - period.start).days > LONGEST:
            raise ValidationError(N_("%(field)s: the period is longer than twenty years"),
                                  field="to")
        return period
    kind = args.get("period") or default
    if kind not in KINDS or kind == "range":
        raise ValidationError(N_("%(field)s: unknown value %(value)s"), field="period",
                              value=str(kind)[:40])
    at = _day("at", args["at"]) if args.get("at") else today
    return around(kind, at)
