"""Figures: counts without personal data, each case once, each level the sum of its subtree.

The four-tier chain of conftest (city shi <- town zhen <- area pian <- village
cun) syncs in process (test_routing.settle); ``report_up`` makes each node's
report bottom-up as a sync would. A hypothesis test checks the rule that
matters most, for every mix of petitions: every level's figures equal a
direct count of the cases registered below it.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from conftest import HANDLER, LEADER, LIAISON, Clock, NodeFactory, build_chain, case_fields
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_routing import act, register, settle
from test_session import Loopback

from node import cases, events, figures, log, metrics, periods, store, warnings
from node.errors import EventRefused, ValidationError
from node.sync import session

MONTH = periods.around("month", date(2026, 11, 23))


def report_up(chain) -> None:
    """Each node syncs, from the village up, reporting its figures first as every session
    of `siji serve` does; then everything settles."""
    city, town, area, village = chain
    for child, parent in ((village, area), (area, town), (town, city)):
        session.run(child, Loopback(parent), reports_first=True)
    settle(chain)


def row(node, unit=None, period=MONTH, **only) -> dict:
    """This node's figures for a unit (default: all of its subtree)."""
    return figures.facts(node).sums(period, None, unit=unit, **only)[""]


def test_a_village_case_reaches_the_city_as_counts_only(chain):
    city, town, area, village = chain
    register(village, category="dibao")
    register(village, category="dibao", people_count=7)  # 集体访: 7 >= 5
    with store.write(village.db):
        warnings.raise_warning(village, LIAISON, {"subject": "征地补偿", "place": "东山村",
                                                  "expected_size": 30})
    report_up(chain)
    at_city = row(city)
    assert (at_city["n"], at_city["people"], at_city["batches"], at_city["batch_people"]) == (
        2, 8, 1, 7)
    assert at_city["warnings"] == 1
    assert figures.facts(city).sums(MONTH, "unit")["zhen"]["n"] == 2  # the town's row
    # the city has the counts and nothing of the ordinary case or its people; the 集体访
    # alone reaches it the same day (Art. 25, issue 17), its petitioners' personal fields
    # kept below as everywhere (node/disclosure.py)
    kept = [r[0] for r in city.db.conn.execute("SELECT people_count FROM cases")]
    assert kept == [7]
    person = case_fields()["petitioners"][0]
    for (body,) in city.db.conn.execute("SELECT body FROM events WHERE type LIKE 'figures.%'"):
        assert person["id_number"] not in body and person["name"] not in body
        assert "C-cun-" not in body  # nothing overdue: not even a case number


def test_each_case_is_counted_once_by_the_top_of_its_circle(chain):
    city, town, area, village = chain
    kept = register(village)
    climbed = register(village, category="funeral")
    act(village, climbed, "escalate", actor=LIAISON, to="pian", reason="需片区协调")
    register(area)
    report_up(chain)
    # the village no longer reports the escalated case; the area does (it tops its circle)
    assert row(village)["n"] == 2  # (its own page shows both)
    assert [r[3] for r in figures.rollup(village)["2026-11"]["cases"]] == [1]
    assert row(area)["n"] == 3 and row(town)["n"] == 3 and row(city)["n"] == 3
    by_unit = figures.facts(area).sums(MONTH, "unit")
    assert by_unit["cun"]["n"] == 2 and by_unit["pian"]["n"] == 1  # by where registered
    # up to the city, which answers it: counted there at once, before any report moves
    act(area, climbed, "escalate", to="zhen", reason="需镇协调")
    report_up(chain)
    act(town, climbed, "escalate", to="shi", reason="需市局协调")
    report_up(chain)  # (the town's session carries the escalation and its new report)
    act(city, climbed, "accept")
    act(city, climbed, "reply", decision="support", reply="已核实，按政策补发。")
    assert row(city)["done"] == 1 and row(city)["n"] == 3
    report_up(chain)
    assert row(city)["n"] == 3 and row(town)["n"] == 3 and row(village)["n"] == 2
    assert figures.facts(city).sums(MONTH, "unit")["zhen"]["n"] == 3
    assert cases.get(village, kept)["circle_top"] == "cun"


def test_a_node_reports_only_the_months_that_changed(chain):
    city, town, area, village = chain
    register(village)
    with store.write(village.db):
        first = figures.report(village)
        again = figures.report(village)
    assert [e.body["month"] for e in first] == ["2026-11"] and again == []
    settle(chain)
    with store.write(city.db):
        assert figures.report(city) == []  # the city reports to no one


def test_days_overdue_grow_without_an_event_and_the_list_names_the_case(chain, clock):
    city, town, area, village = chain
    late = register(village)
    report_up(chain)
    assert row(city)["overdue"] == 0
    clock.advance(days=20)  # past the 15 days to forward it (Art. 22)
    report_up(chain)
    assert row(city, period=None)["overdue"] == 1
    listed = figures.supervision(city)
    assert [(r.id, r.unit, r.holder, r.state) for r in listed] == [
        (late, "zhen", "cun", "registered")]
    assert set(listed[0]._fields) == {"id", "unit", "holder", "category", "state", "due_on",
                              "due_kind", "registered_on", "month", "here"}
    # the one definition of overdue: the listing, the figures and the list agree
    assert [c["id"] for c in cases.listing(village, due="overdue")] == [late]
    assert metrics.counted_by(village, "overdue", "1", {}) == [late]


def test_rates_follow_their_definitions(chain, clock):
    """The worked example of docs/metrics.md (its cases A to D), at the town."""
    city, town, area, village = chain

    def on(day: str) -> None:  # 10:00 in Beijing
        clock.now = datetime.fromisoformat(f"{day}T02:00:00+00:00")

    on("2026-11-02")
    a = register(town, actor=HANDLER, channel="visit")
    on("2026-11-03")
    act(town, a, "accept")
    on("2026-11-10")
    c = register(town, actor=HANDLER, channel="visit", category="youfu", people_count=6,
                 petitioners=[{"name": "李四", "phone": "13900139000"}])
    act(town, c, "accept")
    on("2026-11-12")
    register(town, actor=HANDLER, channel="phone", category="funeral",
             petitioners=[{"name": "王五", "phone": "13700137000"}])
    on("2026-11-20")
    act(town, a, "reply", decision="explain", reply="已答复")
    act(town, a, "followup", rating="satisfied")
    on("2026-11-25")
    b = register(town, actor=HANDLER, channel="letter", repeat_of=a)
    on("2026-11-26")
    act(town, b, "not_accept", reason="已答复过，无新的事实和理由")
    on("2026-11-30")
    act(town, c, "reply", decision="support", reply="已补发")
    on("2026-12-10")
    m = row(town)
    assert (m["n"], m["people"], m["batches"], m["batch_people"]) == (4, 9, 1, 6)
    assert (m["repeat"], m["first"], m["due"], m["done"], m["done_in_time"]) == (1, 3, 3, 2, 2)
    assert (m["to_decide"], m["decided_in_time"], m["rated"], m["satisfied"]) == (4, 3, 1, 1)
    assert (m["ceased"], m["first_resolved"], m["overdue"]) == (1, 1, 2)
    rates = metrics.rates(m, metrics.formulas(town.settings))
    assert rates == {"done_rate": 66.7, "on_time_rate": 100.0, "timely_rate": 75.0,
                     "ceased_rate": 50.0, "rated_rate": 50.0, "satisfied_rate": 100.0,
                     "repeat_rate": 25.0, "first_resolved_rate": 33.3,
                     "defused_rate": None, "same_day_rate": None,  # no warning: no rate
                     "lead_done_rate": None, "lead_ceased_rate": None}  # no 包案 case
    assert metrics.meets("repeat_rate", 25.0, metrics.formulas(town.settings)) is False


def test_the_same_period_last_year_and_a_range(chain, clock):
    city, town, area, village = chain
    register(village)
    clock.advance(days=365)
    register(village)
    register(village)
    report_up(chain)
    now = periods.around("month", clock.now.date())
    facts = figures.facts(city)
    assert facts.sums(now, None)[""]["n"] == 2
    assert facts.sums(now.last_year(), None)[""]["n"] == 1
    assert metrics.change(2, 1) == {"now": 2, "last": 1, "delta": 1, "percent": 100.0}
    span = periods.parse({"from": "2026-11-01", "to": "2027-12-31"}, clock.now.date())
    assert facts.sums(span, None)[""]["n"] == 3


def test_a_node_may_report_only_its_own_figures(chain):
    city, town, area, village = chain
    register(village)
    body = figures.rollup(village)["2026-11"]
    forged = events.sign(village.signer, origin="cun", seq=99, ts="2026-11-23T02:00:00Z",
                         actor="system", role="admin", type=figures.ROLLED_UP,
                         subject="FR-pian-2026-11-2026-11-23", prev=(), body=body)
    with pytest.raises(EventRefused, match="only its own figures"), store.write(area.db):
        log.receive(area, forged)
    wrong_month = events.sign(village.signer, origin="cun", seq=98, ts="2026-11-23T02:00:00Z",
                              actor="system", role="admin", type=figures.ROLLED_UP,
                              subject="FR-cun-2026-10-2026-11-23", prev=(), body=body)
    with pytest.raises(EventRefused, match="only its own figures"), store.write(area.db):
        log.receive(area, wrong_month)


def test_figures_go_one_hop_up_and_never_down(chain):
    city, town, area, village = chain
    register(village)
    register(city, actor=HANDLER)
    report_up(chain)
    origins = {n.id: {r[0] for r in n.db.conn.execute(
        "SELECT origin FROM events WHERE type LIKE 'figures.%'")} for n in chain}
    assert origins == {"shi": {"zhen"}, "zhen": {"zhen", "pian"}, "pian": {"pian", "cun"},
                       "cun": {"cun"}}


GOOD = {"month": "2026-11", "cases": [[23, "dibao", "visit", 2, 3, 0, 0, 0, 0, 0, 2, 2, 1]],
        "warnings": [[23, "other", 1, 1]], "overdue": []}


@pytest.mark.parametrize("change", [
    {"cases": [[23, "dibao", "visit", 2, 1]]},                 # fewer people than petitions
    {"cases": [[23, "dibao", "visit", 1, 1, 2]]},              # 2 collective of 1 petition
    {"cases": [[23, "dibao", "visit", 1, 1, 0]]},              # a trailing zero
    {"cases": [[31, "dibao", "visit", 1, 1]], "month": "2026-11"},  # no 31 November
    {"cases": [[23, "nonsense", "visit", 1, 1]]}, {"cases": [[23, "dibao", "pigeon", 1, 1]]},
    {"cases": [[23, "dibao", "visit", -1]]}, {"cases": [[23, "dibao", "visit", 1.5, 2]]},
    {"cases": [[24, "dibao", "visit", 1, 1], [23, "dibao", "visit", 1, 1]]},  # unsorted
    {"warnings": [[23, "other", 1, 2]]}, {"month": "2026-13"},
    {"overdue": [["C-cun-2026-0001", "cun", "dibao", "registered", "2026-11-01", "forward"]]},
    {"extra": 1}, {"cases": {}}])
def test_malformed_reports_are_refused(change):
    figures.validate_body(figures.ROLLED_UP, GOOD)
    with pytest.raises(ValidationError):
        figures.validate_body(figures.ROLLED_UP, json.loads(json.dumps({**GOOD, **change})))


@pytest.mark.parametrize("args,message", [
    ({"period": "decade"}, "unknown value"), ({"from": "2026-01-01"}, "required"),
    ({"from": "2026-02-01", "to": "2026-01-01"}, "ends before"),
    ({"at": "yesterday"}, "not a date"), ({"from": "2000-01-01", "to": "2030-01-01"}, "twenty"),
])
def test_bad_periods_are_refused(args, message):
    with pytest.raises(ValidationError, match=message):
        periods.parse(args, date(2026, 11, 23))


def test_periods_and_the_same_period_last_year():
    day = date(2028, 2, 29)
    assert periods.around("week", day).start == date(2028, 2, 28)  # a Monday
    assert periods.around("quarter", day) == periods.Period("quarter", date(2028, 1, 1),
                                                             date(2028, 3, 31))
    assert periods.around("month", day).last_year() == periods.Period(
        "month", date(2027, 2, 1), date(2027, 2, 28))
    assert periods.around("year", day).months[-1] == "2028-12"
    assert periods.parse({}, day).label == "2028-02"


# -- for every mix of petitions: each level's figures are a direct count ---------------

PLACES = ("cun", "pian", "zhen", "shi")
STEPS = st.lists(st.tuples(
    st.sampled_from(PLACES), st.sampled_from(("dibao", "youfu", "funeral")),
    st.sampled_from(("visit", "letter", "phone")), st.integers(1, 9),
    # (days between steps: all within CLOCK_PAST_DAYS, or a late hop would be held)
    st.sampled_from(("keep", "escalate", "settle", "reply")), st.integers(0, 10)),
    min_size=1, max_size=8)


def _oracle(rows: list[dict], today: str) -> dict:
    """A direct count of case rows, written apart from the SQL of node/metrics.py."""
    out = {"n": 0, "people": 0, "batches": 0, "overdue": 0, "done": 0, "first": 0}
    for c in rows:
        out["n"] += 1
        out["people"] += c["people_count"]
        out["batches"] += c["people_count"] >= 5
        out["overdue"] += bool(c["due_on"]) and c["due_on"] < today
        out["done"] += c["state"] in ("replied", "review_requested", "reviewed",
                                      "recheck_requested", "concluded", "terminated")
        out["first"] += c["first_time"]
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(STEPS)
def test_every_level_equals_a_direct_count_of_its_subtree(steps):
    clock = Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as tmp:
        make = NodeFactory(Path(tmp), clock)
        try:
            chain = build_chain(make)
            nodes = dict(zip(("shi", "zhen", "pian", "cun"), chain, strict=True))
            for place, category, channel, people, fate, days in steps:
                node = nodes[place]
                who = LIAISON if place == "cun" else HANDLER
                case_id = register(node, actor=who, category=category, channel=channel,
                                   people_count=people)
                if fate == "escalate" and place != "shi":
                    act(node, case_id, "escalate", actor=who, reason="需上级协调",
                        to=node.settings["PARENT_ID"])
                elif fate == "settle":
                    act(node, case_id, "settle", actor=who, reply="当场解释")
                elif fate == "reply" and place in ("zhen", "shi"):
                    act(node, case_id, "accept")
                    act(node, case_id, "reply", actor=LEADER, decision="support",
                        reply="已答复")
                clock.advance(days=days)
            settle(chain)
            report_up(chain)
            today = clock.now.date().isoformat()
            every = {}  # each case's row at the top of its circle (any row, else)
            for node in chain:
                for c in cases.listing(node):
                    if c["circle_top"] == node.id or c["id"] not in every:
                        every[c["id"]] = c
            below = {"shi": PLACES, "zhen": PLACES[:3], "pian": PLACES[:2], "cun": PLACES[:1]}
            for name, node in nodes.items():
                mine = [c for c in every.values() if c["origin_node"] in below[name]]
                got = figures.facts(node).sums(None, None).get("", metrics.measures([], []))
                assert {k: got[k] for k in _oracle([], today)} == _oracle(mine, today), name
                for category in ("dibao", "youfu", "funeral"):
                    got = figures.facts(node).sums(None, None, category=category).get(
                        "", metrics.measures([], []))
                    assert got["n"] == sum(c["category"] == category for c in mine)
        finally:
            make.close()


def test_one_thread_counts_the_facts_again_and_the_others_take_them_as_they_were(
        make_node, monkeypatch):
    """After a new event one page counts the facts again; a page meanwhile gets them as
    they were (the same day), not a second count of its own (issue 19)."""
    import threading

    town = make_node("town", "zhen")
    before = figures.facts(town)
    register(town, actor=HANDLER)  # a new event: the facts are counted again
    started, release = threading.Event(), threading.Event()
    real = figures._facts

    def slow(node):
        started.set()
        release.wait(60)
        return real(node)

    monkeypatch.setattr(figures, "_facts", slow)
    counted = {}
    counter = threading.Thread(target=lambda: counted.update(new=figures.facts(town)))
    counter.start()
    assert started.wait(60)
    assert figures.facts(town) is before  # while another thread counts: as they were
    release.set()
    counter.join(60)
    assert counted["new"] is not before and figures.facts(town) is counted["new"]


def test_a_slow_count_is_made_again_when_a_tenth_of_the_time_since_pays_for_it(
        make_node, clock, monkeypatch):
    """A count that took long is not made again at each new event (a city receiving events
    every few seconds would keep a core counting): the facts stay as they were, saying when
    they were made, until RECOUNT_SHARE of the time since would pay for a count; a new day
    counts them again at once."""
    town = make_node("town", "zhen")
    now = [1000.0]
    real = figures._facts

    def slow(node):  # each count takes 2 s of this clock
        now[0] += 2.0
        return real(node)
    monkeypatch.setattr(figures, "_monotonic", lambda: now[0])
    monkeypatch.setattr(figures, "_facts", slow)
    figures._FACTS.clear()

    def received(facts) -> int:
        return facts.sums(None).get("", {}).get("n", 0)
    first = figures.facts(town)
    assert received(first) == 0 and first.made_at == town.now()
    register(town, actor=HANDLER)
    now[0] += 19.0  # 19 s after a 2 s count: a tenth of it would not pay for another
    assert figures.facts(town) is first
    now[0] += 1.5
    again = figures.facts(town)
    assert again is not first and received(again) == 1
    register(town, actor=HANDLER)
    clock.advance(days=1)  # a new day: days overdue changed, counted at once
    assert received(figures.facts(town)) == 2

    def slower(node):  # a count of 30 s (a node under load)
        now[0] += 30.0
        return real(node)
    monkeypatch.setattr(figures, "_facts", slower)
    figures._FACTS.clear()
    slowest = figures.facts(town)
    register(town, actor=HANDLER)
    now[0] += figures.MAX_STALE - 1
    assert figures.facts(town) is slowest
    now[0] += 2  # never older than MAX_STALE, however long the count took
    assert received(figures.facts(town)) == received(slowest) + 1
    monkeypatch.setattr(figures, "SLOW_COUNT", 60.0)  # a count under SLOW_COUNT: every time
    register(town, actor=HANDLER)
    assert received(figures.facts(town)) == received(slowest) + 2
