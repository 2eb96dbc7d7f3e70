"""Workloads: when publishers publish, and payloads that can be traced to their message."""

from __future__ import annotations

import random
import statistics
from types import SimpleNamespace

import pytest

from mqttsim.netmodel.workload import make_payload, payload_size, publish_times, read_tag


def plan(**changes):
    base = dict(pattern="periodic", interval=1.0, burst=1, start=0.0, stop=None, count=None,
                message=None, size=SimpleNamespace(dist="fixed", mean=16, low=0, high=0))
    base.update(changes)
    return SimpleNamespace(**base)


def times(p, end=10.0, seed=1):
    return list(publish_times(p, end, random.Random(seed)))


def test_periodic_starts_at_start_and_stops_before_stop_or_the_end():
    assert times(plan(start=1.0, interval=2.0)) == [1.0, 3.0, 5.0, 7.0, 9.0]
    assert times(plan(start=1.0, interval=2.0, stop=6.0)) == [1.0, 3.0, 5.0]
    assert times(plan(count=2)) == [0.0, 1.0]


def test_once_publishes_one_message_and_burst_sends_groups():
    assert times(plan(pattern="once", start=4.0)) == [4.0]
    assert times(plan(pattern="burst", burst=3, interval=5.0, count=7)) == [0, 0, 0, 5, 5, 5]


def test_poisson_gaps_are_exponential_with_the_mean_interval():
    got = times(plan(pattern="poisson", interval=0.5), end=5000.0)
    gaps = [b - a for a, b in zip(got, got[1:])]
    assert statistics.mean(gaps) == pytest.approx(0.5, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(0.5, rel=0.1)  # exponential: sd = mean
    assert got == times(plan(pattern="poisson", interval=0.5), end=5000.0)  # same seed


def test_generated_payloads_have_the_drawn_size_and_a_readable_tag():
    payload = make_payload(plan(), "pub-3", 17, random.Random(1))
    assert len(payload) == 16 and payload.startswith(b"msg pub-3#17 ")
    assert read_tag(payload) == ("pub-3", 17)
    tiny = make_payload(plan(size=SimpleNamespace(dist="fixed", mean=2, low=0, high=0)),
                        "a-long-name", 123, random.Random(1))
    assert read_tag(tiny) == ("a-long-name", 123)  # never cut shorter than its tag


def test_fixed_messages_are_sent_as_given_and_carry_no_tag():
    payload = make_payload(plan(message="12"), "pub", 1, random.Random(1))
    assert payload == b"12" and read_tag(payload) is None


@pytest.mark.parametrize("payload", [b"msg #3", b"msg p#", b"msg p#3x", b"msg p#\xd9\xa3",
                                     b"12", b"", b"msgp#3"])
def test_payloads_that_are_not_tags_are_not_read_as_tags(payload):
    assert read_tag(payload) is None


def test_size_distributions_draw_within_their_bounds():
    rng = random.Random(2)
    uniform = [payload_size(SimpleNamespace(dist="uniform", low=10, high=20, mean=0), rng)
               for _ in range(500)]
    assert min(uniform) == 10 and max(uniform) == 20
    expo = [payload_size(SimpleNamespace(dist="exponential", low=5, high=0, mean=100), rng)
            for _ in range(5000)]
    assert min(expo) >= 5 and statistics.mean(expo) == pytest.approx(100, rel=0.1)
