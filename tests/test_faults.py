"""Sync between two real node processes over a network that misbehaves.

The child (village ``cun``) reaches its parent (town ``zhen``) through
:class:`faultproxy.FaultProxy`, which drops, truncates, delays, corrupts,
duplicates and reorders what passes. Whatever happens, once a session gets
through, both stores must hold the same events, each exactly once, with
nothing left half-applied. Processes are also killed with SIGKILL mid-sync.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from conftest import case_fields, pin
from faultproxy import Cut, FaultProxy, Faults
from test_serve import SIJI, free_port

from node import cases, core, log, store

PASSWORD = "admin-pass-1"
LIAISON = log.Actor("liu", "liaison")
HANDLER = log.Actor("wang", "handler")
TRIES = 8             # faulty sync attempts before the network is made clean
IDLE = 2.0            # the proxy gives up on a silent connection after this


class Net:
    """A town (served by `siji serve`) and its village, which syncs through a proxy."""

    def __init__(self, base, proxy: FaultProxy):
        self.proxy = proxy
        self.parent, self.child = base / "zhen", base / "cun"
        town = core.init_node(self.parent, tier="town", node_id="zhen", name="青水镇",
                              parent_url="http://127.0.0.1:9", parent_id="shi",
                              admin_password=PASSWORD)
        village = core.init_node(self.child, tier="village", node_id="cun", name="东山村",
                                 parent_url=proxy.url, parent_id="zhen",
                                 admin_password=PASSWORD)
        try:
            pin(town, village)
            pin(village, town)
        finally:
            town.close()
            village.close()
        self.server: subprocess.Popen | None = None
        self.start_parent()

    # -- processes --------------------------------------------------------------------

    def start_parent(self) -> None:
        port = free_port()
        self.server = subprocess.Popen([SIJI, "--dir", str(self.parent), "serve", "--port",
                                        str(port)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        for _ in range(200):  # at most 10 s
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                assert self.server.poll() is None, "the parent's server died at start-up"
                time.sleep(0.05)
        else:
            pytest.fail("the parent's server did not start")
        self.proxy.target_port = port

    def kill_parent(self) -> None:
        self.server.send_signal(signal.SIGKILL)
        self.server.wait(timeout=10)

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=10)

    def sync_cmd(self) -> list[str]:
        return [SIJI, "--dir", str(self.child), "--lang", "en", "sync", "--attempts", "1"]

    def sync(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.sync_cmd(), capture_output=True, text=True, timeout=60)

    def sync_through(self, faults: Faults, seed: int) -> tuple[list, Counter]:
        """Sync under ``faults`` until a session succeeds (clean after TRIES), then once
        clean; returns the attempts and the faults injected."""
        self.proxy.configure(faults, seed)
        results = []
        for _ in range(TRIES):
            results.append(self.sync())
            if results[-1].returncode == 0:
                break
        assert self.proxy.settle()
        injected = self.proxy.injected + Counter(
            {f"replay {line.split(' ', 1)[-1]}": n for line, n in self.proxy.replayed.items()})
        self.proxy.configure(Faults(), seed)
        if results[-1].returncode != 0:
            results.append(self.sync())
        final = self.sync()
        assert final.returncode == 0, final.stderr
        return results, injected

    # -- the nodes' data, in-process --------------------------------------------------

    def register(self, n: int, tag: str = "") -> list[str]:
        """The village registers ``n`` cases and escalates each to the town (two events each,
        both sent up); returns their ids."""
        node = core.open_node(self.child)
        try:
            with store.write(node.db):
                ids = [cases.register(node, LIAISON, case_fields(summary=f"第{tag}{i}件")).subject
                       for i in range(n)]
                for case_id in ids:
                    cases.act(node, LIAISON, case_id, "escalate", {"to": "zhen",
                                                                   "reason": "需镇协调"})
                return ids
        finally:
            node.close()

    def refer_down(self) -> str:
        """The town registers a case, accepts it and refers it down to the village."""
        node = core.open_node(self.parent)
        try:
            with store.write(node.db):
                case_id = cases.register(node, HANDLER, case_fields(summary="镇登记")).subject
                cases.act(node, HANDLER, case_id, "accept", {})
                cases.act(node, HANDLER, case_id, "refer", {
                    "to": "cun", "instruction": "请村里核实", "deadline": "2099-12-31"})
            return case_id
        finally:
            node.close()

    def set_batch(self, batch: int) -> None:
        with sqlite3.connect(self.child / "siji.db") as db:
            db.execute("INSERT OR IGNORE INTO links (peer) VALUES ('zhen')")
            db.execute("UPDATE links SET batch = ? WHERE peer = 'zhen'", (batch,))
        db.close()

    def query(self, which: str, sql: str, *args) -> list[tuple]:
        path = (self.parent if which == "parent" else self.child) / "siji.db"
        db = sqlite3.connect(path, timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def link(self, which: str) -> dict:
        peer = "cun" if which == "parent" else "zhen"
        rows = self.query(which, "SELECT acked, applied, next_out FROM links WHERE peer = ?",
                          peer)
        return dict(zip(("acked", "applied", "next_out"), rows[0], strict=True)) if rows \
            else {"acked": 0, "applied": 0, "next_out": 1}


@pytest.fixture
def net(tmp_path):
    with FaultProxy(free_port(), idle_timeout=IDLE) as proxy:
        network = Net(tmp_path, proxy)
        try:
            yield network
        finally:
            network.stop()


def assert_consistent(net: Net) -> None:
    """What must hold at any moment, even right after a process was killed."""
    child, parent = net.link("child"), net.link("parent")
    # the child's checkpoint moves only on the parent's signed word: never past what it applied
    assert child["acked"] <= parent["applied"] <= child["next_out"] - 1
    assert parent["acked"] <= child["applied"] <= parent["next_out"] - 1
    # every link number the parent applied is one stored event from the child: no half bundles
    from_child = net.query("parent", "SELECT count(*) FROM events WHERE source = 'cun'")[0][0]
    assert from_child == parent["applied"]
    assert net.query("child", "SELECT count(*) FROM outbox WHERE peer = 'zhen' AND lseq <= ?",
                     child["acked"])[0][0] == 0


def assert_converged(net: Net) -> None:
    """After a clean session: the same events on both sides, once each, nothing pending."""
    assert_consistent(net)
    # (figures go one hop up: the town's own reports are for its parent, not the village's;
    # the village's, made before each session, reach the town once like any event)
    ids = {w: net.query(w, "SELECT origin, seq FROM events WHERE NOT (type LIKE 'figures.%' "
                           "AND origin = 'zhen')") for w in ("parent", "child")}
    for rows in ids.values():
        assert rows and max(Counter(rows).values()) == 1
    assert sorted(ids["parent"]) == sorted(ids["child"])
    for w, peer in (("parent", "cun"), ("child", "zhen")):
        assert net.query(w, "SELECT count(*) FROM inbox")[0][0] == 0, w
        # (the town's own parent, shi, is unreachable: what it queues for shi stays)
        assert net.query(w, "SELECT count(*) FROM outbox WHERE peer = ?", peer)[0][0] == 0, w
    child, parent = net.link("child"), net.link("parent")
    assert child["acked"] == parent["applied"] == child["next_out"] - 1
    assert parent["acked"] == child["applied"] == parent["next_out"] - 1
    case_rows = {w: net.query(w, "SELECT * FROM cases ORDER BY id") for w in ("parent", "child")}
    assert case_rows["parent"] == case_rows["child"]


def assert_failures_are_one_line(results) -> None:
    """A failed attempt is an ordinary, reported network or refusal error (exit 1)."""
    for r in results:
        if r.returncode != 0:
            assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
            lines = [x for x in r.stderr.splitlines() if x and ": WARNING: " not in x]
            assert len(lines) == 1, r.stderr


def waiting(net: Net) -> int:
    out = subprocess.run([SIJI, "--dir", str(net.child), "--json", "status"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["waiting"]


MODES = {
    "drop": Faults.mode("drop", 0.8, max_bytes=3000),       # per connection
    "truncate": Faults.mode("truncate", 0.8, max_bytes=3000),
    "delay": Faults.mode("delay", 0.5, max_delay=0.05),     # per chunk
    "flip": Faults.mode("flip", 0.12),
    "duplicate": Faults.mode("duplicate", 0.6),             # per exchange
    "reorder": Faults.mode("reorder", 0.6),
    "mixed": Faults(drop=0.25, truncate=0.25, delay=0.25, flip=0.05, duplicate=0.3,
                    reorder=0.3, max_bytes=6000),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_sync_converges_exactly_once_through_faults(net, mode):
    net.set_batch(10)
    referred, outcomes, injected = [], [], Counter()
    seeds = (1, 2, 3) if mode == "mixed" else (1, 2)
    for seed in seeds:
        up = net.register(25, tag=f"{mode}{seed}-")
        referred.append(net.refer_down())
        results, faults = net.sync_through(MODES[mode], seed=sum(map(ord, mode)) * 100 + seed)
        outcomes += results
        injected += faults
        assert_converged(net)
        at_child = {r[0]: r for r in net.query("child", "SELECT id, holder, state FROM cases")}
        assert set(up) <= set(at_child) and set(referred) <= set(at_child)
        assert all(at_child[c][1:] == ("cun", "accepted") for c in referred)
    # each referral reached the village exactly once: three events, one copy each
    for case_id in referred:
        rows = net.query("child", "SELECT origin, seq FROM events WHERE subject = ?", case_id)
        assert len(rows) == len(set(rows)) == 3
    # the faults did happen (a cut planned past a connection's last byte never fires)
    if mode == "mixed":
        assert len(set(injected) & set(MODES)) >= 4, injected
    else:
        assert injected[mode] >= 2, injected
    if mode in ("duplicate", "reorder"):
        assert injected["replay 200 OK"] >= 2, injected  # old bundles and acks: answered
    assert waiting(net) == 0
    assert_failures_are_one_line(outcomes)


@pytest.mark.parametrize(("path", "mode"), [("/sync/push", "drop"), ("/sync/pull", "truncate")])
def test_a_reply_cut_mid_body_is_an_ordinary_network_error(net, path, mode):
    """Losing the connection inside the parent's answer is a network failure like any other:
    recorded on the link, retried, reported in one line; the next sync repairs it."""
    net.register(3)
    net.refer_down()
    net.proxy.configure(Faults(cut=Cut(path, fraction=0.5, mode=mode, direction="down")))
    cut = net.sync()
    last_error = net.query("child", "SELECT last_error FROM links WHERE peer = 'zhen'")[0][0]
    assert net.proxy.injected["cut"] == 1
    net.proxy.configure(Faults())
    assert net.sync().returncode == 0
    assert_converged(net)
    assert cut.returncode == 1 and "cannot reach the parent" in cut.stderr, cut.stderr
    assert last_error is not None and last_error.startswith("network"), last_error


def test_a_cut_mid_bundle_costs_at_most_one_bundle(tmp_path):
    """A connection cut inside a push resends that bundle only, not what was acknowledged."""
    counts = {}
    for run_name in ("clean", "cut"):
        with FaultProxy(free_port(), idle_timeout=IDLE) as proxy:
            net = Net(tmp_path / run_name, proxy)
            try:
                net.set_batch(20)
                net.register(50)  # 100 events: five bundles
                faults = Faults(cut=Cut("/sync/push", nth=2, fraction=0.5)) \
                    if run_name == "cut" else Faults()
                proxy.configure(faults, seed=7)
                results = [net.sync()]
                while results[-1].returncode != 0 and len(results) < 3:
                    results.append(net.sync())
                assert_converged(net)
                counts[run_name] = (proxy.up, proxy.requests["/sync/push"],
                                    [size for path, size in proxy.request_sizes
                                     if path == "/sync/push"], max(proxy.head_sizes),
                                    proxy.injected["cut"], [r.returncode for r in results])
            finally:
                net.stop()
    up_clean, pushes_clean, sizes, head, cuts_clean, codes_clean = counts["clean"]
    up_cut, pushes_cut, _, _, cuts, codes_cut = counts["cut"]
    assert pushes_clean == 5 and cuts_clean == 0 and codes_clean == [0]
    assert cuts == 1 and codes_cut[0] != 0 and codes_cut[1:] == [0]
    assert pushes_cut == pushes_clean          # complete pushes: none sent twice
    bundle = max(sizes)
    assert sum(sizes) < up_clean < sum(sizes) + bundle  # five bundles and one small pull
    extra = up_cut - up_clean
    # the cut bundle's first half went for nothing; allow a few bytes of size noise per
    # bundle (random query codes and signatures compress differently)
    assert bundle // 4 < extra <= bundle + head + 16 * pushes_clean, (extra, bundle)


def _kill_during_push(net: Net, rng: random.Random, bundles: int, victim: str) -> int:
    """Start a sync, wait until its k-th push went through, sleep a little, then SIGKILL
    ``victim`` (the syncing child or the parent's server); returns the sync's exit code."""
    k = rng.randrange(bundles - 1)
    pushed = net.proxy.requests["/sync/push"]
    proc = subprocess.Popen(net.sync_cmd(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while net.proxy.requests["/sync/push"] < pushed + k and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.06))
        if victim == "child":
            proc.send_signal(signal.SIGKILL)
        else:
            net.kill_parent()
    finally:
        code = proc.wait(timeout=30)
    return code


@pytest.mark.parametrize("victim", ["child", "parent"])
def test_sigkill_mid_sync_leaves_nothing_half_applied(net, victim):
    net.set_batch(20)
    # a little delay on every chunk, so that a push of eight bundles lasts long enough for
    # the kill to land inside it (on a bare loopback it can be over before the kill)
    net.proxy.configure(Faults(delay=1.0, max_delay=0.02), seed=3)
    rng = random.Random(f"sigkill-{victim}")
    total, codes, cut_short = 0, [], []
    for _ in range(3):
        total += 2 * len(net.register(80))  # 160 events: eight bundles
        net.refer_down()
        codes.append(_kill_during_push(net, rng, bundles=8, victim=victim))
        assert_consistent(net)
        cut_short.append(net.link("parent")["applied"] < net.link("child")["next_out"] - 1)
        if victim == "parent":
            net.start_parent()
        done = net.sync()
        assert done.returncode == 0, done.stderr
        assert_converged(net)
    assert net.query("parent", "SELECT count(*) FROM events WHERE origin = 'cun'")[0][0] == total
    assert waiting(net) == 0
    # the kills landed while the backlog was being pushed, not before or after the sync
    assert any(cut_short), codes
    if victim == "child":
        assert codes == [-signal.SIGKILL] * 3
    else:
        assert any(code != 0 for code in codes), codes


def test_proxy_counts_and_stops_by_itself():
    """The proxy itself: forwards both ways, counts, ends a silent connection after
    idle_timeout and stops listening after its lifetime."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    silent.settimeout(5)

    def answer_then_stay_silent():
        conn, _ = silent.accept()
        with conn:
            conn.settimeout(5)
            conn.recv(100)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            time.sleep(1.5)

    thread = threading.Thread(target=answer_then_stay_silent, daemon=True)
    thread.start()
    with FaultProxy(silent.getsockname()[1], idle_timeout=0.5, lifetime=1.2) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
            request = b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
            c.sendall(request)
            reply = c.recv(100)
            started = time.monotonic()
            assert c.recv(100) == b""  # closed by the proxy after idle_timeout
            assert time.monotonic() - started < 1.2
        assert reply == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        assert proxy.up == len(request) and proxy.down == len(reply)
        assert proxy.requests == Counter({"/x": 1}) and proxy.connections == 1
        time.sleep(1.5)
        with pytest.raises(OSError):  # past its lifetime: nobody listens
            socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()
    thread.join(timeout=5)
    silent.close()


class _Recorder(BaseHTTPRequestHandler):
    """Answers each POST with ``got <body>`` and records the bodies in order."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append(body)
        reply = b"got " + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the request the proxy cut: expected


@pytest.fixture
def recorder():
    server = _Quiet(("127.0.0.1", 0), _Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _post_all(proxy: FaultProxy, bodies) -> list:
    out = []
    with requests.Session() as http:
        for body in bodies:
            try:
                out.append(http.post(proxy.url + "/x", data=body, timeout=5).content)
            except requests.ConnectionError:
                out.append(None)
    return out


def test_proxy_duplicates_reorders_and_cuts_as_configured(recorder):
    port = recorder.server_address[1]
    with FaultProxy(port, Faults(duplicate=1.0), seed=1, idle_timeout=1) as proxy:
        assert _post_all(proxy, [b"a", b"b"]) == [b"got a", b"got b"]
        assert proxy.settle()
        assert recorder.seen == [b"a", b"a", b"b", b"b"]   # each replayed after its exchange
        assert proxy.replayed == Counter({"HTTP/1.1 200 OK": 2})
        recorder.seen.clear()
        proxy.configure(Faults(reorder=1.0), seed=1)
        assert _post_all(proxy, [b"a", b"b", b"c"]) == [b"got a", b"got b", b"got c"]
        assert proxy.settle()
        assert recorder.seen == [b"a", b"b", b"a", b"c"]   # a held, replayed after b
        recorder.seen.clear()
        proxy.configure(Faults(cut=Cut("/x", nth=1, fraction=0.5)), seed=1)
        body = b"0123456789" * 100
        assert _post_all(proxy, [b"a", body, b"c"]) == [b"got a", None, b"got c"]
        assert recorder.seen == [b"a", b"c"] and proxy.injected == Counter({"cut": 1})
        small, head = proxy.request_sizes[0][1], proxy.head_sizes[0]
        # two whole small requests, then the cut one's head (Content-Length: 1000 is three
        # digits longer than 1) and half its body
        assert proxy.up == 2 * small + (head + 3) + 500
