"""`siji simulate`: a whole city of nodes in one process, days of petition work over
links that fail, and what it cost.

The real node code and the real protocol bytes: every node is made by ``core.init_node``
and enrolled by one-time code (node.simulate.network), the staff act through the domain
commands (node.simulate.workload), and every session is ``node.sync.session.run`` over
an in-process link that carries the bytes to the parent's own handlers and fails,
cuts and corrupts on the way (node.simulate.wire); some villages have only a USB stick
(node.sync.files). The clock is simulated, so "the same day" is measurable. After the
last day the links keep failing until everything has arrived (node.simulate.engine),
and node.simulate.audit counts what was delivered, lost and duplicated.

The package: ``network`` (the places and nodes), ``wire`` (the faulty link),
``workload`` (the people), ``engine`` (the hours, the sessions, the rounds) and
``audit`` (the counting).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from node.clock import iso
from node.simulate import audit, engine
from node.simulate.network import Shape, SimClock, build
from node.simulate.wire import Faults
from node.simulate.workload import Volume, Workload

__all__ = ["Faults", "Options", "Shape", "Volume", "simulate"]


@dataclass(frozen=True)
class Options:
    shape: Shape = field(default_factory=Shape)
    days: int = 3
    faults: Faults = field(default_factory=Faults)
    seed: int = 1
    sync_hours: int = 2
    volume: Volume = field(default_factory=Volume)
    workdir: str | None = None   # where the nodes' directories go (a temporary one inside)
    settings: dict = field(default_factory=dict)  # into every node's config (REPEAT_UP_TO ...)


def _workdir(chosen: str | None) -> str | None:
    """Memory (/dev/shm) when there is one: a node commits each command with an fsync,
    and 451 of them on a disk wait for it more than they compute."""
    if chosen is not None:
        return chosen
    shm = Path("/dev/shm")  # noqa: S108 - a private mkdtemp directory is made inside
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def simulate(options: Options, progress=None) -> dict:
    """Build the city, play the days, converge, count; returns the report."""
    say = progress or (lambda _text: None)
    timings = {}
    with tempfile.TemporaryDirectory(prefix="siji-simulate-",
                                     dir=_workdir(options.workdir)) as tmp:
        started = time.perf_counter()
        clock = SimClock(engine.START - timedelta(hours=2))
        net = build(Path(tmp), options.shape, clock, options.settings)
        timings["build"] = time.perf_counter() - started
        say(f"built {len(net.places)} nodes in {timings['build']:.1f} s")
        try:
            return _play(net, options, timings, say)
        finally:
            net.close()


def _play(net, options: Options, timings: dict, say) -> dict:
    workload = Workload(options.seed, options.volume)
    play = engine.Play(net, options.faults, workload, options.seed,
                       sync_hours=options.sync_hours, days_hint=options.days)
    started = time.perf_counter()
    rounds = engine.bootstrap(play)
    timings["bootstrap"] = time.perf_counter() - started
    say(f"every node knows the network after {rounds} rounds "
        f"({timings['bootstrap']:.1f} s)")
    net.started = iso(engine.START)
    started = time.perf_counter()
    for day in range(options.days):
        play.play_day(day, last=day == options.days - 1)
        say(f"day {day + 1}: {play.meter.total:,} bytes so far, {play.sessions} sessions "
            f"({time.perf_counter() - started:.1f} s)")
    timings["days"] = time.perf_counter() - started
    after_days = play.meter.total
    started = time.perf_counter()
    convergence = play.converge()
    timings["converge"] = time.perf_counter() - started
    say(f"converged: {convergence}")
    started = time.perf_counter()
    must, everywhere, unchecked = audit.expected(net)
    counts = audit.deliveries(net, must, everywhere)
    digests = audit.digests_reached(net)  # (relayed: not event by event above the parent)
    counts["lost"] += digests["missing"]
    high = {wid: (origin, day, _linked(play, origin, day))
            for wid, (origin, day) in workload.high_risk.items()}
    timings["audit"] = time.perf_counter() - started
    meter = play.meter
    return {
        "nodes": len(net.places),
        "shape": {"towns": options.shape.towns, "areas": options.shape.towns
                  * options.shape.areas_per_town, "villages": options.shape.towns
                  * options.shape.areas_per_town * options.shape.villages_per_area},
        "days": options.days, "seed": options.seed, "settings": options.settings,
        "faults": {"rate": options.faults.rate, "corrupt": options.faults.corrupt,
                   "offline_nodes": len(play.offline), "usb_villages": len(play.usb),
                   "usb_every_days": options.faults.usb_every},
        "work": {"done": dict(sorted(workload.done.items())),
                 "refused": dict(sorted(workload.refused.items()))},
        **counts,
        "digests": digests,
        "unchecked": dict(unchecked),
        "convergence": convergence,
        "bytes": {"total": meter.total, "network": meter.up + meter.down, "up": meter.up,
                  "down": meter.down, "usb": meter.usb, "during_days": after_days},
        "requests": {"total": meter.requests, "failed_to_connect": meter.failed,
                     "cut": meter.cuts, "corrupted": meter.corrupted,
                     "refused": meter.refused},
        "sessions": {"total": play.sessions, "failed": play.failed_sessions,
                     "waited_seconds": round(play.waited)},
        "same_day": audit.same_day(net, high),
        "load": audit.load(net, meter, options.days),
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }


def _linked(play, origin: str, day: str) -> bool:
    """Whether ``origin`` and every node above it had a network link on ``day``."""
    index = (engine.START.date().fromisoformat(day) - engine.START.date()).days
    place, by_id = play.net.by_id[origin], play.net.by_id
    if origin in play.usb:
        return False
    while place is not None:
        span = play.offline.get(place.id)
        if span is not None and span[0] <= index <= span[1]:
            return False
        place = by_id.get(place.parent) if place.parent else None
    return True
