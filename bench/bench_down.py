"""Down in seconds and urgent first: what issue 19 asks of the sync between real processes.

Run: .venv/bin/python bench/bench_down.py [--rounds 5] [--backlog 4000]

1. Down. Four real nodes (city, town, area, village), each served by `siji
   serve` on loopback with the scheduled sync a day apart: what comes down,
   comes by the long-poll (node/sync/http.py /sync/wait) and the sessions it
   starts. A liaison raises a high-risk warning (the CLI); once it is at the
   city, the town acknowledges it (one hop down to the area, two to the
   village) and then the city does (three hops); then the city refers down a case
   the village escalated all the way up. Each time is from the CLI's return (the
   event is committed) until the event is in the village's database, read
   from the file every 10 ms.
2. Urgent first. A village (not served: driven here) holds ``--backlog``
   routine events for its area (notes on an escalated case), then raises a
   warning; the clock runs from the start of its session until the warning is
   in the city's database, two hops up.

Prints medians and maxima. Issue 19 asks: acknowledgement at the village
under 5 s, a city instruction under 10 s, the warning behind 4,000 events at
the city under 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

from pair import LIAISON, SIJI, network

from node import cases, core, store, warnings
from node.sync import session
from node.sync.http import HttpTransport

CHAIN = [("shi", "city"), ("zhen", "town"), ("pian", "area"), ("cun", "village")]
DEADLINE = (date.today() + timedelta(days=20)).isoformat()
ENV = {"SIJI_SYNC_INTERVAL": "86400", "SIJI_SYNC_JITTER": "0", "SIJI_URGENT_CHECK": "1"}
WARNING = {"subject": "征地补偿不到位", "place": "村委会", "expected_size": 80,
           "destination": "beijing"}


def siji(*args) -> str:
    env = {**os.environ, **ENV}
    done = subprocess.run([SIJI, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"siji {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def arrival(db_path: Path, where: str, params: tuple, limit: float = 60) -> float:
    """Seconds until the query ``where`` on events finds a row (read every 10 ms)."""
    start = time.monotonic()
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        while not db.execute(f"SELECT 1 FROM events WHERE {where}", params).fetchone():
            if time.monotonic() - start > limit:
                raise RuntimeError(f"nothing after {limit} s: {where} {params}")
            time.sleep(0.01)
    return time.monotonic() - start


def timed(command: tuple, db_path: Path, where: str, params: tuple) -> float:
    """Seconds from the start of `siji *command*` until its event is found at ``db_path``,
    less the command's own start-up (measured beside it, as `siji --version`): how long
    the event took from its commit, give or take the few milliseconds of the write."""
    startup = time.monotonic()
    siji("--version")
    startup = time.monotonic() - startup
    found: list[float] = []
    watcher = threading.Thread(target=lambda: found.append(arrival(db_path, where, params)))
    watcher.start()
    siji(*command)
    watcher.join()
    return max(0.0, found[0] - startup) if found else float("nan")


def down(rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"town ack, 2 hops": [], "city ack, 3 hops": [],
                                     "city referral, 3 hops": []}
    with tempfile.TemporaryDirectory() as tmp, network(Path(tmp), CHAIN, ENV) as nodes:
        d = {node_id: nodes[node_id][0] for node_id, _ in CHAIN}
        at = {node_id: d[node_id] / "siji.db" for node_id in d}
        time.sleep(2)  # the long-polls are set up
        for _ in range(rounds):
            fields = [x for k, v in WARNING.items() for x in ("-f", f"{k}={v}")]
            wid = json.loads(siji("--dir", str(d["cun"]), "--json", "warning", "add",
                                  "--as", "liu", *fields))["id"]
            arrival(at["shi"], "subject = ? AND type = 'warning.raised'", (wid,))
            for who, key in (("zhen", "town ack, 2 hops"), ("shi", "city ack, 3 hops")):
                times[key].append(timed(
                    ("--dir", str(d[who]), "warning", "act", wid, "acknowledge", "--as", "wang"),
                    at["cun"], "subject = ? AND origin = ? AND type = 'warning.acknowledged'",
                    (wid, who)))
            case = json.loads(siji("--dir", str(d["cun"]), "--json", "case", "add", "--as",
                                   "liu", "--category", "低保", "--summary", "低保金未按时发放",
                                   "--petitioner", "张三,11010519491231002X,13800138000"))["id"]
            up = [("cun", "liu", "pian"), ("pian", "wang", "zhen"), ("zhen", "wang", "shi")]
            for who, user, to in up:
                if who == "zhen":
                    siji("--dir", str(d[who]), "case", "act", case, "accept", "--as", user)
                siji("--dir", str(d[who]), "case", "act", case, "escalate", "--as", user,
                     "-f", f"to={to}", "-f", "reason=需上级协调")
                arrival(at[to], "subject = ? AND type = 'case.escalated' AND origin = ?",
                        (case, who))
            times["city referral, 3 hops"].append(timed(
                ("--dir", str(d["shi"]), "case", "act", case, "refer", "--as", "wang", "-f",
                 "to=zhen", "-f", "instruction=请镇里核实并答复", "-f", f"deadline={DEADLINE}"),
                at["cun"], "subject = ? AND origin = 'shi' AND type = 'case.referred'", (case,)))
    return times


def urgent_first(backlog: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, network(
            Path(tmp), CHAIN[:2] + [("cun", "village")], ENV, serve_last=False) as nodes:
        village = core.open_node(nodes["cun"][0])
        try:
            transport = HttpTransport(nodes["zhen"][1])
            with store.write(village.db):
                case = cases.register(village, LIAISON, {
                    "category": "dibao", "summary": "低保金未按时发放", "petitioners": [
                        {"name": "张三", "id_number": "11010519491231002X",
                         "phone": "13800138000"}]}).subject
                cases.act(village, LIAISON, case, "escalate", {"to": "zhen",
                                                               "reason": "需镇协调"})
                others = [case] + [cases.register(village, LIAISON, {
                    "category": "dibao", "summary": f"第{i}件", "petitioners": [
                        {"name": "李四", "id_number": "11010519491231002X"}]}).subject
                    for i in range(39)]
                for other in others[1:]:
                    cases.act(village, LIAISON, other, "escalate", {"to": "zhen",
                                                                    "reason": "需镇协调"})
            session.run(village, transport)
            for start in range(0, backlog, 400):  # notes on 40 cases: routine, and they go up
                with store.write(village.db):
                    for i in range(start, min(backlog, start + 400)):
                        cases.act(village, LIAISON, others[i % 40], "note",
                                  {"text": f"补充情况第{i}条"})
            with store.write(village.db):
                wid = warnings.raise_warning(village, LIAISON, WARNING).subject
            worker = threading.Thread(target=session.run, args=(village, transport))
            start = time.monotonic()
            worker.start()
            seconds = arrival(nodes["shi"][0] / "siji.db",
                              "subject = ? AND type = 'warning.raised'", (wid,))
            took = time.monotonic() - start
            worker.join()
            return min(seconds, took)
        finally:
            village.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backlog", type=int, default=4000)
    args = parser.parse_args()
    for name, values in down(args.rounds).items():
        print(f"{name} to the village: median {statistics.median(values):.2f} s, "
              f"max {max(values):.2f} s ({len(values)} rounds)")
    runs = [urgent_first(args.backlog) for _ in range(3)]
    print(f"a warning behind {args.backlog} routine events, village to city: median "
          f"{statistics.median(runs):.2f} s, max {max(runs):.2f} s (3 runs)")


if __name__ == "__main__":
    main()
