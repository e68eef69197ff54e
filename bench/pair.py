"""A village and its town as two real nodes for the sync benchmarks.

``with pair(tmp) as (village, url):`` makes both with ``siji init``, serves
the town with ``siji serve`` on a free loopback port, enrolls the village
with a one-time code, and yields the village's open node and the town's URL.
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

from node import cases, core, log, sample, store

SIJI = str(Path(sys.executable).with_name("siji"))
LIAISON = log.Actor("liu", "liaison")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_events(node, n: int, rng: random.Random) -> None:
    """Register ``n`` made-up petitions of about 1 KB each (node.sample), 200 per transaction."""
    done = 0
    while done < n:
        with store.write(node.db):
            for _ in range(min(200, n - done)):
                cases.register(node, LIAISON, sample.case_fields(rng, length=150))
                done += 1


@contextlib.contextmanager
def pair(base: Path):
    env = {**os.environ, "SIJI_ADMIN_PASSWORD": "admin-pass-1", "SIJI_PASSWORD": "pass-pass-1"}

    def siji(*args, **kwargs):
        return subprocess.run([SIJI, *args], check=True, env=env, capture_output=True,
                              text=True, **kwargs)

    town, village, port = base / "zhen", base / "cun", free_port()
    url = f"http://127.0.0.1:{port}"
    for d, tier, nid, parent in ((town, "town", "zhen", "http://127.0.0.1:9"),
                                 (village, "village", "cun", url)):
        siji("--dir", str(d), "init", "--tier", tier, "--id", nid, "--name", nid,
             "--parent", parent)
    code = siji("--dir", str(town), "--lang", "en", "enroll-code").stdout.split()[2].rstrip(",")
    server = subprocess.Popen([SIJI, "--dir", str(town), "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                requests.get(f"{url}/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        siji("--dir", str(village), "enroll", "--code", code)
        siji("--dir", str(village), "user", "add", "liu", "--role", "liaison", "--name", "liu")
        node = core.open_node(village)
        try:
            yield node, url
        finally:
            node.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
