"""A link's fast paths give the general model's answers, draw for draw.

Links without a queue bound or outages (most of them) skip those checks; links without
bandwidth and jitter also skip serialization. Each fast path must return the same arrival
times, drops, waits and counters as ``LinkDirection.arrival`` on the same random stream.
"""

from __future__ import annotations

import random

import pytest

from mqttsim.netmodel import Bernoulli, GilbertElliott, LinkDirection, LinkParams, Outage


def _trace(d: LinkDirection, general: bool) -> list:
    arrival = (lambda now, size: LinkDirection.arrival(d, now, size)) if general else d.arrival
    sends = [(i * 0.0007 + (0.5 if i % 7 == 0 else 0.0), 40 + 13 * (i % 11)) for i in range(400)]
    sends.sort()
    out = [(arrival(now, size), d.last_dropped, d.last_queued) for now, size in sends]
    return out + [(d.sent, d.delivered, d.bytes_sent, dict(d.dropped))]


@pytest.mark.parametrize("params", [
    {"latency": 0.001, "loss": Bernoulli(0.2)},
    {"latency": 0.02},
    {"latency": 0.001, "bandwidth": 200_000, "loss": Bernoulli(0.1)},
    {"latency": 0.001, "jitter": 0.004, "loss": Bernoulli(0.1)},
], ids=["plain-lossy", "plain", "bandwidth", "jitter"])
def test_fast_paths_answer_as_the_general_model(params: dict) -> None:
    fast = LinkDirection(LinkParams(**params), random.Random(5))
    general = LinkDirection(LinkParams(**params), random.Random(5))
    assert "arrival" in vars(fast)  # a fast path is in use
    assert _trace(fast, general=False) == _trace(general, general=True)


@pytest.mark.parametrize("params", [
    {"latency": 0.001, "queue": 3, "bandwidth": 100_000},
    {"latency": 0.001, "outages": (Outage(0.1, 0.2),)},
    {"latency": 0.001, "loss": GilbertElliott(0.1, 0.5)},
], ids=["queue", "outage", "gilbert-elliott"])
def test_links_the_fast_paths_do_not_fit_keep_the_general_model(params: dict) -> None:
    d = LinkDirection(LinkParams(**params), random.Random(5))
    assert "arrival" not in vars(d)
