"""Origin signatures checked in helper processes, beside the thread that applies them.

Checking a bundle's signatures on other cores while its events are folded
and stored is what lets one hop approach the machine's Ed25519 rate. Threads
do not do it: libsodium releases the GIL while it verifies, but a thread must
take the GIL back after every signature, and while the applying thread runs
Python it gets it only at the next switch interval (5 ms). Measured here, a
pool thread checked one signature per 2 ms while the main thread ran Python,
against one per 40 µs when it was idle. A helper process has its own
interpreter, so it verifies at full speed.

A helper is this module's ``main`` in ``python -I`` (isolated: no environment
variables, user site or current directory on its path, so nothing planted where
the server runs can stand in for libsodium), talking over its stdin and stdout:

    request:  u32 size | u32 n | n times (32-byte key | 64-byte signature | u32 length | message)
    response: n bytes, 1 where the signature verifies, 0 where it does not

The helper reads a whole request before it checks anything, so the sender's
write returns at once and the sender goes on with its own work.

It holds no secret and writes nothing; it exits when its stdin closes (so
also when the process that started it dies). If a helper cannot be started,
dies or hangs, it is stopped, the signatures are checked in the calling
thread instead (slower, never wrong) and a new helper is tried a minute
later. A node with one CPU has no helpers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

try:
    import fcntl
except ImportError:  # not POSIX: pipes keep their default size
    fcntl = None

INLINE = 48  # a batch this small is checked in the calling thread: a round trip costs more
MAX_HELPERS = 2  # one applying thread folds slower than two helpers verify
ANSWER_SECONDS = 60  # a helper that takes longer is stopped (10,000 signatures take ~1 s)
REST_SECONDS = 60  # after a helper failed, how long signatures are checked inline
# The pipe to a helper holds a whole batch (Linux's default of 64 KiB made the sender
# wait, 3 ms a bundle, until the helper had read all but the last 64 KiB of it)
_PIPE_BYTES = 1 << 20
_COUNT = struct.Struct(">I")
_ITEM = struct.Struct(">32s64sI")
log = logging.getLogger(__name__)


def check(items: list[tuple[VerifyKey, bytes, bytes]]) -> list[bool]:
    """Whether each (key, signature, message) verifies, in this thread."""
    out = []
    for key, sig, message in items:
        try:
            key.verify(message, sig)
            out.append(True)
        except (BadSignatureError, ValueError, TypeError):
            out.append(False)
    return out


class _Helper:
    """One helper process; one batch in flight at a time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.resting_until = 0.0  # after a failure, check inline until then

    def send(self, items: list[tuple[VerifyKey, bytes, bytes]]) -> bool:
        """Send a batch (the caller holds ``lock``); False if the helper is not usable."""
        if time.monotonic() < self.resting_until:
            return False
        if (self.proc is None or self.proc.poll() is not None) and not self._start():
            return False
        parts = [_COUNT.pack(len(items))]
        for key, sig, message in items:
            parts += (_ITEM.pack(bytes(key), sig, len(message)), message)
        request = b"".join(parts)
        try:
            self.proc.stdin.write(_COUNT.pack(len(request)) + request)
            self.proc.stdin.flush()
        except (OSError, ValueError):
            self._failed("it stopped taking requests")
            return False
        return True

    def _start(self) -> bool:
        try:
            self.proc = subprocess.Popen(command(), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE)
        except OSError as e:
            self.proc = None
            self._failed(f"it could not be started ({e.strerror})")
            return False
        with contextlib.suppress(AttributeError, OSError):  # Linux only
            fcntl.fcntl(self.proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        return True

    def collect(self, n: int) -> list[bool] | None:
        """``receive`` the answer to the batch sent and free the helper."""
        try:
            return self.receive(n)
        finally:
            self.lock.release()

    def receive(self, n: int) -> list[bool] | None:
        """The answer to the batch sent (the caller holds ``lock``); None if the helper
        died or did not answer within ANSWER_SECONDS (then it is stopped)."""
        if n == 0:
            return []  # (an empty batch gets an empty answer: nothing to wait for)
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], ANSWER_SECONDS)
            answer = self.proc.stdout.read(n) if ready else b""
        except (OSError, ValueError):
            answer = b""
        if len(answer) != n:
            self._failed("it did not answer")
            return None
        return [b == 1 for b in answer]

    def _failed(self, why: str) -> None:
        log.warning("signature helper: %s; checking signatures in the applying thread for "
                    "%d s", why, REST_SECONDS)
        self.resting_until = time.monotonic() + REST_SECONDS
        self.stop()

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(OSError):
                    stream.close()
            self.proc = None


_HELPERS: list[_Helper] = []
_HELPERS_LOCK = threading.Lock()


def helper_count() -> int:
    """How many helpers: the CPUs this process may use, but one for the applying thread,
    and at most MAX_HELPERS (one applying thread cannot use more); none with one CPU."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(0, min(MAX_HELPERS, cpus - 1))


def _helpers() -> list[_Helper]:
    with _HELPERS_LOCK:
        if not _HELPERS:
            _HELPERS.extend(_Helper() for _ in range(helper_count()))
        return _HELPERS


def start() -> None:
    """Start the helpers now rather than on the first large batch (a server, at startup)."""
    for helper in _helpers():
        if helper.lock.acquire(blocking=False):
            try:
                helper.send([])  # starts it; an empty batch gets no answer to wait for
            finally:
                helper.lock.release()


@contextlib.contextmanager
def verifying(items: list[tuple[VerifyKey, bytes, bytes]]) -> Iterator[Callable[[], list[bool]]]:
    """Start checking (key, signature, message) triples in the helpers; yields a function
    that waits for the verdicts, in order. A helper busy with another thread's batch is
    not waited for: its share is checked in this thread when the verdicts are asked."""
    helpers = _helpers()
    if len(items) <= INLINE or not helpers or any(len(sig) != 64 for _, sig, _ in items):
        # (a signature of another length never verifies; the helper's fixed-size records
        # could not carry it as it is, so such a batch is checked here)
        verdicts = check(items)
        yield lambda: verdicts
        return
    size = -(-len(items) // len(helpers))
    shares: list[tuple[_Helper | None, list]] = []
    for i, helper in enumerate(helpers):
        share = items[i * size:(i + 1) * size]
        if share and helper.lock.acquire(blocking=False):
            if helper.send(share):
                shares.append((helper, share))
                continue
            helper.lock.release()
        if share:
            shares.append((None, share))
    done: list[bool] = []

    def verdicts() -> list[bool]:
        while shares:  # each share's answer is read once, and its helper freed
            helper, share = shares.pop(0)
            answer = helper.collect(len(share)) if helper is not None else None
            done.extend(check(share) if answer is None else answer)
        return done
    try:
        yield verdicts
    finally:
        for helper, share in shares:  # not asked for (the caller failed): read and drop
            if helper is not None:
                helper.collect(len(share))


def command() -> list[str]:
    """How a helper is started. ``-I``: it reads no environment variables, user site or
    current directory, so a package planted where the server runs cannot stand in for
    libsodium; it imports this very package, from where this process imported it."""
    package = str(Path(__file__).resolve().parents[1])
    return [sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
            "from node.verifier import main; main()", package]


def _read(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError
    return data


def main() -> None:
    """The helper's loop: read a batch, answer it, until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    keys: dict[bytes, VerifyKey] = {}
    try:
        while True:
            (size,) = _COUNT.unpack(_read(stdin, 4))
            request = memoryview(_read(stdin, size))
            (n,) = _COUNT.unpack_from(request)
            items, at = [], _COUNT.size
            for _ in range(n):
                raw, sig, length = _ITEM.unpack_from(request, at)
                at += _ITEM.size
                key = keys.get(raw) or keys.setdefault(raw, VerifyKey(raw))
                items.append((key, sig, bytes(request[at:at + length])))
                at += length
            stdout.write(bytes(check(items)))
            stdout.flush()
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return
