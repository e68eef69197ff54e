"""A village and its town as two real nodes for the sync benchmarks.

``with pair(tmp) as (village, url, town_dir):`` makes both with ``siji init``,
serves the town with ``siji serve`` on a free loopback port, enrolls the
village with a one-time code, and yields the village's open node, the town's
URL and its directory.
The town's process is stopped on the way out.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from node import cases, core, log, store
from node.demo import sample

SIJI = str(Path(sys.executable).with_name("siji"))
LIAISON = log.Actor("liu", "liaison")
HANDLER = log.Actor("wang", "handler")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_events(node, n: int, rng: random.Random, length: int = 300) -> None:
    """``n`` events that go up: made-up petitions (node.sample) registered and escalated to
    the parent (a case the village keeps never leaves it), 200 events a transaction. A
    registration is about 1.7 KB and its escalation 0.3 KB: 1 KB an event on average
    (``length`` 300, the characters of a petition's summary)."""
    done = 0
    while done < n:
        with store.write(node.db):
            for _ in range(min(100, (n - done) // 2)):
                case_id = cases.register(node, LIAISON, sample.case_fields(
                    rng, length=length)).subject
                cases.act(node, LIAISON, case_id, "escalate", {
                    "to": node.settings["PARENT_ID"], "reason": "村里无法解决，请求上级协调处理"})
                done += 2
            if n - done == 1:
                cases.register(node, LIAISON, sample.case_fields(rng, length=300))
                done += 1


def add_down(parent_dir: Path, child: str, n: int, rng: random.Random,
             length: int = 300) -> None:
    """About ``n`` events that go down to ``child``: cases its parent (a served node, in
    ``parent_dir``) registers, accepts and refers to it, three events each."""
    parent = core.open_node(parent_dir)
    try:
        for start in range(0, n, 300):
            with store.write(parent.db):
                for _ in range(max(1, min(300, n - start) // 3)):
                    case_id = cases.register(parent, HANDLER, sample.case_fields(
                        rng, length=length)).subject
                    cases.act(parent, HANDLER, case_id, "accept", {})
                    cases.act(parent, HANDLER, case_id, "refer", {
                        "to": child, "instruction": "请村里核实并答复", "deadline": "2099-12-31"})
    finally:
        parent.close()


def wait_up(url: str, seconds: float = 10) -> None:
    """Return once the node served at ``url`` answers /healthz; RuntimeError after
    ``seconds`` (a city of a million events takes a while to open)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/healthz", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


@contextlib.contextmanager
def network(base: Path, spec: list[tuple[str, str]], env_extra: dict | None = None,
            serve_last: bool = True, front=None):
    """A chain of real nodes, top first: ``[("shi", "city"), ("zhen", "town"), ...]``.

    Each is made with ``siji init``, enrolled under the one before it with a
    one-time code, and served by ``siji serve`` on its own port (the last one
    only if ``serve_last``: a benchmark may drive it by hand). ``front(node id,
    port)``, if given, returns the URL children use to reach that node (a
    byte-counting proxy, say). Yields
    ``{node id: (directory, url)}``; every process is stopped on the way out.
    """
    env = {**os.environ, "SIJI_ADMIN_PASSWORD": "admin-pass-1", "SIJI_PASSWORD": "pass-pass-1",
           **(env_extra or {})}

    def siji(*args):
        return subprocess.run([SIJI, *args], check=True, env=env, capture_output=True,
                              text=True)

    nodes: dict[str, tuple[Path, str]] = {}
    fronts: dict[str, str] = {}
    servers: list[subprocess.Popen] = []
    try:
        parent = None
        for node_id, tier in spec:
            d, port = base / node_id, free_port()
            url = f"http://127.0.0.1:{port}"
            parent_url = fronts[parent] if parent else "http://127.0.0.1:9"
            init = ["--dir", str(d), "init", "--tier", tier, "--id", node_id, "--name", node_id]
            siji(*init, *([] if tier == "city" else ["--parent", parent_url]))
            if parent:
                code = siji("--dir", str(nodes[parent][0]), "--lang", "en",
                            "enroll-code").stdout.split()[2].rstrip(",")
                siji("--dir", str(d), "enroll", "--code", code)
            staff = ("liaison", "liu") if tier == "village" else ("handler", "wang")
            siji("--dir", str(d), "user", "add", staff[1], "--role", staff[0], "--name", staff[1])
            nodes[node_id] = (d, url)
            fronts[node_id] = front(node_id, port) if front else url
            parent = node_id
            if node_id == spec[-1][0] and not serve_last:
                break
            servers.append(subprocess.Popen([SIJI, "--dir", str(d), "serve", "--port", str(port)],
                                            env=env, stdout=subprocess.DEVNULL,
                                            stderr=(d / "serve.log").open("ab")))
            wait_up(url)
        yield nodes
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(timeout=10)


def server_errors(node_dir: Path) -> str:
    """The tracebacks in the log of a node ``network`` served (its serve.log), if any."""
    log = node_dir / "serve.log"
    records, out = [], []
    for line in (log.read_text(errors="replace") if log.exists() else "").splitlines():
        if line.startswith("siji:") or not records:
            records.append([])
        records[-1].append(line)
    for record in records:
        if any(line.startswith("Traceback") for line in record):
            out += record
    return "\n".join(out)


@contextlib.contextmanager
def pair(base: Path, env: dict | None = None):
    """A town and its village: yields the village's open node, the town's URL and the
    town's directory. ``env``: more environment for the town's `siji serve` (settings)."""
    with network(base, [("zhen", "town"), ("cun", "village")], env_extra=env,
                 serve_last=False) as nodes:
        node = core.open_node(nodes["cun"][0])
        try:
            yield node, nodes["zhen"][1], nodes["zhen"][0]
        finally:
            node.close()
