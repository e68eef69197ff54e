"""`siji rebuild` on a large node: how long it holds the write lock, and how long a small
write made meanwhile waits (issue 19, item 7).

Run: .venv/bin/python bench/bench_rebuild.py [--events 200000] [--keep DIR]

Makes a village with about ``--events`` events through the domain commands (made-up
petitions, node/demo/sample.py: each registered, noted three times, every third settled on
the spot; a warning raised and handled for every 20 cases), in transactions of about 200
events. ``--keep DIR`` keeps the node there and uses it again next time (making 200,000
events takes a few minutes). Then, for each way to rebuild:

- ``at once``: ``log.rebuild_from_scratch`` in one write transaction (`siji rebuild
  --offline`, and what `siji rebuild` did before);
- ``batched``: ``log.rebuild`` (`siji rebuild`), short transactions;

it prints the whole time, the number of write transactions, the longest one (the write
lock held; for ``at once`` the whole time) and, from a second process that writes a note on
a case every 50 ms meanwhile (as a page's write does, through the same commands, with a
busy timeout long enough never to give up), how long those writes waited: the median and
the longest. Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import LIAISON, Clock, NodeFactory  # noqa: E402

from node import cases, core, log, netkeys, store, warnings  # noqa: E402
from node.demo import sample  # noqa: E402

NOW = datetime(2026, 11, 23, 2, tzinfo=UTC)
ORIGINAL = store.write


def make_node(base: Path, n: int) -> Path:
    """A village with about ``n`` events; returns its directory."""
    # The village holds no network key (no key file, no netkey.issued event), so it writes
    # no digests; but finding that out reads every event's type (netkeys.held: no index),
    # twice a registration, which would make 200,000 events take an hour.
    netkeys.held = lambda node: {}
    if (base / "cun" / "siji.db").exists():  # made before, with fewer events: go on
        node = core.open_node(base / "cun", clock=Clock(NOW))
    else:
        node = NodeFactory(base, Clock(NOW))("village", "cun")
    made = node.db.conn.execute("SELECT count(*) FROM events").fetchone()[0]
    rng, i = random.Random(19 + made), made
    start = time.perf_counter()
    while made < n:
        with store.write(node.db):
            for _ in range(40):
                case_id = cases.register(node, LIAISON, sample.case_fields(rng)).subject
                for j in range(3):
                    cases.act(node, LIAISON, case_id, "note", {"text": f"已回访第{j + 1}次，"
                                                                       "当事人情绪稳定"})
                made += 4
                if i % 3 == 0:
                    cases.act(node, LIAISON, case_id, "settle", {"reply": "已当场解释政策"})
                    made += 1
                if i % 20 == 0:
                    w = warnings.raise_warning(node, LIAISON, sample.warning_fields(
                        rng, today=NOW.date()))
                    warnings.act(node, LIAISON, w.subject, "handle",
                                 {"measures": sample.warning_measures(rng)})
                    made += 2
                i += 1
        if made // 20_000 != (made - 200) // 20_000:
            print(f"  made {made} events ({time.perf_counter() - start:.0f} s)", flush=True)
    node.close()
    return base / "cun"


def writer(node_dir: str, case_id: str, stop, out) -> None:
    """Write a note on a case every 50 ms until ``stop`` is set; put the waits on ``out``."""
    node = core.open_node(node_dir)
    node.db.conn.execute("PRAGMA busy_timeout = 600000")  # measure the wait, never give up
    waits = []
    while not stop.is_set():
        start = time.perf_counter()
        with store.write(node.db):
            cases.act(node, LIAISON, case_id, "note", {"text": "并发写入"})
        waits.append(time.perf_counter() - start)
        time.sleep(0.05)
    node.close()
    out.put(waits)


def timed_writes(held: list[float]):
    """``store.write`` as it is, noting how long each outermost transaction lasts (from
    BEGIN IMMEDIATE, once the lock is taken, to COMMIT)."""
    original = store.write

    @contextlib.contextmanager
    def write(db):
        outer = not db.conn.in_transaction
        with original(db) as inner:
            start = time.perf_counter()
            try:
                yield inner
            finally:
                if outer:
                    held.append(time.perf_counter() - start)
    return write


def measure(node_dir: Path, how: str) -> None:
    node = core.open_node(node_dir)
    case_id = node.db.conn.execute("SELECT id FROM cases ORDER BY id LIMIT 1").fetchone()[0]
    events = node.db.conn.execute("SELECT count(*) FROM events").fetchone()[0]
    stop, out = multiprocessing.Event(), multiprocessing.Queue()
    proc = multiprocessing.Process(target=writer, args=(str(node_dir), case_id, stop, out))
    proc.start()
    time.sleep(1.0)  # the writer is open and writing
    held: list[float] = []
    store.write = timed_writes(held)
    start = time.perf_counter()
    try:
        if how == "at once":
            with store.write(node.db):
                counts = log.rebuild_from_scratch(node)
        else:
            counts = log.rebuild(node)
    finally:
        elapsed = time.perf_counter() - start
        store.write = ORIGINAL
    time.sleep(0.5)
    stop.set()
    waits = out.get()
    proc.join()
    node.close()
    print(f"{how}: {events} events, {counts['cases']} cases, {counts['warnings']} warnings")
    print(f"  whole rebuild:                 {elapsed:8.2f} s")
    print(f"  write transactions:            {len(held):8d}")
    print(f"  longest write lock held:       {max(held):8.3f} s")
    print(f"  concurrent small writes:       {len(waits):8d}")
    print(f"  their wait, median:            {statistics.median(waits):8.3f} s")
    print(f"  their wait, longest:           {max(waits):8.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--keep", type=Path, help="keep the node here, and use it next time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        node_dir = base / "cun"
        if node_dir.exists() and not (node_dir / "siji.db").exists():
            shutil.rmtree(node_dir)
        base.mkdir(parents=True, exist_ok=True)
        print(f"making a village with {args.events} events ...", flush=True)
        make_node(base, args.events)
        for how in ("at once", "batched"):
            measure(node_dir, how)


if __name__ == "__main__":
    main()
