"""Figures don't pile up (issue 19): superseded reports are compacted away.

A report is its unit's whole figures for one month; the newest of each unit and month is
all that totals and the history by month read (``figures_latest``). Reports a newer one
supersedes are deleted, a day's subject at a time, at the maker (once its parent has them)
and at the parent (as the newer arrives); a superseded report that arrives again is a
duplicate. These tests run the four-tier chain of conftest, synced in process, over many
days, and a hypothesis test delivers one unit's reports to its parent in every order.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import LIAISON, Clock, NodeFactory, pin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_figures import report_up
from test_routing import register
from test_session import Loopback

from node import cases, cli, core, envelope, events, figures, log, store
from node.sync import inbox, jobs, outbox, session


def per_unit_month(node) -> dict[tuple[str, str], int]:
    """(origin, month) -> the report events this node stores of it."""
    out: dict[tuple[str, str], int] = {}
    for origin, month in node.db.conn.execute(
            "SELECT origin, json_extract(body, '$.month') FROM events WHERE type = ?",
            (figures.ROLLED_UP,)):
        out[origin, month] = out.get((origin, month), 0) + 1
    return out


def totals(node) -> dict:
    """What a dashboard reads: the sums by month and by unit of all time, the
    supervision list, and the newest report of each unit and month."""
    figures._FACTS.clear()  # (counted again: no cached facts hide a difference)
    facts = figures.facts(node)
    return {"months": facts.sums(None, "month"), "units": facts.sums(None, "unit"),
            "overdue": [r.id for r in figures.supervision(node)],
            "latest": figures.latest(node)}


def days_of_reports(chain, clock, days: int, per_day: int = 2) -> None:
    """Each day the village registers ``per_day`` petitions, each followed by a sync
    session of every level that reports its figures first, as `siji serve` does."""
    city, town, area, village = chain
    for _ in range(days):
        for _ in range(per_day):
            register(village)
            report_up(chain)
            clock.advance(hours=3)
        clock.advance(hours=24 - 3 * per_day)


def test_reports_stay_bounded_per_unit_and_month_over_many_days(chain, clock):
    city, town, area, village = chain
    days_of_reports(chain, clock, 12)  # from 23 November into December
    for node in chain:
        stored = per_unit_month(node)
        assert stored, node.id if node is not village else None
        # a day's reports of the month at most (two sessions that changed it), and one
        # session's more where the parent had not yet acknowledged them
        assert max(stored.values()) <= 3, (node.id, stored)
    assert {m for _, m in per_unit_month(city)} == {"2026-11", "2026-12"}
    assert figures.stored(city)["compacted"] > 0
    # the village made a report of November every session until December began
    assert store.counter(village.db, figures.COMPACTED) >= 2 * 8 - 3
    assert totals(city)["months"]["2026-11"]["n"] + totals(city)["months"]["2026-12"]["n"] \
        == 24 == len(cases.listing(village))


def test_totals_are_the_same_before_and_after_compaction_and_after_rebuild(
        chain, clock, monkeypatch):
    city, town, area, village = chain
    with monkeypatch.context() as m:  # as before issue 19: every report stays
        m.setattr(figures, "compact", lambda node, origins=None: 0)
        days_of_reports(chain, clock, 6)
        clock.advance(days=20)  # some are overdue now: older months' reports change too
        report_up(chain)
    before = {n.id: totals(n) for n in chain}
    piled = {n.id: sum(per_unit_month(n).values()) for n in chain}
    assert piled["shi"] >= 7 and piled["cun"] >= 13
    with store.write(village.db):  # the last reports are acknowledged: nothing is owed
        assert outbox.backlog(village, area.id) == (0, 0)
    for n in chain:
        with store.write(n.db):
            figures.compact(n)
        assert totals(n) == before[n.id], n.id
        assert max(per_unit_month(n).values()) <= 2, n.id
    after = {n.id: sum(per_unit_month(n).values()) for n in chain}
    assert after["shi"] < piled["shi"] and after["cun"] < piled["cun"]
    for n in chain:
        with store.write(n.db):
            log.rebuild(n)
        assert totals(n) == before[n.id], n.id
        assert log.check(n) == []
    # and the network goes on as before: a new petition reaches the city
    register(village)
    report_up(chain)
    assert totals(city)["units"]["zhen"]["n"] == before["shi"]["units"]["zhen"]["n"] + 1


def test_a_replayed_old_report_changes_nothing(chain, clock):
    city, town, area, village = chain
    register(village)
    report_up(chain)
    first = [log.get_event(area.db, f"{o}:{s}") for o, s in area.db.conn.execute(
        "SELECT origin, seq FROM events WHERE type = ? AND origin = 'cun'", (figures.ROLLED_UP,))]
    clock.advance(days=1)
    register(village)
    report_up(chain)
    assert all(not log.has_event(area.db, e.id) for e in first)  # compacted on arrival
    kept = area.db.conn.execute("SELECT lsn, origin, seq FROM events ORDER BY lsn").fetchall()
    before = totals(area)
    with store.write(area.db):
        assert [log.receive(area, e, "cun") for e in first] == ["duplicate"] * len(first)
    assert area.db.conn.execute("SELECT lsn, origin, seq FROM events ORDER BY lsn"
                                ).fetchall() == kept
    assert totals(area) == before and before["months"]["2026-11"]["n"] == 2
    # nor does it when a bundle carries them again under new link numbers (a copy of the
    # village restored from a backup), nor after a rebuild
    applied = outbox.link(area.db, village.id)["applied"]
    bundle = envelope.seal([events.to_json(e).encode() for e in first], sender=village.id,
                           recipient=area.id, first=applied + 1, sender_key=village.signer,
                           recipient_key=area.enc_key.public_key())
    _, counts = inbox.apply_bundle(area, bundle)
    assert counts["duplicate"] == len(first) and counts["applied"] == 0
    assert totals(area) == before
    with store.write(area.db):
        log.rebuild(area)
        assert [log.receive(area, e, "cun") for e in first] == ["duplicate"] * len(first)
    assert totals(area) == before


def test_what_the_parent_is_still_owed_is_kept_and_it_converges(chain, clock):
    city, town, area, village = chain
    register(village)
    with store.write(village.db):  # numbered for the area, which never hears of it
        figures.report(village)
        outbox.queue(village, area.id)
    owed = village.db.conn.execute("SELECT lsn FROM outbox").fetchall()
    assert owed
    for _ in range(3):  # days of reports while the area cannot be reached
        clock.advance(days=1)
        register(village)
        with store.write(village.db):
            figures.report(village)
            figures.compact(village)
    assert village.db.conn.execute("SELECT lsn FROM outbox").fetchall() == owed
    assert all(village.db.conn.execute("SELECT 1 FROM events WHERE lsn = ?", (lsn,)).fetchone()
               for (lsn,) in owed)
    # the two days between were never numbered for the area: compacted, never sent
    assert per_unit_month(village)[("cun", "2026-11")] == 2
    session.run(village, Loopback(area))
    assert figures.latest(area, ["cun"]) == figures.latest(village, ["cun"])
    assert totals(area)["months"]["2026-11"]["n"] == 4
    with store.write(village.db):
        figures.compact(village)
    assert per_unit_month(village)[("cun", "2026-11")] == 1


def test_the_newest_event_of_the_log_is_never_forgotten(village, clock):
    register(village)
    with store.write(village.db):
        figures.report(village)
    clock.advance(days=1)
    register(village)
    with store.write(village.db):
        figures.report(village)
        newest = village.db.conn.execute("SELECT max(lsn) FROM events").fetchone()[0]
        subject = village.db.conn.execute("SELECT subject FROM events WHERE lsn = ?",
                                          (newest,)).fetchone()[0]
        assert log.forget(village, [subject]) == ([], 0)  # its lsn would be taken again


def test_housekeeping_compacts_and_status_shows_the_count(chain, clock, monkeypatch, capsys):
    city, town, area, village = chain
    with monkeypatch.context() as m:
        m.setattr(figures, "compact", lambda node, origins=None: 0)
        days_of_reports(chain, clock, 3, per_day=1)
    piled = sum(per_unit_month(area).values())
    jobs.housekeeping_job(area.dir)
    area_now = core.open_node(area.dir, clock=clock)
    try:
        assert sum(per_unit_month(area_now).values()) < piled
        shown = figures.stored(area_now)
        assert shown == {"reports": sum(per_unit_month(area_now).values()),
                         "compacted": piled - shown["reports"]}
    finally:
        area_now.close()
    capsys.readouterr()
    assert cli.main(["--dir", str(area.dir), "--json", "status"]) == 0
    assert json.loads(capsys.readouterr().out)["figures"] == shown
    assert cli.main(["--dir", str(area.dir), "--lang", "en", "status"]) == 0
    assert f"Figures reports kept: {shown['reports']} ({shown['compacted']} superseded" in \
        capsys.readouterr().out


# -- for every order of arrival: the newest report of each unit and month ----------------

@functools.cache
def _reports() -> tuple:
    """A village's reports over three days and two months (several a day), as it made
    them, the newest body of each month, the time after them and the village (closed):
    made once, in a directory of their own."""
    tmp = tempfile.mkdtemp(prefix="siji-reports-")
    clock = Clock(datetime(2026, 11, 29, 2, 0, tzinfo=UTC))
    make = NodeFactory(Path(tmp), clock)
    area = make("area", "pian")
    village = make("village", "cun", parent=area)
    made = []
    try:
        for day in range(3):
            for _ in range(3):
                register(village)
                if day:  # a case of last month closed: that month's report changes too
                    open_ = [c["id"] for c in cases.listing(village)
                             if c["state"] == "registered" and c["registered_on"] < "2026-12"]
                    if open_:
                        with store.write(village.db):
                            cases.act(village, LIAISON, open_[0], "settle",
                                      {"reply": "当场解释"})
                with store.write(village.db):
                    made += figures.report(village)
                clock.advance(hours=2)
            clock.advance(hours=18)
        newest = {}
        for e in made:
            if e.seq > newest.get(e.body["month"], (0,))[0]:
                newest[e.body["month"]] = (e.seq, e.body)
        return made, {m: body for m, (_, body) in newest.items()}, clock.now, village
    finally:
        make.close()
        shutil.rmtree(tmp)  # (the village's keys stay in memory: all the test needs)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_any_order_of_arrival_gives_the_newest_report_of_each_month(data):
    made, newest, now, village = _reports()
    assert len(made) >= 10 and set(newest) == {"2026-11", "2026-12"}
    # any reports, again and again, then every one (in any order), so that all arrive
    order = data.draw(st.lists(st.integers(0, len(made) - 1), max_size=2 * len(made)),
                      label="first") + data.draw(st.permutations(range(len(made))),
                                                 label="then")
    compact_at = data.draw(st.sets(st.integers(0, len(order))), label="compact at")
    with tempfile.TemporaryDirectory() as tmp:
        make = NodeFactory(Path(tmp), Clock(now))
        try:
            parent = make("area", "pian")
            pin(parent, village)
            for k, i in enumerate(order):
                if k in compact_at:
                    with store.write(parent.db):
                        figures.compact(parent)
                with store.write(parent.db):
                    log.receive(parent, made[i], "cun")
            assert {m: b for (_, m), (_, b) in figures.latest(parent, ["cun"]).items()} \
                == newest
            before = totals(parent)
            with store.write(parent.db):
                figures.compact(parent)
            assert max(per_unit_month(parent).values()) <= 3  # one day's reports
            assert totals(parent) == before
            with store.write(parent.db):
                log.rebuild(parent)
            assert totals(parent) == before
            with store.write(parent.db):  # and all of them again: nothing changes
                for e in made:
                    log.receive(parent, e, "cun")
            assert totals(parent) == before
        finally:
            make.close()


@pytest.fixture(autouse=True)
def _facts_kept_apart():
    yield
    figures._FACTS.clear()
