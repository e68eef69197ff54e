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

Every WARNING_CHECK seconds :func:`warning_job` raises the alarm for each warning
this node received and has not acknowledged within WARNING_ACK_HOURS, and
records receipts missing for warnings that arrived other than in a bundle
(``inbox.apply_bundle`` records them as they arrive). It runs at every node,
the city included, whose scheduler has no sync jobs.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from node import core, figures, notices, registry, store, warnings
from node import log as eventlog
from node.sync import delivery, session
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


def sync_job(node_dir: Path, wait=time.sleep) -> None:
    """One sync session with the parent over HTTP (RETRIES tries that move nothing, then
    it waits for the next); never raises."""
    def work(node):
        try:
            summary = session.run(node, HttpTransport(node.settings["PARENT_URL"]),
                                  retries=RETRIES, wait=wait, report_figures=True)
        except Exception as e:  # noqa: BLE001 - recorded on the link by session.run
            log.warning("sync failed: %s", type(e).__name__)
            return
        if summary.sent or summary.received:
            log.info("sync: sent %s, received %s events", summary.sent, summary.received)
    _on_node(node_dir, "sync", work)


class Syncer:
    """Runs sessions with the parent one at a time; asked during a run, it runs again.

    The scheduler calls it on its interval; ``soon`` starts it in a thread of
    its own for an urgent event. A request that arrives while a session is
    under way (and may have missed the event) makes that thread run once more,
    so no urgent event waits for the next interval.
    """

    def __init__(self, node_dir: Path, session=sync_job):
        self.node_dir, self.session = Path(node_dir), session
        self._running = threading.Lock()
        self._again = threading.Event()

    def __call__(self) -> None:
        self._again.set()
        while self._again.is_set() and self._running.acquire(blocking=False):
            try:
                while self._again.is_set():
                    self._again.clear()
                    self.session(self.node_dir)
            finally:
                self._running.release()

    def soon(self) -> None:
        threading.Thread(target=self, name="siji-urgent-sync", daemon=True).start()


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


def housekeeping_job(node_dir: Path) -> None:
    """Apply held events whose time has come (log.release_held), drop what waited in the
    inbox too long (log.expire_waiting) and compact the figures reports that newer ones
    supersede (figures.compact: those that arrived other than in a bundle, or were still
    owed to the parent when their successor was made); never raises."""
    def work(node):
        with store.write(node.db):
            eventlog.release_held(node)
            dropped = eventlog.expire_waiting(node)
            compacted = figures.compact(node)
        if dropped:
            log.warning("%s events waited too long for what they build on: dropped", dropped)
        if compacted:
            log.info("figures: %s superseded report events compacted", compacted)
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
    syncer = Syncer(node_dir)
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
    scheduler.start()
    return scheduler
