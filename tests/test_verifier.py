"""Origin signatures checked in helper processes: the same verdicts as checking inline, and
still right when a helper is busy, dies, cannot start, or its answer is never asked for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from node import verifier

KEYS = [SigningKey(bytes([i]) * 32) for i in range(1, 4)]
N = verifier.INLINE * 3  # large enough to go to the helpers


def batch(n: int = N, forged: frozenset[int] = frozenset()) -> list[tuple]:
    """``n`` (key, signature, message) triples from three signers; the ``forged`` positions
    carry a signature over another message."""
    items = []
    for i in range(n):
        key = KEYS[i % len(KEYS)]
        message = f"事件 {i} ".encode() * (i % 7 + 1)
        signed = message + b"!" if i in forged else message
        items.append((key.verify_key, key.sign(signed).signature, message))
    return items


@pytest.fixture
def helpers(monkeypatch):
    """Two fresh helpers for this test (whatever the machine), stopped after it."""
    fresh: list[verifier._Helper] = []
    monkeypatch.setattr(verifier, "_HELPERS", fresh)
    monkeypatch.setattr(verifier, "helper_count", lambda: 2)
    yield fresh
    for helper in fresh:
        helper.stop()


def verdicts(items) -> list[bool]:
    with verifier.verifying(items) as wait:
        return wait()


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, N), data=st.data())
def test_helpers_give_the_verdicts_of_checking_inline(n, data):
    forged = frozenset(data.draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=5)) if n
                       else set())
    items = batch(n, forged)
    assert verdicts(items) == verifier.check(items) == [i not in forged for i in range(n)]


def test_a_large_batch_is_checked_in_a_helper_process(helpers):
    items = batch(forged=frozenset({5, N - 1}))
    assert verdicts(items) == [i not in {5, N - 1} for i in range(N)]
    assert helpers and all(h.proc is not None and h.proc.poll() is None for h in helpers)


def test_a_helper_that_dies_is_replaced_and_its_share_checked_here(helpers, monkeypatch):
    monkeypatch.setattr(verifier, "REST_SECONDS", 0)
    verdicts(batch())
    first = helpers[0].proc
    with verifier.verifying(batch(forged=frozenset({3}))) as wait:
        first.kill()
        first.wait()
        assert wait() == [i != 3 for i in range(N)]
    assert verdicts(batch(forged=frozenset({7}))) == [i != 7 for i in range(N)]
    assert helpers[0].proc is not None and helpers[0].proc.pid != first.pid


def test_an_answer_never_asked_for_does_not_leak_into_the_next_batch(helpers):
    with pytest.raises(RuntimeError), verifier.verifying(batch(forged=frozenset(range(N)))):
        raise RuntimeError("the caller failed before it asked")
    assert verdicts(batch()) == [True] * N
    assert all(not h.lock.locked() for h in helpers)


def test_a_busy_helper_is_not_waited_for(helpers):
    verdicts(batch())
    for helper in helpers:
        helper.lock.acquire()
    try:
        done = []
        worker = threading.Thread(target=lambda: done.append(verdicts(batch(
            forged=frozenset({1})))))
        worker.start()
        worker.join(timeout=30)
        assert done == [[i != 1 for i in range(N)]]
    finally:
        for helper in helpers:
            helper.lock.release()


def test_a_helper_that_cannot_start_leaves_the_checking_here(helpers, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    verifier.start()  # a server's start-up does not fail either
    assert verdicts(batch(forged=frozenset({0}))) == [i != 0 for i in range(N)]
    assert helpers and all(h.proc is None and h.resting_until > time.monotonic()
                           for h in helpers)


def test_a_helper_that_hangs_is_stopped_and_its_share_checked_here(helpers, monkeypatch):
    monkeypatch.setattr(verifier, "ANSWER_SECONDS", 0.5)
    verdicts(batch())
    stuck = [h.proc for h in helpers]
    for proc in stuck:
        os.kill(proc.pid, signal.SIGSTOP)  # a helper swapped out, or wedged
    assert verdicts(batch(forged=frozenset({2}))) == [i != 2 for i in range(N)]
    assert all(proc.poll() is not None for proc in stuck)  # killed, not left behind
    assert all(h.proc is None and not h.lock.locked() for h in helpers)


def test_a_package_planted_where_the_server_runs_is_not_imported(helpers, monkeypatch,
                                                                   tmp_path):
    """A stand-in for libsodium that accepts everything, in the working directory and on
    PYTHONPATH: the helpers must not load it."""
    fake = tmp_path / "nacl"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "exceptions.py").write_text("class BadSignatureError(Exception):\n    pass\n")
    (fake / "signing.py").write_text("class VerifyKey:\n    def __init__(self, raw):\n"
                                     "        pass\n    def verify(self, m, s):\n"
                                     "        return m\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    assert verdicts(batch(forged=frozenset(range(N)))) == [False] * N
    assert all(h.proc is not None for h in helpers)


def test_a_signature_of_another_length_never_verifies(helpers):
    items = batch()
    key, sig, message = items[4]
    items[4] = (key, sig + b"junk", message)  # the right 64 bytes, and more
    assert verdicts(items) == [i != 4 for i in range(N)]


@pytest.mark.parametrize(("cpus", "expected"), [(1, 0), (2, 1), (3, 2), (64, 2)])
def test_helpers_leave_a_cpu_to_the_applying_thread(monkeypatch, cpus, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert verifier.helper_count() == expected


def test_a_helper_exits_when_its_caller_goes_away():
    proc = subprocess.Popen(verifier.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc.stdin.close()  # what the kernel does when the caller dies
    assert proc.wait(timeout=30) == 0
    assert proc.stdout.read() == b""


def test_a_truncated_request_gets_no_answer():
    """A caller that dies mid-request: the helper exits instead of answering garbage."""
    proc = subprocess.Popen(verifier.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out, _ = proc.communicate(b"\x00\x00\x01\x00" + b"\x00\x00\x00\x05", timeout=30)
    assert (out, proc.returncode) == (b"", 0)


@pytest.mark.skipif(not hasattr(verifier.fcntl, "F_GETPIPE_SZ"), reason="Linux pipes only")
def test_a_batch_fits_in_the_pipe_so_the_sender_does_not_wait(helpers):
    verdicts(batch())
    fd = helpers[0].proc.stdin.fileno()
    assert verifier.fcntl.fcntl(fd, verifier.fcntl.F_GETPIPE_SZ) >= 1 << 20


def test_starting_the_helpers_returns_at_once_and_leaves_them_free(helpers):
    """A server starts its helpers in a thread at startup; the first bundle must find them
    started and free, not held by the start (then its signatures would be checked inline)."""
    starter = threading.Thread(target=verifier.start)
    starter.start()
    starter.join(timeout=10)
    assert not starter.is_alive()
    assert all(h.proc is not None and h.proc.poll() is None and not h.lock.locked()
               for h in helpers)
