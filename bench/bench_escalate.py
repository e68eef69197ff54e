"""Bytes on the wire to escalate a case with 50 events from a village to the city.

Run: .venv/bin/python bench/bench_escalate.py [--events 50]

Four real nodes (city, town, area, village) served by `siji serve`, each
child reaching its parent through a byte-counting proxy (tests/faultproxy.py,
with no faults). The village holds a case with ``--events`` events (a
registration of a made-up petition, notes, and the escalation to the area);
each level then escalates it one level up, and forwards it on receipt. For
each hop the benchmark prints the bytes that crossed it (HTTP requests and
replies, headers included) against the canonical bytes of the events the
hop carried. Issue 5 asks for at most 1.2 times.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from pair import network

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from faultproxy import FaultProxy  # noqa: E402

from node import cases, core, events, log, store  # noqa: E402
from node.demo import sample  # noqa: E402

CHAIN = [("shi", "city"), ("zhen", "town"), ("pian", "area"), ("cun", "village")]
NOTES = ("已电话联系当事人，约定下周上门核实。", "村委会提供了当年的评议记录复印件。",
         "当事人补交了医院诊断证明和收入证明。", "走访了同组三户邻居，了解实际情况。")


def held_by(node_dir: Path, case_id: str) -> tuple[str | None, int]:
    node = core.open_node(node_dir)
    try:
        row = node.db.conn.execute("SELECT holder, event_count FROM cases WHERE id = ?",
                                   (case_id,)).fetchone()
        return (row[0], row[1]) if row else (None, 0)
    finally:
        node.close()


def event_bytes(node_dir: Path, case_id: str) -> int:
    node = core.open_node(node_dir)
    try:
        return sum(len(events.to_json(e).encode()) for e in log.subject_events(node.db, case_id))
    finally:
        node.close()


def escalate(node_dir: Path, case_id: str, to: str, actor: log.Actor) -> None:
    node = core.open_node(node_dir)
    try:
        with store.write(node.db):
            cases.act(node, actor, case_id, "escalate", {"to": to, "reason": "需上级协调处理"})
    finally:
        node.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    proxies: dict[str, FaultProxy] = {}

    def front(node_id: str, port: int) -> str:
        proxies[node_id] = FaultProxy(port, idle_timeout=5.0, lifetime=600).__enter__()
        return proxies[node_id].url

    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp, network(
            Path(tmp), CHAIN, {"SIJI_SYNC_INTERVAL": "86400", "SIJI_URGENT_CHECK": "1"},
            front=front) as nodes:
        time.sleep(3)  # the start-up sessions
        village = core.open_node(nodes["cun"][0])
        liaison = log.Actor("liu", "liaison")
        with store.write(village.db):
            case_id = cases.register(village, liaison, sample.case_fields(rng, length=300)).subject
            for i in range(args.events - 2):
                cases.act(village, liaison, case_id, "note", {"text": NOTES[i % len(NOTES)]})
        village.close()
        for proxy in proxies.values():
            proxy.reset_counters()
        rows = []
        hops = [("cun", "pian", log.Actor("liu", "liaison")), ("pian", "zhen", None),
                ("zhen", "shi", None)]
        for child, parent, actor in hops:
            escalate(nodes[child][0], case_id, parent, actor or log.Actor("wang", "handler"))
            deadline = time.time() + 60
            while held_by(nodes[parent][0], case_id)[0] != parent:
                if time.time() > deadline:
                    raise SystemExit(f"the case did not reach {parent}")
                time.sleep(0.05)
            time.sleep(1)  # the session's pull and its acknowledgement
            count = held_by(nodes[parent][0], case_id)[1]
            carried = event_bytes(nodes[parent][0], case_id)
            wire = proxies[parent].up + proxies[parent].down
            rows.append((f"{child} -> {parent}", count, carried, wire))
            proxies[parent].reset_counters()
        for proxy in proxies.values():
            proxy.__exit__(None, None, None)
    print(f"{'hop':16} {'events':>6} {'event bytes':>11} {'wire bytes':>10} {'ratio':>6}")
    for hop, count, carried, wire in rows:
        print(f"{hop:16} {count:6d} {carried:11d} {wire:10d} {wire / carried:6.2f}")
    print("issue 5 asks at most 1.2 (bytes on the wire over the bytes of the events)")


if __name__ == "__main__":
    main()
