"""Figures don't pile up (issue 19): a city's stored reports and its figures read after a
year of daily reports from its towns, without compaction and with it.

Run: .venv/bin/python bench/bench_compaction.py [--days 365] [--units 10] [--sessions 2]

A city and ``--units`` towns. Each simulated day every town registers a petition and
answers one of the last weeks' (so older months' figures change too, as do the days
overdue) before each of its ``--sessions`` sync sessions with the city, which report its
figures first, as `siji serve` does (the real report, sealed bundle and apply over the
in-process transport of the tests). The same year is run twice: once with compaction
turned off (as before issue 19: every report stays), once as shipped. Prints, for each,
the report events the city stores and their bytes, the database file, the time of a
figures read at the city with nothing cached (``figures.facts``: what every dashboard,
export and API answer reads), of the newest reports alone (``figures.latest``), of a
`siji rebuild`, and the time the compaction itself took. Results go in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import HANDLER, LEADER, Clock, NodeFactory, pin  # noqa: E402
from test_session import Loopback  # noqa: E402

from node import cases, figures, log, store  # noqa: E402
from node.demo import sample  # noqa: E402
from node.sync import session  # noqa: E402

START = datetime(2026, 1, 1, 1, tzinfo=UTC)


def _timed(runs: int, work) -> float:
    """The median of ``runs`` timings of ``work()``, in ms."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def year(args, compacting: bool) -> dict:
    rng = random.Random(19)
    spent = [0.0, 0]
    shipped = figures.compact

    def compact(node, origins=None):
        t = time.perf_counter()
        try:
            return shipped(node, origins) if compacting else 0
        finally:
            spent[0] += time.perf_counter() - t
            spent[1] += 1

    figures.compact = compact  # (report, the bundle's apply and housekeeping call it)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            clock = Clock(START)
            make = NodeFactory(Path(tmp), clock)
            city = make("city", "shi")
            towns = [make("town", f"zhen{i:02d}", parent=city) for i in range(args.units)]
            for a in towns:
                for b in towns:
                    if a is not b:
                        pin(a, b)
            opened: dict[str, list[str]] = {t.id: [] for t in towns}
            began = time.perf_counter()
            for day in range(args.days):
                for k in range(args.sessions):
                    clock.now = START + timedelta(days=day, hours=1 + 8 * k)
                    for town in towns:
                        with store.write(town.db):
                            opened[town.id].append(cases.register(
                                town, HANDLER, sample.case_fields(rng)).subject)
                            if len(opened[town.id]) > 10:  # one of the last weeks' answered
                                case_id = opened[town.id].pop(rng.randrange(
                                    len(opened[town.id]) - 5))
                                cases.act(town, HANDLER, case_id, "accept", {})
                                cases.act(town, LEADER, case_id, "reply",
                                          {"decision": "explain", "reply": "已答复"})
                        session.run(town, Loopback(city), reports_first=True)
                if day % 30 == 29:
                    print(f"  day {day + 1}: {time.perf_counter() - began:.0f} s", flush=True)
            made = time.perf_counter() - began
            rows, size = city.db.conn.execute(
                "SELECT count(*), coalesce(sum(length(body)), 0) FROM events WHERE type = ?",
                (figures.ROLLED_UP,)).fetchone()
            town_rows = towns[0].db.conn.execute(
                "SELECT count(*) FROM events WHERE type = ?", (figures.ROLLED_UP,)).fetchone()[0]
            every = city.db.conn.execute("SELECT count(*) FROM events").fetchone()[0]
            city.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db_bytes = (city.dir / city.settings["DATABASE"]).stat().st_size

            def cold_read():
                figures._FACTS.clear()
                figures._PARTS.clear()
                figures.facts(city)

            read = _timed(args.runs, cold_read)
            latest = _timed(args.runs, lambda: figures.latest(city))
            before = figures.facts(city).sums(None, "month")

            def rebuild():
                with store.write(city.db):
                    log.rebuild(city)

            rebuilt = _timed(3, rebuild)
            figures._FACTS.clear()
            assert figures.facts(city).sums(None, "month") == before
            make.close()
            return {"rows": rows, "bytes": size, "town_rows": town_rows, "events": every,
                    "db": db_bytes, "read": read, "latest": latest, "rebuild": rebuilt,
                    "made": made, "compact_s": spent[0], "compact_calls": spent[1],
                    "months": len(before), "n": sum(m["n"] for m in before.values())}
    finally:
        figures.compact = shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--units", type=int, default=10, help="towns under the city")
    parser.add_argument("--sessions", type=int, default=2, help="sync sessions a day")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"{args.days} days x {args.units} towns x {args.sessions} sessions a day")
    out = {}
    for compacting in (False, True):
        label = "compacted" if compacting else "not compacted"
        print(f"{label}:", flush=True)
        r = out[label] = year(args, compacting)
        print(f"  {r['n']} petitions over {r['months']} months, the year made in "
              f"{r['made']:.0f} s")
        print(f"  the city stores {r['rows']} report events ({r['bytes'] / 1e6:.1f} MB of "
              f"bodies) of {r['events']} events; a town {r['town_rows']} of its own; "
              f"database {r['db'] / 1e6:.1f} MB")
        print(f"  figures read at the city, nothing cached (figures.facts): {r['read']:.1f} ms;"
              f" the newest reports alone (figures.latest): {r['latest']:.1f} ms; siji "
              f"rebuild: {r['rebuild']:.0f} ms")
        if compacting:
            print(f"  compaction: {r['compact_s']:.2f} s in {r['compact_calls']} calls "
                  f"({r['compact_s'] / max(1, r['compact_calls']) * 1000:.2f} ms each)")
    a, b = out["not compacted"], out["compacted"]
    print(f"report events at the city: {a['rows']} -> {b['rows']} "
          f"({a['rows'] / max(1, b['rows']):.0f} times fewer); figures read "
          f"{a['read']:.1f} -> {b['read']:.1f} ms; rebuild {a['rebuild']:.0f} -> "
          f"{b['rebuild']:.0f} ms")


if __name__ == "__main__":
    main()
