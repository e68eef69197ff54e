"""Scheduled jobs, called directly: tests never start the scheduler."""

from __future__ import annotations

import logging
import threading

from conftest import HANDLER, LIAISON
from test_session import Loopback, register_many

from node import envelope, log, store, warnings
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
    waits = []
    with caplog.at_level(logging.WARNING, logger="siji.sync"):
        jobs.sync_job(village.dir, wait=waits.append)
    assert "sync failed" in caplog.text
    # the parent cannot be reached: it tried again, backing off
    assert len(waits) == jobs.RETRIES and waits[0] < waits[-1]
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
        return jobs.Outcome(jobs.session.Summary())

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


# -- down in seconds: the long-poll, and retries that do not wait for the interval ---------

def _warned(make_node):
    """A town and its village that raised a warning, synced: nothing is owed either way."""
    town = make_node("town", "zhen")
    village = make_node("village", "cun", parent=town)
    with store.write(village.db):
        raised = warnings.raise_warning(village, LIAISON, {
            "subject": "征地补偿", "place": "村委会", "expected_size": 30})
    session.run(village, Loopback(town))
    return town, village, raised.subject


def _applied(village) -> int:
    return outbox.link(village.db, "zhen")["applied"]


def test_a_parent_owes_a_child_what_it_writes_for_it_and_nothing_else(make_node):
    town, village, warning_id = _warned(make_node)
    owed, position = outbox.owes(town, "cun", _applied(village))
    assert not owed
    with store.write(town.db):  # the town's own business: not the village's
        warnings.raise_warning(town, HANDLER, {"subject": "工资拖欠", "place": "镇政府",
                                               "expected_size": 40})
    owed, later = outbox.owes(town, "cun", _applied(village), position)
    assert not owed and later > position  # looked at, and not looked at again
    with store.write(town.db):
        warnings.act(town, HANDLER, warning_id, "acknowledge", {})
    assert outbox.owes(town, "cun", _applied(village), later)[0]
    # numbered for the village but not yet applied there: still owed
    with store.write(town.db):
        outbox.queue(town, "cun")
    assert outbox.owes(town, "cun", _applied(village), 10 ** 9)[0]
    session.run(village, Loopback(town))
    assert not outbox.owes(town, "cun", _applied(village))[0]


class _Timers:
    def __init__(self):
        self.started = []

    def __call__(self, delay, then):
        timers = self

        class Timer:
            daemon = False

            def start(self):
                timers.started.append(delay)

            def cancel(self):
                timers.started.remove(delay)
        return Timer()


def test_a_failed_session_is_tried_again_after_a_capped_backoff_sooner_when_urgent():
    outcomes = [jobs.Outcome(None), jobs.Outcome(None), jobs.Outcome(None, urgent_waiting=True),
                jobs.Outcome(session.Summary())]
    timers = _Timers()
    syncer = jobs.Syncer("x", session=lambda _d: outcomes.pop(0), interval=300,
                         rand=lambda: 0.99, timer=timers)
    syncer()
    syncer()
    assert len(timers.started) == 1  # the second failure's retry replaced the first's
    assert 2 < timers.started[0] <= 4 and syncer.failures == 2
    syncer()
    assert syncer.failures == 3 and timers.started[0] <= 8
    for _ in range(20):
        assert jobs.pacing.retry_delay(20, 0.99, urgent=True, interval=300) <= 30
        assert jobs.pacing.retry_delay(20, 0.99, urgent=False, interval=300) <= 300
        assert jobs.pacing.retry_delay(20, 0.99, urgent=False, interval=60) <= 60
    syncer()  # it went through: no retry waits, the count starts again
    assert timers.started == [] and syncer.failures == 0


class _Parent:
    """A parent's long-poll answers, one per request: True (owed), False (nothing), or an
    exception (cannot be reached)."""

    def __init__(self, answers, listener_box):
        self.answers, self.box, self.acks = list(answers), listener_box, []

    def wait(self, ack, seconds):
        self.acks.append((ack, seconds))
        if not self.answers:
            self.box[0].stop.set()
            return False
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_the_long_poll_syncs_when_owed_and_backs_off_when_the_parent_is_gone(make_node):
    town, village, _ = _warned(make_node)
    sessions, waits, box = [], [], [None]

    class FakeSyncer:
        def now(self):
            sessions.append(1)
            return jobs.Outcome(session.Summary(received=1))

    parent = _Parent([False, True, session.Unreachable("down"), session.Unreachable("down"),
                      False, False], box)
    listener = jobs.Listener(village.dir, FakeSyncer(), 25, transport=parent,
                             wait=waits.append, rand=lambda: 0.0)
    box[0] = listener
    listener.run()
    # owed: one session; down twice: waits growing; back: one session for what waited
    assert sessions == [1, 1]
    assert len(waits) == 2 and waits[0] < waits[1] <= jobs.pacing.URGENT_RETRY_CAP
    ack = envelope.open_ack(parent.acks[0][0], me="zhen",
                            sender_key=lambda _peer: village.signer.public_key())
    assert ack.sender == "cun" and ack.upto == _applied(village)
    assert {seconds for _, seconds in parent.acks} == {25}


def test_a_long_poll_answered_owed_that_brings_nothing_does_not_spin(make_node):
    town, village, _ = _warned(make_node)
    waits, box = [], [None]

    class EmptySyncer:
        def now(self):
            return jobs.Outcome(session.Summary())

    listener = jobs.Listener(village.dir, EmptySyncer(), 25,
                             transport=_Parent([True] * 5, box), wait=waits.append,
                             rand=lambda: 0.0)
    box[0] = listener
    listener.run()
    assert len(waits) >= 3  # from the second empty session on, it waits before asking again


def test_housekeeping_drops_parts_that_stopped_moving_and_year_old_draft_keys(make_node, clock):
    from node import drafts
    from node.sync import parts
    village = make_node("village", "cun", parent=make_node("town", "zhen"))
    with store.write(village.db):
        village.db.conn.execute(
            "INSERT INTO parts (peer, way, digest, size, held, at) VALUES "
            "('zhen', 'in', x'00', 1000, 300, ?)", (village.now(),))
        village.db.conn.execute("INSERT INTO part_pieces (peer, start, data) VALUES "
                                "('zhen', 0, x'01')")
        drafts.once(village, "liu", "case", "k" * 20, {"summary": "x"}, lambda: "C-1")
    assert jobs.housekeep(village) == {"waiting": 0, "figures": 0, "parts": 0, "draft_keys": 0}
    assert parts.held(village, "zhen", "in") is not None  # moved just now: kept
    clock.advance(days=jobs.PARTS_KEEP_DAYS + 1)
    assert jobs.housekeep(village)["parts"] == 1
    assert parts.held(village, "zhen", "in") is None
    assert village.db.conn.execute("SELECT count(*) FROM part_pieces").fetchone()[0] == 0
    assert village.db.conn.execute("SELECT count(*) FROM draft_keys").fetchone()[0] == 1
    clock.advance(days=drafts.KEEP_DAYS)
    assert jobs.housekeep(village)["draft_keys"] == 1
    jobs.housekeeping_job(village.dir)  # the job's wrapper runs it on a node of its own
    assert village.db.conn.execute("SELECT count(*) FROM draft_keys").fetchone()[0] == 0
