"""Sync over a link that misbehaves, against the same sync over a clean one.

Run: .venv/bin/python bench/bench_cuts.py [--events 3000] [--down 0] [--seeds 1 2 3] MODEL

Identical village-town pairs (the same made-up petitions, the same seed) each
sync the same events through the test suite's fault-injecting proxy
(tests/faultproxy.py): ``--events`` go up (cases registered and escalated)
and ``--down`` come down (cases the town registers and refers to the
village), first over a clean link, then under the model:

  budget N    each connection is reset after a uniformly random 0 to N KiB,
              both directions counted (a data session that drops after a burst)
  stall P     P of the connections go silent at a random point of their first
              64 KiB (both ways), and the proxy resets them --stall-for seconds
              later
  lost P      P of the requests reach the town whole, and the connection dies
              before the first byte of the answer
  slow BPS    BPS bits a second each way, --rtt seconds of round trip
  share P     (issue 4's readings) P of the connections cut at a random point
              of a whole session's upload, then P of every request cut at a
              random point of its body

The village syncs as `siji serve` would: a session goes on by itself after a
cut that moved something, tries RETRIES times in a row after one that moved
nothing (waiting as node.pacing says), and then the scheduler starts another.
Printed for each run: bytes the proxy forwarded both ways and their ratio to
the clean run's, the time, sessions, requests and faults, and whether every
event arrived exactly once. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import requests
from pair import add_down, add_events, pair

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from faultproxy import FaultProxy, Faults  # noqa: E402

from node import events, log  # noqa: E402
from node.errors import NodeError  # noqa: E402
from node.sync import jobs, outbox, session  # noqa: E402
from node.sync.http import HttpTransport  # noqa: E402

KIB = 1024
GIVE_UP = 1800.0  # seconds: a run still going then is reported as not converged


def run(args, faults: Faults, seed: int) -> dict:
    """Sync ``args.events`` up and ``args.down`` down through the proxy; what it took."""
    env = {"SIJI_SYNC_REQUESTS_PER_MINUTE": str(args.requests_per_minute)} \
        if args.requests_per_minute else None
    with tempfile.TemporaryDirectory() as tmp, pair(Path(tmp), env) as (node, url, town):
        rng = random.Random(7)
        add_events(node, args.events, rng, length=args.length)
        sample = node.db.conn.execute("SELECT origin, seq FROM events WHERE origin = 'cun' "
                                      "ORDER BY seq DESC LIMIT 500").fetchall()
        size = sum(len(events.to_json(log.get_event(node.db, f"{o}:{q}")).encode())
                   for o, q in sample) / len(sample)
        if args.down:
            add_down(town, "cun", args.down, rng, length=args.length)
        port = int(url.rsplit(":", 1)[1])
        with FaultProxy(port, faults, seed=seed, idle_timeout=args.stall_for + 5,
                        lifetime=GIVE_UP + 60) as proxy:
            transport = HttpTransport(proxy.url)
            sessions = waited = 0
            started = time.monotonic()

            def wait(seconds):
                nonlocal waited
                waited += seconds
                time.sleep(seconds)

            done = False
            while not done and time.monotonic() - started < GIVE_UP:
                sessions += 1
                try:
                    session.run(node, transport, retries=jobs.RETRIES, wait=wait)
                except (OSError, requests.RequestException, NodeError):
                    continue  # the scheduler starts another
                done = outbox.backlog(node, "zhen")[0] == 0  # (and the pull ended on a 204)
            elapsed = time.monotonic() - started
            proxy.settle()
            return {"event": size, "bytes": proxy.up + proxy.down, "up": proxy.up,
                    "down": proxy.down,
                    "seconds": elapsed, "sessions": sessions, "waited": waited,
                    "requests": sum(proxy.requests.values()),
                    "faults": sum(proxy.injected.values()), "done": done,
                    "once": _exactly_once(node, town, args.events, args.down)}


def _exactly_once(node, town: Path, up: int, down: int) -> bool:
    """Each side holds each of the other's events once: every one the village sent up,
    and every one the town numbered for the village, acknowledged by it."""
    ours = node.db.conn.execute("SELECT count(*), count(DISTINCT seq) FROM events WHERE "
                                "origin = 'zhen'").fetchone()
    with sqlite3.connect(town / "siji.db") as db:
        theirs = db.execute("SELECT count(*), count(DISTINCT seq) FROM events WHERE "
                            "origin = 'cun' AND type LIKE 'case.%'").fetchone()
        acked, numbered = db.execute("SELECT acked, next_out - 1 FROM links "
                                     "WHERE peer = 'cun'").fetchone()
    db.close()
    return theirs == (up, up) and ours[0] == ours[1] and acked == numbered and (
        numbered >= down)


def _model(args, clean: dict) -> list[tuple[str, Faults]]:
    kind, value = args.model
    if kind == "budget":
        return [(f"budget 0-{value:g} KiB a connection", Faults(budget=int(value * KIB)))]
    if kind == "stall":
        return [(f"{value:.0%} of connections stall for {args.stall_for:g} s",
                 Faults(stall=value, stall_for=args.stall_for, max_bytes=64 * KIB))]
    if kind == "lost":
        return [(f"{value:.0%} of answers lost", Faults(lose_reply=value))]
    if kind == "slow":
        return [(f"{value / 1000:g} kbit/s, {args.rtt * 1000:.0f} ms round trip",
                 Faults(rate=value / 8, latency=args.rtt / 2))]
    if kind == "share":
        return [(f"{value:.0%} of connections cut",
                 Faults(drop=value, directions=("up",), max_bytes=clean["up"])),
                (f"{value:.0%} of requests cut", Faults(cut_share=value))]
    raise SystemExit(f"unknown model {kind!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs=2, metavar=("MODEL", "VALUE"),
                        type=lambda s: float(s) if s[0].isdigit() or s[0] == "." else s,
                        help="budget KIB | stall P | lost P | slow BITS_PER_S | share P")
    parser.add_argument("--events", type=int, default=3000, help="events up")
    parser.add_argument("--down", type=int, default=0, help="events down (about)")
    parser.add_argument("--length", type=int, default=300,
                        help="characters of a made-up petition's summary (300: 1 KB events)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--rtt", type=float, default=0.6)
    parser.add_argument("--stall-for", type=float, default=5.0)
    parser.add_argument("--requests-per-minute", type=int, default=0,
                        help="the town's SYNC_REQUESTS_PER_MINUTE (default: its own default)")
    parser.add_argument("--no-clean", action="store_true",
                        help="skip the clean run (its figures are printed as 0)")
    args = parser.parse_args()
    args.model = tuple(args.model)
    clean = run(args, Faults(), args.seeds[0]) if not args.no_clean else {
        "bytes": 1, "up": 0, "seconds": 0}
    print(f"{args.events} events up (about {clean.get('event', 0):.0f} bytes each), "
          f"{args.down} down; clean link: {clean['bytes']} bytes, {clean['seconds']:.1f} s",
          flush=True)
    for name, faults in _model(args, clean):
        for seed in args.seeds:
            r = run(args, faults, seed)
            print(f"{name}, seed {seed}: {r['bytes']} bytes ({r['bytes'] / clean['bytes']:.2f} "
                  f"x clean; up {r['up']}, down {r['down']}), {r['seconds']:.1f} s "
                  f"({r['waited']:.1f} s of it waiting to retry), {r['sessions']} sessions, "
                  f"{r['requests']} requests, {r['faults']} faults; "
                  f"{'converged' if r['done'] else 'NOT converged'}, "
                  f"{'exactly once' if r['once'] else 'NOT exactly once'}", flush=True)
            if faults.rate:  # each way has the rate
                both, turns = max(r["up"], r["down"]) / faults.rate, (
                    r["up"] + r["down"]) / faults.rate
                print(f"  the bandwidth allows {both:.1f} s for the bytes sent both ways at "
                      f"once, {turns:.1f} s one way at a time (a session pushes, then "
                      f"pulls): {r['seconds'] / both:.2f} and {r['seconds'] / turns:.2f} x that",
                      flush=True)


if __name__ == "__main__":
    main()
