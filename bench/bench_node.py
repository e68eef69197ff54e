"""Single-node figures: local append, remote receive (verify + apply), rebuild.

Run: .venv/bin/python bench/bench_node.py [--cases 500] [--notes 4]
Prints events per second for each step and one core's raw Ed25519
verification rate beside them. Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import LIAISON, Clock, NodeFactory, case_fields, pin  # noqa: E402

from node import cases, log, store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--notes", type=int, default=4, help="notes per case")
    args = parser.parse_args()
    from datetime import UTC, datetime
    with tempfile.TemporaryDirectory() as tmp:
        make = NodeFactory(Path(tmp), Clock(datetime(2026, 11, 23, 2, tzinfo=UTC)))
        town = make("town", "zhen")
        village = make("village", "cun", parent=town)
        pin(town, village)

        start = time.perf_counter()
        for i in range(args.cases):
            with store.write(village.db):
                fields = case_fields(summary=f"第{i}件 " + "情况" * 400)
                ev = cases.register(village, LIAISON, fields)
                for j in range(args.notes):
                    cases.act(village, LIAISON, ev.subject, "note", {"text": f"备注{j} " * 50})
        appended = args.cases * (1 + args.notes)
        t_append = time.perf_counter() - start

        all_events = [log.get_event(village.db, f"cun:{s}") for s in range(1, appended + 1)]
        size = sum(len(e.body.get("summary", "") or e.body.get("text", "")) * 3
                   for e in all_events) / appended
        start = time.perf_counter()
        for k in range(0, appended, 100):
            with store.write(town.db):
                for ev in all_events[k:k + 100]:
                    log.receive(town, ev)
        t_receive = time.perf_counter() - start

        start = time.perf_counter()
        with store.write(town.db):
            log.rebuild_from_scratch(town)
        t_rebuild = time.perf_counter() - start

        key = Ed25519PrivateKey.generate()
        msg, sig = b"x" * 1024, None
        sig = key.sign(msg)
        pub = key.public_key()
        n, start = 5000, time.perf_counter()
        for _ in range(n):
            pub.verify(sig, msg)
        verify_rate = n / (time.perf_counter() - start)
        make.close()

    print(f"events: {appended} ({args.cases} cases x {1 + args.notes} events, "
          f"~{size / 1024:.1f} KB of text each)")
    print(f"local append (validate, sign, store, refold): {appended / t_append:8.0f} events/s")
    print(f"remote receive (verify, check, store, refold): {appended / t_receive:8.0f} events/s")
    print(f"rebuild (refold every case):                   {appended / t_rebuild:8.0f} events/s")
    print(f"raw Ed25519 verify, one core, 1 KB message:    {verify_rate:8.0f} per s")


if __name__ == "__main__":
    main()
