"""Several brokers and bridges in the simulator (issue 18): one behaviour with the real broker.

The bridge is the same sans-IO Bridge the real broker runs (mqttsim.protocol.bridge), its
remote leg a simulated TCP connection over the scenario's links, and the outcomes table traces
every message end to end (mqttsim.scenario.outcomes_bridged).
"""

from __future__ import annotations

import pytest

from mqttsim.scenario import Scenario, ScenarioError, run
from simstories import outcomes_by_qos, publisher, subscriber

SATELLITE = "data/scenarios/edge-bridge-satellite.toml"


def two_brokers(clients: list[dict], bridge: dict, duration: float = 30.0,
                cloud: dict | None = None, link: dict | None = None) -> Scenario:
    return Scenario.from_dict({
        "name": "bridged", "duration": duration,
        "brokers": [{"name": "edge"}, {"name": "cloud", **(cloud or {})}],
        "links": [{"a": "edge", "b": "cloud", "latency": 0.05, **(link or {})}],
        "bridges": [{"name": "up", "broker": "edge", "remote": "cloud", **bridge}],
        "clients": clients})


def test_over_a_lossy_satellite_qos1_arrives_end_to_end_and_qos0_loses_some():
    """The effect the scenario teaches: across the bridge and a 60 s outage of the satellite,
    every QoS 1 reading reaches the dashboard (late, perhaps twice); QoS 0 readings from the
    outage are lost, and the table says where (in the bridge)."""
    res = run(Scenario.load(SATELLITE), seed=1)
    o = res.outcomes
    assert set(o["subscriber"]) == {"dashboard"}  # the bridge's legs are means, not ends
    by_qos = outcomes_by_qos(res)
    assert by_qos[1].get("lost", 0) == 0 and sum(by_qos[1].values()) == 140
    assert 0 < by_qos[0]["lost"] < 140
    lost = o[o["outcome"] == "lost"]
    assert set(lost["reason"]) <= {"bridge:qos0_offline", "bridge:qos0_connection_lost"}
    late = o[(o["qos_pub"] == 1) & (o["t_pub"].between(125, 175))]
    assert (late["latency"] > 5).all()  # held by the bridge through the outage
    assert (o["topic"].str.startswith("sensors/")).all()  # the topic as published
    got = res.received[res.received["subscriber"] == "dashboard"]
    assert got["topic"].str.startswith("site1/sensors/").all()  # remapped on the way


def test_same_seed_same_tables():
    sc = Scenario.load(SATELLITE).with_(duration=60.0)
    a, b = run(sc, seed=3), run(sc, seed=3)
    assert a.outcomes.equals(b.outcomes) and a.packets.equals(b.packets)


@pytest.mark.parametrize("version, try_private", [(4, True), (5, False)])
def test_a_both_bridge_carries_each_message_once_each_way(version, try_private):
    sc = two_brokers(
        [publisher("a", "chat/a", 1, 3, **{"subscribe": [{"topic": "chat/#", "qos": 1}]}),
         publisher("b", "chat/b", 1, 3, start=1.5, broker="cloud",
                   **{"subscribe": [{"topic": "chat/#", "qos": 1}]})],
        {"topics": [{"pattern": "chat/#", "direction": "both", "qos": 1}],
         "version": version, "try_private": try_private})
    res = run(sc, seed=1)
    o = res.outcomes
    assert len(o) == 12 and (o["outcome"] == "delivered").all(), o
    assert o["expected"].all()
    assert res.received.groupby("subscriber").size().to_dict() == {
        "a": 6, "b": 6, "local.up": 3, "up": 3}  # no echo: each leg got each message once


def test_the_bridge_reconnects_after_the_remote_broker_restarts():
    sc = two_brokers([publisher("s", "s/x", 1, 20, interval=1.0),
                      subscriber("d", "site/#", 1, broker="cloud")],
                     {"topics": [{"pattern": "s/#", "qos": 1, "remote_prefix": "site/"}],
                      "restart_timeout": [1, 4]},
                     cloud={"restarts": [{"at": 8.0, "down": 3.0}]})
    res = run(sc, seed=1)
    legs = res.connections[res.connections["client"] == "up"]
    assert len(legs) >= 2 and legs["t_up"].iloc[-1] > 11.0
    assert (res.outcomes["outcome"] != "lost").all()  # QoS 1 waited in the bridge


def test_other_backends_refuse_several_brokers_in_one_line():
    for backend in ("sockets", "kernel"):
        with pytest.raises(ValueError, match=rf"^the {backend} backend runs one broker and no "
                                             r"bridges; this scenario has 2 brokers and 1 "
                                             r"bridge\(s\): run it on the sim backend"):
            run(Scenario.load(SATELLITE), backend=backend)


@pytest.mark.parametrize("change, message", [
    ({"broker": {"name": "x"}}, r"set either \[broker\] .* or \[\[brokers\]\]"),
    ({"bridges": [{"name": "up", "broker": "edge", "remote": "moon",
                   "topics": [{"pattern": "#"}]}]}, r"bridges\[0\]\.remote = 'moon'"),
    ({"bridges": [{"name": "up", "broker": "edge", "remote": "edge",
                   "topics": [{"pattern": "#"}]}]}, r"another broker"),
    ({"bridges": [{"name": "up", "broker": "edge", "remote": "cloud", "topics": []}]},
     r"at least one topic"),
    ({"bridges": [{"name": "up", "broker": "edge", "remote": "cloud",
                   "topics": [{"pattern": "", "local_prefix": "a"}]}]}, r"needs both"),
    ({"links": []}, r"no path from the broker 'edge' to 'cloud'"),
    ({"clients": [{"name": "c", "broker": "mars"}]}, r"clients\[0\]\.broker = 'mars'"),
])
def test_bad_multi_broker_scenarios_are_one_line_errors(change, message):
    data = {"name": "x", "brokers": [{"name": "edge"}, {"name": "cloud"}],
            "links": [{"a": "edge", "b": "cloud"}],
            "bridges": [{"name": "up", "broker": "edge", "remote": "cloud",
                         "topics": [{"pattern": "#"}]}],
            "clients": [{"name": "c"}]}
    data.update(change)
    with pytest.raises(ScenarioError, match=message) as caught:
        Scenario.from_dict(data)
    assert "\n" not in str(caught.value)


def test_overrides_reach_the_bridge_and_the_brokers():
    sc = Scenario.load(SATELLITE).with_(**{"bridges.0.clean": True,
                                           "brokers.1.max_queued": 5})
    assert sc.bridges[0].clean and sc.other_brokers[0].max_queued == 5


def test_a_multi_broker_scenario_written_out_reads_back_the_same():
    import dataclasses

    coded = dataclasses.replace(Scenario.load(SATELLITE))  # no raw dict: written from fields
    written = coded.to_dict()
    assert [b["name"] for b in written["brokers"]] == ["edge", "cloud"]
    assert written["bridges"][0]["restart_timeout"] == [2.0, 10.0]
    assert Scenario.from_dict(written) == coded


def test_the_network_figure_and_the_reports_words_show_both_brokers_and_the_bridge():
    import matplotlib

    matplotlib.use("Agg")
    from mqttsim.lab.report_text import topology_sentences
    from mqttsim.lab.topology import topology, topology_graph

    sc = Scenario.load(SATELLITE)
    graph = topology_graph(sc)
    assert {n for n, kind in graph.nodes(data="kind") if kind == "broker"} == {"edge", "cloud"}
    topology(sc)  # draws (the one-broker column layout does not apply)
    assert "Bridge uplink from broker edge to broker cloud: sensors/# out at QoS 1." in \
        topology_sentences(sc)
