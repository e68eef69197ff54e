"""One hop over HTTP on loopback: a child pushes to a parent served by `siji serve`.

Run: .venv/bin/python bench/bench_sync.py [--events 5000] [--history 0]

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
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import LIAISON  # noqa: E402

from node import cases, core, events, log, sample, store  # noqa: E402
from node.sync import session  # noqa: E402
from node.sync.http import HttpTransport  # noqa: E402

SIJI = str(Path(sys.executable).with_name("siji"))


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def add_events(node, n: int, rng: random.Random) -> None:
    done = 0
    while done < n:
        with store.write(node.db):
            for _ in range(min(200, n - done)):
                cases.register(node, LIAISON, sample.case_fields(rng, length=150))
                done += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--history", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(7)
    env = {**os.environ, "SIJI_ADMIN_PASSWORD": "admin-pass-1", "SIJI_PASSWORD": "pass-pass-1"}
    with tempfile.TemporaryDirectory() as tmp:
        town, village, port = Path(tmp) / "zhen", Path(tmp) / "cun", free_port()
        for d, tier, nid, parent in ((town, "town", "zhen", "http://127.0.0.1:9"),
                                     (village, "village", "cun", f"http://127.0.0.1:{port}")):
            subprocess.run([SIJI, "--dir", str(d), "init", "--tier", tier, "--id", nid,
                            "--name", nid, "--parent", parent], check=True, env=env,
                           capture_output=True)
        code = subprocess.run([SIJI, "--dir", str(town), "--lang", "en", "enroll-code"],
                              check=True, env=env, capture_output=True, text=True
                              ).stdout.split()[2].rstrip(",")
        server = subprocess.Popen([SIJI, "--dir", str(town), "serve", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            subprocess.run([SIJI, "--dir", str(village), "enroll", "--code", code], check=True,
                           env=env, capture_output=True)
            subprocess.run([SIJI, "--dir", str(village), "user", "add", "liu", "--role",
                            "liaison", "--name", "liu"], check=True, env=env,
                           capture_output=True)
            node = core.open_node(village)
            if args.history:
                add_events(node, args.history, rng)
                session.run(node, HttpTransport(f"http://127.0.0.1:{port}"))
            add_events(node, args.events, rng)
            size = sum(len(events.to_json(log.get_event(node.db, f"cun:{s}")).encode())
                       for s in range(2, 2 + min(args.events, 500))) / min(args.events, 500)
            counter = CountingSession()
            transport = HttpTransport(f"http://127.0.0.1:{port}", http=counter)
            start = time.perf_counter()
            summary = session.run(node, transport)
            elapsed = time.perf_counter() - start
            node.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    key = Ed25519PrivateKey.generate()
    sig, pub = key.sign(b"x" * 1024), key.public_key()
    start = time.perf_counter()
    for _ in range(5000):
        pub.verify(sig, b"x" * 1024)
    verify_rate = 5000 / (time.perf_counter() - start)
    print(f"history: {args.history} events already synced; new: {summary.sent} events "
          f"in {summary.bundles_out} bundles")
    print(f"push session over HTTP on loopback: {summary.sent / elapsed:8.0f} events/s "
          f"({elapsed:.2f} s)")
    print(f"mean event (canonical JSON):        {size:8.0f} bytes")
    print(f"on the wire per event:              {counter.wire / summary.sent:8.0f} bytes "
          "(all protocol overhead included)")
    print(f"raw Ed25519 verify, one core:       {verify_rate:8.0f} per s")


if __name__ == "__main__":
    main()
