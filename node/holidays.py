"""Rest days in mainland China, year by year: the official arrangement where one is known,
the statutory holidays where none is. Pure (it reads files it is given, no database).

Each year's days off (放假) and weekend working days (调休上班) come from, each over the
last:

1. the ``chinese-calendar`` package, for the years it has (2004 onwards, up to the
   year its release knew of);
2. the file shipped in ``node/data/holidays-cn.toml`` (2025, 2026: checked day by day);
3. a node's own files (setting HOLIDAY_FILES) and mappings, in order.

A year none of them has is counted with the statutory holidays of the
《全国年节及纪念日放假办法》 as revised in 2024 (in force 2025-01-01), computed from
the lunar calendar and the solar terms (``lunar-python``): 元旦 1 day (Jan 1),
春节 4 days from 除夕 (the last day of the lunar year), 清明 (the solar term's day),
劳动节 2 days (May 1-2), 端午 (5th of the 5th lunar month), 中秋 (15th of the 8th),
国庆 3 days (Oct 1-3); and, by its Art. 6, a holiday of all citizens that falls on a
Saturday or Sunday (or on another holiday) is made up on a working day (补假), here the
first weekdays after it. The State Council's arrangement for such a year, with its
调休, is not known yet, so every deadline counted over such a year is *provisional*
(暂按法定节假日计算) and marked wherever it is shown.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import metadata
from importlib.resources import files
from pathlib import Path

import chinese_calendar
from lunar_python import Lunar, Solar

from node.errors import N_, ConfigError

# What the fallback counts, for the calendar's fingerprint: changing the rule changes it
STATUTORY_RULES = "全国年节及纪念日放假办法 2024, Art. 2 and 6"
SHIPPED = "node/data/holidays-cn.toml"
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR_RE = re.compile(r"\d{4}")


@dataclass(frozen=True)
class HolidayCalendar:
    off: frozenset[date]
    work: frozenset[date]
    years: frozenset[int]          # the years with an official arrangement
    # year -> where its arrangement comes from (a file, the chinese-calendar package)
    sources: tuple[tuple[int, str], ...] = ()
    # statutory days of the years without an arrangement, computed once per year
    _statutory: dict[int, frozenset[date]] = field(default_factory=dict, init=False,
                                                   repr=False, compare=False)

    def is_working_day(self, d: date) -> bool:
        if d in self.work:
            return True
        if d in self.off:
            return False
        if d.year not in self.years and d in self.statutory(d.year):
            return False
        return d.weekday() < 5

    def covers(self, year: int) -> bool:
        """Whether ``year`` has an official arrangement (else it is counted provisionally)."""
        return year in self.years

    def provisional(self, first: date, last: date) -> bool:
        """Whether counting over ``first``..``last`` rests on the statutory fallback."""
        return any(y not in self.years for y in range(first.year, last.year + 1))

    def statutory(self, year: int) -> frozenset[date]:
        found = self._statutory.get(year)
        if found is None:
            found = self._statutory[year] = frozenset(statutory_days(year))
        return found

    def source(self, year: int) -> str | None:
        return dict(self.sources).get(year)

    def merged(self, other: HolidayCalendar) -> HolidayCalendar:
        """This calendar with ``other``'s years replacing ours wholesale."""
        return HolidayCalendar(
            off=frozenset(d for d in self.off if d.year not in other.years) | other.off,
            work=frozenset(d for d in self.work if d.year not in other.years) | other.work,
            years=self.years | other.years,
            sources=tuple(sorted({**dict(self.sources), **dict(other.sources)}.items())),
        )

    def fingerprint(self) -> str:
        """A digest of every official day and of the fallback's rule: it changes exactly
        when a deadline might (a new year's file, a new package release, a corrected day)."""
        data = {"off": sorted(d.isoformat() for d in self.off),
                "work": sorted(d.isoformat() for d in self.work),
                "years": sorted(self.years), "statutory": STATUTORY_RULES}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# -- the statutory holidays (the fallback) --------------------------------------------------

def _lunar(year: int, month: int, day: int) -> date:
    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def statutory_holidays(year: int) -> dict[str, list[date]]:
    """The holidays of all citizens in ``year`` (放假办法 Art. 2), by name, without 补假."""
    eve = Lunar.fromYmd(year, 1, 1).next(-1).getSolar()  # 除夕: the lunar year's last day
    eve = date(eve.getYear(), eve.getMonth(), eve.getDay())
    qingming = Solar.fromYmd(year, 4, 1).getLunar().getJieQiTable()["清明"]
    return {
        "元旦": [date(year, 1, 1)],
        "春节": [eve + timedelta(i) for i in range(4)],
        "清明节": [date(qingming.getYear(), qingming.getMonth(), qingming.getDay())],
        "劳动节": [date(year, 5, 1), date(year, 5, 2)],
        "端午节": [_lunar(year, 5, 5)],
        "中秋节": [_lunar(year, 8, 15)],
        "国庆节": [date(year, 10, 1) + timedelta(i) for i in range(3)],
    }


def statutory_days(year: int) -> set[date]:
    """The days off of ``year`` by the statute alone: its holidays, and for each holiday
    day on a Saturday, a Sunday or another holiday, the first free weekday after that
    holiday (补假, Art. 6)."""
    holidays = statutory_holidays(year)
    taken = {d for days in holidays.values() for d in days}
    off, seen = set(taken), set()
    for days in sorted(holidays.values()):
        owed = sum(1 for d in days if d.weekday() >= 5 or d in seen)
        seen.update(days)
        d = days[-1]
        while owed:
            d += timedelta(1)
            if d.weekday() < 5 and d not in off:
                off.add(d)
                owed -= 1
    return {d for d in off if d.year == year}


# -- official arrangements ------------------------------------------------------------------

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


def parse_calendar(data: dict, source: str = "config") -> HolidayCalendar:
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
    return HolidayCalendar(frozenset(off), frozenset(work), frozenset(years),
                           tuple((y, source) for y in sorted(years)))


def package_calendar() -> HolidayCalendar:
    """The arrangements the ``chinese-calendar`` package knows (its own years)."""
    off = frozenset(chinese_calendar.holidays)
    work = frozenset(d for d in chinese_calendar.workdays if d.weekday() >= 5)
    years = frozenset(d.year for d in off)
    name = f"chinese-calendar {metadata.version('chinese-calendar')}"
    return HolidayCalendar(off, work, years, tuple((y, name) for y in sorted(years)))


def _load_file(path: str | Path) -> HolidayCalendar:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return parse_calendar(data, Path(path).name)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError) as e:
        problem = e.english() if isinstance(e, ConfigError) else str(e)
        raise ConfigError(N_("holiday calendar file %(file)s: %(problem)s"),
                          file=str(path), problem=problem) from None


def load_calendar(extra_files: Sequence[str | Path] = (), extra: dict | None = None,
                  package: bool = True) -> HolidayCalendar:
    """The package's years, the shipped file, each extra file, then ``extra``, each merged
    over the last."""
    shipped = files("node") / "data" / "holidays-cn.toml"
    cal = parse_calendar(tomllib.loads(shipped.read_text(encoding="utf-8")), SHIPPED)
    if package:
        cal = package_calendar().merged(cal)
    for path in extra_files:
        cal = cal.merged(_load_file(path))
    if extra:
        cal = cal.merged(parse_calendar(extra))
    return cal
