"""Down in seconds: real `siji serve` processes, each child holding a long-poll at its parent.

The scheduled sync is an hour apart here, so what comes down within the test
came by the long-poll (node/sync/http.py /sync/wait, jobs.Listener): a town's
acknowledgement of a village's warning, and the city's, two hops down. The
times are printed, not asserted (docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from test_browser import serve_network
from test_serve import run

pytestmark = pytest.mark.slow
SETTINGS = {"LONG_POLL": 20, "URGENT_CHECK": 1}


def _events(node_dir, type_: str, origin: str) -> int:
    with sqlite3.connect(f"file:{node_dir / 'siji.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM events WHERE type = ? AND origin = ?",
                          (type_, origin)).fetchone()[0]


def _until(check, seconds: float = 60) -> float:
    """Seconds until ``check()`` holds; fails after ``seconds``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, "it never came"
        time.sleep(0.1)
    return time.monotonic() - start


def test_acknowledgements_come_down_two_hops_without_a_scheduled_sync(tmp_path):
    with serve_network(tmp_path, **SETTINGS):
        village, town, city = tmp_path / "dongshan", tmp_path / "qingshui", tmp_path / "shi"
        raised = json.loads(run(
            "--dir", str(village), "--json", "warning", "add", "--as", "liu", "-f",
            "subject=征地补偿不到位", "-f", "place=村委会", "-f", "expected_size=80", "-f",
            "destination=beijing").stdout)
        warning_id = raised["id"]
        # up: the village's serve notices the CLI's urgent event and each hop forwards it
        _until(lambda: _events(city, "warning.raised", "dongshan") == 1)
        # down one hop: the town acknowledges (in another process: the CLI)
        run("--dir", str(town), "warning", "act", warning_id, "acknowledge", "--as", "wang")
        one_hop = _until(lambda: _events(village, "warning.acknowledged", "qingshui") == 1)
        # down two hops: the city acknowledges
        run("--dir", str(city), "warning", "act", warning_id, "acknowledge", "--as", "zhao")
        two_hops = _until(lambda: _events(village, "warning.acknowledged", "shi") == 1)
        print(f"town's acknowledgement at the village after {one_hop:.1f} s, the city's after "
              f"{two_hops:.1f} s")
        assert _events(village, "warning.acknowledged", "qingshui") == 1  # once, not twice
