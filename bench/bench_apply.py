"""The parent's side of one hop alone: open and apply sealed bundles in one process.

Run: .venv/bin/python bench/bench_apply.py [--events 5000] [--runs 3]

A village's events (the same made-up petitions as bench_sync.py) are sealed
into bundles beforehand; a town then opens, verifies (in its helper
processes, node/verifier.py) and applies them with ``inbox.apply_bundle``,
as `siji serve` does for each POST, but with no HTTP and no child competing
for the cores. Prints events per second, the applying thread's CPU per
event, and one core's raw Ed25519 verification rate beside them. Each run
uses a fresh town.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench_sync import print_spread, raw_verify_rate
from pair import add_events

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import Clock, NodeFactory  # noqa: E402

from node import (  # noqa: E402
    envelope,  # noqa: E402
    store,
    verifier,
)
from node.sync import inbox, outbox  # noqa: E402


def sealed_bundles(village, town, batch: int = 200) -> tuple[list[bytes], int]:
    """Every event the village owes the town, sealed as a session would seal them."""
    with store.write(village.db):
        outbox.queue(village, town.id)
    bundles, after = [], 0
    while True:
        first, evs = outbox.pending(village, town.id, batch, after)
        if not evs:
            return bundles, after
        bundles.append(envelope.seal(evs, sender=village.id, recipient=town.id, first=first,
                                     sender_key=village.signer,
                                     recipient_key=town.enc_key.public_key()))
        after = first + len(evs) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    verifier.start()
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        make = NodeFactory(Path(tmp), Clock(datetime(2026, 11, 23, 2, tzinfo=UTC)))
        for run in range(1, args.runs + 1):
            town = make("town", f"zhen{run}")
            village = make("village", f"cun{run}", parent=town)
            add_events(village, args.events, random.Random(7))
            bundles, count = sealed_bundles(village, town)
            rate = raw_verify_rate()
            start, cpu = time.perf_counter(), time.thread_time()
            for bundle in bundles:
                inbox.apply_bundle(town, bundle)
            elapsed, cpu = time.perf_counter() - start, time.thread_time() - cpu
            rates.append(count / elapsed)
            print(f"run {run}: {count} events in {len(bundles)} bundles: "
                  f"{count / elapsed:6.0f} events/s, applying thread "
                  f"{cpu / count * 1e6:4.0f} µs CPU an event; raw Ed25519 verify, one core: "
                  f"{rate:5.0f} per s")
        make.close()
    print_spread("apply alone", rates)


if __name__ == "__main__":
    main()
