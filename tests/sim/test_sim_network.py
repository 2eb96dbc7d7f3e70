"""The network under the engines: shared links, queues, bursty loss, jitter, retained."""

from __future__ import annotations

import pytest

from simstories import outcomes_by_qos, publisher, run, scenario, subscriber

SHARED = {"routers": ["ap"],
          "links": [{"a": "ap", "b": "broker", "bandwidth": 80_000, "latency": 0.005}]}


def test_clients_behind_one_router_queue_behind_each_other_on_its_uplink():
    pubs = [publisher(f"p{i}", "t", 1, 1, start=2.0, size=1000, attach="ap",
                      link={"latency": 0.001}) for i in (1, 2)]
    res = run(scenario([subscriber("sub", "t", link={"latency": 0.001})] + pubs,
                       duration=5, **SHARED), seed=1)
    p = res.packets
    publishes = p[(p["type"] == "PUBLISH") & (p["dst"] == "broker")].sort_values("t_recv")
    first, second = publishes.iloc[0], publishes.iloc[1]
    assert first["t"] == second["t"] == 2.0  # sent at the same instant...
    # ...the second waits for the first to be serialized on the 80 kbit/s uplink: its
    # MQTT bytes plus 40 bytes of TCP/IP header and Linux's 12-byte timestamp option.
    serialization = (first["bytes"] + 40 + 12) * 8 / 80_000
    assert second["t_recv"] - first["t_recv"] == pytest.approx(serialization)
    uplink = res.links.set_index("link").loc["ap->broker"]
    assert uplink["utilisation"] > 0 and uplink["bandwidth"] == 80_000


def test_a_full_drop_tail_queue_drops_segments_and_tcp_still_delivers_everything():
    links = [{"a": "ap", "b": "broker", "bandwidth": 200_000, "latency": 0.005, "queue": 2}]
    pubs = [publisher(f"p{i}", f"t/{i}", 1, 10, interval=0.5, start=2.0, size=500,
                      attach="ap") for i in range(6)]
    res = run(scenario([subscriber("sub", "t/#", qos=1)] + pubs, duration=60,
                       routers=["ap"], links=links, link={"latency": 0.001}), seed=1)
    assert (res.segments["dropped"] == "queue_full").sum() > 0
    assert res.links.set_index("link").loc["ap->broker", "dropped_queue"] > 0
    assert outcomes_by_qos(res) == {1: {"delivered": 60}}
    assert res.connections["t_down"].isna().all()


def test_bursty_gilbert_elliott_loss_is_recovered_by_tcp():
    gilbert = {"p_good_to_bad": 0.05, "p_bad_to_good": 0.3, "loss_bad": 1.0}
    res = run(scenario([subscriber("sub", "t/#", qos=2)]
                       + [publisher(f"p{q}", f"t/{q}", q, 20) for q in (0, 1, 2)],
                       duration=80, link={"latency": 0.02, "gilbert": gilbert}), seed=3)
    drops = res.segments[res.segments["dropped"] == "loss"]
    assert len(drops) > 0
    assert res.segments["retransmission"].sum() >= len(drops[drops["kind"] == "data"])
    for counts in outcomes_by_qos(res).values():
        assert set(counts) == {"delivered"}


def test_jitter_never_reorders_segments_within_one_direction():
    res = run(scenario([subscriber("sub", "t")] + [publisher("p", "t", 1, 50, interval=0.05)],
                       duration=10, link={"latency": 0.05, "jitter": 0.04}), seed=2)
    s = res.segments.dropna(subset=["t_arrival"])
    for _, direction in s.groupby(["conn", "src"]):
        arrivals = list(direction.sort_values("t", kind="stable")["t_arrival"])
        assert arrivals == sorted(arrivals)
    delays = s["t_arrival"] - s["t"]
    assert delays.max() > 0.05 + 0.01 and delays.min() >= 0.05  # jitter was applied


def test_a_retained_message_reaches_a_subscriber_that_arrives_later():
    pub = publisher("pub", "status", 1, 1, start=1.0, retain=True, message="on")
    late = subscriber("late", "status", qos=1, connect_at=5.0)
    res = run(scenario([pub, late], duration=10, link={"latency": 0.01}), seed=1)
    got = res.received
    assert list(zip(got["subscriber"], got["payload"], got["retain"])) == [("late", b"on", True)]
    row = res.outcomes.iloc[0]
    assert row["outcome"] == "delivered" and not row["expected"]  # retained, not routed live
