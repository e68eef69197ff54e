"""Origin signatures checked in helper processes, beside the thread that applies them.

Checking a bundle's signatures on other cores while its events are folded
and stored is what lets one hop approach the machine's Ed25519 rate. Threads
do not do it: libsodium releases the GIL while it verifies, but a thread must
take the GIL back after every signature, and while the applying thread runs
Python it gets it only at the next switch interval (5 ms). Measured here, a
pool thread checked one signature per 2 ms while the main thread ran Python,
against one per 40 µs when it was idle. A helper process has its own
interpreter, so it verifies at full speed.

A helper is ``python -m node.verifier``, talking over its stdin and stdout:

    request:  u32 size | u32 n | n times (32-byte key | 64-byte signature | u32 length | message)
    response: n bytes, 1 where the signature verifies, 0 where it does not

The helper reads a whole request before it checks anything, so the sender's
write returns at once and the sender goes on with its own work.

It holds no secret and writes nothing; it exits when its stdin closes (so
also when the process that started it dies). If a helper cannot be started
or dies, the signatures are checked in the calling thread instead: slower,
never wrong.
"""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

try:
    import fcntl
except ImportError:  # not POSIX: pipes keep their default size
    fcntl = None

INLINE = 48  # a batch this small is checked in the calling thread: a round trip costs more
# The pipe to a helper holds a whole batch (Linux's default of 64 KiB made the sender
# wait, 3 ms a bundle, until the helper had read all but the last 64 KiB of it)
_PIPE_BYTES = 1 << 20
_COUNT = struct.Struct(">I")
_ITEM = struct.Struct(">32s64sI")


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
        self.failed = False  # it could not be started: do not try again in this process

    def send(self, items: list[tuple[VerifyKey, bytes, bytes]]) -> bool:
        """Send a batch (the caller holds ``lock``); False if the helper is not usable."""
        if self.failed:
            return False
        if self.proc is None or self.proc.poll() is not None:
            package = str(Path(__file__).resolve().parents[1])
            path = os.pathsep.join(filter(None, (package, os.environ.get("PYTHONPATH"))))
            try:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "node.verifier"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path})
            except OSError:
                self.failed = True
                return False
            with contextlib.suppress(AttributeError, OSError):  # Linux only
                fcntl.fcntl(self.proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        parts = [b"", _COUNT.pack(len(items))]
        for key, sig, message in items:
            parts += (_ITEM.pack(bytes(key), sig, len(message)), message)
        request = b"".join(parts)
        try:
            self.proc.stdin.write(_COUNT.pack(len(request)) + request)
            self.proc.stdin.flush()
        except (OSError, ValueError):
            self.stop()
            return False
        return True

    def receive(self, n: int) -> list[bool] | None:
        """The answer to the batch sent (the caller holds ``lock``); None if it died."""
        try:
            answer = self.proc.stdout.read(n)
        except (OSError, ValueError):
            answer = b""
        if len(answer) != n:
            self.stop()
            return None
        return [b == 1 for b in answer]

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.kill()
            self.proc.wait()
            self.proc = None


_HELPERS: list[_Helper] = []
_HELPERS_LOCK = threading.Lock()


def _helpers() -> list[_Helper]:
    with _HELPERS_LOCK:
        if not _HELPERS:  # the applying thread keeps one core busy; helpers take the rest
            _HELPERS.extend(_Helper() for _ in range(max(1, (os.cpu_count() or 2) - 1)))
        return _HELPERS


def start() -> None:
    """Start the helpers now rather than on the first large batch (a server, at startup)."""
    for helper in _helpers():
        if helper.lock.acquire(blocking=False):
            try:
                helper.send([])
                helper.receive(0)
            finally:
                helper.lock.release()


@contextlib.contextmanager
def verifying(items: list[tuple[VerifyKey, bytes, bytes]]) -> Iterator[Callable[[], list[bool]]]:
    """Start checking (key, signature, message) triples in the helpers; yields a function
    that waits for the verdicts, in order. A helper busy with another thread's batch is
    not waited for: its share is checked in this thread when the verdicts are asked."""
    if len(items) <= INLINE:
        verdicts = check(items)
        yield lambda: verdicts
        return
    helpers = _helpers()
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
    done: list[bool] | None = None

    def verdicts() -> list[bool]:
        nonlocal done
        if done is None:
            done = []
            for n, (helper, share) in enumerate(shares):
                answer = helper.receive(len(share)) if helper is not None else None
                if helper is not None:
                    shares[n] = (None, share)
                    helper.lock.release()
                done += check(share) if answer is None else answer
        return done
    try:
        yield verdicts
    finally:
        for helper, share in shares:  # not asked for (the caller failed): read and drop
            if helper is not None:
                helper.receive(len(share))
                helper.lock.release()


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
            answer, at = bytearray(n), _COUNT.size
            for i in range(n):
                raw, sig, length = _ITEM.unpack_from(request, at)
                at += _ITEM.size
                message = bytes(request[at:at + length])
                at += length
                try:
                    key = keys.get(raw) or keys.setdefault(raw, VerifyKey(raw))
                    key.verify(message, sig)
                    answer[i] = 1
                except (BadSignatureError, ValueError, TypeError):
                    pass
            stdout.write(answer)
            stdout.flush()
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return


if __name__ == "__main__":
    main()
