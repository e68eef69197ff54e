"""Due dates under the 信访工作条例: the official arrangements (the shipped 2025/2026 file,
the chinese-calendar package) and, for a year none has, the statutory holidays."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node import holidays
from node.deadlines import (
    DEFAULT_LIMITS,
    LIMIT_HELP,
    HolidayCalendar,
    count,
    days_overdue,
    due_date,
    due_for,
    due_working_days,
    is_due_soon,
    load_calendar,
    parse_calendar,
    validate_limits,
)
from node.errors import ConfigError

CAL = load_calendar()
D = date.fromisoformat
covered_dates = st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31))


# --- the shipped calendar -------------------------------------------------------------------

SHIPPED = load_calendar(package=False)


def test_shipped_calendar_covers_2025_and_2026():
    assert SHIPPED.years == frozenset({2025, 2026})
    assert SHIPPED.covers(2026) and not SHIPPED.covers(2027)
    assert sum(d.year == 2025 for d in SHIPPED.off) == 28
    assert sum(d.year == 2026 for d in SHIPPED.off) == 33
    assert D("2026-02-14") in SHIPPED.work and D("2026-10-10") in SHIPPED.work
    assert len(SHIPPED.work) == 11


def test_the_package_adds_its_years_and_agrees_with_the_shipped_file():
    """chinese-calendar has 2004 to its release's last year; where it and the shipped file
    both have a year (2025, 2026), they agree day by day, and the file is named the source."""
    package = holidays.package_calendar()
    assert {2004, 2024, 2025, 2026} <= package.years and 2027 not in CAL.years
    for year in (2025, 2026):
        assert {d for d in package.off if d.year == year} == {
            d for d in SHIPPED.off if d.year == year}
        assert {d for d in package.work if d.year == year} == {
            d for d in SHIPPED.work if d.year == year}
        assert CAL.source(year) == holidays.SHIPPED
    assert CAL.source(2024).startswith("chinese-calendar ")
    assert not CAL.is_working_day(D("2024-10-07"))  # 国庆 2024, from the package
    assert CAL.is_working_day(D("2024-10-12"))  # a 调休上班 Saturday of 2024


def test_is_working_day_rules():
    assert CAL.is_working_day(D("2026-09-30"))  # plain Wednesday
    assert not CAL.is_working_day(D("2026-10-01"))  # National Day
    assert not CAL.is_working_day(D("2026-03-07"))  # plain Saturday
    assert CAL.is_working_day(D("2026-10-10"))  # 调休上班 Saturday
    assert CAL.is_working_day(D("2025-01-26"))  # 调休上班 Sunday
    assert not CAL.is_working_day(D("2025-02-03"))  # Monday inside Spring Festival 2025


def test_work_listed_day_wins_over_off_listed():
    d = D("2026-03-07")
    assert HolidayCalendar(frozenset({d}), frozenset({d}), frozenset({2026})).is_working_day(d)


def test_limit_tables_agree():
    assert set(LIMIT_HELP) == set(DEFAULT_LIMITS)
    assert DEFAULT_LIMITS["settle"] == 60 and DEFAULT_LIMITS["object_workdays"] == 5
    assert all(LIMIT_HELP[k] for k in LIMIT_HELP)


# --- due_date: calendar-day limits ------------------------------------------------------------

@pytest.mark.parametrize(("start", "days", "due"), [
    ("2026-09-15", 15, "2026-09-30"),  # ends on a working Wednesday
    ("2026-09-16", 15, "2026-10-08"),  # ends on 10-01, National Day
    ("2026-09-20", 15, "2026-10-08"),  # ends on 10-05, inside the holiday
    ("2026-09-22", 15, "2026-10-08"),  # ends on 10-07, last day of the holiday
    ("2026-02-20", 15, "2026-03-09"),  # ends on a plain Saturday -> Monday
    ("2026-09-25", 15, "2026-10-10"),  # ends on a 调休上班 Saturday: stays
    ("2026-02-05", 15, "2026-02-24"),  # ends on 02-20, Spring Festival -> Tuesday after
    ("2026-01-30", 15, "2026-02-14"),  # working Saturday before Spring Festival
    ("2026-02-13", 15, "2026-02-28"),  # working Saturday after Spring Festival
    ("2025-09-20", 15, "2025-10-09"),  # 2025 National Day and Mid-Autumn, 10-01..08
    ("2025-08-02", 60, "2025-10-09"),  # Art. 34 settle limit ending in the same holiday
    ("2026-08-20", 30, "2026-09-20"),  # ends on Sat 09-19 -> Sun 09-20, a 调休上班 day
])
def test_due_date_examples(start, days, due):
    assert due_date(CAL, D(start), days) == D(due)


def test_starting_day_is_not_counted():
    assert due_date(CAL, D("2026-09-15"), 1) == D("2026-09-16")
    assert due_date(CAL, D("2026-09-30"), 0) == D("2026-09-30")  # working day: itself
    assert due_date(CAL, D("2026-10-03"), 0) == D("2026-10-08")  # holiday: next working day
    assert due_date(CAL, D("2026-02-14"), 0) == D("2026-02-14")  # working Saturday


@pytest.mark.parametrize("days", [-1, 1.5, True, "15"])
def test_due_date_rejects_bad_days(days):
    with pytest.raises(ValueError):
        due_date(CAL, D("2026-09-15"), days)


# --- due_working_days ---------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "n", "due"), [
    ("2026-09-24", 5, "2026-10-09"),  # Thursday before Mid-Autumn and National Day
    ("2026-02-12", 5, "2026-02-26"),  # Thursday before Spring Festival; 02-14 counts
    ("2026-09-18", 5, "2026-09-24"),  # Friday: Sat 19 rests, Sun 20 is a working day
    ("2026-10-09", 1, "2026-10-10"),  # next working day is the 调休 Saturday
    ("2026-09-30", 1, "2026-10-08"),
    ("2026-03-06", 1, "2026-03-09"),  # Friday -> Monday
])
def test_due_working_days_examples(start, n, due):
    assert due_working_days(CAL, D(start), n) == D(due)


@pytest.mark.parametrize("n", [0, -3, True])
def test_due_working_days_rejects_bad_n(n):
    with pytest.raises(ValueError):
        due_working_days(CAL, D("2026-09-15"), n)


# --- due_for -----------------------------------------------------------------------------------

def test_due_for_dispatches_on_key():
    limits = validate_limits({})
    assert due_for(CAL, limits, "object_workdays", D("2026-09-24")) == D("2026-10-09")
    assert due_for(CAL, limits, "forward", D("2026-09-16")) == D("2026-10-08")
    assert due_for(CAL, limits, "followup_workdays", D("2026-09-30")) == D("2026-10-08")
    assert due_for(CAL, limits, "settle", D("2025-08-02")) == D("2025-10-09")


def test_due_for_uses_overrides():
    limits = validate_limits({"forward": 10, "object_workdays": 2})
    assert due_for(CAL, limits, "forward", D("2026-09-15")) == D("2026-09-28")  # 25..27 off
    assert due_for(CAL, limits, "object_workdays", D("2026-09-24")) == D("2026-09-29")


def test_due_for_unknown_key():
    with pytest.raises(KeyError):
        due_for(CAL, DEFAULT_LIMITS, "settle_days", D("2026-09-15"))


# --- overdue and due soon ---------------------------------------------------------------------

def test_days_overdue():
    due = D("2026-10-08")
    assert days_overdue(due, D("2026-10-01")) == 0
    assert days_overdue(due, due) == 0
    assert days_overdue(due, D("2026-10-09")) == 1
    assert days_overdue(due, D("2026-11-08")) == 31


def test_is_due_soon():
    due = D("2026-10-08")
    assert is_due_soon(due, D("2026-10-05"), 3)
    assert is_due_soon(due, due, 0)
    assert not is_due_soon(due, D("2026-10-04"), 3)
    assert not is_due_soon(due, D("2026-10-09"), 3)  # overdue is not "due soon"


# --- years no official arrangement covers: the statutory holidays ------------------------

# The audit's table (issue 17): limits running into 2027, which no source covers yet.
@pytest.mark.parametrize(("key", "start", "due"), [
    ("forward", "2026-12-17", "2027-01-04"),  # 01-01 元旦 (Fri), then the weekend
    ("accept", "2026-12-17", "2027-01-04"),
    ("review_request", "2026-12-02", "2027-01-04"),  # a request on 01-04 is on time
    ("settle", "2026-12-07", "2027-02-11"),  # 02-05 除夕; 春节 02-05..08, 补假 02-09, 10
    ("settle", "2026-12-08", "2027-02-11"),  # 02-06 初一
])
def test_2027_is_counted_with_the_statutory_holidays(key, start, due):
    found = count(CAL, DEFAULT_LIMITS, key, D(start))
    assert found.on == D(due) and found.provisional
    assert found.on >= D("2027-01-04") if key != "settle" else found.on >= D("2027-02-09")


def test_statutory_holidays_of_2027():
    days = holidays.statutory_holidays(2027)
    assert days["春节"] == [D("2027-02-05"), D("2027-02-06"), D("2027-02-07"), D("2027-02-08")]
    assert days["清明节"] == [D("2027-04-05")]
    assert days["端午节"] == [D("2027-06-09")] and days["中秋节"] == [D("2027-09-15")]
    off = holidays.statutory_days(2027)
    # 初一 and 初二 fall on the weekend, so two days are made up after 初三 (Art. 6); May 1-2
    # are Saturday and Sunday (补假 05-03, 04); Oct 2-3 too (补假 10-04, 05)
    assert {D("2027-02-09"), D("2027-02-10"), D("2027-05-03"), D("2027-05-04"),
            D("2027-10-04"), D("2027-10-05")} <= off
    assert D("2027-02-11") not in off and D("2027-10-06") not in off


def test_only_deadlines_over_a_year_without_arrangement_are_provisional():
    assert not count(CAL, DEFAULT_LIMITS, "forward", D("2026-12-01")).provisional  # 12-16
    assert count(CAL, DEFAULT_LIMITS, "forward", D("2026-12-17")).provisional
    assert count(CAL, DEFAULT_LIMITS, "followup_workdays", D("2026-12-31")).provisional
    assert not count(CAL, DEFAULT_LIMITS, "followup_workdays", D("2026-12-30")).provisional
    with_2027 = load_calendar(extra=ADD_2027)
    assert not count(with_2027, DEFAULT_LIMITS, "settle", D("2026-12-07")).provisional


def test_a_file_for_the_year_replaces_the_fallback_and_changes_the_fingerprint():
    cal = load_calendar()
    official = load_calendar(extra=ADD_2027)
    assert cal.fingerprint() != official.fingerprint()
    assert cal.fingerprint() == load_calendar().fingerprint()
    # the fallback rests on 02-08 (初三); the test file's 2027 has only 01-01 off
    assert not cal.is_working_day(D("2027-02-08")) and official.is_working_day(D("2027-02-08"))


FIXED = ("元旦", "劳动节", "国庆节")


@settings(deadline=None)  # the first use of a year computes its lunar dates
@given(st.sampled_from([2025, 2026]))
def test_the_fallback_agrees_with_the_official_arrangements(year):
    """Every statutory day off, fixed-date holidays first, is off in the official file of a
    year that has one (the arrangement only adds days, by 调休)."""
    days = holidays.statutory_holidays(year)
    for name in FIXED:
        assert all(d in SHIPPED.off for d in days[name]), name
    assert all(d in SHIPPED.off for d in holidays.statutory_days(year))


@settings(deadline=None)  # the first use of a year computes its lunar dates
@given(st.integers(min_value=2025, max_value=2099))
def test_the_statutory_holidays_are_where_the_statute_puts_them(year):
    days = holidays.statutory_holidays(year)
    assert days["元旦"] == [date(year, 1, 1)]
    assert days["劳动节"] == [date(year, 5, 1), date(year, 5, 2)]
    assert days["国庆节"] == [date(year, 10, d) for d in (1, 2, 3)]
    eve = days["春节"][0]
    assert D(f"{year}-01-20") <= eve <= D(f"{year}-02-19") and len(days["春节"]) == 4
    assert days["清明节"][0] in {date(year, 4, d) for d in (4, 5, 6)}
    off = holidays.statutory_days(year)
    owed = sum(d.weekday() >= 5 for v in days.values() for d in v)
    assert len(off) >= 13 + owed - 1  # 13 holiday days, each weekend one made up


@settings(deadline=None)  # the first use of a year computes its lunar dates
@given(st.dates(min_value=date(2025, 1, 1), max_value=date(2060, 12, 31)),
       st.sampled_from(sorted(DEFAULT_LIMITS)))
def test_a_deadline_never_falls_on_a_rest_day(start, key):
    """And it is provisional exactly when a day it rests on is in a year without an official
    arrangement (2027 onwards, today)."""
    due = count(CAL, DEFAULT_LIMITS, key, start)
    assert CAL.is_working_day(due.on) and due.on.weekday() < 5 or due.on in CAL.work
    if not CAL.covers(due.on.year):
        assert due.on not in holidays.statutory_days(due.on.year)
    n = DEFAULT_LIMITS[key]
    first = start + timedelta(1 if key.endswith("_workdays") else n)
    assert due.provisional == any(not CAL.covers(y) for y in range(first.year, due.on.year + 1))


# --- merging a node's own calendar --------------------------------------------------------------

OVERRIDE_2026 = {"2026": {"source": "test", "off": [["2026-03-02", "2026-03-03"]], "work": []}}
ADD_2027 = {"2027": {"source": "test", "off": [["2027-01-01", "2027-01-01"]],
                     "work": ["2027-01-09"]}}


def test_merged_other_replaces_its_years_wholesale():
    cal = SHIPPED.merged(parse_calendar(OVERRIDE_2026))
    assert not cal.is_working_day(D("2026-03-02"))
    assert cal.is_working_day(D("2026-10-01"))  # the shipped 2026 holidays are gone
    assert not cal.is_working_day(D("2026-10-10"))  # and so are its working weekend days
    assert not cal.is_working_day(D("2025-10-08"))  # 2025 untouched
    assert cal.is_working_day(D("2025-10-11"))
    assert cal.years == frozenset({2025, 2026})
    assert cal.source(2026) == "config"


def test_merged_adds_a_year():
    cal = load_calendar(extra=ADD_2027)
    assert cal.covers(2027)
    assert due_date(cal, D("2026-12-17"), 15) == D("2027-01-04")  # Fri 01-01 off, then weekend
    assert cal.is_working_day(D("2027-01-09"))  # a Saturday declared a working day
    assert not cal.is_working_day(D("2026-10-01"))  # 2026 still the shipped one
    assert not count(cal, DEFAULT_LIMITS, "forward", D("2026-12-17")).provisional


def test_load_calendar_files_in_order_then_extra(tmp_path):
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text('[2027]\nsource = "a"\noff = [["2027-01-01", "2027-01-01"]]\n')
    second.write_text('[2027]\nsource = "b"\noff = [["2027-02-01", "2027-02-01"]]\n')
    cal = load_calendar([first, str(second)])
    assert cal.is_working_day(D("2027-01-01")) and not cal.is_working_day(D("2027-02-01"))
    cal = load_calendar([first], extra={"2027": {"off": [["2027-03-01", "2027-03-01"]]}})
    assert cal.is_working_day(D("2027-01-01")) and not cal.is_working_day(D("2027-03-01"))


def test_load_calendar_missing_file_names_it(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as e:
        load_calendar([missing])
    assert str(missing) in str(e.value)
    assert e.value.params["file"] == str(missing)


def test_load_calendar_malformed_file_names_it(tmp_path):
    bad_toml, bad_data = tmp_path / "bad.toml", tmp_path / "data.toml"
    bad_toml.write_text("[2027\noff = ")
    bad_data.write_text('[2027]\nwork = ["2027-01-04"]\n')  # a Monday
    with pytest.raises(ConfigError, match="bad.toml"):
        load_calendar([bad_toml])
    with pytest.raises(ConfigError, match=r"data\.toml.*2027.*2027-01-04"):
        load_calendar([bad_data])


# --- parse_calendar validation ------------------------------------------------------------------

@pytest.mark.parametrize(("table", "bad"), [
    ({"off": [["2026-02-30", "2026-03-01"]]}, "2026-02-30"),  # no such day
    ({"off": [["2026/03/01", "2026-03-02"]]}, "2026/03/01"),  # wrong form
    ({"off": [["20260301", "20260302"]]}, "20260301"),  # compact ISO not accepted
    ({"off": [["2026-03-05", "2026-03-01"]]}, "2026-03-05"),  # reversed range
    ({"off": [["2026-03-01"]]}, "2026-03-01"),  # not a pair
    ({"work": ["2026-03-04"]}, "2026-03-04"),  # a Wednesday
    ({"work": ["2025-12-27"]}, "2025-12-27"),  # a Saturday, but in 2025
    ({"off": [["2026-12-31", "2027-01-01"]]}, "2027-01-01"),  # range leaves the year
    ({"off": [["2026-03-07", "2026-03-08"]], "work": ["2026-03-08"]}, "2026-03-08"),  # overlap
    ({"holidays": []}, "holidays"),  # unknown key
    ({"source": 5}, "5"),
    ({"off": "2026-03-01"}, "off"),
    ({"work": [20260307]}, "20260307"),
])
def test_parse_calendar_errors_name_year_and_value(table, bad):
    with pytest.raises(ConfigError) as e:
        parse_calendar({"2026": table})
    assert e.value.params["year"] == 2026
    assert "2026" in str(e.value) and bad in str(e.value)


@pytest.mark.parametrize("key", ["26", "year", "20260", True])
def test_parse_calendar_rejects_bad_year_keys(key):
    with pytest.raises(ConfigError, match="4-digit year"):
        parse_calendar({key: {}})


def test_parse_calendar_rejects_non_tables():
    with pytest.raises(ConfigError):
        parse_calendar(["2026"])
    with pytest.raises(ConfigError, match="2026"):
        parse_calendar({"2026": ["2026-01-01"]})


def test_parse_calendar_accepts_toml_dates_and_int_years():
    cal = parse_calendar({2027: {"off": [[date(2027, 1, 1), date(2027, 1, 2)]],
                                 "work": [date(2027, 1, 10)]}})
    assert cal.off == frozenset({D("2027-01-01"), D("2027-01-02")})
    assert cal.work == frozenset({D("2027-01-10")}) and cal.years == frozenset({2027})


# --- validate_limits ----------------------------------------------------------------------------

@pytest.mark.parametrize(("limits", "key"), [
    ({"settle_days": 60}, "settle_days"),
    ({"settle": -1}, "settle"),
    ({"accept": True}, "accept"),
    ({"forward": "15"}, "forward"),
    ({"review_answer": 30.0}, "review_answer"),
    ({"extend_max": 31}, "extend_max"),
    ({"object_workdays": 0}, "object_workdays"),
])
def test_validate_limits_errors_name_the_key(limits, key):
    with pytest.raises(ConfigError) as e:
        validate_limits(limits)
    assert e.value.params["key"] == key and key in str(e.value)


def test_validate_limits_merges_over_defaults():
    limits = validate_limits({"settle": 45, "extend_max": 30, "forward": 0})
    assert limits == {**DEFAULT_LIMITS, "settle": 45, "forward": 0}
    assert validate_limits({}) == DEFAULT_LIMITS
    assert validate_limits({}) is not DEFAULT_LIMITS
    with pytest.raises(ConfigError):
        validate_limits([("settle", 45)])


# --- properties that must hold for all inputs -------------------------------------------------

@given(covered_dates, st.integers(min_value=0, max_value=120))
def test_due_date_is_first_working_day_from_start_plus_days(start, days):
    due = due_date(CAL, start, days)
    assert CAL.is_working_day(due)
    assert due >= start + timedelta(days)
    gap = (due - (start + timedelta(days))).days
    assert not any(CAL.is_working_day(start + timedelta(days + i)) for i in range(gap))


@given(covered_dates, st.integers(0, 90), st.integers(0, 90))
def test_due_date_is_monotone_in_days(start, a, b):
    a, b = min(a, b), max(a, b)
    assert due_date(CAL, start, a) <= due_date(CAL, start, b)


@given(covered_dates, st.integers(min_value=1, max_value=40))
def test_due_working_days_counts_exactly_n(start, n):
    due = due_working_days(CAL, start, n)
    assert CAL.is_working_day(due)
    span = [start + timedelta(i) for i in range(1, (due - start).days + 1)]
    assert sum(CAL.is_working_day(d) for d in span) == n


@given(covered_dates, st.integers(0, 60), st.integers(0, 60))
def test_overdue_and_due_soon_never_both(due, back, ahead):
    for today in (due - timedelta(back), due + timedelta(ahead)):
        assert not (days_overdue(due, today) > 0 and is_due_soon(due, today, 10))
        assert days_overdue(due, today) == max(0, (today - due).days)
