"""Many children at once: a parent served by `siji serve`, 100 children reconnecting together.

Run: .venv/bin/python bench/bench_children.py [--children 100] [--events 60]

A town (`siji serve`, its scheduler a day apart) and ``--children`` villages
enrolled with it over HTTP, each synced once (the links in use before an
outage). Each village then holds ``--events`` events for the
town (made-up petitions registered and escalated, as bench_sync.py). Then
every village starts its session at the same moment, as after an outage, each
in a process of its own (``--procs``: fewer processes, the villages shared
among them in threads); the clock stops when the last session ends. Prints the
events the town applied per second, beside one village alone on the same
parent, how many sessions were turned away (429) at least once, and anything
the town's server logged as an error. Issue 19 asks for at least 1,000
events/s with 100.

Villages are separate machines: driven as threads of one process, 100
sessions and their 300 threads contend for one interpreter lock, and the
bench measures that contention (85-300 events/s, the bench process busy on
both cores while the town's server used 7.6 s of CPU in a minute), not the
town.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import tempfile
import threading
import time
from pathlib import Path

from pair import add_events, network, server_errors

from node import core, enroll, store
from node.sync import http, session
from node.sync.http import HttpTransport

ENV = {"SIJI_SYNC_INTERVAL": "86400", "SIJI_SYNC_JITTER": "0",
       "SIJI_SYNC_REQUESTS_PER_MINUTE": "100000", "SIJI_LONG_POLL": "0"}


def villages(base: Path, town_dir: Path, url: str, n: int, events: int,
             prefix: str = "cun") -> list[Path]:
    """The directories of ``n`` villages enrolled with the town at ``url``, each synced
    once and then holding ``events`` new events for it."""
    rng = random.Random(19)
    out = []
    for i in range(n):
        town = core.open_node(town_dir)
        try:
            with store.write(town.db):
                code = enroll.new_code(town)
        finally:
            town.close()
        node = core.init_node(base / f"{prefix}{i}", tier="village", node_id=f"{prefix}{i}",
                              name=f"村{i}", parent_url=url, admin_password="admin-pass-1")
        node.close()
        node = core.open_node(base / f"{prefix}{i}")
        http.join(node, url, code)
        node.close()
        node = core.open_node(base / f"{prefix}{i}")
        session.run(node, HttpTransport(url))  # in touch before the outage: the link is set
        add_events(node, events, rng)
        node.close()
        out.append(base / f"{prefix}{i}")
    return out


def _totals(results: list[tuple], start: float) -> tuple[float, int, int, list[str]]:
    """(seconds from ``start`` to the last end, events sent, sessions that met a 429, the
    errors that ended sessions) of the sessions' ``results``."""
    return (max(r[2] for r in results) - start, sum(r[0] for r in results),
            sum(r[1] for r in results), [r[3] for r in results if r[3]])


def _session(node, url: str, go) -> tuple[int, int, float, str | None]:
    """(events sent, whether it met a 429, when it ended, the error that ended it) of
    ``node``'s session, started once ``go`` (a barrier) lets it."""
    waits: list[float] = []
    go.wait()
    try:
        summary = session.run(node, HttpTransport(url), retries=10, wait=lambda s: (
            waits.append(s), time.sleep(s)))
    except Exception as e:  # noqa: BLE001 - counted and shown, not hidden
        return 0, bool(waits), time.monotonic(), f"{type(e).__name__}: {e}"
    return summary.sent, bool(waits), time.monotonic(), None


def _worker(dirs: list[Path], url: str, go, out) -> None:
    """Open the villages in ``dirs`` and run their sessions when ``go`` says, in threads;
    put what ``_session`` says of each on ``out``."""
    nodes = [core.open_node(d) for d in dirs]
    inner = threading.Barrier(len(nodes) + 1)
    threads = [threading.Thread(target=lambda n=node: out.put(_session(n, url, inner)))
               for node in nodes]
    for t in threads:
        t.start()
    go.wait()
    inner.wait()
    for t in threads:
        t.join()
    for node in nodes:
        node.close()


def drain(dirs: list[Path], url: str, procs: int) -> tuple[float, int, int, list[str]]:
    """(seconds, events sent, sessions that met a 429, errors) with the session of every
    village in ``dirs`` at once, the villages shared among ``procs`` processes
    (CLOCK_MONOTONIC is the machine's: the processes' ends compare with this one's
    start)."""
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Barrier(procs + 1), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(dirs[i::procs], url, go, out))
               for i in range(procs)]
    for w in workers:
        w.start()
    go.wait()
    start = time.monotonic()
    results = [out.get() for _ in dirs]
    for w in workers:
        w.join()
    return _totals(results, start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--procs", type=int, default=0,
                        help="processes the villages run in (default: one each)")
    args = parser.parse_args()
    procs = min(args.procs or args.children, args.children)
    with tempfile.TemporaryDirectory() as tmp, network(
            Path(tmp), [("zhen", "town")], ENV) as nodes:
        town_dir, url = nodes["zhen"]
        base = Path(tmp)
        seconds, sent, _, _ = drain(
            villages(base, town_dir, url, 1, args.events * 20, "solo"), url, 1)
        print(f"one village alone: {sent} events in {seconds:.2f} s, {sent / seconds:,.0f} "
              "events/s at the town")
        seconds, sent, busy, failed = drain(
            villages(base, town_dir, url, args.children, args.events), url, procs)
        print(f"{args.children} villages at once, in {procs} processes: {sent} events in "
              f"{seconds:.2f} s, {sent / seconds:,.0f} events/s at the town; {busy} sessions "
              f"waited for a 429 at least once; {len(failed)} failed")
        for error in sorted(set(failed)):
            print(f"  a session failed: {error}")
        errors = server_errors(town_dir)
        if errors:
            print("the town's server logged:\n" + errors)


if __name__ == "__main__":
    main()
