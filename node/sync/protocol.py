"""Pure decisions of the sync client: when to retry. No clock, no randomness of its own."""

from __future__ import annotations

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
