"""How soon a change at a village is in the city's figures, on the running demo network.

Run: .venv/bin/python bench/bench_fresh.py [--trials 8]

Starts `siji demo` (15 `siji serve` processes, SYNC_INTERVAL 5 s with 2 s of
jitter) in a temporary directory, then, each trial, registers a petition at
the village 东山村 with `siji case add` and reads the city's figures (its own
database, as its dashboard does) every 50 ms until the city counts one more
petition. Prints each delay beside the village's sync interval: the change
rides the village's next scheduled session (it reports its figures first),
and each level forwards a report on receipt. Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_network import Demo, free_base  # noqa: E402
from test_serve import SIJI  # noqa: E402

from node import core, demo, figures  # noqa: E402
from node.demo import sample  # noqa: E402

VILLAGE, CITY = "dongshan", "qingshan"


def city_count(city) -> int:
    return figures.facts(city).sums(None, None).get("", {}).get("n", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    rng = random.Random(18)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "demo"
        run = Demo(root, "--base-port", free_base(len(demo.NETWORK)))
        try:
            run.ready()
            interval = demo.network.SYNC["SYNC_INTERVAL"]
            env = {k: v for k, v in os.environ.items() if not k.startswith("SIJI_")}
            city = core.open_node(root / CITY)
            time.sleep(2 * interval)  # the sample data's own reports settle first
            delays = []
            for i in range(args.trials):
                # at a random moment of the village's sync cycle (a report it makes is urgent
                # to its own scheduler too, so a session follows each report at once: a
                # change made just then would ride that one)
                time.sleep(rng.uniform(interval, 2 * interval + demo.network.SYNC["SYNC_JITTER"]))
                before = city_count(city)
                out = subprocess.run(
                    [SIJI, "--dir", str(root / VILLAGE), "--json", "case", "add", "--as",
                     "liaison", "--category", "低保", "--summary", f"测试时效 {i}",
                     "--petitioner", f"张三,{sample.id_number(rng)},{sample.phone(rng)}"],
                    capture_output=True, text=True,
                    env=env, check=True)
                start = time.perf_counter()
                case_id = json.loads(out.stdout)["id"]
                while city_count(city) <= before:
                    if time.perf_counter() - start > 10 * interval:
                        raise SystemExit(f"{case_id}: not in the city's figures after "
                                         f"{10 * interval} s")
                    time.sleep(0.05)
                delays.append(time.perf_counter() - start)
                print(f"{case_id}: in the city's figures after {delays[-1]:.1f} s "
                      f"(village sync interval {interval} s + up to "
                      f"{demo.network.SYNC['SYNC_JITTER']} s jitter)")
            print(f"median {statistics.median(delays):.1f} s, max {max(delays):.1f} s over "
                  f"{len(delays)} trials")
            city.close()
        finally:
            if run.proc.poll() is None:
                run.stop(signal.SIGINT)


if __name__ == "__main__":
    main()
