"""Issue 13's stuck-subscriber story with real processes: ``mqttsim broker -v`` (and Debian's
mosquitto 2.0 as the reference), a raw-socket subscriber to ``#`` that never reads, a
paho-mqtt QoS 1 publisher at 100 msg/s and a well-behaved paho-mqtt subscriber.

Before the bounded queues, the publisher got no PUBACK after 518 messages for as long as the
stuck subscriber stayed connected, and the good subscriber stopped receiving too. The same
code, longer and with memory figures, is ``benchmarks/stuck_subscriber.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from support.mosquitto import require_mosquitto

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("stuck_subscriber",
                                               ROOT / "benchmarks" / "stuck_subscriber.py")
stuck = importlib.util.module_from_spec(_spec)
sys.modules["stuck_subscriber"] = stuck  # dataclasses look their module up there
_spec.loader.exec_module(stuck)

RATE, SECONDS, MAX_QUEUED = 400.0, 2.0, 100  # 800 messages: past the 518 that stalled it


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kind", ["mqttsim", "mosquitto"])
def test_a_stuck_subscriber_stalls_neither_the_publisher_nor_the_good_subscriber(
        tmp_path: Path, kind: str) -> None:
    if kind == "mosquitto":
        require_mosquitto()
    out = stuck.steady(kind, tmp_path, RATE, SECONDS, MAX_QUEUED)
    assert out.sent == RATE * SECONDS
    assert out.ack_ratio == 1.0, out  # every PUBACK arrived
    # At 400 msg/s a PUBACK comes every ~2.5 ms; the old hold stalled them for good (the
    # bound leaves room for a machine busy with other tests).
    assert out.longest_ack_gap_s < 3.0, out
    assert out.good_ratio == 1.0, out  # the good subscriber got every message
    assert out.dropping_logged, out  # "Outgoing messages are being dropped for client stuck"
    if kind == "mqttsim":
        # 800 messages of 1 KB: the stuck socket and the server's write buffer take some,
        # the queue 100; the rest are dropped for it alone, counted in the -v log.
        assert 0 < out.stuck_drops < out.sent, out
        assert out.stuck_drops >= out.sent - MAX_QUEUED - 400, out


@pytest.mark.timeout(90)
def test_broker_memory_stays_bounded_when_a_publisher_does_not_wait_for_pubacks(
        tmp_path: Path) -> None:
    """20,000 QoS 1 messages of 1 KB (20 MB) sent without waiting (raw socket), a
    subscriber that never reads: every PUBACK comes (the hold held ~all of them), the stuck
    client's queue stays at its limit, so the broker grows by far less than the 20 MB it
    was sent."""
    out = stuck.flood("mqttsim", tmp_path, 20_000, MAX_QUEUED, time_limit=40)
    assert out.sent == 20_000 and out.ack_ratio == 1.0, out
    assert out.stuck_drops >= 20_000 - MAX_QUEUED - 1000, out
    assert out.rss_growth_kb < 16_000, out
