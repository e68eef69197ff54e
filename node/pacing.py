"""Pure decisions of the sync client: when to sync and when to retry.

No clock, no randomness of its own: the caller passes both in. The sync
timing settings are declared here, with the arithmetic that reads them.
"""

from __future__ import annotations

from node.settings import Setting, at_least_one, declare, non_negative

BASE_DELAY = 2.0     # seconds before the first retry
MAX_DELAY = 300.0    # never wait longer than this between tries


def backoff(attempt: int, rand: float, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential with full jitter.

    ``rand`` is a number in [0, 1) from the caller, so a thousand villages that
    failed together spread out instead of returning in the same second.
    """
    return min(cap, base * 2 ** attempt) * (0.5 + rand / 2)


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
