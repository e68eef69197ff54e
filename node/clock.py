"""Time as the node reads it: an injected clock, and the UTC stamp events carry. Pure.

Every function that needs the time takes a clock (a callable returning an
aware datetime), so tests move time by hand instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock moved by hand, never by sleeping: the tests' and the simulator's
    (``siji simulate``), which moves every node's time together."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


def iso(moment: datetime) -> str:
    """The UTC stamp of events and rows, to the second: 2026-11-23T06:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(stamp: str) -> datetime:
    """The aware UTC moment of a stamp made by :func:`iso` (or with fractions of a second)."""
    return datetime.fromisoformat(stamp[:19]).replace(tzinfo=UTC)
