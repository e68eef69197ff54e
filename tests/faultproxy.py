"""A fault-injecting TCP proxy on 127.0.0.1, for testing sync over a bad network.

The proxy listens on a free port and forwards every connection to a target
port, injecting faults decided by a seeded :class:`random.Random`:

* ``drop``: per connection, cut it after a random number of bytes in one
  direction: what fits is forwarded, then both sides are reset (RST);
* ``truncate``: likewise, but both sides are closed gracefully (FIN), so the
  peer sees a short message rather than an error;
* ``delay``: per chunk, sleep up to ``max_delay`` seconds before forwarding;
* ``flip``: per chunk, xor one random byte with a random non-zero value;
* ``duplicate``: per complete HTTP exchange, send the same request bytes to
  the server once more on a fresh connection and discard the reply;
* ``reorder``: per complete exchange, hold its request and replay it (on a
  fresh connection, reply discarded) after a later exchange completes.

``cut`` aims one fault precisely: the *nth* request whose request line
contains *path* (or its reply) is cut after *fraction* of its body.
``cut_share`` cuts that share of all requests (RST) at a uniformly random
point of their body, as a link that drops mid-transfer does.

The proxy frames HTTP/1.1 messages by Content-Length only to know where
requests and exchanges end (for ``duplicate``, ``reorder`` and ``cut``);
the byte faults need no framing. It counts the bytes it forwarded each way.
Each connection gets its own generator drawn from the proxy's, so a
sequential client sees the same faults for the same seed. Every socket has
a timeout, every loop ends, and the proxy stops by itself after
``lifetime`` seconds.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass

HOST = "127.0.0.1"
CHUNK = 16 * 1024
MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Cut:
    """Cut the ``nth`` (0-based) request whose request line contains ``path``.

    With ``direction="down"`` the request goes through whole and its reply is cut.
    """

    path: str
    nth: int = 0
    fraction: float = 0.5     # of the message's body forwarded before the cut
    mode: str = "drop"        # "drop" (RST) or "truncate" (FIN)
    direction: str = "up"     # "up": the request; "down": its reply


@dataclass(frozen=True)
class Faults:
    drop: float = 0.0         # per connection
    truncate: float = 0.0     # per connection
    delay: float = 0.0        # per chunk
    flip: float = 0.0         # per chunk
    duplicate: float = 0.0    # per complete exchange
    reorder: float = 0.0      # per complete exchange
    max_delay: float = 0.05   # seconds
    max_bytes: int = 64 * 1024  # a cut falls in the first max_bytes of its direction
    limit: int | None = None  # stop injecting after this many faults (None: never)
    cut: Cut | None = None
    cut_share: float = 0.0    # per request: cut at a uniformly random point of its body
    directions: tuple[str, ...] = ("up", "down")  # where a drop or truncate may fall

    @classmethod
    def mode(cls, name: str, p: float = 0.3, **extra) -> Faults:
        """One fault kind at probability ``p``; ``mixed``: every kind at ``p / 2``."""
        kinds = ("drop", "truncate", "delay", "flip", "duplicate", "reorder")
        if name == "clean":
            return cls(**extra)
        if name == "mixed":
            return cls(**{k: p / 2 for k in kinds}, **extra)
        if name not in kinds:
            raise ValueError(f"unknown fault mode {name!r}")
        return cls(**{name: p}, **extra)


@dataclass
class _Plan:
    kind: str          # drop / truncate
    direction: str     # up (client -> server) / down
    at: int            # bytes of that direction forwarded before the cut


class _Framer:
    """Splits one direction of an HTTP/1.1 connection into messages (Content-Length only)."""

    def __init__(self, response: bool, on_head=None):
        self.response, self.on_head = response, on_head
        self.head = bytearray()
        self.msg = bytearray()
        self.first_line = b""
        self.remaining: int | None = None   # body bytes still to come; None: reading a head
        self.pos = 0                         # bytes fed so far
        self.broken = False                  # unframeable (chunked, garbage): stop framing

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """Returns the (first line, whole message) of every message completed by ``data``."""
        done: list[tuple[bytes, bytes]] = []
        i = 0
        while i < len(data) and not self.broken:
            if self.remaining is None:
                prior = len(self.head)
                self.head += data[i:]
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.head) > MAX_HEAD:
                        self.broken = True
                    i = len(data)
                    break
                head = bytes(self.head[:end + 4])
                i += end + 4 - prior
                self.head = bytearray()
                length = self._body_length(head)
                if length is None:
                    self.broken = True
                    break
                self.first_line = head.split(b"\r\n", 1)[0]
                self.msg = bytearray(head)
                self.remaining = length
                if self.on_head is not None:
                    self.on_head(self.first_line, self.pos + i, length)
            take = min(self.remaining, len(data) - i)
            self.msg += data[i:i + take]
            self.remaining -= take
            i += take
            if self.remaining == 0:
                done.append((self.first_line, bytes(self.msg)))
                self.msg, self.remaining = bytearray(), None
        self.pos += len(data)
        return done

    def _body_length(self, head: bytes) -> int | None:
        lines = head.split(b"\r\n")
        if self.response:
            parts = lines[0].split(b" ")
            if len(parts) < 2 or not parts[1].isdigit():
                return None
            status = int(parts[1])
            if status in (204, 304) or 100 <= status < 200:
                return 0
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding":
                return None
            if name == b"content-length":
                value = value.strip()
                if not value.isdigit():
                    return None
                length = int(value)
        return length


class FaultProxy:
    """``with FaultProxy(target_port, Faults.mode("drop"), seed=1) as proxy: ...proxy.port``"""

    def __init__(self, target_port: int, faults: Faults | None = None, seed: int = 0, *,
                 idle_timeout: float = 5.0, lifetime: float = 300.0):
        self.target_port = target_port
        self.idle_timeout, self.lifetime = idle_timeout, lifetime
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._in_flight = 0       # exchanges whose replays may still be under way
        self.port = 0
        self.configure(faults or Faults(), seed)

    # -- control ----------------------------------------------------------------------

    def configure(self, faults: Faults, seed: int = 0) -> None:
        """New faults and seed for connections accepted from now on; counters reset."""
        with self._lock:
            self.faults, self._rng = faults, random.Random(seed)
            self._held: bytes | None = None
            self._cut_seen = 0
            self.reset_counters()

    def reset_counters(self) -> None:
        self.up = self.down = 0                 # bytes forwarded to the server / the client
        self.replay_up = self.replay_down = 0   # bytes of replayed requests and their replies
        self.connections = 0
        self.requests: Counter = Counter()      # complete requests seen, by request line
        self.request_sizes: list[tuple[str, int]] = []  # (path, bytes) of each
        self.head_sizes: list[int] = []         # request heads (HTTP overhead)
        self.injected: Counter = Counter()      # faults injected, by kind
        self.replayed: Counter = Counter()      # replies to replayed requests, by status line

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until no replay is under way (a late duplicate may still be arriving);
        call it after the client got its replies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._in_flight:
                    return True
            time.sleep(0.01)
        return False

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(16)
        listener.settimeout(0.2)
        self._listener, self.port = listener, listener.getsockname()[1]
        self._deadline = time.monotonic() + self.lifetime
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=self.idle_timeout + 1)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # -- internals --------------------------------------------------------------------

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _accept_loop(self) -> None:
        try:
            while self._running():
                try:
                    client, _ = self._listener.accept()
                except (TimeoutError, BlockingIOError):
                    continue
                except OSError:
                    return
                with self._lock:
                    self.connections += 1
                    rng = random.Random(self._rng.getrandbits(64))
                    faults = self.faults
                self._spawn(self._connection, client, rng, faults)
        finally:
            self._listener.close()  # stopped or past its lifetime: refuse from now on

    def _may_inject(self, faults: Faults) -> bool:
        return faults.limit is None or sum(self.injected.values()) < faults.limit

    def _count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1

    def _connection(self, client: socket.socket, rng: random.Random, faults: Faults) -> None:
        plan = None
        with self._lock:
            for kind in ("drop", "truncate"):
                if rng.random() < getattr(faults, kind) and self._may_inject(faults):
                    plan = _Plan(kind, rng.choice(faults.directions),
                                 rng.randrange(faults.max_bytes))
                    break
        try:
            server = socket.create_connection((HOST, self.target_port),
                                              timeout=self.idle_timeout)
        except OSError:
            _abort(client)
            return
        try:
            self._pump(client, server, rng, faults, plan)
        finally:
            for s in (client, server):
                with contextlib.suppress(OSError):
                    s.close()

    def _pump(self, client, server, rng, faults: Faults, plan: _Plan | None) -> None:
        client.settimeout(self.idle_timeout)
        server.settimeout(self.idle_timeout)
        pending: list[bytes] = []         # complete requests waiting for their replies
        aimed: list[_Plan] = []
        heads = {"up": 0, "down": 0}       # message heads seen each way on this connection
        cut_reply: list[int] = []          # index of the reply to cut

        def on_request_head(first_line: bytes, body_start: int, length: int) -> None:
            heads["up"] += 1
            if faults.cut_share and rng.random() < faults.cut_share:
                aimed.append(_Plan("drop", "up", body_start + rng.randrange(max(1, length))))
                return
            cut = faults.cut
            if cut is None or cut.path.encode() not in first_line:
                return
            with self._lock:
                nth, self._cut_seen = self._cut_seen, self._cut_seen + 1
            if nth != cut.nth:
                return
            if cut.direction == "up":
                aimed.append(_Plan(cut.mode, "up", body_start + int(length * cut.fraction)))
            else:
                cut_reply.append(heads["up"] - 1)

        def on_reply_head(first_line: bytes, body_start: int, length: int) -> None:
            heads["down"] += 1
            if cut_reply and cut_reply[0] == heads["down"] - 1:
                aimed.append(_Plan(faults.cut.mode, "down",
                                   body_start + int(length * faults.cut.fraction)))

        framers = {"up": _Framer(False, on_request_head), "down": _Framer(True, on_reply_head)}
        sent = {"up": 0, "down": 0}
        ends = {"up": (client, server), "down": (server, client)}
        open_ = [client, server]
        while open_ and self._running():
            ready, _, _ = select.select(open_, [], [], self.idle_timeout)
            if not ready:
                return  # idle: a stuck peer costs at most idle_timeout
            for src in ready:
                direction = "up" if src is client else "down"
                dst = ends[direction][1]
                try:
                    data = src.recv(CHUNK)
                except OSError:
                    _abort(client, server)
                    return
                if not data:
                    if src is server:
                        return  # the server closed: so does the client (in finally)
                    with contextlib.suppress(OSError):
                        server.shutdown(socket.SHUT_WR)
                    open_.remove(client)
                    continue
                completed = framers[direction].feed(data)
                cut = aimed[0] if aimed else plan
                if cut is not None and cut.direction == direction and \
                        sent[direction] + len(data) > cut.at:
                    keep = data[:max(0, cut.at - sent[direction])]
                    self._forward(dst, keep, direction, sent)
                    self._count(cut.kind if cut is plan else "cut")
                    if cut.kind == "drop":
                        _abort(client, server)
                    else:
                        for s in (client, server):
                            with contextlib.suppress(OSError):
                                s.shutdown(socket.SHUT_RDWR)
                    return
                if faults.delay and rng.random() < faults.delay:
                    self._count("delay")
                    time.sleep(rng.uniform(0, faults.max_delay))
                if faults.flip and rng.random() < faults.flip and self._may_inject(faults):
                    self._count("flip")
                    data = bytearray(data)
                    data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
                    data = bytes(data)
                if direction == "up":
                    if not self._forward(dst, data, direction, sent):
                        _abort(client, server)
                        return
                    with self._lock:
                        for first_line, message in completed:
                            self.requests[_path(first_line)] += 1
                            self.request_sizes.append((_path(first_line), len(message)))
                            self.head_sizes.append(message.find(b"\r\n\r\n") + 4)
                    pending.extend(message for _, message in completed)
                    continue
                exchanges = [pending.pop(0) for _ in completed if pending]
                with self._lock:  # settle() waits from before the client can see the reply
                    self._in_flight += len(exchanges)
                try:
                    if not self._forward(dst, data, direction, sent):
                        _abort(client, server)
                        return
                    for request in exchanges:
                        self._after_exchange(request, rng, faults)
                finally:
                    with self._lock:
                        self._in_flight -= len(exchanges)

    def _forward(self, dst: socket.socket, data: bytes, direction: str, sent: dict) -> bool:
        try:
            dst.sendall(data)
        except OSError:
            return False
        sent[direction] += len(data)
        with self._lock:
            if direction == "up":
                self.up += len(data)
            else:
                self.down += len(data)
        return True

    def _after_exchange(self, request: bytes, rng: random.Random, faults: Faults) -> None:
        replays = []
        if rng.random() < faults.duplicate and self._may_inject(faults):
            self._count("duplicate")
            replays.append(request)
        with self._lock:
            held, self._held = self._held, None
            if held is not None:
                replays.append(held)   # a later exchange is done: the held one arrives now
            elif rng.random() < faults.reorder and self._may_inject(faults):
                self.injected["reorder"] += 1
                self._held = request
        for data in replays:
            self._replay(data)

    def _replay(self, request: bytes) -> None:
        """Send ``request`` once more on a fresh connection; read and discard the reply."""
        try:
            with socket.create_connection((HOST, self.target_port),
                                          timeout=self.idle_timeout) as s:
                s.sendall(request)
                with self._lock:
                    self.replay_up += len(request)
                framer = _Framer(True)
                while self._running():
                    chunk = s.recv(CHUNK)
                    if not chunk:
                        return
                    done = framer.feed(chunk)
                    with self._lock:
                        self.replay_down += len(chunk)
                        for first_line, _ in done:
                            self.replayed[first_line.decode("latin-1")] += 1
                    if done or framer.broken:
                        return
        except OSError:
            return


def _path(first_line: bytes) -> str:
    parts = first_line.split(b" ")
    return parts[1].decode("latin-1") if len(parts) > 1 else ""


def _abort(*socks: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees a reset, not an orderly end."""
    for s in socks:
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            s.close()


__all__ = ["Cut", "FaultProxy", "Faults"]
