"""Retry timing: exponential with jitter, capped; a 429's Retry-After respected. What a
link shows of itself: the piece, the bundle and the timeout that follow."""

from __future__ import annotations

import pytest
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


# -- what a link shows of itself ----------------------------------------------------------

def cut_at(pace, lives):
    """Connections that each carried ``life`` bytes and died."""
    for life in lives:
        pace.cut(life)


def test_a_link_never_cut_sends_whole_bundles_of_the_most_events():
    pace = pacing.Pace(400, 400)
    assert pace.piece() == pacing.MAX_PIECE and pace.target() == 400
    pace.carried(80_000, 0.05)
    assert pace.piece() == pacing.MAX_PIECE


def test_the_piece_follows_the_bytes_a_connection_carries_before_it_dies():
    """Young's rule: the best checkpoint interval for a mean life L, each checkpoint
    costing HEADS, is about sqrt(2 HEADS L) - HEADS."""
    sizes = {}
    for life in (2_000, 8_000, 32_000):
        pace = pacing.Pace(400, 400)
        cut_at(pace, [life] * 40)
        sizes[life] = pace.piece()
        assert abs(sizes[life] - ((2 * pacing.HEADS * life) ** 0.5 - pacing.HEADS)) < 0.05 * \
            sizes[life]
    assert pacing.MIN_PIECE <= sizes[2_000] < sizes[8_000] < sizes[32_000] < 32_000


def test_cuts_shrink_the_piece_and_exchanges_that_get_through_grow_it_back():
    pace = pacing.Pace(400, 400)
    pace.carried(500_000, 1.0)
    cut_at(pace, [4_000] * 5)
    small = pace.piece()
    assert small < 8_000 and pace.target() < 400
    sizes = []
    for _ in range(300):
        pace.carried(pace.piece() + pacing.HEADS, 0.01)
        sizes.append(pace.piece())
    assert sizes == sorted(sizes) and sizes[-1] > 20 * small  # back to whole bundles, nearly
    assert pace.target() == 400


def test_bundles_follow_the_piece_but_not_below_a_floor():
    pace = pacing.Pace(400, 400, event_wire=250.0)
    cut_at(pace, [1_000] * 30)
    assert pace.piece() == pacing.MIN_PIECE
    assert pace.target() == pacing.BUNDLE_FLOOR // 250  # (small bundles compress worse)
    pace.bundled(pace.batch, pace.batch * 250)
    assert pace.batch == pacing.BUNDLE_FLOOR // 250


def test_a_413_halves_the_batch_and_bundles_that_get_through_grow_it_back():
    pace = pacing.Pace(400, 400)
    pace.too_large()
    assert pace.batch == 200
    grown = []
    for _ in range(6):
        pace.bundled(pace.batch, pace.batch * 200)
        grown.append(pace.batch)
    assert grown == [250, 312, 390, 400, 400, 400]
    for _ in range(20):
        pace.too_large()
    assert pace.batch == 1


def test_no_timeout_is_shorter_than_the_link_needs_for_the_bytes_in_flight():
    pace = pacing.Pace(400, 400, patience=60)
    # before anything is measured: as if the link carried SLOWEST bytes a second
    assert pace.timeout(165_000) >= 60 + 165_000 / pacing.SLOWEST
    pace.carried(64_000, 64_000 / 2_500)  # 20 kbit/s
    assert 2_400 < pace.rate < 2_600
    assert pace.timeout(16_000) >= 60 + 16_000 / pace.rate
    assert pace.eta(25_000) == pytest.approx(10, rel=0.05)
    assert pacing.Pace(400, 400).eta(1000) is None


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 10**7), st.floats(0, 100)),
                max_size=200))
def test_pieces_and_batches_stay_within_bounds_whatever_the_link_does(steps):
    pace = pacing.Pace(400, 400)
    for cut, nbytes, seconds in steps:
        if cut:
            pace.cut(nbytes)
        else:
            pace.carried(nbytes, seconds)
            pace.bundled(max(1, nbytes // 1000), nbytes)
        assert pacing.MIN_PIECE <= pace.piece() <= pacing.MAX_PIECE
        assert 1 <= pace.batch <= 400 and 1 <= pace.target() <= 400
        assert pace.timeout(nbytes) >= pace.patience
