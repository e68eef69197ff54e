"""Bytes moved when 30% of transfers are cut mid-way, against a clean run.

Run: .venv/bin/python bench/bench_cuts.py [--events 3000] [--share 0.3] [--seed 1]

Identical village-town pairs (same made-up petitions, same seed) each push
the same number of events through the test suite's fault-injecting proxy
(tests/faultproxy.py): first over a clean link; then with ``--share`` of
the connections reset at a uniformly random point of what a whole session
uploads (the issue's reading: a session is one kept-alive connection, and
the one after a reset is cut as likely); then, harsher, with ``--share`` of
every single request reset at a uniformly random point of its body.
After a cut the village simply runs another session, as its scheduler
would, until nothing is left to send. Prints the bytes the proxy forwarded
both ways in each run and their ratio (issue 4 asks for at most 1.3).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import requests
from pair import add_events, pair

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from faultproxy import FaultProxy, Faults  # noqa: E402

from node.errors import NodeError  # noqa: E402
from node.sync import outbox, session  # noqa: E402
from node.sync.http import HttpTransport  # noqa: E402


def run(events: int, faults: Faults, seed: int) -> tuple[int, int, int, int]:
    """(bytes forwarded, sessions run, cuts made, bytes up) for one pair pushing ``events``."""
    with tempfile.TemporaryDirectory() as tmp, pair(Path(tmp)) as (node, url):
        add_events(node, events, random.Random(7))
        port = int(url.rsplit(":", 1)[1])
        with FaultProxy(port, faults, seed=seed, idle_timeout=2.0) as proxy:
            transport = HttpTransport(proxy.url, timeout=(2, 10))
            sessions = 0
            while True:
                sessions += 1
                try:
                    session.run(node, transport)
                except (OSError, requests.RequestException, NodeError):
                    transport = HttpTransport(proxy.url, timeout=(2, 10))
                    continue
                if outbox.backlog(node, "zhen")[0] == 0:
                    break
            proxy.settle()
            return proxy.up + proxy.down, sessions, sum(proxy.injected.values()), proxy.up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--share", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    clean, _, _, up = run(args.events, Faults(), args.seed)
    print(f"events pushed: {args.events}; clean link: {clean} bytes")
    for name, faults in (
            ("connections", Faults(drop=args.share, directions=("up",), max_bytes=up)),
            ("requests", Faults(cut_share=args.share))):
        cut, sessions, cuts, _ = run(args.events, faults, args.seed)
        print(f"{args.share:.0%} of {name:11} cut: {cut:9d} bytes, ratio {cut / clean:.2f} "
              f"({cuts} cuts, {sessions} sessions; issue 4 asks at most 1.3)")


if __name__ == "__main__":
    main()
