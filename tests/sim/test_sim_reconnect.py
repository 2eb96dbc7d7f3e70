"""The simulated clients' reconnect and offline buffer: the same options, with the same
meaning, as ``mqttsim.net.client.Client`` (tests/net/test_reconnect.py): ``reconnect``,
``reconnect_delay`` doubled per failed attempt up to ``reconnect_max_delay``
(``reconnect_delay()`` in mqttsim.protocol.client_config, which both call), ``max_queued``
and ``queue_qos0_offline``; drops are counted in the drops table with their reason.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol.client_config import reconnect_delay
from simstories import publisher, run, scenario, subscriber

RESTART = {"restarts": [{"at": 10.0, "down": 5.0}]}


def opened(res, client: str) -> list[float]:
    c = res.connections
    return [round(t, 6) for t in c[c["client"] == client]["t_open"]]


def test_reconnect_attempts_follow_the_shared_back_off_schedule():
    sub = subscriber("sub", "t", qos=1, reconnect_delay=1.0, reconnect_max_delay=4.0)
    res = run(scenario([sub], duration=30, link={"latency": 0.001}, broker=RESTART), seed=1)
    # Broken at 10; refused (the broker is down until 15) at 11 and 13; up at 17.
    expected, t = [0.0], 10.0
    for failures in range(3):
        t += reconnect_delay(1.0, 4.0, failures)
        expected.append(t)
    assert expected == [0.0, 11.0, 13.0, 17.0]
    # Each wait starts when the client learns of the failure: a link latency (1 ms) later.
    assert opened(res, "sub") == pytest.approx(expected, abs=0.01)
    c = res.connections
    assert list(c[c["client"] == "sub"]["reason"].fillna("up")) == \
        ["broker_restart", "refused", "refused", "up"]


def test_reconnect_false_stays_away_after_the_connection_broke():
    sub = subscriber("sub", "t", qos=1, reconnect=False)
    pub = publisher("pub", "t", 1, 10, interval=2.0, start=1.0)
    res = run(scenario([sub, pub], duration=30, link={"latency": 0.001}, broker=RESTART),
              seed=1)
    assert opened(res, "sub") == [0.0]
    got = res.received[res.received["subscriber"] == "sub"]
    assert len(got) == 5 and (got["t"] < 10.0).all()  # 1, 3, ... 9 s; nothing after
    assert len(opened(res, "pub")) > 1  # the publisher (reconnect = true) came back


def test_offline_buffer_is_bounded_and_its_drops_are_counted():
    # Down from 10 to 15, back at 17 (the schedule above): 7 QoS 1 publishes at 10.5..16.5
    # meet a buffer of 3; QoS 0 without queue_qos0_offline is not kept while offline.
    pub1 = publisher("pub1", "q1", 1, 20, interval=1.0, start=0.5, max_queued=3,
                     reconnect_max_delay=4.0)
    pub0 = publisher("pub0", "q0", 0, 20, interval=1.0, start=0.5, reconnect_max_delay=4.0)
    keep0 = publisher("keep0", "k0", 0, 20, interval=1.0, start=0.5, reconnect_max_delay=4.0,
                      queue_qos0_offline=True)
    sub = subscriber("sub", "#", qos=1, clean=False, reconnect_max_delay=4.0)
    res = run(scenario([pub1, pub0, keep0, sub], duration=40, link={"latency": 0.001},
                       broker=RESTART), seed=1)
    drops = res.drops[res.drops["side"] == "client"]
    by = drops.groupby(["client", "reason"]).size().to_dict()
    assert by == {("pub1", "queue_full"): 4, ("pub0", "qos0_offline"): 7}
    outcomes = res.outcomes[res.outcomes["expected"]]
    delivered = outcomes[outcomes["outcome"] != "lost"].groupby("publisher").size().to_dict()
    assert delivered == {"pub1": 16, "pub0": 13, "keep0": 20}


def test_a_refused_connack_ends_the_reconnecting_as_it_ends_mosquitto_sub():
    # MQTT 3.1 client ids are 1-23 characters: the broker answers "identifier rejected".
    sub = subscriber("sub", "t", qos=1, version=3, client_id="x" * 30)
    res = run(scenario([sub], duration=20, link={"latency": 0.001}), seed=1)
    c = res.connections
    assert len(c) == 1 and c.iloc[0]["reason"] == "refused"
    assert "identifier rejected" in c.iloc[0]["detail"]
    assert list(res.packets["type"]) == ["CONNECT", "CONNACK"]  # and no second attempt
