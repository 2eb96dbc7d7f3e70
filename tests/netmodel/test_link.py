"""The link model gives exact answers: serialization, queueing, loss, jitter, outages."""

from __future__ import annotations

import random
import statistics

import pytest

from mqttsim.netmodel import (Bernoulli, GilbertElliott, LinkDirection, LinkParams, Outage)


def link(seed: int = 1, **params) -> LinkDirection:
    return LinkDirection(LinkParams(**params), random.Random(seed))


def test_latency_alone_delays_every_packet_by_exactly_the_latency():
    d = link(latency=0.3)
    assert [d.send(t, 100).arrival for t in (0.0, 1.0, 1.5)] == [0.3, 1.3, 1.8]


def test_bandwidth_serializes_back_to_back_packets_one_after_the_other():
    d = link(bandwidth=8000, latency=0.05)  # 1000 bytes/s: a 100-byte packet takes 0.1 s
    first, second = d.send(0.0, 100), d.send(0.0, 100)
    assert first.arrival == pytest.approx(0.15)
    assert second.arrival == pytest.approx(0.25)
    assert (first.queued, second.queued) == (0.0, pytest.approx(0.1))
    later = d.send(1.0, 50)  # the transmitter is idle again
    assert later.arrival == pytest.approx(1.0 + 0.05 + 0.05)


def test_drop_tail_queue_refuses_what_does_not_fit_and_frees_space_as_packets_leave():
    d = link(bandwidth=8000, queue=2)
    results = [d.send(0.0, 100) for _ in range(3)]
    assert [r.dropped for r in results] == [None, None, "queue_full"]
    assert d.send(0.1, 100).dropped is None  # the first packet finished at 0.1
    assert d.dropped == {"outage": 0, "queue_full": 1, "loss": 0}


def test_jitter_adds_bounded_delay_and_never_reorders_one_direction():
    d = link(latency=0.1, jitter=0.05, seed=7)
    sends = [i * 0.001 for i in range(2000)]
    arrivals = [d.send(t, 60).arrival for t in sends]
    assert arrivals == sorted(arrivals)
    assert all(t + 0.1 <= a <= t + 0.1 + 0.05 + 0.001 * 60 for t, a in zip(sends, arrivals))
    assert statistics.mean(a - t for t, a in zip(sends, arrivals)) > 0.11  # jitter is real


@pytest.mark.parametrize("p, expected", [(0.0, 0), (1.0, 5000)])
def test_bernoulli_extremes(p, expected):
    d = link(loss=Bernoulli(p))
    assert sum(d.send(i, 10).dropped == "loss" for i in range(5000)) == expected


def test_bernoulli_rate_matches_p_and_is_reproducible_with_the_seed():
    def losses(seed):
        d = link(seed=seed, loss=Bernoulli(0.1))
        return [d.send(i * 0.01, 10).dropped is not None for i in range(40_000)]

    observed = losses(3)
    rate = sum(observed) / len(observed)
    assert abs(rate - 0.1) < 4 * (0.1 * 0.9 / len(observed)) ** 0.5
    assert losses(3) == observed and losses(4) != observed


def test_gilbert_elliott_loses_in_bursts_at_its_stationary_rate():
    model = GilbertElliott(p_good_to_bad=0.01, p_bad_to_good=0.25, loss_good=0.0, loss_bad=1.0)
    d = link(seed=11, loss=model)
    lost = [d.send(i * 0.001, 10).dropped == "loss" for i in range(200_000)]
    rate = sum(lost) / len(lost)
    assert rate == pytest.approx(model.mean_loss, rel=0.1)
    bursts, run = [], 0
    for was_lost in lost + [False]:
        if was_lost:
            run += 1
        elif run:
            bursts.append(run)
            run = 0
    assert statistics.mean(bursts) == pytest.approx(1 / 0.25, rel=0.1)  # bursts, not singles


def test_outage_drops_what_is_sent_into_it_and_what_is_in_flight_when_it_starts():
    d = link(latency=0.5, outages=(Outage(10.0, 20.0),))
    assert d.send(9.0, 10).arrival == 9.5
    assert d.send(9.8, 10).dropped == "outage"  # would arrive at 10.3, after the cut
    assert d.send(15.0, 10).dropped == "outage"
    assert d.send(20.0, 10).arrival == 20.5
    assert d.dropped["outage"] == 2


@pytest.mark.parametrize("params, message", [
    ({"bandwidth": 0}, "bandwidth must be positive"),
    ({"bandwidth": -5}, "bandwidth must be positive"),
    ({"latency": -0.1}, "latency and jitter"),
    ({"queue": 0}, "queue must hold"),
])
def test_impossible_parameters_are_refused_with_the_reason(params, message):
    with pytest.raises(ValueError, match=message):
        LinkParams(**params)


@pytest.mark.parametrize("make", [lambda: Bernoulli(1.5), lambda: Bernoulli(-0.1),
                                  lambda: GilbertElliott(0.1, 1.2), lambda: Outage(5, 5),
                                  lambda: GilbertElliott(0.1, 0.0)])
def test_impossible_loss_models_and_outages_are_refused(make):
    with pytest.raises(ValueError):
        make()
