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

Which days are rest days is ``node.holidays``' business: the official
arrangement of each year where one is known (a file, the chinese-calendar
package), else the statutory holidays. A due date counted over a year with no
official arrangement is *provisional* (暂按法定节假日计算): ``count`` says so,
and every place that shows the date marks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from node.errors import N_, ConfigError
from node.holidays import (  # noqa: F401 - part of this module's API
    HolidayCalendar,
    load_calendar,
    parse_calendar,
)
from node.settings import Setting, declare, non_negative

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

# how people are told the date is provisional (暂按法定节假日计算), wherever it is shown
PROVISIONAL = N_("provisional: counted with the statutory holidays")


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


@dataclass(frozen=True)
class Due:
    """A due date, and whether it rests on the statutory fallback (a year counted with
    no official arrangement: holidays.HolidayCalendar.provisional)."""

    on: date
    provisional: bool


def count(cal: HolidayCalendar, limits: Mapping[str, int], key: str, start: date,
          extra_days: int = 0) -> Due:
    """Due date of limit ``key`` (plus ``extra_days``, an extension) from ``start``, and
    whether it is provisional: a calendar-day limit rests on the days from its nominal
    last day to the due date, a working-day limit on every day it counts."""
    if key not in DEFAULT_LIMITS:
        raise KeyError(key)
    n = limits.get(key, DEFAULT_LIMITS[key]) + extra_days
    if key.endswith("_workdays"):
        due = due_working_days(cal, start, n)
        return Due(due, cal.provisional(start + timedelta(1), due))
    due = due_date(cal, start, n)
    return Due(due, cal.provisional(start + timedelta(n), due))


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
    Setting("HOLIDAY_FILES", [], "Extra holiday calendar TOML files (the State Council's "
            "arrangement of a year, same format as node/data/holidays-cn.toml), merged over "
            "the chinese-calendar package's years and the shipped 2025-2026 file. A year no "
            "source has is counted with the statutory holidays, provisionally.", list),
    Setting("DUE_SOON_DAYS", 3, "A deadline within this many days counts as due soon.", int,
            non_negative("DUE_SOON_DAYS")),
)
