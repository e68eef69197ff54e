"""Retry timing: exponential with jitter, capped; a 429's Retry-After respected."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from node.sync import protocol

rands = st.floats(min_value=0, max_value=1, exclude_max=True)


@given(st.integers(0, 50), rands)
def test_backoff_stays_within_half_and_full_of_the_capped_exponential(attempt, rand):
    full = min(protocol.MAX_DELAY, protocol.BASE_DELAY * 2 ** attempt)
    assert full / 2 <= protocol.backoff(attempt, rand) <= full


def test_backoff_grows_then_caps():
    delays = [protocol.backoff(a, 0.999) for a in range(12)]
    assert delays == sorted(delays) and delays[0] < 3 and delays[-1] <= protocol.MAX_DELAY


def test_jitter_spreads_nodes_that_failed_together():
    spread = {round(protocol.backoff(3, r / 100), 3) for r in range(100)}
    assert len(spread) == 100


@given(st.one_of(st.none(), st.floats(min_value=-5, max_value=1000)), rands)
def test_busy_waits_at_least_what_the_parent_asked(retry_after, rand):
    delay = protocol.busy_delay(retry_after, rand)
    asked = retry_after if retry_after and retry_after > 0 else protocol.BASE_DELAY
    assert min(asked, protocol.MAX_DELAY) <= delay <= protocol.MAX_DELAY
