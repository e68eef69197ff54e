"""Pure decisions of the sync client: when to sync and when to retry.

No clock, no randomness of its own: the caller passes both in. The sync
timing settings are declared here, with the arithmetic that reads them.
"""

from __future__ import annotations

from node.settings import Setting, at_least_one, declare, non_negative

BASE_DELAY = 2.0     # seconds before the first retry
MAX_DELAY = 300.0    # never wait longer than this between tries
URGENT_RETRY_CAP = 30.0  # nor longer than this while an urgent event waits to go


def backoff(attempt: int, rand: float, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential with full jitter.

    ``rand`` is a number in [0, 1) from the caller, so a thousand villages that
    failed together spread out instead of returning in the same second.
    """
    return min(cap, base * 2 ** attempt) * (0.5 + rand / 2)


def retry_delay(failures: int, rand: float, urgent: bool, interval: float) -> float:
    """Seconds before the next session after ``failures`` (1 or more) failed in a row:
    backoff capped at the sync interval, and at URGENT_RETRY_CAP while something urgent
    waits to go (a warning must not wait five minutes for a link that came back)."""
    cap = min(URGENT_RETRY_CAP if urgent else MAX_DELAY, interval or MAX_DELAY)
    return backoff(failures - 1, rand, cap=max(BASE_DELAY, cap))


def busy_delay(retry_after: float | None, rand: float) -> float:
    """Seconds to wait after a 429: what the parent asked, plus up to half again."""
    wait = retry_after if retry_after and retry_after > 0 else BASE_DELAY
    return min(MAX_DELAY, wait * (1 + rand / 2))


declare(
    Setting("SYNC_INTERVAL", 300, "Seconds between scheduled syncs with the parent "
            "(`siji serve`).", int, non_negative("SYNC_INTERVAL")),
    Setting("SYNC_JITTER", 60, "Up to this many seconds are added at random to each scheduled "
            "sync, so children do not all arrive at once.", int, non_negative("SYNC_JITTER")),
    Setting("URGENT_CHECK", 2, "Seconds between checks for urgent events (warnings, "
            "escalations) that sync at once instead of waiting.", int,
            non_negative("URGENT_CHECK")),
    Setting("LONG_POLL", 25, "Seconds the standing request a node keeps open to its parent "
            "waits for something owed to it: what the parent writes for it (an "
            "acknowledgement, a referral, an urge) comes down within seconds. 0 turns it off; "
            "then it comes with the next sync.", int, non_negative("LONG_POLL")),
    Setting("SYNC_TIMEOUT", 60, "Seconds a sync request waits for its answer beyond what the "
            "link needs for the bytes it carries (at half the rate measured on the link, or "
            "at 1,000 bytes a second before it is measured): the parent's work and the round "
            "trip. A connection silent for longer is given up and the transfer resumes on a "
            "new one.", int, at_least_one("SYNC_TIMEOUT")),
    Setting("SYNC_REQUESTS_PER_MINUTE", 1200, "Requests to /sync/ one client address may make "
            "in a minute (a burst of that many, then steadily); more are answered 429 with "
            "Retry-After.", int, at_least_one("SYNC_REQUESTS_PER_MINUTE")),
    Setting("LOGIN_REQUESTS_PER_MINUTE", 30, "Login attempts one client address may make in a "
            "minute, right or wrong (besides LOGIN_MAX_FAILURES); more are answered 429.",
            int, at_least_one("LOGIN_REQUESTS_PER_MINUTE")),
)


class RateLimiter:
    """At most ``per_minute`` requests a key (a client address) in a minute: a token bucket
    that refills steadily, so a burst is allowed and a flood is not. Time is the caller's
    (``now``, in seconds on any monotonic clock). Bounded: past ``max_keys`` keys, the
    ones whose buckets are full again are forgotten (they would be allowed anyway)."""

    def __init__(self, per_minute: int, max_keys: int = 10_000):
        self.rate, self.capacity, self.max_keys = per_minute / 60.0, float(per_minute), max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def wait(self, key: str, now: float) -> float:
        """0 if a request by ``key`` may go now (and counts it), else the seconds until one
        may."""
        tokens, at = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - at) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > self.max_keys:
            self._forget(now)
        return 0.0

    def _forget(self, now: float) -> None:
        for key, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.capacity:
                del self._buckets[key]


# -- what a link shows of itself --------------------------------------------------------

HEADS = 350          # bytes of HTTP heads a request and its answer take beyond the piece, about
MIN_PIECE = 512      # a piece is never smaller (but the last of a bundle)
MAX_PIECE = 4 * 1024 * 1024
DECAY = 0.98         # per exchange or cut: what the link showed 50 exchanges ago counts a third
SLOWEST = 1000.0     # bytes a second assumed of a link whose rate is not measured yet (8 kbit/s)
BUNDLE_PIECES = 16   # a bundle on a link that cuts: about this many pieces ...
BUNDLE_FLOOR = 32 * 1024  # ... and at least this many bytes (smaller ones compress worse)
EVENT_WIRE = 500.0   # bytes on the wire an event takes, assumed before one is measured


class Pace:
    """What one link has shown of itself, and what follows for the next request: how many
    bytes of a bundle a request carries (a *piece*), how many events a bundle holds, and
    how long to wait for an answer. Mutable, like RateLimiter; time is the caller's.

    A link is described by the bytes a connection carries before it is cut (``life``):
    the bytes moved over the link divided by the cuts seen, both decaying by DECAY at
    each exchange, so that a link that stops cutting grows back and a link that starts
    cutting is seen within a few cuts. (Moved bytes of a connection that was never cut
    count without a cut: it is the estimate of a mean time between failures.)

    A piece is a checkpoint: what arrived whole stays at the receiver, a cut costs the
    piece in flight, and each piece costs its heads (HEADS). The best piece for a mean
    life L is then about sqrt(2 * HEADS * L) - HEADS (Young's rule for the interval
    between checkpoints); in a simulation of the fault proxy's uniform 0-64 KiB budgets
    it is within 1% of the best fixed size chosen in hindsight, where the AIMD variants
    tried moved 7-15% more bytes. A link never cut sends bundles whole.

    Bundles follow the piece: on a link that cuts, BUNDLE_PIECES pieces' worth of events
    (at least BUNDLE_FLOOR bytes), so that events are applied, and acknowledged, a few
    connections apart; a 413 halves the batch, and every acknowledged bundle grows it
    back by a quarter, up to ``most``.
    """

    def __init__(self, batch: int, most: int, *, moved: float = 0.0, cuts: float = 0.0,
                 rate: float | None = None, event_wire: float | None = None,
                 patience: float = 60.0):
        self.batch, self.most = max(1, min(batch, most)), most
        self.moved, self.cuts = moved, cuts
        self.rate, self.event_wire, self.patience = rate, event_wire, patience

    @property
    def life(self) -> float:
        """Bytes a connection carries before it is cut, as seen (infinite: never cut)."""
        return self.moved / self.cuts if self.cuts > 0 else float("inf")

    def piece(self) -> int:
        """Bytes of a bundle the next request carries."""
        life = self.life
        if life >= MAX_PIECE ** 2:
            return MAX_PIECE
        return int(min(MAX_PIECE, max(MIN_PIECE, (2 * HEADS * life) ** 0.5 - HEADS)))

    def target(self) -> int:
        """Events the next bundle should hold, at most."""
        if self.cuts <= 0:
            return self.most
        size = max(BUNDLE_FLOOR, BUNDLE_PIECES * self.piece())
        return max(1, min(self.most, int(size / (self.event_wire or EVENT_WIRE))))

    def timeout(self, nbytes: int) -> float:
        """Seconds to wait for the answer to a request carrying ``nbytes``: what the link
        needs for them at half its measured rate (or at SLOWEST), plus ``patience`` for
        the receiver's work and the round trip."""
        return self.patience + 2 * nbytes / max(self.rate or SLOWEST, 1.0)

    def eta(self, nbytes: float) -> float | None:
        """Seconds to move ``nbytes`` at the rate measured, or None before it is."""
        return nbytes / self.rate if self.rate else None

    def carried(self, nbytes: int, seconds: float) -> None:
        """A request and its answer went through: ``nbytes`` in ``seconds``."""
        self.moved = self.moved * DECAY + nbytes
        self.cuts *= DECAY
        if nbytes >= 1024 and seconds >= 0:  # (small exchanges measure the round trip)
            sample = nbytes / max(seconds, 0.001)
            weight = 0.5 * min(1.0, nbytes / 65536)
            self.rate = sample if self.rate is None else self.rate + weight * (
                sample - self.rate)

    def cut(self, nbytes: int) -> None:
        """The connection died (or went silent) after about ``nbytes`` of this exchange."""
        self.moved = self.moved * DECAY + nbytes
        self.cuts = self.cuts * DECAY + 1

    def too_large(self) -> None:
        """The receiver (or something on the way) refused a request as too large."""
        self.batch = max(1, self.batch // 2)

    def bundled(self, events: int, size: int) -> None:
        """A bundle of ``events`` sealed to ``size`` bytes was acknowledged."""
        if events > 0:
            wire = size / events
            self.event_wire = wire if self.event_wire is None else (
                0.75 * self.event_wire + 0.25 * wire)
        target = self.target()
        self.batch = target if self.batch > target else min(
            target, self.batch + max(1, self.batch // 4))
