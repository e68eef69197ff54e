"""What the membership events cost when they go, as the routing policy sends them, to
every node: the shortcut `siji simulate` takes in its bootstrap (node/simulate/engine.py),
measured without it.

Run: .venv/bin/python bench/membership_flood.py [TOWNS AREAS_PER_TOWN VILLAGES_PER_AREA]

Builds the city (default 2 towns, 2 areas each, 5 villages each: 27 nodes), then runs
fault-free sessions up and down twice, so that every node.enrolled, node.joined and
node.confirmed reaches every node, and prints what a village holds and the time per
membership event applied, sessions included.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from node.simulate import engine, network, wire, workload


def main() -> None:
    shape = network.Shape(*map(int, sys.argv[1:4])) if len(sys.argv) == 4 else \
        network.Shape(2, 2, 5)
    clock = network.SimClock(engine.START - timedelta(hours=2))
    with tempfile.TemporaryDirectory() as tmp:
        net = network.build(Path(tmp), shape, clock)
        play = engine.Play(net, wire.Faults(), workload.Workload(1), 1)
        order = {"village": 0, "area": 1, "town": 2}
        children = [p for p in net.places if p.parent]
        started = time.perf_counter()
        for _ in range(2):
            for place in sorted(children, key=lambda p: order[p.tier]):
                play.sync(place)
            for place in sorted(children, key=lambda p: -order[p.tier]):
                play.sync(place)
        took = time.perf_counter() - started
        applied = sum(net.nodes[p.id].db.conn.execute(
            "SELECT count(*) FROM events WHERE type LIKE 'node.%' AND origin != ?",
            (p.id,)).fetchone()[0] for p in net.places)
        village = net.nodes[children[-1].id].db.conn.execute(
            "SELECT count(*) FROM events WHERE type LIKE 'node.%'").fetchone()[0]
        print(f"{len(net.places)} nodes: a village holds {village} membership events; "
              f"{applied} applied in all in {took:.1f} s, {1000 * took / applied:.2f} ms each")
        net.close()


if __name__ == "__main__":
    main()
