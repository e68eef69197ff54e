"""`siji demo` as a user runs it: fifteen real `siji serve` processes on 127.0.0.1.

One test walks the whole life of a demo network (start, sync, stop, resume,
start over), because each start costs 15 processes on a 2-core machine; the
errors are checked in-process through ``cli.main``, where nothing starts.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests
from test_serve import SIJI

from node import cli, demo

pytestmark = pytest.mark.slow

WAIT = 180  # seconds; an upper bound so that a broken demo fails instead of hanging
VILLAGES = [p for p in demo.NETWORK if p.tier == "village"]
CHILDREN = [p for p in demo.NETWORK if p.parent]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base() -> int:
    """15 free ports in a row, below the ephemeral range other tests' free ports come from."""
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20000, 32000)
        if all(port_free(base + i) for i in range(len(demo.NETWORK))):
            return base
    pytest.skip("no 15 free ports in a row")


def node_pids(root: Path) -> set[int]:
    """Live `siji serve` processes of this demo, found by their command line (orphans too)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and any(a.startswith(str(root).encode()) for a in argv):
            found.add(int(proc.name))
    return found


def until(check, what: str):
    deadline = time.monotonic() + WAIT
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {WAIT} s: {what}")
        time.sleep(0.3)


def query(root: Path, place, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(f"file:{root / place.id / 'siji.db'}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


class Demo:
    """`siji --lang en demo ...` as a process, its output in files."""

    runs = 0

    def __init__(self, root: Path, *args):
        Demo.runs += 1
        self.out = root.parent / f"demo-{Demo.runs}.out"
        self.err = root.parent / f"demo-{Demo.runs}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIJI_")}
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([SIJI, "--lang", "en", "demo", "--dir", str(root),
                                          *map(str, args)], stdout=out, stderr=err, env=env)

    @property
    def stdout(self) -> str:
        return self.out.read_text("utf-8")

    @property
    def stderr(self) -> str:
        return self.err.read_text("utf-8")

    def ready(self) -> str:
        def done():
            if self.proc.poll() is not None:
                pytest.fail(f"siji demo ended ({self.proc.returncode}): {self.stderr}")
            return "Ctrl-C stops every node" in self.stdout
        until(done, "siji demo prints its table")
        return self.stdout

    def stop(self, signum) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=WAIT)


def identities(root: Path) -> dict[str, bytes]:
    return {p.id: query(root, p, "SELECT sign_pub FROM nodes WHERE node_id = ?", p.id)[0][0]
            for p in demo.NETWORK}


def cases_of(root: Path, place) -> set[tuple[str, str]]:
    """(number, query code) of the cases ``place`` registered: numbers repeat, codes do not."""
    return set(query(root, place, "SELECT id, query_code FROM cases WHERE origin_node = ?",
                     place.id))


def all_gone(pids: set[int]) -> bool:
    return not any(Path(f"/proc/{pid}/cmdline").exists() and
                   Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids)


def test_demo_network_runs_syncs_stops_resumes_and_starts_over(tmp_path):
    root, base = tmp_path / "demo", free_base()
    first = Demo(root, "--base-port", base)
    table = first.ready()
    assert "refused" not in first.stderr and "Making a demo network of 15 nodes" in first.stderr
    assert "password is siji-demo" in table
    for place in demo.NETWORK:  # a row per node with its address and logins
        row = next(line for line in table.splitlines() if place.name in line)
        assert demo.url(base, place) + "/" in row and "admin" in row
        health = requests.get(demo.url(base, place) + "/healthz", timeout=10).json()
        assert health == {"node": place.id, "tier": place.tier, "ok": True}
    assert all(("liaison" in line) == ("village" in line) for line in table.splitlines()
               if "http://" in line)

    # enrolled: the parent pinned the child under itself, and the child synced with it
    for place in CHILDREN:
        parent = demo.NETWORK[demo.INDEX[place.parent]]
        assert query(root, parent, "SELECT parent_id, status FROM nodes WHERE node_id = ?",
                     place.id) == [(parent.id, "active")]
    until(lambda: all(query(root, p, "SELECT last_success FROM links WHERE peer = ? AND "
                               "last_success IS NOT NULL", p.parent) for p in CHILDREN),
          "every child has synced with its parent")

    # sample data at every node, in many states; what crosses a tier goes by sync
    for village in VILLAGES:
        assert len(cases_of(root, village)) >= 3
        assert query(root, village, "SELECT count(*) FROM warnings")[0][0] >= 1
        assert query(root, village, "SELECT count(*) FROM users WHERE role = 'liaison'") == [(1,)]
    town = demo.NETWORK[demo.INDEX["donghe"]]
    states = {r[0] for r in query(root, town, "SELECT state FROM cases WHERE origin_node = ?",
                                  town.id)}
    assert {"registered", "accepted", "in_progress", "replied", "concluded", "not_accepted",
            "referred_out"} <= states
    for area in (p for p in demo.NETWORK if p.tier == "area"):
        until(lambda area=area: query(root, area, "SELECT 1 FROM cases WHERE holder = ? AND "
                                      "origin_node IN (SELECT node_id FROM nodes WHERE "
                                      "parent_id = ?)", area.id, area.id),
              f"a case escalated by a village reaches {area.id}")

    # a second demo in the same directory is refused while this one runs
    second_try = subprocess.run([SIJI, "--lang", "en", "demo", "--dir", str(root)],
                                capture_output=True, text=True, timeout=60)
    assert second_try.returncode == 1 and "already running" in second_try.stderr
    assert len(second_try.stderr.strip().splitlines()) == 1

    # Ctrl-C stops all 15 processes
    keys, dongshan = identities(root), cases_of(root, VILLAGES[0])
    pids = node_pids(root)
    assert len(pids) == 15
    assert first.stop(signal.SIGINT) == 0
    assert all_gone(pids) and not node_pids(root)
    assert "Stopping 15 node processes" in first.stderr

    # run again: the same network resumes, on the ports of last time; SIGTERM stops it
    again = Demo(root)
    assert demo.url(base, demo.NETWORK[0]) in again.ready()
    assert "Resuming the demo network" in again.stderr
    assert identities(root) == keys and dongshan <= cases_of(root, VILLAGES[0])
    assert query(root, VILLAGES[0], "SELECT count(*) FROM users")[0][0] == 2
    pids = node_pids(root)
    assert len(pids) == 15
    assert again.stop(signal.SIGTERM) == 0
    assert all_gone(pids) and not node_pids(root)

    # --fresh starts over: new keys, new cases; even a killed demo leaves no node behind
    fresh = Demo(root, "--fresh")
    fresh.ready()
    assert "Making a demo network" in fresh.stderr
    new_keys = identities(root)
    assert all(new_keys[k] != keys[k] for k in keys)
    assert not dongshan & cases_of(root, VILLAGES[0])
    pids = node_pids(root)
    assert len(pids) == 15
    fresh.proc.kill()
    fresh.proc.wait(timeout=WAIT)
    until(lambda: all_gone(pids), "the node processes of a killed demo end")


def test_ctrl_c_while_the_network_is_being_made_leaves_nothing_running(tmp_path):
    root = tmp_path / "demo"
    starting = Demo(root, "--base-port", free_base())
    pids = until(lambda: node_pids(root), "the first node process starts")
    assert starting.stop(signal.SIGINT) == 0
    assert all_gone(pids) and not node_pids(root)
    assert "Traceback" not in starting.stderr


# -- errors: one line, nothing started ----------------------------------------------

def siji(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli.main(["--lang", "en", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("args, code, words", [
    (("--base-port", "80"), 2, "--base-port"),
    (("--base-port", "65530"), 2, "--base-port"),
    (("--base-port", "eight"), 2, "--base-port"),
    (("--fresh", "yes"), 2, "unexpected extra argument"),
    (("--frsh",), 2, "No such option"),
])
def test_bad_arguments_are_usage_errors_in_one_line(capsys, tmp_path, args, code, words):
    rc, out, err = siji(capsys, "demo", "--dir", tmp_path / "demo", *args)
    assert rc == code and words in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not (tmp_path / "demo").exists()


def test_a_taken_port_is_refused_and_nothing_starts(capsys, tmp_path):
    base = free_base()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 3))
        taken.listen()
        rc, out, err = siji(capsys, "demo", "--dir", tmp_path / "demo", "--base-port", base)
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert f"port {base + 3} is taken" in err and "--base-port" in err
    assert not list((tmp_path / "demo").glob("*/siji.toml")) and not node_pids(tmp_path)


def test_a_directory_that_is_not_a_demo_is_left_alone(capsys, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for extra in ((), ("--fresh",)):
        rc, out, err = siji(capsys, "demo", "--dir", mine, "--base-port", free_base(), *extra)
        assert rc == 1 and "something other than a siji demo" in err
        assert len(err.strip().splitlines()) == 1
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("")
    rc, out, err = siji(capsys, "demo", "--dir", tmp_path / "file")
    assert rc in (1, 2) and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_damaged_demo_is_refused_unless_fresh(capsys, tmp_path):
    root = tmp_path / "demo"
    root.mkdir()
    (root / demo.MANIFEST).write_text("{not json")
    rc, out, err = siji(capsys, "demo", "--dir", root, "--base-port", free_base())
    assert rc == 1 and "--fresh" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_table_lines_up_in_chinese_and_english(lang):
    data = demo.describe(Path("/tmp/demo"), 8000)
    lines = demo.table(data, lang).splitlines()
    assert len(lines) == 1 + len(demo.NETWORK)
    columns = {demo._width(line[:line.index("http://")]) for line in lines[1:]}
    assert len(columns) == 1  # every address starts in the same screen column
    assert "http://127.0.0.1:8014/" in lines[-1] and "双桥村" in lines[-1]
    assert ("信息员" in lines[-1]) == (lang == "zh")
