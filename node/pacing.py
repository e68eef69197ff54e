"""Pure decisions of the sync client: when to sync and when to retry.

No clock, no randomness of its own: the caller passes both in. The sync
timing settings are declared here, with the arithmetic that reads them.
"""

from __future__ import annotations

from node.settings import Setting, declare, non_negative

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
)
