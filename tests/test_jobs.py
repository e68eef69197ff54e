"""Scheduled jobs, called directly: tests never start the scheduler."""

from __future__ import annotations

import logging

from conftest import LIAISON
from test_session import register_many

from node import store, warnings
from node.sync import jobs, outbox


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


def test_no_scheduler_without_a_parent(make_node):
    city = make_node("city", "shi")
    assert jobs.start(city.dir, city.settings) is None
