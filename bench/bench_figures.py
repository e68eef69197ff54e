"""Figures (issue 18): a town's rollup on the wire, and the city's dashboard under load.

Run: .venv/bin/python bench/bench_figures.py size [--villages 30] [--cases 60]
     .venv/bin/python bench/bench_figures.py dashboard [--events 1000000] [--runs 7]

``size``: a town with ``--villages`` villages, each registering ``--cases``
petitions spread over the last year through the domain commands (settled on
the spot, withdrawn, followed up, or left open), and the town 200 of its own
(accepted, answered, some rated); every village reports and its reports
reach the town; the town reports; prints the bytes of the sealed bundles
that carry the town's rollup to the city (compressed, encrypted, signed:
what goes on the wire), and of one change afterwards.

``dashboard``: the city's /figures page (Flask's test client, logged in) with
the figures of ``--events`` events across the tree: case rows as a fold
leaves them, about 6.5 events a case, made straight into two towns' tables
(their reports then made and signed by the real code and applied at the
city) and, for the cases escalated to the city, into the city's own table.
The dashboard reads rows and reports, never the events, so the events
themselves are not made. Prints the median time of a cold and a warm render.
Results go in docs/benchmarks.md.
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
from conftest import HANDLER, LEADER, LIAISON, Clock, NodeFactory, pin  # noqa: E402
from test_web import Web  # noqa: E402

from node import cases, envelope, figures, log, store  # noqa: E402
from node.demo import sample  # noqa: E402
from node.sync import outbox  # noqa: E402

NOW = datetime(2026, 11, 23, 2, tzinfo=UTC)


def wire_bytes(child, parent) -> tuple[int, int]:
    """(bytes, events) of the sealed bundles ``child`` owes ``parent`` now."""
    with store.write(child.db):
        outbox.queue(child, parent.id)
    total = count = 0
    after = child.db.conn.execute("SELECT acked FROM links WHERE peer = ?",
                                  (parent.id,)).fetchone()[0]
    while True:
        first, evs = outbox.pending(child, parent.id, 200, after)
        if not evs:
            break
        bundle = envelope.seal(evs, sender=child.id, recipient=parent.id, first=first,
                               sender_key=child.signer,
                               recipient_key=parent.enc_key.public_key())
        total, count, after = total + len(bundle), count + len(evs), first + len(evs) - 1
    with store.write(child.db):  # as if acknowledged: the next measure is what is new
        child.db.conn.execute("UPDATE links SET acked = ? WHERE peer = ?", (after, parent.id))
    return total, count


def deliver_reports(child, parent) -> None:
    rows = child.db.conn.execute("SELECT origin, seq FROM events WHERE type = ? AND origin = ?",
                                 (figures.ROLLED_UP, child.id)).fetchall()
    with store.write(parent.db):
        for origin, seq in rows:
            event = log.get_event(child.db, f"{origin}:{seq}")
            if not log.has_event(parent.db, event.id):
                log.receive(parent, event, child.id)


def answer(town, case_id: str, fate: float, rng: random.Random, recent: bool) -> None:
    """The town accepts and answers, hears back from the petitioner and closes (结案) most;
    only a recent case may still wait for its answer or its follow-up."""
    cases.act(town, HANDLER, case_id, "accept", {})
    if recent and fate > 0.7:
        return
    cases.act(town, HANDLER, case_id, "reply", {"decision": "explain", "reply": "已答复"})
    if recent and fate > 0.5:
        return
    cases.act(town, HANDLER, case_id, "followup",
              {"rating": rng.choice(("satisfied", "satisfied", "basic"))})
    if cases.get(town, case_id)["state"] == "replied":
        cases.act(town, LEADER, case_id, "close", {"report": "已办结", "signers": ["赵领导"]})


def deliver_case(village, town, case_id: str) -> None:
    with store.write(town.db):
        for event in log.subject_events(village.db, case_id):
            log.receive(town, event, village.id)


def size(args) -> None:
    rng = random.Random(18)
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock(NOW)
        make = NodeFactory(Path(tmp), clock)
        city = make("city", "shi")
        town = make("town", "zhen", parent=city)
        villages = [make("village", f"cun{i:02d}", parent=town) for i in range(args.villages)]
        start = time.perf_counter()
        made = 0
        for node, who, n in [(v, LIAISON, args.cases) for v in villages] + [
                (town, HANDLER, 200)]:
            for _ in range(n):
                clock.now = NOW - timedelta(days=rng.randrange(365), hours=rng.randrange(8))
                with store.write(node.db):
                    fields = sample.case_fields(rng)
                    fields["people_count"] = max(len(fields["petitioners"]),
                                                 rng.choice((1, 1, 1, 2, 3, 6, 12)))
                    case_id = cases.register(node, who, fields).subject
                    fate = rng.random()
                    recent = NOW - clock.now < timedelta(days=45)
                    if node is town:
                        answer(town, case_id, fate, rng, recent)
                    elif fate < 0.5:  # 当场化解, and the follow-up visit (回访)
                        cases.act(node, who, case_id, "settle", {"reply": "当场解释"})
                        if not recent or fate < 0.35:
                            cases.act(node, who, case_id, "followup", {
                                "rating": rng.choice(("satisfied", "basic"))})
                    elif fate < 0.6:
                        cases.act(node, who, case_id, "withdraw", {"reason": "已调解"})
                    elif fate < 0.95 or not recent:  # 上报: the town has it at once
                        cases.act(node, who, case_id, "escalate", {"reason": "需镇里处理",
                                                                   "to": town.id})
                        deliver_case(node, town, case_id)
                        with store.write(town.db):
                            answer(town, case_id, rng.random(), rng, recent)
                    # (and one in twenty of the last weeks' is still at the village)
                made += 1
        clock.now = NOW
        print(f"{made} cases over a year made in {time.perf_counter() - start:.0f} s")
        for v in villages:
            with store.write(v.db):
                figures.report(v)
            deliver_reports(v, town)
        with store.write(town.db):
            reports = figures.report(town)
        body = sum(len(e.body_bytes) for e in reports)
        listed = sum(len(e.body["overdue"]) for e in reports)
        total, count = wire_bytes(town, city)
        print(f"town rollup: {count} report events (one per month), bodies {body} B of JSON "
              f"({listed} overdue cases listed), {total} B on the wire (sealed bundles)")
        clock.advance(minutes=5)
        with store.write(villages[0].db):
            cases.register(villages[0], LIAISON, sample.case_fields(rng))
            figures.report(villages[0])
        deliver_reports(villages[0], town)
        with store.write(town.db):
            figures.report(town)
        total, count = wire_bytes(town, city)
        print(f"one new case at a village: {count} report event(s), {total} B on the wire")
        make.close()


def _rows(template: dict, n: int, origin: str, top: str, rng: random.Random,
          today: str) -> list[list]:
    """``n`` case rows as the fold leaves them, spread over two years before ``today``."""
    out = []
    states = ("registered", "accepted", "in_progress", "replied", "concluded", "concluded",
              "concluded", "terminated", "not_accepted", "referred_out")
    for i in range(n):
        ago = rng.randrange(730)
        day = (NOW - timedelta(days=ago)).date()
        # open or answered only if recent: what is older was concluded long ago, as it is
        state = rng.choice(states) if ago < 90 else rng.choice(states[4:])
        people = rng.choice((1, 1, 1, 2, 3, 6, 12))
        due = (day + timedelta(days=rng.choice((15, 60, 90)))).isoformat() if state in (
            "registered", "accepted", "in_progress", "replied") else None
        row = {**template, "id": f"{origin}-{i:07d}", "origin_node": origin, "holder": top,
               "circle_top": top, "state": state, "category": rng.choice(list(cases.CATEGORIES)),
               "channel": rng.choice(list(cases.CHANNELS)), "people_count": people,
               "collective": int(people >= 5), "first_time": int(rng.random() > 0.1),
               "skip_level": int(rng.random() < 0.03), "registered_on": day.isoformat(),
               "due_on": due, "due_kind": "settle" if due else None,
               "rating": rng.choice((None, "satisfied", "basic", "dissatisfied")),
               "replied_on": day.isoformat() if state in ("replied", "concluded") else None,
               "decided_in_time": int(rng.random() < 0.95) if state != "registered" else None,
               "done_in_time": int(rng.random() < 0.9) if state in ("replied", "concluded")
               else None, "reviewed": 0}
        out.append([row[c] for c in cases.CASE_COLUMNS])
    return out


def _insert(node, rows) -> None:
    with store.write(node.db):
        node.db.conn.executemany(
            f"INSERT INTO cases ({', '.join(cases.CASE_COLUMNS)}) VALUES "
            f"({', '.join('?' * len(cases.CASE_COLUMNS))})", rows)


def dashboard(args) -> None:
    rng = random.Random(18)
    total_cases = int(args.events / 6.5)
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock(NOW)
        make = NodeFactory(Path(tmp), clock)
        city = make("city", "shi")
        towns = [make("town", f"zhen{i}", parent=city) for i in (1, 2)]
        for a in towns:
            for b in towns:
                if a is not b:
                    pin(a, b)
        with store.write(towns[0].db):
            template = cases.get(towns[0], cases.register(towns[0], LIAISON, sample.case_fields(
                rng)).subject)
        today = NOW.date().isoformat()
        escalated = total_cases // 15
        start = time.perf_counter()
        for town in towns:
            _insert(town, _rows(template, (total_cases - escalated) // 2, town.id, town.id, rng,
                                today))
            with store.write(town.db):
                figures.report(town)
            deliver_reports(town, city)
            _insert(city, _rows(template, escalated // 2, town.id + "-up", city.id, rng, today))
        # the city's rows name the towns as where they were registered
        with store.write(city.db):
            city.db.conn.execute("UPDATE cases SET origin_node = substr(origin_node, 1, "
                                 "length(origin_node) - 3) WHERE origin_node LIKE '%-up'")
        cells = sum(len(b["cases"]) for _ts, b in figures.latest(city).values())
        print(f"{total_cases} cases (~{args.events} events): {total_cases - escalated} in the "
              f"towns' reports ({cells} cells), {escalated} held at the city; made in "
              f"{time.perf_counter() - start:.0f} s")
        w = Web(city, clock)
        w.login("wang")
        for url in ("/figures", "/figures?period=year", "/city"):
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                r = w.client.get(url)
                times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.status_code
            cold = []  # after a new event: the facts are counted again
            for _ in range(3):
                figures._FACTS.clear()
                t = time.perf_counter()
                w.client.get(url)
                cold.append(time.perf_counter() - t)
            print(f"GET {url}: median of {args.runs} {statistics.median(times) * 1000:.0f} ms; "
                  f"after a new event (counted again) {statistics.median(cold) * 1000:.0f} ms; "
                  f"{len(r.get_data()) // 1024} KB")
        make.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("size")
    p.add_argument("--villages", type=int, default=30)
    p.add_argument("--cases", type=int, default=60, help="per village, over the year")
    p = sub.add_parser("dashboard")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    (size if args.what == "size" else dashboard)(args)


if __name__ == "__main__":
    main()
