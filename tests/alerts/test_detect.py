"""Spike statistics on constructed series (pure functions, no database)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.alerts.detect import Bucket, assess, calm_reasons, compute_baseline
from pipeline.alerts.params import AlertParams

PARAMS = AlertParams(
    window=timedelta(hours=1),
    baseline_days=14,
    threshold=3.0,
    min_volume=5,
    min_share=0.4,
    repeat=timedelta(hours=24),
)


def hours(n: int, volume: int, negatives: int) -> list[Bucket]:
    return [Bucket(volume, float(negatives), float(volume)) for _ in range(n)]


def test_baseline_is_the_median_share_and_ignores_one_past_spike():
    history = hours(100, 10, 2) + hours(3, 10, 10) + hours(100, 10, 2)
    base = compute_baseline(history, PARAMS, prior=0.5)
    assert base.source == "history"
    assert base.share == pytest.approx(0.2)
    assert base.spread == pytest.approx(0.0)  # steady apart from the spike: no excess spread


def test_sparse_history_is_merged_into_periods_not_read_as_zero_shares():
    # One article an hour, one in five negative: single hours are 0 % or 100 %.
    history = [Bucket(1, 1.0 if i % 5 == 0 else 0.0, 1.0) for i in range(14 * 24)]
    base = compute_baseline(history, PARAMS, prior=0.5)
    assert base.source == "history"
    assert base.share == pytest.approx(0.2)


def test_short_history_is_shrunk_towards_the_prior():
    base = compute_baseline(hours(5, 1, 0), PARAMS, prior=0.3)
    assert base.source == "prior"
    assert base.share == pytest.approx(10 * 0.3 / 15)


def test_fires_on_deviation_volume_and_share_together():
    base = compute_baseline(hours(200, 10, 1), PARAMS, prior=0.15)
    assert assess(Bucket(10, 8, 10), base, PARAMS).fires
    assert not assess(Bucket(4, 4, 4), base, PARAMS).fires  # too few articles
    low_share = PARAMS.__class__(**{**PARAMS.__dict__, "min_share": 0.9})
    assert not assess(Bucket(10, 8, 10), base, low_share).fires  # below the least share


def test_spread_floor_keeps_a_constant_history_from_firing_on_noise():
    base = compute_baseline(hours(200, 100, 10), PARAMS, prior=0.15)
    # 100 articles, 18 % vs a constant 10 %: binomial noise ~3 %, but the floor is 5 %.
    a = assess(Bucket(100, 18, 100), base, PARAMS)
    assert a.sigma == pytest.approx(PARAMS.spread_floor)
    assert not a.fires


def test_hysteresis_band():
    base = compute_baseline(hours(200, 10, 1), PARAMS, prior=0.15)
    middle = assess(Bucket(10, 4, 10), base, PARAMS)  # 4 of 10 against 10 %: 2.2 σ exactly
    assert not middle.fires and not middle.calm
    assert assess(Bucket(10, 1, 10), base, PARAMS).calm
    assert assess(Bucket(2, 2, 2), base, PARAMS).calm  # the news dried up


def test_confidence_weighting_uses_weights_for_the_share():
    weighted = Bucket(volume=4, negatives=0.9 + 0.9, weight=0.9 + 0.9 + 0.4 + 0.4)
    assert weighted.share == pytest.approx(1.8 / 2.6)
    assert Bucket().share == 0.0


def test_calm_reasons_name_each_bound_the_window_fell_under():
    base = compute_baseline(hours(100, 10, 2), PARAMS, prior=0.5)
    one = assess(Bucket(1, 1.0, 1.0), base, PARAMS)
    assert one.calm
    assert calm_reasons(one, PARAMS) == [
        "1 novel article in the window (calm below 2.5)",
        f"deviation {one.deviation:.1f} σ (calm below 1.5 σ)",
    ]
    mild = assess(Bucket(10, 3.0, 10.0), base, PARAMS)
    assert calm_reasons(mild, PARAMS) == [f"deviation {mild.deviation:.1f} σ (calm below 1.5 σ)"]
    assert mild.deviation < 1.5
    quiet = assess(Bucket(2, 0.0, 2.0), base, PARAMS)
    assert calm_reasons(quiet, PARAMS) == [
        "2 novel articles in the window (calm below 2.5)",
        "0.0% negative (calm below 20.0%)",
        f"deviation {quiet.deviation:.1f} σ (calm below 1.5 σ)",
    ]
    assert calm_reasons(assess(Bucket(10, 9.0, 10.0), base, PARAMS), PARAMS) == []


def test_a_small_window_is_judged_by_the_exact_binomial_tail():
    """2 negatives of 5 against a 5 % baseline: the normal approximation reads 3.6 σ, but as
    many or more happen 2.3 % of the time (a 2.0 σ event): no alert."""
    base = compute_baseline(hours(200, 20, 1), PARAMS, prior=0.15)
    assert base.share == pytest.approx(0.05) and base.spread == pytest.approx(0.0)
    two_of_five = assess(Bucket(5, 2, 5), base, PARAMS)
    assert two_of_five.deviation == pytest.approx(2.0, abs=0.01)
    assert not two_of_five.fires
    # A real spike in a small window still fires: 4 of 5 (chance 3e-5, 4.0 σ).
    assert assess(Bucket(5, 4, 5), base, PARAMS).fires
    # Confidence weighting does not turn 2 confident negatives of 5 into "3 of 5": the tail
    # counts articles (2 at 0.95 and 3 neutral at 0.4 weigh 61 % negative).
    weighted = Bucket(5, 2 * 0.95, 2 * 0.95 + 3 * 0.4, negative_count=2)
    assert weighted.share == pytest.approx(0.613, abs=0.001)
    assert assess(weighted, base, PARAMS).deviation == pytest.approx(2.0, abs=0.01)
    assert not assess(weighted, base, PARAMS).fires


def test_the_exact_tail_applies_below_exact_below_articles_only():
    """With no floor on the spread, 10 % negative against 5 % reads 3.2 σ by the normal
    approximation and less by the exact tail: below EXACT_BELOW the smaller counts, from
    EXACT_BELOW on the normal one alone."""
    from pipeline.alerts.detect import EXACT_BELOW

    params = AlertParams(**{**PARAMS.__dict__, "spread_floor": 0.001})
    base = compute_baseline(hours(200, 20, 1), params, prior=0.15)
    n = EXACT_BELOW
    at = assess(Bucket(n, n // 10, n), base, params)
    assert at.deviation == pytest.approx((0.1 - 0.05) / at.sigma)
    below = assess(Bucket(n - 10, (n - 10) // 10, n - 10), base, params)
    assert below.deviation < (0.1 - 0.05) / below.sigma - 0.1


def test_the_exact_tail_matches_a_direct_sum():
    from math import comb
    from statistics import NormalDist

    from pipeline.alerts.detect import _binomial_z

    for k, n, p in [(2, 5, 0.05), (10, 12, 0.25), (30, 150, 0.1), (1, 1, 0.5)]:
        tail = sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
        expected = -NormalDist().inv_cdf(tail) if tail < 0.5 else 0.0
        assert _binomial_z(k, n, p) == pytest.approx(expected, rel=1e-9)
    assert _binomial_z(0, 5, 0.05) == 0.0
