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
  fresh connection, reply discarded) after a later exchange completes;
* ``budget``: per connection, a byte budget drawn uniformly from 0 to
  ``budget`` (both directions counted): what fits is forwarded, then both
  sides are reset, as a mobile data session that drops after a burst;
* ``stall``: per connection, after a random number of bytes (both directions,
  within ``max_bytes``) nothing more passes either way; ``stall_for`` seconds
  later the proxy resets both sides, as a NAT or a VPN that goes quiet;
* ``lose_reply``: per exchange, the request reaches the server whole and the
  connection is reset before the first byte of its reply;
* ``rate`` and ``latency``: every byte takes its turn at ``rate`` bytes a
  second each way and arrives ``latency`` seconds later (a slow link; the
  proxy stops reading from a side while 64 KiB of it wait, as TCP's window).

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
from collections import Counter, deque
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
    budget: int = 0           # per connection: reset after uniform(0, budget) bytes, both ways
    stall: float = 0.0        # per connection: go silent within max_bytes ...
    stall_for: float = 1.0    # ... then reset this many seconds later
    lose_reply: float = 0.0   # per exchange: reset before the reply's first byte
    rate: float = 0.0         # bytes a second each way (0: as fast as loopback)
    latency: float = 0.0      # seconds each way

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
    kind: str          # drop / truncate / budget / stall
    direction: str     # up (client -> server) / down / both (budget, stall: bytes both ways)
    at: int            # bytes of that direction forwarded before the cut


WINDOW = 64 * 1024     # bytes a shaped direction holds before the proxy stops reading it
SLICE = 1024           # a shaped direction sends at most this many bytes at a time


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
                    self.on_head(self.first_line, self.pos + i - len(head), self.pos + i, length)
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
        self.replies: list[tuple[str, bytes]] = []  # (path, head) of each complete reply
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
        plans = []
        with self._lock:
            for kind in ("drop", "truncate"):
                if rng.random() < getattr(faults, kind) and self._may_inject(faults):
                    plans.append(_Plan(kind, rng.choice(faults.directions),
                                       rng.randrange(faults.max_bytes)))
                    break
            if faults.budget and self._may_inject(faults):
                plans.append(_Plan("budget", "both", rng.randrange(faults.budget)))
            if faults.stall and rng.random() < faults.stall and self._may_inject(faults):
                plans.append(_Plan("stall", "both", rng.randrange(faults.max_bytes)))
        try:
            server = socket.create_connection((HOST, self.target_port),
                                              timeout=self.idle_timeout)
        except OSError:
            _abort(client)
            return
        try:
            _Pump(self, client, server, rng, faults, plans).run()
        finally:
            for s in (client, server):
                with contextlib.suppress(OSError):
                    s.close()

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


class _Pump:
    """One connection: reads each side, queues what it read for its time (``rate``,
    ``latency``), and forwards it when due, cutting, stalling or resetting where a plan
    says (checked on the bytes actually forwarded, each way and both ways together)."""

    def __init__(self, proxy: FaultProxy, client, server, rng, faults: Faults, plans):
        self.proxy, self.client, self.server = proxy, client, server
        self.rng, self.faults, self.plans = rng, faults, plans
        self.pending: list[bytes] = []       # complete requests waiting for their replies
        self.aimed: list[_Plan] = []          # cuts aimed at one message
        self.heads = {"up": 0, "down": 0}     # message heads seen each way
        self.cut_reply: list[int] = []        # index of the reply to cut
        self.sent = {"up": 0, "down": 0}
        self.queue: dict[str, deque] = {"up": deque(), "down": deque()}  # (due, bytes, done)
        self.queued = {"up": 0, "down": 0}
        self.free_at = {"up": 0.0, "down": 0.0}   # when a shaped direction can send again
        self.closing: set[str] = set()              # the side that sends it has closed
        self.in_flight = 0                          # exchanges counted in proxy._in_flight
        self.framers = {"up": _Framer(False, self._on_request_head),
                        "down": _Framer(True, self._on_reply_head)}

    # -- framing: where aimed cuts fall --------------------------------------------

    def _on_request_head(self, first_line: bytes, head_start: int, body_start: int,
                         length: int) -> None:
        faults = self.faults
        self.heads["up"] += 1
        if faults.cut_share and self.rng.random() < faults.cut_share:
            self.aimed.append(_Plan("drop", "up", body_start + self.rng.randrange(max(1, length))))
            return
        if faults.lose_reply and self.rng.random() < faults.lose_reply:
            self.cut_reply.append(self.heads["up"] - 1)
            return
        cut = faults.cut
        if cut is None or cut.path.encode() not in first_line:
            return
        with self.proxy._lock:
            nth, self.proxy._cut_seen = self.proxy._cut_seen, self.proxy._cut_seen + 1
        if nth != cut.nth:
            return
        if cut.direction == "up":
            self.aimed.append(_Plan(cut.mode, "up", body_start + int(length * cut.fraction)))
        else:
            self.cut_reply.append(self.heads["up"] - 1)

    def _on_reply_head(self, first_line: bytes, head_start: int, body_start: int,
                       length: int) -> None:
        self.heads["down"] += 1
        if self.cut_reply and self.cut_reply[0] == self.heads["down"] - 1:
            self.cut_reply.pop(0)
            cut = self.faults.cut
            if cut is not None and cut.direction == "down":
                self.aimed.append(_Plan(cut.mode, "down", body_start + int(length * cut.fraction)))
            else:  # lose_reply: nothing of it reaches the client
                self.aimed.append(_Plan("lose_reply", "down", head_start))

    # -- the loop --------------------------------------------------------------------

    def run(self) -> None:
        client, server = self.client, self.server
        client.settimeout(self.proxy.idle_timeout)
        server.settimeout(self.proxy.idle_timeout)
        try:
            self._loop()
        finally:
            with self.proxy._lock:
                self.proxy._in_flight -= self.in_flight

    def _loop(self) -> None:
        proxy, faults = self.proxy, self.faults
        sides = {"up": self.client, "down": self.server}   # the socket each direction reads
        quiet_since = time.monotonic()
        while proxy._running():
            now = time.monotonic()
            for direction in ("up", "down"):
                if not self._deliver(direction, now):
                    return
                if direction in self.closing and not self.queue[direction]:
                    if direction == "down":
                        return  # the server closed and all of it is through: close the client
                    if "shut" not in self.closing:  # the client closed: so does its half
                        self.closing.add("shut")
                        with contextlib.suppress(OSError):
                            self.server.shutdown(socket.SHUT_WR)
            readable = [sock for d, sock in sides.items() if d not in self.closing
                        and self.queued[d] < WINDOW]
            waiting = [self.queue[d][0][0] for d in ("up", "down") if self.queue[d]]
            timeout = max(0.0, min(waiting) - now) if waiting else proxy.idle_timeout
            ready = select.select(readable, [], [], timeout)[0] if readable else (
                time.sleep(timeout) or [])
            if ready:
                quiet_since = time.monotonic()
            elif not waiting and time.monotonic() - quiet_since >= proxy.idle_timeout:
                return  # idle: a stuck peer costs at most idle_timeout
            for src in ready:
                direction = "up" if src is self.client else "down"
                try:
                    data = src.recv(CHUNK)
                except OSError:
                    _abort(self.client, self.server)
                    return
                if not data:
                    self.closing.add(direction)
                    continue
                completed = self.framers[direction].feed(data)
                if faults.delay and self.rng.random() < faults.delay:
                    proxy._count("delay")
                    time.sleep(self.rng.uniform(0, faults.max_delay))
                if faults.flip and self.rng.random() < faults.flip and proxy._may_inject(faults):
                    proxy._count("flip")
                    data = bytearray(data)
                    data[self.rng.randrange(len(data))] ^= self.rng.randrange(1, 256)
                    data = bytes(data)
                exchanges = []
                if direction == "up":
                    with proxy._lock:
                        for first_line, message in completed:
                            proxy.requests[_path(first_line)] += 1
                            proxy.request_sizes.append((_path(first_line), len(message)))
                            proxy.head_sizes.append(message.find(b"\r\n\r\n") + 4)
                    self.pending.extend(message for _, message in completed)
                else:
                    exchanges = [self.pending.pop(0) for _ in completed if self.pending]
                    with proxy._lock:  # (a reply to no request seen: not recorded)
                        proxy.replies += [
                            (_path(request.split(b"\r\n", 1)[0]),
                             reply[:reply.find(b"\r\n\r\n") + 4])
                            for request, (_, reply) in zip(exchanges, completed, strict=False)]
                    with proxy._lock:  # settle() waits from before the client sees the reply
                        proxy._in_flight += len(exchanges)
                    self.in_flight += len(exchanges)
                self._enqueue(direction, data, exchanges, time.monotonic())

    def _enqueue(self, direction: str, data: bytes, exchanges: list, now: float) -> None:
        faults = self.faults
        if not (faults.rate or faults.latency):
            self.queue[direction].append((now, data, exchanges))
            self.queued[direction] += len(data)
            return
        step = SLICE if faults.rate else len(data)
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            start = max(now, self.free_at[direction])
            self.free_at[direction] = start + (len(piece) / faults.rate if faults.rate else 0)
            last = i + step >= len(data)
            self.queue[direction].append((self.free_at[direction] + faults.latency, piece,
                                          exchanges if last else []))
            self.queued[direction] += len(piece)

    def _deliver(self, direction: str, now: float) -> bool:
        """Forward what is due in ``direction``; False once the connection is over."""
        queue = self.queue[direction]
        dst = self.server if direction == "up" else self.client
        while queue and queue[0][0] <= now:
            _, data, exchanges = queue.popleft()
            self.queued[direction] -= len(data)
            plan, keep = self._cut_in(direction, data)
            if plan is not None:
                self.proxy._forward(dst, data[:keep], direction, self.sent)
                self._cut(plan)
                return False
            if not self.proxy._forward(dst, data, direction, self.sent):
                _abort(self.client, self.server)
                return False
            for request in exchanges:
                self.in_flight -= 1
                try:
                    self.proxy._after_exchange(request, self.rng, self.faults)
                finally:
                    with self.proxy._lock:
                        self.proxy._in_flight -= 1
        return True

    def _cut_in(self, direction: str, data: bytes) -> tuple[_Plan | None, int]:
        """The plan that cuts inside ``data`` first, and the bytes of it forwarded before."""
        found, keep = None, len(data)
        both = self.sent["up"] + self.sent["down"]
        for plan in ([self.aimed[0]] if self.aimed else []) + self.plans:
            if plan.direction not in ("both", direction):
                continue
            at = max(0, plan.at - (both if plan.direction == "both" else self.sent[direction]))
            if at < len(data) and (found is None or at < keep):
                found, keep = plan, at
        return found, keep

    def _cut(self, plan: _Plan) -> None:
        proxy = self.proxy
        kind = "cut" if plan in self.aimed and plan.kind in ("drop", "truncate") else plan.kind
        proxy._count(kind)
        if plan.kind == "stall":  # silent, both ways, until the proxy gives up on it
            deadline = time.monotonic() + self.faults.stall_for
            while proxy._running() and time.monotonic() < deadline:
                time.sleep(0.05)
        if plan.kind == "truncate":
            for s in (self.client, self.server):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        else:
            _abort(self.client, self.server)


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
