"""Retry timing: exponential with jitter, capped; a 429's Retry-After respected."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from node import pacing

rands = st.floats(min_value=0, max_value=1, exclude_max=True)


@given(st.integers(0, 50), rands)
def test_backoff_stays_within_half_and_full_of_the_capped_exponential(attempt, rand):
    full = min(pacing.MAX_DELAY, pacing.BASE_DELAY * 2 ** attempt)
    assert full / 2 <= pacing.backoff(attempt, rand) <= full


def test_backoff_grows_then_caps():
    delays = [pacing.backoff(a, 0.999) for a in range(12)]
    assert delays == sorted(delays) and delays[0] < 3 and delays[-1] <= pacing.MAX_DELAY


def test_jitter_spreads_nodes_that_failed_together():
    spread = {round(pacing.backoff(3, r / 100), 3) for r in range(100)}
    assert len(spread) == 100


@given(st.one_of(st.none(), st.floats(min_value=-5, max_value=1000)), rands)
def test_busy_waits_at_least_what_the_parent_asked(retry_after, rand):
    delay = pacing.busy_delay(retry_after, rand)
    asked = retry_after if retry_after and retry_after > 0 else pacing.BASE_DELAY
    assert min(asked, pacing.MAX_DELAY) <= delay <= pacing.MAX_DELAY
