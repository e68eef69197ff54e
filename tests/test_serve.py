"""`siji` as a user runs it: real processes, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

SIJI = str(Path(sys.executable).with_name("siji"))


def run(*args, env=None, check=True):
    result = subprocess.run([SIJI, *args], capture_output=True, text=True, timeout=60,
                            env={**os.environ, **(env or {})})
    if check:
        assert result.returncode == 0, result.stderr
    return result


_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on, below the kernel's ephemeral range (32768 and up).

    A port the kernel hands out for ``bind(0)`` is free only until it is
    released; another test worker, or a client connection, may take it before
    the server binds. Ports below the ephemeral range are never given to
    client connections, each process starts at its own random point and never
    hands out a port twice, so two workers (or two runs) meet only by a rare
    chance, which start_server then reports instead of talking to the wrong node.
    """
    start = random.randrange(20000, 32000)
    for offset in range(12000):
        port = 20000 + (start - 20000 + offset) % 12000
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port between 20000 and 32000")


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port`` (Linux)."""
    wanted = f"0100007F:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) in inodes:
                return True
        except OSError:
            continue
    return False


def start_server(node_dir, port: int, env=None) -> subprocess.Popen:
    """`siji serve` as a real process, returned once it answers (at most 60 s: a loaded
    machine starts it slowly).

    The answer must come from this process: a port taken meanwhile by another
    test's node fails here, not later as a puzzling refusal."""
    proc = subprocess.Popen([SIJI, "--dir", str(node_dir), "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    for _ in range(600):
        try:
            answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        except requests.ConnectionError:
            if proc.poll() is not None:
                pytest.fail(proc.stderr.read())
            time.sleep(0.1)
            continue
        if answer.ok and _listens(proc.pid, port):
            return proc
        proc.kill()
        pytest.fail(f"port {port} answered for another node: {answer.text[:200]}")
    proc.kill()
    pytest.fail("siji serve did not start listening within 60 s")


@pytest.fixture
def served(tmp_path):
    node = tmp_path / "dongshan"
    env = {"SIJI_ADMIN_PASSWORD": "admin-pass-1", "SIJI_PASSWORD": "liu-pass-1"}
    run("--dir", str(node), "init", "--tier", "village", "--id", "dongshan", "--name", "东山村",
        "--parent", "http://127.0.0.1:9", "--parent-id", "qingshui", env=env)
    run("--dir", str(node), "user", "add", "liu", "--role", "liaison", "--name", "刘", env=env)
    added = run("--dir", str(node), "--json", "case", "add", "--as", "liu", "--category", "低保",
                "--summary", "<script>alert(1)</script>低保金未发放",
                "--petitioner", "张三,11010519491231002X,13800138000")
    port = free_port()
    proc = start_server(node, port)
    base = f"http://127.0.0.1:{port}"
    yield base, added.stdout, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def logged_in(base: str) -> requests.Session:
    http = requests.Session()
    r = http.post(base + "/api/login", json={"username": "liu", "password": "liu-pass-1"},
                  timeout=5)
    assert r.status_code == 200, r.text
    return http


def test_serve_lists_cases_without_personal_data(served):
    base, added, _ = served
    assert "C-dongshan-" in added
    health = requests.get(base + "/healthz", timeout=5).json()
    assert health == {"node": "dongshan", "tier": "village", "ok": True}
    assert "/login" in requests.get(base + "/mine", timeout=5).url  # nothing without a login
    http = logged_in(base)
    page = http.get(base + "/mine", timeout=5)
    assert page.status_code == 200 and "C-dongshan-2026-0001" in page.text
    assert "低保" in page.text and "已登记" in page.text
    assert "张三" not in page.text and "13800138000" not in page.text
    english = http.get(base + "/mine?lang=en", timeout=5).text
    assert "Registered" in english


def test_api_errors_have_one_shape(served):
    base, _, _ = served
    assert requests.get(base + "/api/cases", timeout=5).status_code == 401
    http = logged_in(base)
    listing = http.get(base + "/api/cases", timeout=5).json()
    assert [c["id"] for c in listing["cases"]] == ["C-dongshan-2026-0001"]
    bad = http.get(base + "/api/cases?state=nope", timeout=5)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"
    assert "Traceback" not in bad.text
    missing = http.get(base + "/api/nothing", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_sigterm_stops_the_server(served):
    base, _, proc = served
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(base + "/healthz", timeout=1)


def test_serve_refuses_a_broken_node_in_one_line(tmp_path):
    result = run("--dir", str(tmp_path / "nothing"), "serve", check=False)
    assert result.returncode == 1
    assert "siji init" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
