"""Instructions an event on each side of one hop, counted by valgrind: repeatable when noisy.

Run: .venv/bin/python bench/bench_instructions.py [--events 2000]

The time figures of bench_sync.py move by half from one minute to the next on
a shared machine; instruction counts do not (the same code gives the same
count within 0.1%, whatever else the machine is doing). So a change on the
hot path is judged here first, and timed in bench_sync.py after.

It prepares a village with ``--events`` events (the petitions of
bench_sync.py) and its town, and then counts, under ``valgrind
--tool=callgrind``, two runs of each side: one that handles the first 2
bundles and one that handles them all. The difference divided by the events
in between is the cost of an event in the steady state, without start-up:

* parent: open, check and apply the sealed bundles, keeping each one's digest
  (``session.serve_push``, as `siji serve` does for each POST of a whole
  bundle; the signature helper is another process and is not counted);
* child: number the events for the link, read them and seal them with the
  claim of their first piece (``parts.Outgoing.seal``), as a push session
  does before it sends.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import random
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench_apply import sealed_bundles
from pair import add_events

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import Clock, NodeFactory  # noqa: E402

from node import core, store, verifier  # noqa: E402
from node.sync import outbox, parts, session  # noqa: E402

START = datetime(2026, 11, 23, 2, tzinfo=UTC)
FIRST = 2  # bundles handled by the shorter run: start-up and warm-up cancel out


def prepare(base: Path, n: int) -> int:
    """The village (before numbering), the town, and the sealed bundles, under ``base``."""
    make = NodeFactory(base / "made", Clock(START))
    town = make("town", "zhen")
    village = make("village", "cun", parent=town)
    add_events(village, n, random.Random(7))
    shutil.copytree(base / "made" / "cun", base / "cun")
    bundles, _ = sealed_bundles(village, town)
    make.close()
    shutil.copytree(base / "made" / "zhen", base / "zhen")
    (base / "bundles.pickle").write_bytes(pickle.dumps(bundles))
    return len(bundles)


def parent(base: Path, k: int) -> None:
    town = core.open_node(base / "zhen", clock=Clock(START))
    verifier.start()
    gc.collect()
    gc.freeze()  # as `siji serve` does after start-up
    for bundle in pickle.loads((base / "bundles.pickle").read_bytes())[:k]:
        session.serve_push(town, bundle, kept=True)
    town.close()


def child(base: Path, k: int, batch: int = 200) -> None:
    village = core.open_node(base / "cun", clock=Clock(START))
    with store.write(village.db):
        outbox.ensure_link(village.db, "zhen")
    key = outbox.encryption_key(village, "zhen")
    gc.collect()
    gc.freeze()
    after = None
    for _ in range(k):  # what session.push does before each send, in one thread
        first, evs = session.next_run(village, "zhen", batch, after)
        parts.Outgoing.seal(evs, sender=village.id, recipient="zhen", first=first,
                            sender_key=village.signer, recipient_key=key)
        after = first + len(evs) - 1
    village.close()


def count(base: Path, side: str, k: int) -> int:
    """Instructions of one run of ``side`` handling ``k`` bundles, on a fresh copy."""
    run = base / f"run_{side}_{k}"
    shutil.copytree(base, run, ignore=shutil.ignore_patterns("made", "run_*"))
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                           sys.executable, __file__, "--worker", side, str(run), str(k)],
                          capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--worker", nargs=3, metavar=("SIDE", "DIR", "BUNDLES"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        side, base, k = args.worker
        {"parent": parent, "child": child}[side](Path(base), int(k))
        return
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (Debian's valgrind package)")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        total = prepare(base, args.events)
        if total <= FIRST:
            sys.exit(f"--events must make more than {FIRST} bundles of 200")
        counted = args.events - FIRST * 200  # every event goes up, 200 a bundle
        for side, what in (("parent", "open, check and apply"),
                           ("child", "number, read and seal")):
            extra = count(base, side, total) - count(base, side, FIRST)
            print(f"{side}: {what}: {extra / counted:9,.0f} instructions an event "
                  f"(over {counted} events, start-up excluded)")


if __name__ == "__main__":
    main()
