"""Scheduled work of `siji serve`: periodic sync, sync at once for urgent events, and the
same-day chain of early warnings.

APScheduler starts only in `siji serve`, never at import, in create_app or
under tests; the jobs are plain functions that tests call directly. A job's
top level is the one place that catches every exception: it logs, records
the failure on the link, and goes on.

An urgent event (a warning, an escalation) stored by this process, written
here or just received from a child, starts a session with the parent at
once (``log.on_urgent``): each hop forwards on receipt, so a village's
warning reaches the city within seconds. One written by another process (the
CLI) is noticed by :class:`UrgentWatch` within URGENT_CHECK seconds.

Down, a node keeps one standing request open to its parent (:class:`Listener`,
the long-poll of node/sync/http.py): the parent answers it as soon as it owes
the node something, and the node syncs at once, so a town's acknowledgement
or a city's referral comes down within seconds, though the child always
dials. A session that fails is tried again after a capped backoff with jitter
(``pacing.retry_delay``), sooner while an urgent event waits to go, instead
of waiting for the next interval.

Every WARNING_CHECK seconds :func:`warning_job` raises the alarm for each warning
this node received and has not acknowledged within WARNING_ACK_HOURS, and
records receipts missing for warnings that arrived other than in a bundle
(``inbox.apply_bundle`` records them as they arrive). It runs at every node,
the city included, whose scheduler has no sync jobs.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from node import core, drafts, figures, notices, pacing, registry, store, warnings
from node import log as eventlog
from node.clock import iso
from node.errors import NodeError
from node.sync import delivery, inbox, parts, session
from node.sync.http import HttpTransport

log = logging.getLogger("siji.sync")
WARNING_CHECK = 60  # seconds between checks for unacknowledged warnings
# tries in a row that move nothing before a scheduled session gives up until the next one
# (session.run: after about 2, 4 and 8 seconds if the parent cannot be reached; at once,
# four times as often, if the link cuts)
RETRIES = 3


def _on_node(node_dir: Path, what: str, work) -> None:
    """A job's top level: open the node, run ``work(node)``, close it. It logs what went
    wrong and goes on; it never raises."""
    try:
        node = core.open_node(node_dir)
    except Exception:  # noqa: BLE001 - a job's top level logs and goes on
        log.exception("%s: cannot open the node", what)
        return
    try:
        work(node)
    except Exception:  # noqa: BLE001
        log.exception("%s failed", what)
    finally:
        node.close()


@dataclass
class Outcome:
    """What a scheduled session did: its summary (None if it failed), and whether an
    urgent event still waits to go up (then a retry comes sooner)."""

    summary: session.Summary | None
    urgent_waiting: bool = False


def sync_job(node_dir: Path, wait=time.sleep) -> Outcome:
    """One sync session with the parent over HTTP (RETRIES tries that move nothing, then
    it gives up); never raises."""
    outcome = Outcome(None)

    def work(node):
        try:
            outcome.summary = session.run(node, HttpTransport(node.settings["PARENT_URL"]),
                                          retries=RETRIES, wait=wait, reports_first=True)
        except Exception as e:  # noqa: BLE001 - recorded on the link by session.run
            log.warning("sync failed: %s", type(e).__name__)
            outcome.urgent_waiting = urgent_owed(node, node.settings["PARENT_ID"])
            return
        summary = outcome.summary
        if summary.sent or summary.received:
            log.info("sync: sent %s, received %s events", summary.sent, summary.received)
    _on_node(node_dir, "sync", work)
    return outcome


def urgent_owed(node, peer: str) -> bool:
    """Whether an urgent event (registry.urgent_types) waits to go to ``peer``: numbered
    for it and not acknowledged, or stored since the link last looked."""
    urgent = sorted(registry.urgent_types())
    marks = ",".join("?" * len(urgent))
    return node.db.conn.execute(
        f"SELECT 1 FROM outbox o JOIN events e ON e.lsn = o.lsn WHERE o.peer = ? AND "
        f"e.type IN ({marks}) UNION ALL SELECT 1 FROM events WHERE lsn > coalesce((SELECT "
        f"scanned_lsn FROM links WHERE peer = ?), 0) AND source != ? AND type IN ({marks}) "
        f"LIMIT 1", (peer, *urgent, peer, peer, *urgent)).fetchone() is not None


class Syncer:
    """Runs sessions with the parent one at a time; asked during a run, it runs again.

    The scheduler calls it on its interval; ``soon`` starts it in a thread of
    its own for an urgent event. A request that arrives while a session is
    under way (and may have missed the event) makes that thread run once more,
    so no urgent event waits for the next interval. A session that fails is
    tried again after ``pacing.retry_delay`` (a timer; a session that runs
    meanwhile for another reason takes its place).
    """

    def __init__(self, node_dir: Path, session=sync_job, interval: float = 300,
                 rand=random.random, timer=threading.Timer):
        self.node_dir, self.session, self.interval = Path(node_dir), session, interval
        self.rand, self.timer = rand, timer
        self.failures = 0
        self._retry = None
        self._running = threading.Lock()
        self._again = threading.Event()

    def __call__(self) -> None:
        self._again.set()
        while self._again.is_set() and self._running.acquire(blocking=False):
            try:
                while self._again.is_set():
                    self._again.clear()
                    self._one()
            finally:
                self._running.release()

    def now(self) -> Outcome:
        """Run a session now (after the one under way, if any); returns its outcome."""
        with self._running:
            self._again.clear()
            outcome = self._one()
            while self._again.is_set():
                self._again.clear()
                outcome = self._one()
        return outcome

    def soon(self) -> None:
        threading.Thread(target=self, name="siji-urgent-sync", daemon=True).start()

    def _one(self) -> Outcome:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        outcome = self.session(self.node_dir)
        if outcome is not None and outcome.summary is not None:
            self.failures = 0
            return outcome
        self.failures += 1
        urgent = outcome is not None and outcome.urgent_waiting
        delay = pacing.retry_delay(self.failures, self.rand(), urgent, self.interval)
        self._retry = self.timer(delay, self.soon)
        self._retry.daemon = True
        self._retry.start()
        return outcome if outcome is not None else Outcome(None)


class Listener:
    """The standing request to the parent (/sync/wait, node/sync/http.py): held there until
    the parent owes this node something, then a session at once (``Syncer.now``), then
    the next request. The node dials, so it works from behind NAT; the node is not held
    open while the request waits. If the parent cannot be reached, or answers with
    nothing to take, the next request waits a capped backoff with jitter."""

    def __init__(self, node_dir: Path, syncer: Syncer, seconds: int, transport=None,
                 wait=time.sleep, rand=random.random):
        self.node_dir, self.syncer, self.seconds = Path(node_dir), syncer, seconds
        self.transport, self.wait, self.rand = transport, wait, rand
        self.stop = threading.Event()

    def ask(self) -> bool:
        """One request: whether the parent owes this node something (raises if it fails)."""
        node = core.open_node(self.node_dir)
        try:
            ack = inbox.current_ack(node, node.settings["PARENT_ID"])
            transport = self.transport or HttpTransport(node.settings["PARENT_URL"])
        finally:
            node.close()
        return transport.wait(ack, self.seconds)

    def run(self) -> None:
        failures = idle = 0
        while not self.stop.is_set():
            try:
                owed = self.ask()
            except Exception as e:  # noqa: BLE001 - a thread's top level: log, wait, go on
                if not failures:
                    log.info("long-poll to the parent failed: %s", type(e).__name__)
                failures += 1
                cap = pacing.MAX_DELAY if isinstance(e, NodeError) else pacing.URGENT_RETRY_CAP
                self.wait(pacing.backoff(failures - 1, self.rand(), cap=cap))
                continue
            if owed or failures:  # (after an outage: what waited here goes up now)
                outcome = self.syncer.now()
                done = outcome.summary
                idle = 0 if done is None or done.received or done.sent else idle + 1
                if done is None or idle > 1:  # the session failed, or took nothing twice
                    self.wait(pacing.backoff(max(idle, 1) - 1, self.rand(),
                                             cap=pacing.URGENT_RETRY_CAP))
                    continue
            failures = 0

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="siji-long-poll", daemon=True)
        thread.start()
        return thread


def urgent_since(node, after_lsn: int) -> tuple[int, bool]:
    """(newest lsn, whether an urgent event arrived after ``after_lsn``)."""
    newest = node.db.conn.execute("SELECT coalesce(max(lsn), 0) FROM events").fetchone()[0]
    urgent = sorted(registry.urgent_types())
    marks = ",".join("?" * len(urgent))
    found = node.db.conn.execute(
        f"SELECT 1 FROM events WHERE lsn > ? AND type IN ({marks}) LIMIT 1",
        (after_lsn, *urgent)).fetchone() is not None
    return newest, found


class UrgentWatch:
    """Checks for new urgent events; calls ``trigger`` once per batch of them."""

    def __init__(self, node_dir: Path, trigger):
        self.node_dir, self.trigger, self.lsn = Path(node_dir), trigger, None
        # Where the log stands when the watch is set up, not at its first run: an urgent
        # event written in between (a busy start) must still trigger a session. If the node
        # cannot be opened now, the first run notes where it stands instead.
        _on_node(self.node_dir, "urgent watch", self._look)

    def _look(self, node) -> None:
        if self.lsn is None:  # start from now: what was there at start-up syncs on schedule
            self.lsn = urgent_since(node, 0)[0]
            return
        self.lsn, found = urgent_since(node, self.lsn)
        if found:
            self.trigger()

    def __call__(self) -> None:
        _on_node(self.node_dir, "urgent watch", self._look)


def check_warnings(node) -> dict[str, list[str]]:
    """Record missing receipts, then raise the alarm for warnings this node received and has
    not acknowledged in time, in one transaction; returns the warning ids of each.

    Time is the node's clock, so tests move it by hand and call this directly.
    """
    with store.write(node.db):
        received = warnings.record_receipts(node)
        alarmed = warnings.raise_alarms(node)
    return {"received": received, "alarmed": alarmed}


def warning_job(node_dir: Path) -> None:
    """:func:`check_warnings` on the node in ``node_dir``; never raises."""
    def work(node):
        for warning_id in check_warnings(node)["alarmed"]:
            log.warning("warning %s not acknowledged within %s h: alarm raised", warning_id,
                        node.settings["WARNING_ACK_HOURS"])
    _on_node(node_dir, "warnings", work)


PARTS_KEEP_DAYS = 30  # a part of a bundle that has not moved for this long is dropped


def housekeep(node) -> dict[str, int]:
    """Apply held events whose time has come (log.release_held), drop what waited in the
    inbox too long (log.expire_waiting), compact the figures reports that newer ones
    supersede (figures.compact: those that arrived other than in a bundle, or were still
    owed to the parent when their successor was made), drop parts of bundles that stopped
    moving (parts.expire) and draft keys past drafts.KEEP_DAYS, in one transaction;
    returns how many of each went. Time is the node's clock (tests move it by hand)."""
    now = node.clock()
    with store.write(node.db):
        eventlog.release_held(node)
        return {"waiting": eventlog.expire_waiting(node),
                "figures": figures.compact(node),
                "parts": parts.expire(node, iso(now - timedelta(days=PARTS_KEEP_DAYS))),
                "draft_keys": drafts.expire(node, iso(now - timedelta(days=drafts.KEEP_DAYS)))}


def housekeeping_job(node_dir: Path) -> None:
    """:func:`housekeep` on the node in ``node_dir``; never raises."""
    def work(node):
        gone = housekeep(node)
        if gone["waiting"]:
            log.warning("%s events waited too long for what they build on: dropped",
                        gone["waiting"])
        if gone["figures"]:
            log.info("figures: %s superseded report events compacted", gone["figures"])
        if gone["parts"]:
            log.info("%s parts of bundles that stopped moving were dropped", gone["parts"])
    _on_node(node_dir, "housekeeping", work)


def notices_job(node_dir: Path) -> None:
    """Once a day, queue the notices of deadlines near and past (node.notices); each time,
    deliver what is due (node.sync.delivery); never raises."""
    def work(node):
        day = f"notices:deadlines:{node.today().isoformat()}"
        with store.write(node.db):
            first_today = store.next_value(node.db, day) == 1
            if first_today:
                notices.for_deadlines(node)
        done = delivery.deliver(node)
        if done["sent"] or done["failed"]:
            log.info("notices: %s sent, %s failed", done["sent"], done["failed"])
    _on_node(node_dir, "notices", work)


def figures_job(node_dir: Path) -> None:
    """Report this node's figures if they changed (node.figures.report); never raises."""
    def work(node):
        with store.write(node.db):
            figures.report(node)
    _on_node(node_dir, "figures", work)


def plan(node_dir: Path, settings: dict):
    """The scheduler, not started, and the Syncer (None without a parent): the warning job
    at every node; sync with the parent, and the figures check between sessions, at a node
    that has one."""
    scheduler = BackgroundScheduler(timezone=settings["TIMEZONE"])
    scheduler.add_job(warning_job, "interval", args=[Path(node_dir)], seconds=WARNING_CHECK,
                      max_instances=1, coalesce=True, id="warnings",
                      next_run_time=datetime.now().astimezone())
    scheduler.add_job(housekeeping_job, "interval", args=[Path(node_dir)], seconds=600,
                      max_instances=1, coalesce=True, id="housekeeping")
    scheduler.add_job(notices_job, "interval", args=[Path(node_dir)],
                      seconds=settings["NOTIFY_CHECK"], max_instances=1, coalesce=True,
                      id="notices", next_run_time=datetime.now().astimezone())
    if not (settings["PARENT_URL"] and settings["PARENT_ID"]):
        return scheduler, None
    if settings["FIGURES_INTERVAL"]:  # (each session reports too: this is for the days
        scheduler.add_job(figures_job, "interval", args=[Path(node_dir)],  # that pass)
                          seconds=settings["FIGURES_INTERVAL"], max_instances=1,
                          coalesce=True, id="figures")
    syncer = Syncer(node_dir, interval=settings["SYNC_INTERVAL"])
    scheduler.add_job(syncer, "interval", seconds=settings["SYNC_INTERVAL"],
                      jitter=settings["SYNC_JITTER"], max_instances=1, coalesce=True, id="sync",
                      next_run_time=datetime.now().astimezone())
    scheduler.add_job(UrgentWatch(node_dir, syncer.soon), "interval",
                      seconds=settings["URGENT_CHECK"], max_instances=1, coalesce=True,
                      id="urgent")
    return scheduler, syncer


def start(node_dir: Path, settings: dict):
    """Start the scheduler of :func:`plan`; returns it."""
    scheduler, syncer = plan(node_dir, settings)
    if syncer is not None:
        eventlog.on_urgent(syncer.soon)  # for the life of the process, as the scheduler
        if settings["LONG_POLL"]:
            Listener(node_dir, syncer, settings["LONG_POLL"]).start()
    scheduler.start()
    return scheduler
