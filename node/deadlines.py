"""Time limits of the 信访工作条例 (2022) and how their due dates are counted.

Counting rule: the day on which a limit starts (the day a petition is
registered, accepted or a reply delivered) is not counted; day 1 is the day
after. A limit of N calendar days therefore ends on ``start + N``. When that
last day is not a working day (a weekend or an official day off, 放假调休),
the limit ends on the next working day. Weekend days that are declared
working days (调休上班) count as ordinary working days. This is the
general rule for statutory periods in Chinese law (e.g. the 期间 article of
the 民事诉讼法), which the 条例 leaves implicit. Limits whose key ends in
``_workdays`` (Art. 23's objection to a misrouted assignment; the follow-up
visit) count working days instead.

Sources of the defaults: Art. 22 (forward or assign within 15 days),
Art. 23 (decide on acceptance within 15 days; object within 5 working
days), Art. 34 (settle within 60 days, one extension of at most 30 days),
Art. 35 (review request and answer, 30 days each), Art. 36 (recheck request
and answer, 30 days each) and the 2005 信访条例 Art. 36 (feedback to a
supervision notice, 30 days when the issuer sets none).

The holiday calendar ships in ``node/data/holidays-cn.toml``; a node may
add files or a mapping of the same shape. For a year the calendar does not
cover, only Saturdays and Sundays are rest days and a warning is logged once
per year: we do not guess the State Council's arrangements.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib.resources import files
from pathlib import Path

from node.errors import N_, ConfigError
from node.settings import Setting, declare, non_negative

log = logging.getLogger("siji.deadlines")

DEFAULT_LIMITS: dict[str, int] = {
    "forward": 15,
    "accept": 15,
    "object_workdays": 5,
    "settle": 60,
    "extend_max": 30,
    "review_request": 30,
    "review_answer": 30,
    "recheck_request": 30,
    "recheck_answer": 30,
    "supervision_feedback": 30,
    "followup_workdays": 1,
}

LIMIT_HELP: dict[str, str] = {
    "forward": "Art. 22: days to register, then forward or assign a petition.",
    "accept": "Art. 23: days to decide whether to accept a petition.",
    "object_workdays": "Art. 23: working days to object to a misrouted assignment.",
    "settle": "Art. 34: days to settle a petition from its acceptance.",
    "extend_max": "Art. 34: longest single extension of the settle limit (at most 30).",
    "review_request": "Art. 35: days for the petitioner to request review after delivery.",
    "review_answer": "Art. 35: days for the reviewing organ to answer.",
    "recheck_request": "Art. 36: days for the petitioner to request a recheck.",
    "recheck_answer": "Art. 36: days for the rechecking organ to answer.",
    "supervision_feedback": "2005 信访条例 Art. 36: days to report back on a supervision "
                            "notice when the issuer sets none.",
    "followup_workdays": "Practice: working days until the follow-up visit after a reply.",
}

EXTEND_CAP = 30  # Art. 34: an extension may not exceed 30 days
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR_RE = re.compile(r"\d{4}")


@dataclass(frozen=True)
class HolidayCalendar:
    off: frozenset[date]
    work: frozenset[date]
    years: frozenset[int]
    # Years already warned about (one warning per year per calendar); not part of equality.
    _warned: set[int] = field(default_factory=set, init=False, repr=False, compare=False)

    def is_working_day(self, d: date) -> bool:
        if d in self.work:
            return True
        if d in self.off:
            return False
        if d.year not in self.years and d.year not in self._warned:
            self._warned.add(d.year)
            log.warning("holiday calendar does not cover %d; counting only Saturdays and "
                        "Sundays as rest days", d.year)
        return d.weekday() < 5

    def covers(self, year: int) -> bool:
        return year in self.years

    def merged(self, other: HolidayCalendar) -> HolidayCalendar:
        """This calendar with ``other``'s years replacing ours wholesale."""
        return HolidayCalendar(
            off=frozenset(d for d in self.off if d.year not in other.years) | other.off,
            work=frozenset(d for d in self.work if d.year not in other.years) | other.work,
            years=self.years | other.years,
        )


def _bad(year, problem: str) -> ConfigError:
    return ConfigError(N_("holiday calendar %(year)s: %(problem)s"), year=year, problem=problem)


def _date(year: int, value) -> date:
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise _bad(year, f"{value!r} is not a valid date") from None
    if type(value) is not date:  # TOML may give a date, never accept a datetime
        raise _bad(year, f"{value!r} is not a date in the form YYYY-MM-DD")
    if value.year != year:
        raise _bad(year, f"{value.isoformat()} is not in {year}")
    return value


def parse_calendar(data: dict) -> HolidayCalendar:
    """Validate a parsed calendar mapping (the shape of holidays-cn.toml)."""
    if not isinstance(data, Mapping):
        raise ConfigError(N_("holiday calendar: expected a table of years, not %(value)r"),
                          value=data)
    off: set[date] = set()
    work: set[date] = set()
    years: set[int] = set()
    for key, table in data.items():
        if isinstance(key, bool) or not _YEAR_RE.fullmatch(str(key)):
            raise _bad(key, f"{key!r} is not a 4-digit year")
        year = int(key)
        if not isinstance(table, Mapping):
            raise _bad(year, f"expected a table, not {table!r}")
        unknown = sorted(set(table) - {"source", "off", "work"})
        if unknown:
            raise _bad(year, f"unknown key {unknown[0]!r} (allowed: source, off, work)")
        if not isinstance(table.get("source", ""), str):
            raise _bad(year, f"source must be a string, not {table['source']!r}")
        ranges, workdays = table.get("off", []), table.get("work", [])
        if not isinstance(ranges, list) or not isinstance(workdays, list):
            raise _bad(year, "off must be a list of [start, end] pairs and work a list of dates")
        year_off: set[date] = set()
        for pair in ranges:
            if not isinstance(pair, list) or len(pair) != 2:
                raise _bad(year, f"off range {pair!r} is not a [start, end] pair")
            start, end = _date(year, pair[0]), _date(year, pair[1])
            if start > end:
                raise _bad(year, f"off range {start.isoformat()}..{end.isoformat()} is reversed")
            year_off.update(start + timedelta(i) for i in range((end - start).days + 1))
        year_work = {_date(year, value) for value in workdays}
        for d in sorted(year_work):
            if d.weekday() < 5:
                raise _bad(year, f"work date {d.isoformat()} is a weekday, not a weekend day")
            if d in year_off:
                raise _bad(year, f"{d.isoformat()} is listed both as off and as work")
        off |= year_off
        work |= year_work
        years.add(year)
    return HolidayCalendar(frozenset(off), frozenset(work), frozenset(years))


def _load_file(path: str | Path) -> HolidayCalendar:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return parse_calendar(data)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError) as e:
        problem = e.english() if isinstance(e, ConfigError) else str(e)
        raise ConfigError(N_("holiday calendar file %(file)s: %(problem)s"),
                          file=str(path), problem=problem) from None


def load_calendar(extra_files: Sequence[str | Path] = (),
                  extra: dict | None = None) -> HolidayCalendar:
    """The shipped calendar, then each extra file, then ``extra``, each merged over the last."""
    shipped = files("node") / "data" / "holidays-cn.toml"
    cal = parse_calendar(tomllib.loads(shipped.read_text(encoding="utf-8")))
    for path in extra_files:
        cal = cal.merged(_load_file(path))
    if extra:
        cal = cal.merged(parse_calendar(extra))
    return cal


def due_date(cal: HolidayCalendar, start: date, days: int) -> date:
    """Last day of a limit of ``days`` calendar days starting on ``start`` (not counted)."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise ValueError(f"days must be a non-negative int, not {days!r}")
    d = start + timedelta(days)
    while not cal.is_working_day(d):
        d += timedelta(1)
    return d


def due_working_days(cal: HolidayCalendar, start: date, n: int) -> date:
    """The ``n``-th working day after ``start`` (``start`` itself not counted)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, not {n!r}")
    d = start
    while n:
        d += timedelta(1)
        n -= cal.is_working_day(d)
    return d


def due_for(cal: HolidayCalendar, limits: Mapping[str, int], key: str, start: date) -> date:
    """Due date of limit ``key``; values missing from ``limits`` take the defaults."""
    if key not in DEFAULT_LIMITS:
        raise KeyError(key)
    n = limits.get(key, DEFAULT_LIMITS[key])
    if key.endswith("_workdays"):
        return due_working_days(cal, start, n)
    return due_date(cal, start, n)


def days_overdue(due: date, today: date) -> int:
    return max(0, (today - due).days)


def is_due_soon(due: date, today: date, within_days: int) -> bool:
    return today <= due and (due - today).days <= within_days


def validate_limits(limits: Mapping) -> dict[str, int]:
    """DEFAULT_LIMITS updated with ``limits``, every key and value checked."""
    if not isinstance(limits, Mapping):
        raise ConfigError(N_("limits: expected a table, not %(value)r"), value=limits)
    result = dict(DEFAULT_LIMITS)
    for key, value in limits.items():
        if key not in DEFAULT_LIMITS:
            raise ConfigError(N_("limit %(key)s: unknown (known: %(known)s)"),
                              key=key, known=", ".join(DEFAULT_LIMITS))
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(N_("limit %(key)s: %(value)r is not a whole number of days"),
                              key=key, value=value)
        least = 1 if key.endswith("_workdays") else 0
        if value < least:
            raise ConfigError(N_("limit %(key)s: must be at least %(least)s, not %(value)s"),
                              key=key, least=least, value=value)
        if key == "extend_max" and value > EXTEND_CAP:
            raise ConfigError(N_("limit %(key)s: %(value)s exceeds the legal cap of %(cap)s "
                                 "days (Art. 34)"), key=key, value=value, cap=EXTEND_CAP)
        result[key] = value
    return result


declare(
    Setting("LIMITS", {}, "Time limits in days, overriding the 信访工作条例 defaults "
            "(see docs/settings.md); keys ending _workdays count working days.", dict,
            validate_limits, built_in=DEFAULT_LIMITS),
    Setting("HOLIDAY_FILES", [], "Extra holiday calendar TOML files merged over the shipped "
            "2025-2026 calendar (same format as node/data/holidays-cn.toml).", list),
    Setting("DUE_SOON_DAYS", 3, "A deadline within this many days counts as due soon.", int,
            non_negative("DUE_SOON_DAYS")),
)
