"""RFC 6298's retransmission timer, checked against the RFC's own formulas."""

from __future__ import annotations

import pytest

from mqttsim.netmodel import RtoEstimator


def test_initial_rto_is_one_second():
    assert RtoEstimator().rto == 1.0


def test_first_sample_sets_srtt_and_rttvar_as_section_2_2_says():
    est = RtoEstimator()
    est.sample(0.5)
    assert (est.srtt, est.rttvar) == (0.5, 0.25)
    assert est.rto == pytest.approx(0.5 + 4 * 0.25)


def test_later_samples_follow_section_2_3():
    est = RtoEstimator()
    est.sample(0.5)
    est.sample(0.3)
    rttvar = 0.75 * 0.25 + 0.25 * abs(0.5 - 0.3)
    srtt = 0.875 * 0.5 + 0.125 * 0.3
    assert (est.rttvar, est.srtt) == (pytest.approx(rttvar), pytest.approx(srtt))
    assert est.rto == pytest.approx(srtt + 4 * rttvar)


def test_short_rtts_are_floored_at_200_ms_like_linux():
    est = RtoEstimator()
    for _ in range(50):
        est.sample(0.001)
    assert est.rto == 0.2


def test_timeouts_double_the_rto_up_to_the_maximum_and_a_fresh_sample_resets_it():
    est = RtoEstimator()
    timeouts = []
    for _ in range(9):
        timeouts.append(est.rto)
        est.timed_out()
    assert timeouts == [1, 2, 4, 8, 16, 32, 64, 120, 120]
    est.sample(0.1)  # Karn: only segments sent once give samples, and they end the back-off
    assert est.backoffs == 0 and est.rto == pytest.approx(0.3)


def test_bounds_are_checked():
    with pytest.raises(ValueError):
        RtoEstimator(initial=0.1, minimum=0.2)
    with pytest.raises(ValueError):
        RtoEstimator().sample(-1)
