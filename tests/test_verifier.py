"""Origin signatures checked in helper processes: the same verdicts as checking inline, and
still right when a helper is busy, dies, cannot start, or its answer is never asked for."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

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
    """Fresh helpers for this test, stopped after it."""
    fresh: list[verifier._Helper] = []
    monkeypatch.setattr(verifier, "_HELPERS", fresh)
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


def test_a_helper_that_dies_is_replaced_and_its_share_checked_here(helpers):
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
    assert verdicts(batch(forged=frozenset({0}))) == [i != 0 for i in range(N)]
    assert helpers and all(h.failed and h.proc is None for h in helpers)


def test_a_helper_exits_when_its_caller_goes_away():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, (str(verifier.Path(verifier.__file__).parents[1]),
                      os.environ.get("PYTHONPATH"))))}
    proc = subprocess.Popen([sys.executable, "-m", "node.verifier"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env)
    proc.stdin.close()  # what the kernel does when the caller dies
    assert proc.wait(timeout=30) == 0
    assert proc.stdout.read() == b""


def test_a_truncated_request_gets_no_answer():
    """A caller that dies mid-request: the helper exits instead of answering garbage."""
    env = {**os.environ, "PYTHONPATH": str(verifier.Path(verifier.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "node.verifier"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env)
    out, _ = proc.communicate(b"\x00\x00\x01\x00" + b"\x00\x00\x00\x05", timeout=30)
    assert (out, proc.returncode) == (b"", 0)


@pytest.mark.skipif(not hasattr(verifier.fcntl, "F_GETPIPE_SZ"), reason="Linux pipes only")
def test_a_batch_fits_in_the_pipe_so_the_sender_does_not_wait(helpers):
    verdicts(batch())
    fd = helpers[0].proc.stdin.fileno()
    assert verifier.fcntl.fcntl(fd, verifier.fcntl.F_GETPIPE_SZ) >= 1 << 20
