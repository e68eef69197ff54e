"""Scheduled jobs, called directly: tests never start the scheduler."""

from __future__ import annotations

import logging
import threading

from conftest import LIAISON
from test_session import Loopback, register_many

from node import log, store, warnings
from node.sync import jobs, outbox, session


def test_urgent_watch_triggers_once_per_new_urgent_event(village):
    calls = []
    watch = jobs.UrgentWatch(village.dir, lambda: calls.append(1))
    watch()  # the first look only notes where we are
    register_many(village, 2, escalate=False)
    watch()
    assert calls == []  # ordinary registrations wait for the schedule
    with store.write(village.db):
        warnings.raise_warning(village, LIAISON, {"subject": "征地补偿", "place": "村委会",
                                                  "expected_size": 30})
    watch()
    watch()
    assert calls == [1]


def test_sync_job_never_raises_and_records_the_failure(make_node, caplog):
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)  # PARENT_URL points at a closed port
    register_many(village, 1)
    with caplog.at_level(logging.WARNING, logger="siji.sync"):
        jobs.sync_job(village.dir)
    assert "sync failed" in caplog.text
    assert outbox.link(village.db, "zhen")["last_error"].startswith("network")


def test_sync_job_on_a_broken_node_logs_and_returns(tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="siji.sync"):
        jobs.sync_job(tmp_path / "nothing")
    assert "cannot open the node" in caplog.text


def test_every_node_checks_warnings_and_one_with_a_parent_syncs(make_node):
    city = make_node("city", "shi")
    scheduler, syncer = jobs.plan(city.dir, city.settings)
    # the city reports its figures to no one
    assert [j.id for j in scheduler.get_jobs()] == [
        "warnings", "housekeeping", "notices"] and syncer is None
    town = make_node("town", "zhen", parent=city)
    scheduler, syncer = jobs.plan(town.dir, town.settings)
    assert [j.id for j in scheduler.get_jobs()] == [
        "warnings", "housekeeping", "notices", "figures", "sync", "urgent"]
    assert not scheduler.running


def test_an_urgent_event_stored_here_starts_a_sync_at_once(village):
    started = []
    stop = log.on_urgent(lambda: started.append(1))
    try:
        register_many(village, 1, escalate=False)
        assert started == []
        with store.write(village.db):
            warnings.raise_warning(village, LIAISON, {"subject": "征地补偿", "place": "村委会",
                                                      "expected_size": 30})
        assert started == [1]
    finally:
        stop()


def test_a_request_during_a_session_runs_it_again_not_never():
    runs, entered, release = [], threading.Event(), threading.Event()

    def session(node_dir):
        runs.append(node_dir)
        if len(runs) == 1:
            entered.set()
            release.wait(5)

    syncer = jobs.Syncer("x", session=session)
    first = threading.Thread(target=syncer)
    first.start()
    assert entered.wait(5)
    syncer()            # while the first session runs: it returns at once...
    release.set()
    first.join(5)
    assert len(runs) == 2  # ...and the running thread does one more session
    syncer()
    assert len(runs) == 3


def test_an_urgent_event_received_from_a_child_is_forwarded_on_receipt(make_node):
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    with store.write(village.db):
        warnings.raise_warning(village, LIAISON, {"subject": "征地补偿", "place": "村委会",
                                                  "expected_size": 30})
    started = []
    stop = log.on_urgent(lambda: started.append(1))
    try:
        session.run(village, Loopback(town))  # the town applies it: its own sync starts
    finally:
        stop()
    assert started == [1]


def test_the_figures_job_reports_changed_counts_once(make_node, caplog):
    village = make_node("village", "cun", parent=make_node("area", "pian"))
    register_many(village, 1, escalate=False)
    jobs.figures_job(village.dir)
    jobs.figures_job(village.dir)  # nothing changed since
    reports = village.db.conn.execute(
        "SELECT count(*) FROM events WHERE type = 'figures.rolled_up'").fetchone()[0]
    assert reports == 1
    with caplog.at_level(logging.ERROR, logger="siji.sync"):
        jobs.figures_job(village.dir / "nothing")  # a broken node: logged, never raised
    assert "cannot open the node" in caplog.text


def test_an_urgent_event_written_before_the_first_look_still_triggers(village):
    calls = []
    watch = jobs.UrgentWatch(village.dir, lambda: calls.append(1))  # set up at start
    with store.write(village.db):  # written before the scheduler's first run
        warnings.raise_warning(village, LIAISON, {"subject": "征地补偿", "place": "村委会",
                                                  "expected_size": 30})
    watch()
    assert calls == [1]


def test_housekeeping_drops_what_waited_too_long_and_says_so(chain, clock):
    """An event whose predecessor never comes waits INBOX_EXPIRE_DAYS, then is dropped with
    a refusal naming what it waited for."""
    city, town, area, village = chain
    (cid,) = register_many(village, 1)
    registration, escalation = log.subject_events(village.db, cid)
    with store.write(area.db):
        assert log.receive(area, escalation) == "waiting"  # without its registration
    clock.advance(days=29)
    with store.write(area.db):
        assert log.expire_waiting(area) == 0
    clock.advance(days=2)
    with store.write(area.db):
        assert log.expire_waiting(area) == 1
    assert area.db.conn.execute("SELECT count(*) FROM inbox").fetchone()[0] == 0
    (reason,) = area.db.conn.execute("SELECT reason FROM refusals").fetchone()
    assert f"waited 30 days for {registration.id}" in reason
