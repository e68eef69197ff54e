"""The demo's node processes: start each `siji serve`, wait until it answers, stop them all.

The node processes run in their own sessions, so a Ctrl-C in the terminal
reaches only the demo, which stops them in order; on Linux each also gets
SIGTERM if the demo itself dies (PR_SET_PDEATHSIG), so none is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from node.demo.network import HOST, INDEX, Place, _say
from node.errors import N_, NodeError

START_SECONDS = 60  # for every node process to answer /healthz
STOP_SECONDS = 10  # for every node process to end after SIGTERM, before SIGKILL


@dataclass
class Running:
    place: Place
    port: int
    proc: subprocess.Popen
    log: Path
    ready: bool = False
    reported: bool = False


def _siji_command() -> list[str]:
    script = Path(sys.executable).with_name("siji")
    return [str(script)] if script.exists() else [sys.executable, "-m", "node.cli"]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel send SIGTERM to this node process when the demo dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _environment() -> dict:
    """The demo's environment without SIJI_ settings, which would apply to all 15 nodes."""
    keep = ("SIJI_LANG", "SIJI_DEBUG")
    return {k: v for k, v in os.environ.items() if not k.startswith("SIJI_") or k in keep}


def start(root: Path, place: Place, base_port: int) -> Running:
    """Start `siji serve` for one node, its output going to serve.log in its directory."""
    node_dir = root / place.id
    port = base_port + INDEX[place.id]
    log_path = node_dir / "serve.log"
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
        proc = subprocess.Popen(
            [*_siji_command(), "--dir", str(node_dir), "serve", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=_environment(), start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None)  # noqa: PLW1509
    return Running(place, port, proc, log_path)


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = path.read_text("utf-8", errors="replace").strip().splitlines()
        if lines:
            return lines[-1][:200]
    return ""


def wait_ready(runs: list[Running]) -> None:
    """Wait until each node process answers /healthz as its node; refuse one that died."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        waiting = [r for r in runs if not r.ready]
        for r in waiting:
            if r.proc.poll() is not None:
                raise NodeError(N_("%(node)s did not start (exit code %(code)s): %(problem)s; "
                                   "see %(log)s"), node=r.place.name, code=r.proc.returncode,
                                problem=_last_line(r.log) or "-", log=r.log)
            with contextlib.suppress(requests.RequestException, ValueError):
                answer = requests.get(f"http://{HOST}:{r.port}/healthz", timeout=2)
                r.ready = answer.ok and answer.json().get("node") == r.place.id
        if all(r.ready for r in runs):
            return
        if time.monotonic() > deadline:
            late = next(r for r in runs if not r.ready)
            raise NodeError(N_("%(node)s did not answer within %(seconds)s seconds; see "
                               "%(log)s"), node=late.place.name, seconds=START_SECONDS,
                            log=late.log)
        time.sleep(0.2)


def stop(runs: list[Running]) -> None:
    """SIGTERM every node process, wait for each, SIGKILL any that outstays STOP_SECONDS."""
    for r in runs:
        if r.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                r.proc.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for r in runs:
        try:
            r.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            r.proc.kill()
            r.proc.wait()


def _watch(runs: list[Running], lang: str) -> None:
    """Until a signal: say once when a node process ends by itself."""
    while True:
        time.sleep(1)
        for r in runs:
            if not r.reported and r.proc.poll() is not None:
                r.reported = True
                _say(lang, N_("%(node)s stopped (exit code %(code)s); see %(log)s"),
                     node=r.place.name, code=r.proc.returncode, log=r.log)
        if all(r.reported for r in runs):
            raise NodeError(N_("every node process has stopped; see their serve.log files"))
