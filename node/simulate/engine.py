"""Playing the simulated city: days of work hour by hour, sync sessions on schedule and
at once for urgent events, USB trips, nodes off the network, and then rounds until
every link has caught up.

Each hour: the staff of every node act (node.simulate.workload), then every node with
a network link whose session is due (every ``sync_hours``, spread over the hours) or
that holds a new urgent event (a warning, an escalation: as `siji serve` forwards them
on receipt, node.sync.jobs) runs one real session with its parent (node.sync.session.run)
over a simulated link (node.simulate.wire.Link), villages first, then areas, then towns,
so an urgent event climbs every level within the hour. A USB village's stick goes to
its area and back at 10:00 every ``usb_every`` days (node.sync.files).

After the last day the work stops and the links keep their faults; nodes off the
network come back. A *round* is one session of every networked node, SYNC_INTERVAL
(300 s) apart, as `siji serve` runs them; rounds go on until every link has caught up
both ways, and when only USB villages are behind the clock jumps to their next trip.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from node import store
from node.errors import NodeError
from node.simulate.network import Network, Place
from node.simulate.wire import Faults, Link, Meter
from node.simulate.workload import HOURS, Workload
from node.sync import files, jobs, outbox, session

START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # midnight in UTC: 08:00 in Beijing
TICKS = range(8, 21)    # the simulated hours of a day (local time), one tick each
USB_HOUR = 10
ROUND = 300             # seconds between rounds after the work stops (SYNC_INTERVAL)
MAX_ROUNDS = 2000


@dataclass
class Play:
    """One run: the network, its faults and what was counted."""

    net: Network
    faults: Faults
    workload: Workload
    seed: int
    sync_hours: int = 2
    retries: int = jobs.RETRIES
    meter: Meter = field(default_factory=Meter)
    offline: dict = field(default_factory=dict)   # node -> (first day, last day) off
    usb: set = field(default_factory=set)         # villages linked by a stick only
    lsn: dict = field(default_factory=dict)       # node -> last lsn looked at for urgency
    sessions: int = 0
    failed_sessions: int = 0
    waited: float = 0.0   # seconds sessions would have waited before retrying
    day: int = -1
    days_hint: int = 3    # the days to be played, for placing the spells off the network

    def __post_init__(self):
        rng = random.Random(f"{self.seed}/faults/plan")
        below = [p for p in self.net.places if p.tier != "city"]
        villages = [p for p in below if p.tier == "village"]
        for place in rng.sample(villages, round(self.faults.usb * len(villages))):
            self.usb.add(place.id)
        for place in rng.sample(below, round(self.faults.offline * len(below))):
            if place.id not in self.usb:
                first = rng.randrange(0, max(1, self.days_hint))
                self.offline[place.id] = (first, first + rng.randrange(0, 3))
        self.rng = random.Random(f"{self.seed}/faults/links")

    # -- who can talk ----------------------------------------------------------------------

    def is_offline(self, node_id: str) -> bool:
        span = self.offline.get(node_id)
        return span is not None and span[0] <= self.day <= span[1]

    def link(self, place: Place) -> Link:
        return Link(self.net.nodes[place.parent], self.faults, self.rng, self.meter)

    def sync(self, place: Place) -> session.Summary | None:
        """One session of ``place`` with its parent; None if it did not get through."""
        node = self.net.nodes[place.id]
        if self.is_offline(place.id):
            return None
        self.sessions += 1
        if self.is_offline(place.parent):
            self.meter.failed += 1 + self.retries
            self.failed_sessions += 1
            return None
        try:
            return session.run(node, self.link(place), retries=self.retries,
                               wait=self._wait, rand=self.rng.random, reports_first=True)
        except (NodeError, OSError):
            self.failed_sessions += 1
            return None

    def _wait(self, seconds: float) -> None:
        self.waited += seconds

    def urgent(self, place: Place) -> bool:
        node = self.net.nodes[place.id]
        self.lsn[place.id], found = jobs.urgent_since(node, self.lsn.get(place.id, 0))
        return found

    def trip(self, place: Place, stick) -> None:
        """The stick goes from the village to its area and back (siji export / import)."""
        village, area = self.net.nodes[place.id], self.net.nodes[place.parent]
        stick.mkdir(parents=True, exist_ok=True)
        for path in files.export_bundles(village, area.id, stick):
            self.meter.usb += path.stat().st_size
        report = files.import_dir(area, stick)
        self.meter.usb += sum((stick / n).stat().st_size for n in report["acks_written"])
        for path in files.export_bundles(area, village.id, stick):
            self.meter.usb += path.stat().st_size
        report = files.import_dir(village, stick)
        self.meter.usb += sum((stick / n).stat().st_size for n in report["acks_written"])
        for path in stick.glob("*.bundle"):  # imported: the liaison clears the stick
            path.unlink()

    # -- the days --------------------------------------------------------------------------

    def networked(self) -> list[Place]:
        """Nodes with a network link to their parent, villages first (bottom-up)."""
        order = {"village": 0, "area": 1, "town": 2}
        return sorted((p for p in self.net.places if p.parent and p.id not in self.usb),
                      key=lambda p: order[p.tier])

    def play_day(self, day: int, last: bool = False) -> None:
        """One day, hour by hour; the ``last`` one ends with the office hours: what is
        still on its way then is what the rounds after it carry (converge)."""
        self.day = day
        base = START + timedelta(days=day)
        for place in self.net.places:
            self.workload.plan_day(place, day)
        networked = self.networked()
        for hour in TICKS:
            if last and hour > max(HOURS):
                break
            self.net.clock.now = base + timedelta(hours=hour - 8)
            for place in self.net.places:
                self.workload.hour(self.net.nodes[place.id], place, self.net, hour)
            if hour == USB_HOUR and day % self.faults.usb_every == 0:
                for village in sorted(self.usb):
                    self.trip(self.net.by_id[village], self.stick(village))
            for place in networked:
                due = (hour + _spread(place.id, self.sync_hours)) % self.sync_hours == 0
                if self.urgent(place) or due:
                    self.sync(place)

    def stick(self, village: str):
        return self.net.root / "sticks" / village

    # -- after the work stops --------------------------------------------------------------

    def behind(self, places: list[Place]) -> list[Place]:
        """The children in ``places`` whose link with their parent has not caught up:
        events not yet numbered, or numbered and not applied at the other end."""
        out = []
        for place in places:
            child, parent = self.net.nodes[place.id], self.net.nodes[place.parent]
            if _owes(child, parent.id, parent) or _owes(parent, child.id, child):
                out.append(place)
        return out

    def converge(self) -> dict:
        """Rounds until every link has caught up. Returns the rounds and simulated
        seconds until the networked links had (``rounds``, ``seconds``), and until every
        USB village had too (``all_rounds``, ``all_seconds``, ``usb_trips``)."""
        self.day = 10 ** 6  # every spell off the network has ended
        started = self.net.clock.now
        networked = self.networked()
        usb = [self.net.by_id[v] for v in sorted(self.usb)]
        out: dict = {"converged": False}
        rounds = trips = 0
        while rounds <= MAX_ROUNDS:
            network_behind = bool(self.behind(networked))
            if not network_behind and "rounds" not in out:
                out.update(rounds=rounds, seconds=_seconds(self.net.clock.now, started))
            if not network_behind and not self.behind(usb):
                out.update(converged=True)
                break
            if not network_behind:  # only sticks are behind: their next trip
                self.net.clock.now = _next_trip(self.net.clock.now, self.faults.usb_every)
                for place in self.behind(usb):
                    self.trip(place, self.stick(place.id))
                trips += 1
            rounds += 1
            self.net.clock.now += timedelta(seconds=ROUND)
            for place in networked:
                self.sync(place)
        out.update(all_rounds=rounds, all_seconds=_seconds(self.net.clock.now, started),
                   usb_trips=trips)
        return out


def _seconds(now: datetime, started: datetime) -> int:
    return round((now - started).total_seconds())


def _spread(node_id: str, every: int) -> int:
    return sum(node_id.encode()) % every


def _next_trip(now: datetime, every: int) -> datetime:
    """The next USB trip after ``now``: USB_HOUR on a day that is a multiple of ``every``."""
    day = (now - START).days + 1
    while day % every:
        day += 1
    return START + timedelta(days=day, hours=USB_HOUR - 8)


def _owes(node, peer: str, other) -> bool:
    """Whether ``node`` has events for ``peer`` that ``other`` (the peer) has not applied."""
    if outbox.unqueued(node, peer)[0]:
        return True
    row = node.db.conn.execute("SELECT next_out FROM links WHERE peer = ?", (peer,)).fetchone()
    numbered = (row[0] - 1) if row else 0
    got = other.db.conn.execute("SELECT applied FROM links WHERE peer = ?",
                                (node.id,)).fetchone()
    return numbered > (got[0] if got else 0)


def bootstrap(play: Play) -> int:
    """Before the work starts: sessions until each node above has heard of every node
    below it (node.enrolled, node.joined and the city's node.confirmed go up), without
    faults and not counted.

    A shortcut, and the one place the simulation departs from the nodes' own routing:
    membership events also go *down* to every node (node.sync.policy), so each of N
    nodes applies about 3N of them. At 2-3 ms each that is some 20-30 minutes of one
    CPU for 451 nodes and 5-7 hours for 1,651. Here a parent's link to its child starts
    past what the parent held before the child's first session: a node knows the
    nodes above it from the certificate chain it got at enrollment, which is all that
    the events coming down to it need.
    """
    faults, meter = play.faults, play.meter
    play.faults, play.meter = Faults(), Meter()
    everyone = [p for p in play.net.places if p.parent]
    order = {"village": 0, "area": 1, "town": 2}
    rounds = 0
    while rounds < 20:
        rounds += 1
        for place in sorted(everyone, key=lambda p: order[p.tier]):
            _start_past(play.net.nodes[place.parent], place.id)
            play.sync(place)
        if not play.behind(everyone):
            break
    play.faults, play.meter = faults, meter
    play.sessions = play.failed_sessions = 0
    for place in play.net.places:
        play.lsn[place.id] = jobs.urgent_since(play.net.nodes[place.id], 0)[0]
    return rounds


def _start_past(parent, child: str) -> None:
    """The parent's link to ``child`` passes over the membership events it holds now."""
    with store.write(parent.db):
        outbox.ensure_link(parent.db, child)
        parent.db.conn.execute(
            "UPDATE links SET scanned_lsn = max(scanned_lsn, (SELECT coalesce(max(lsn), 0) "
            "FROM events WHERE type LIKE 'node.%')) WHERE peer = ?", (child,))
