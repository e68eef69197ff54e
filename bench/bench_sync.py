"""One hop over HTTP on loopback: a child pushes to a parent served by `siji serve`.

Run: .venv/bin/python bench/bench_sync.py [--events 5000] [--history 0] [--runs 1]

Prints: events per second for a full push session (seal, HTTP, open,
verify, apply, acknowledge), bytes on the wire per event (request and
response lines, headers and bodies, counted from what requests sent and
received), the mean event size, and one core's raw
Ed25519 verification rate beside them. With --history N the parent and
child first hold N older events, to show a session's cost follows what is
new, not what is stored.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pair import add_events, pair

from node import events, log
from node.sync import session
from node.sync.http import HttpTransport


class CountingSession(requests.Session):
    """requests.Session that adds up what each exchange puts on the wire."""

    wire = 0

    def post(self, url, **kwargs):
        response = super().post(url, **kwargs)
        req = response.request
        sent = len(f"{req.method} {req.path_url} HTTP/1.1\r\n") + sum(
            len(k) + len(v) + 4 for k, v in req.headers.items()) + 2 + len(req.body or b"")
        head = len(f"HTTP/1.1 {response.status_code} {response.reason}\r\n") + sum(
            len(k) + len(v) + 4 for k, v in response.headers.items()) + 2
        body = int(response.headers.get("Content-Length", 0))
        self.wire += sent + head + body
        return response


def raw_verify_rate() -> float:
    """One core's Ed25519 verification rate for a 1 KB message (cryptography, OpenSSL)."""
    key = Ed25519PrivateKey.generate()
    sig, pub = key.sign(b"x" * 1024), key.public_key()
    start = time.perf_counter()
    for _ in range(3000):
        pub.verify(sig, b"x" * 1024)
    return 3000 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--history", type=int, default=0)
    parser.add_argument("--runs", type=int, default=1,
                        help="push sessions of --events new events each, one after another "
                             "(the machine's speed varies; each run prints its own figures)")
    args = parser.parse_args()
    rng = random.Random(7)
    rates = []
    with tempfile.TemporaryDirectory() as tmp, pair(Path(tmp)) as (node, url, _):
        if args.history:
            add_events(node, args.history, rng)
            session.run(node, HttpTransport(url))
        for run in range(1, args.runs + 1):
            add_events(node, args.events, rng)
            new = node.db.conn.execute("SELECT seq FROM events WHERE origin = 'cun' "
                                       "ORDER BY seq DESC LIMIT 500").fetchall()
            size = sum(len(events.to_json(log.get_event(node.db, f"cun:{s}")).encode())
                       for (s,) in new) / len(new)
            verify_rate = raw_verify_rate()  # just before, to show how busy the machine is
            counter = CountingSession()
            start = time.perf_counter()
            summary = session.run(node, HttpTransport(url, http=counter))
            elapsed = time.perf_counter() - start
            rates.append(summary.sent / elapsed)
            held = args.history + (run - 1) * args.events
            print(f"run {run}: {held} events already synced; new: {summary.sent} events "
                  f"in {summary.bundles_out} bundles")
            print(f"push session over HTTP on loopback: {summary.sent / elapsed:8.0f} events/s "
                  f"({elapsed:.2f} s)")
            print(f"mean event (canonical JSON):        {size:8.0f} bytes")
            print(f"on the wire per event:              {counter.wire / summary.sent:8.0f} "
                  "bytes (all protocol overhead included)")
            print(f"raw Ed25519 verify, one core:       {verify_rate:8.0f} per s")
    print_spread("push sessions", rates)


def print_spread(what: str, rates: list[float]) -> None:
    """The median and range of several runs' events per second (nothing for one run)."""
    if len(rates) > 1:
        print(f"{what}: median {statistics.median(rates):.0f} events/s, "
              f"range {min(rates):.0f}-{max(rates):.0f} over {len(rates)} runs")


if __name__ == "__main__":
    main()
