"""Scenario files load into exactly what they say, and every mistake is refused before a run
with a message naming the file, the dotted key, the value and what is allowed."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import pytest

from mqttsim.netmodel.link import Bernoulli, GilbertElliott, LinkParams, Outage
from mqttsim.scenario import load
from mqttsim.scenario.load import ScenarioError, apply_overrides, from_dict, load_file, parse_set
from mqttsim.protocol.bridge import BridgeTopic
from mqttsim.scenario.model import (BridgeSpec, BrokerSpec, ClientSpec, Crash, EdgeSpec, LinkSpec,
                                    MiddleboxSpec, PublishSpec, Scenario, SizeSpec,
                                    SubscriptionSpec, TcpSpec,
                                    WillSpec)

SCENARIOS = Path(__file__).resolve().parents[2] / "data" / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))


def two_clients(**top) -> dict:
    """A small valid scenario: `sub` subscribes to `t`, `pub` publishes on it."""
    return {"clients": [{"name": "sub", "subscribe": ["t"]},
                        {"name": "pub", "publish": {"topic": "t"}}], **top}


def refusal(data: dict) -> str:
    with pytest.raises(ScenarioError) as info:
        from_dict(data)
    return str(info.value)


# --- Shipped scenarios

def test_the_five_shipped_scenarios_are_there():
    assert {p.stem for p in SHIPPED} >= {"seed-sensor", "lossy-2g", "satellite",
                                         "intermittent", "classroom"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_loads_and_round_trips(path):
    sc = Scenario.load(path)
    assert sc.name == path.stem and sc.source == str(path)
    assert sc.description and path.read_text().startswith("# ")  # it explains itself
    assert from_dict(sc.to_dict(), sc.source) == sc


def test_seed_sensor_is_mosquitto_sub_and_pub_with_their_defaults():
    sc = load_file(SCENARIOS / "seed-sensor.toml")
    lan = LinkSpec(LinkParams(latency=0.001), LinkParams(latency=0.001))
    assert sc.clients == (
        ClientSpec(name="sub", client_id="sub", version=4, keepalive=60, clean=True,
                   subscribe=(SubscriptionSpec("sensor", qos=0),), link=lan, connect_at=0.0),
        ClientSpec(name="pub", client_id="pub", version=4, keepalive=60, clean=True,
                   publish=(PublishSpec(topic="sensor", pattern="once", start=1.0,
                                        message="12", qos=0, retain=False),),
                   link=lan, connect_at=1.0, disconnect_at=2.0),
    )
    assert (sc.duration, sc.transport, sc.broker, sc.tcp) == (5.0, "tcp", BrokerSpec(),
                                                               TcpSpec())
    assert (sc.routers, sc.links) == ((), ())


def test_lossy_2g_is_slow_and_lossy_for_the_sensors_but_not_the_dashboard():
    sc = load_file(SCENARIOS / "lossy-2g.toml")
    fields = [c for c in sc.clients if c.name.startswith("field-")]
    assert len(fields) >= 2
    up, down = fields[0].link.up, fields[0].link.down
    assert (up.bandwidth, down.bandwidth) == (40_000, 80_000)
    assert up.latency + down.latency == pytest.approx(0.6) and up.loss == Bernoulli(0.05)
    [publish] = fields[0].publish
    assert (publish.qos, publish.interval, publish.stop) == (1, 2.0, 280.0) < (2, 3, sc.duration)
    [dashboard] = [c for c in sc.clients if c.name == "dashboard"]
    for direction in (dashboard.link.up, dashboard.link.down):  # its link wins over [link.up]
        assert direction.bandwidth >= 10_000_000 and direction.loss == Bernoulli(0.0)
    assert dashboard.subscribe == (SubscriptionSpec("field/#", qos=1),)


def test_satellite_has_a_geostationary_round_trip_and_both_qos_levels():
    sc = load_file(SCENARIOS / "satellite.toml")
    station = sc.clients[0].link
    assert station.up.latency + station.down.latency == pytest.approx(0.6)
    assert station.up.bandwidth == 512_000 and station.up.loss == Bernoulli(0.01)
    assert {p.qos for c in sc.clients for p in c.publish} == {1, 2}
    assert sc.duration == 300


def test_intermittent_outages_outlast_the_keepalive_and_spare_the_subscriber():
    sc = load_file(SCENARIOS / "intermittent.toml")
    publishers = [c for c in sc.clients if c.publish]
    assert {c.publish[0].qos for c in publishers} == {0, 1, 2}
    for c in sc.clients:
        assert c.keepalive == 10 and c.clean is False
    for c in publishers:
        outages = c.link.up.outages
        assert outages == (Outage(60, 90), Outage(150, 185))
        assert all(o.end - o.start > 1.5 * c.keepalive for o in outages)
        assert (c.publish[0].interval, c.publish[0].stop) == (1.0, 220.0)
    [monitor] = [c for c in sc.clients if c.subscribe]
    assert monitor.link.up.outages == monitor.link.down.outages == ()
    assert sc.duration == 240


def test_classroom_puts_a_hundred_students_behind_one_access_point():
    sc = load_file(SCENARIOS / "classroom.toml")
    students = [c for c in sc.clients if c.name.startswith("student-")]
    assert len(students) == 100 and {c.attach for c in students} == {"ap"}
    assert students[99].name == students[99].client_id == "student-100"
    assert sc.routers == ("ap",)
    [edge] = sc.links
    assert (edge.a, edge.b) == ("ap", "broker")
    assert (edge.link.up.bandwidth, edge.link.up.latency, edge.link.up.queue) == (2e6, .005, 50)
    [teacher] = [c for c in sc.clients if c.name == "teacher"]
    assert teacher.attach == "broker" and teacher.subscribe[0].topic == "class/#"
    assert students[0].link.up.latency == 0.002 and students[0].publish[0].qos == 1


# --- What the loader builds

def test_top_level_defaults_reach_every_client_publish_and_subscription():
    sc = from_dict(two_clients(version="5.0", qos=2, keepalive=30, clean=False, retain=True))
    sub, pub = sc.clients
    assert (sub.version, sub.keepalive, sub.clean) == (5, 30, False)
    assert sub.subscribe == (SubscriptionSpec("t", 2),)
    assert (pub.publish[0].qos, pub.publish[0].retain) == (2, True)


def test_what_a_client_or_publish_sets_beats_the_top_level_default():
    sc = from_dict({"qos": 2, "version": "3.1", "clients": [
        {"name": "c", "version": 5, "keepalive": 5,
         "subscribe": [{"topic": "a", "qos": 0}, "b"],
         "publish": [{"topic": "a", "qos": 1}, {"topic": "b"}]}]})
    [c] = sc.clients
    assert (c.version, c.keepalive) == (5, 5)
    assert c.subscribe == (SubscriptionSpec("a", 0), SubscriptionSpec("b", 2))
    assert [p.qos for p in c.publish] == [1, 2]


def test_model_defaults_apply_when_nothing_is_said():
    sc = from_dict({"clients": [{"name": "c"}]})
    assert sc.clients == (ClientSpec(name="c", client_id="c"),)
    assert (sc.name, sc.duration, sc.transport, sc.source) == ("scenario", 60.0, "tcp", None)
    assert sc.raw["name"] == "scenario"  # filled in, so overrides and to_dict keep it


def test_an_integer_is_accepted_where_a_float_is_expected():
    sc = from_dict(two_clients(duration=5, link={"latency": 1}))
    assert sc.duration == 5.0 and isinstance(sc.duration, float)
    assert isinstance(sc.clients[0].link.up.latency, float)


@pytest.mark.parametrize("written, level", [(3, 3), (4, 4), (5, 5), ("3.1", 3), ("3.1.1", 4),
                                            ("5", 5), ("5.0", 5)])
def test_versions_are_protocol_levels(written, level):
    assert from_dict(two_clients(version=written)).clients[0].version == level


def test_count_expands_a_client_table_into_numbered_clients():
    sc = from_dict({"clients": [{"name": "s", "count": 3, "keepalive": 5},
                                {"name": "p", "client_id": "dev", "count": 2},
                                {"name": "anon", "client_id": "", "count": 2}]})
    assert [c.name for c in sc.clients] == ["s-1", "s-2", "s-3", "p-1", "p-2", "anon-1",
                                            "anon-2"]
    assert [c.client_id for c in sc.clients] == ["s-1", "s-2", "s-3", "dev-1", "dev-2", "", ""]
    assert {c.keepalive for c in sc.clients[:3]} == {5}
    assert from_dict({"clients": [{"name": "solo"}]}).clients[0].name == "solo"


def test_a_client_link_is_the_scenario_link_overridden_key_by_key_then_by_direction():
    sc = from_dict({
        "link": {"latency": 0.1, "jitter": 0.01, "loss": 0.2, "up": {"bandwidth": 1000},
                 "down": {"bandwidth": 2000, "latency": 0.3}},
        "clients": [{"name": "plain"},
                    {"name": "own", "link": {"latency": 0.05, "down": {"queue": 5}}},
                    {"name": "wired", "link": {"bandwidth": 1e8}}]})
    plain, own, wired = (c.link for c in sc.clients)
    assert plain == LinkSpec(
        LinkParams(bandwidth=1000, latency=0.1, jitter=0.01, loss=Bernoulli(0.2)),
        LinkParams(bandwidth=2000, latency=0.3, jitter=0.01, loss=Bernoulli(0.2)))
    assert own == LinkSpec(
        LinkParams(bandwidth=1000, latency=0.05, jitter=0.01, loss=Bernoulli(0.2)),
        LinkParams(bandwidth=2000, latency=0.05, jitter=0.01, loss=Bernoulli(0.2), queue=5))
    assert wired.up.bandwidth == wired.down.bandwidth == 1e8  # the client's word wins


def test_gilbert_elliott_loss_and_replacing_one_loss_model_with_the_other():
    burst = {"p_good_to_bad": 0.01, "p_bad_to_good": 0.25}
    sc = from_dict({"link": {"loss": 0.1}, "clients": [
        {"name": "bursty", "link": {"up": {"gilbert": burst}}},
        {"name": "full", "link": {"gilbert": {**burst, "loss_good": 0.001, "loss_bad": 0.5}}}]})
    bursty, full = (c.link for c in sc.clients)
    assert bursty.up.loss == GilbertElliott(0.01, 0.25, 0.0, 1.0)
    assert bursty.down.loss == Bernoulli(0.1)
    assert full.up.loss == full.down.loss == GilbertElliott(0.01, 0.25, 0.001, 0.5)
    assert full.up.loss.mean_loss == pytest.approx(0.001 * 25 / 26 + 0.5 / 26)


def test_infinite_bandwidth_means_no_limit_so_a_client_can_lift_the_scenario_one():
    sc = from_dict(two_clients(link={"bandwidth": 1000, "queue": 3, "outages": [[1, 2]]}))
    assert sc.clients[0].link.up == LinkParams(bandwidth=1000, queue=3, outages=(Outage(1, 2),))
    lifted = from_dict({"link": {"bandwidth": 1000},
                        "clients": [{"name": "c", "link": {"bandwidth": float("inf")}}]})
    assert lifted.clients[0].link.up.bandwidth is None


def test_routers_and_links_build_the_network_behind_the_clients():
    sc = from_dict({"routers": ["ap", "wan"], "broker": {"name": "hub"},
                    "links": [{"a": "ap", "b": "wan", "latency": 0.01, "up": {"queue": 4}},
                              {"a": "wan", "b": "hub", "bandwidth": 1e6}],
                    "clients": [{"name": "c", "attach": "ap"}, {"name": "d"}]})
    assert sc.links == (
        EdgeSpec("ap", "wan", LinkSpec(LinkParams(latency=0.01, queue=4),
                                       LinkParams(latency=0.01))),
        EdgeSpec("wan", "hub", LinkSpec(LinkParams(bandwidth=1e6), LinkParams(bandwidth=1e6))))
    assert [c.attach for c in sc.clients] == ["ap", "hub"]  # by default, the broker


def test_publish_workloads_sizes_wills_crashes_tcp_and_broker():
    sc = from_dict({
        "transport": "datagram", "duration": 100,
        "tcp": {"mss": 536, "window": 8192, "min_rto": 0.5},
        "broker": {"max_queued": 10, "queue_qos0": True, "restarts": [{"at": 30, "down": 5}]},
        "clients": [{"name": "c", "retry_policy": "timer", "ping_timeout": 3,
                     "crashes": [{"at": 10, "down": 2}, {"at": 12, "down": 1}],
                     "will": {"topic": "status/c", "message": "gone", "qos": 1},
                     "publish": [
                         {"topic": "a", "pattern": "burst", "burst": 5, "interval": 10,
                          "size": {"dist": "uniform", "low": 10, "high": 20}},
                         {"topic": "b", "pattern": "poisson", "interval": 0.5, "count": 7,
                          "size": {"dist": "exponential", "mean": 100.5, "low": 8}},
                         {"topic": "c", "size": {"dist": "fixed", "mean": 64}, "start": 1,
                          "stop": 2},
                         {"topic": "d", "pattern": "once", "interval": 0, "size": 0}]}]})
    [c] = sc.clients
    assert [p.size for p in c.publish] == [SizeSpec("uniform", 15, 10, 20),
                                           SizeSpec("exponential", 100.5, 8),
                                           SizeSpec("fixed", 64), SizeSpec("fixed", 0)]
    assert (c.publish[0].burst, c.publish[1].count, c.publish[2].stop) == (5, 7, 2.0)
    assert c.will == WillSpec("status/c", "gone", 1, False)
    assert c.crashes == (Crash(10, 2), Crash(12, 1))
    assert (c.retry_policy, c.ping_timeout) == ("timer", 3.0)
    assert sc.tcp == TcpSpec(mss=536, window=8192, min_rto=0.5)
    assert sc.broker == BrokerSpec(max_queued=10, queue_qos0=True, restarts=(Crash(30, 5),))
    assert sc.transport == "datagram"


def test_an_empty_client_id_is_fine_with_a_clean_session_or_in_mqtt_5():
    for client in ({"clean": True}, {"clean": False, "version": 5}):
        sc = from_dict({"clients": [{"name": "c", "client_id": "", **client}]})
        assert sc.clients[0].client_id == ""


def test_the_format_knows_every_field_of_the_model():
    """A field added to the model must be readable from a file (and nothing else is)."""
    def names(cls):
        return {f.name for f in dataclasses.fields(cls)}

    assert set(load.CLIENT) == names(ClientSpec) | {"count"}
    assert set(load.PUBLISH) == names(PublishSpec)
    assert set(load.SUBSCRIPTION) == names(SubscriptionSpec)
    assert set(load.WILL) == names(WillSpec)
    assert set(load.BROKER) == names(BrokerSpec)
    assert set(load.TCP) == names(TcpSpec)
    assert set(load.SIZE) == names(SizeSpec) and set(load.CRASH) == names(Crash)
    assert set(load.DIRECTION) == names(LinkParams) | {"gilbert"}
    # [[brokers]] holds broker and other_brokers; restart_timeout is [base, cap]
    assert set(load.MIDDLEBOX) == names(MiddleboxSpec)
    assert set(load.SCHEMA) == (names(Scenario) - {"source", "raw", "other_brokers"}) | {
        "version", "qos", "keepalive", "clean", "retain", "link", "brokers", "middlebox"}
    assert set(load.BRIDGE) == (names(BridgeSpec) - {"restart_base", "restart_cap"}) | {
        "restart_timeout"}
    assert set(load.BRIDGE_TOPIC) == {"pattern", "direction", "qos", "local_prefix",
                                      "remote_prefix"} == names(BridgeTopic)


# --- Refusals: file, dotted key, value, what is allowed

REFUSALS = [
    # unknown keys, with the closest known one
    (two_clients(duraton=5), ["duraton = 5", "unknown key", "did you mean 'duration'",
                              "allowed keys:"]),
    ({"clients": [{"name": "p", "publish": [{"topic": "t", "qoss": 1}]}]},
     ["clients[0].publish[0].qoss = 1", "did you mean 'qos'"]),
    (two_clients(link={"up": {"latncy": 1}}), ["link.up.latncy = 1", "did you mean 'latency'"]),
    ({"clients": [{"name": "p", "publish": {"topic": "t", "size": {"dist": "fixed",
                                                                   "high": 3}}}]},
     ["clients[0].publish.size.high = 3", "dist = 'fixed'", "allowed keys: dist, mean"]),
    # types: true/false is not an integer; text is not a number; a table must be a table
    ({"clients": [{"name": "c", "keepalive": True}]},
     ["clients[0].keepalive = True", "an integer from 0 to 65535", "not true/false"]),
    (two_clients(link={"latency": "fast"}), ["link.latency = 'fast'", "a number >= 0",
                                             "not a string"]),
    (two_clients(link=5), ["link = 5", "expected the [link] table"]),
    (two_clients(clean="yes"), ["clean = 'yes'", "true or false"]),
    ({"clients": [{"name": 7}]}, ["clients[0].name = 7", "a non-empty string"]),
    # links
    (two_clients(link={"loss": 1.5}), ["link.loss = 1.5", "from 0 to 1"]),
    (two_clients(broker={"retry_policy": "sometimes"}),
     ["broker.retry_policy = 'sometimes'", "on_reconnect", "timer"]),
    (two_clients(broker={"retry_interval": 0}), ["broker.retry_interval = 0", "greater than 0"]),
    ({"clients": [{"name": "c", "link": {"up": {"loss": -0.1}}}]},
     ["clients[0].link.up.loss = -0.1", "from 0 to 1"]),
    (two_clients(link={"bandwidth": -1}), ["link.bandwidth = -1", "greater than 0",
                                           "bits per second"]),
    (two_clients(link={"latency": -0.1}), ["link.latency = -0.1", ">= 0"]),
    (two_clients(link={"jitter": -1}), ["link.jitter = -1", ">= 0"]),
    (two_clients(link={"queue": 0}), ["link.queue = 0", ">= 1"]),
    (two_clients(link={"loss": 0.1, "gilbert": {"p_good_to_bad": 0.1, "p_bad_to_good": 0.1}}),
     ["link.gilbert = {", "either loss", "or gilbert"]),
    (two_clients(link={"gilbert": {"p_good_to_bad": 0.1, "p_bad_to_good": 0}}),
     ["link.gilbert.p_bad_to_good = 0", "never recover"]),
    (two_clients(link={"gilbert": {"p_good_to_bad": 0.1}}),
     ["link.gilbert.p_bad_to_good: missing", "from 0 to 1"]),
    (two_clients(link={"outages": [[1, 2], [5, 3]]}),
     ["link.outages[1] = [5, 3]", "0 <= start < end"]),
    (two_clients(link={"outages": [[-1, 2]]}), ["link.outages[0] = [-1, 2]", "0 <= start"]),
    # qos, choices
    ({"clients": [{"name": "p", "publish": [{"topic": "t", "qos": 3}]}]},
     ["clients[0].publish[0].qos = 3", "an integer from 0 to 2"]),
    (two_clients(qos=-1), ["qos = -1", "from 0 to 2"]),
    ({"clients": [{"name": "s", "subscribe": [{"topic": "t", "qos": 5}]}]},
     ["clients[0].subscribe[0].qos = 5", "from 0 to 2"]),
    ({"clients": [{"name": "p", "publish": {"topic": "t", "pattern": "sometimes"}}]},
     ["clients[0].publish.pattern = 'sometimes'", "'once', 'periodic', 'poisson', 'burst'"]),
    (two_clients(transport="udp"), ["transport = 'udp'", "'tcp', 'datagram'"]),
    ({"clients": [{"name": "p", "publish": {"topic": "t", "size": {"dist": "normal"}}}]},
     ["clients[0].publish.size.dist = 'normal'", "'fixed', 'uniform', 'exponential'"]),
    (two_clients(version=6), ["version = 6", "'3.1.1'"]),
    ({"clients": [{"name": "c", "retry_policy": "always"}]},
     ["clients[0].retry_policy = 'always'", "'on_reconnect', 'timer'"]),
    # topics, by the protocol's own rules
    ({"clients": [{"name": "s", "subscribe": ["ok", "a/#/b"]}]},
     ["clients[0].subscribe[1] = 'a/#/b'", "not a valid topic filter", "MQTT-4.7.1-2"]),
    ({"clients": [{"name": "s", "subscribe": [{"topic": ""}]}]},
     ["clients[0].subscribe[0].topic = ''", "MQTT-4.7.3-1"]),
    ({"clients": [{"name": "p", "publish": [{"topic": "a/+"}]}]},
     ["clients[0].publish[0].topic = 'a/+'", "not a valid topic name", "MQTT-4.7.1-1"]),
    ({"clients": [{"name": "s", "version": 5, "subscribe": ["$share//t"]}]},
     ["clients[0].subscribe[0] = '$share//t'", "MQTT-4.8.2-1"]),
    ({"clients": [{"name": "c", "will": {"topic": "a/#"}}]},
     ["clients[0].will.topic = 'a/#'", "MQTT-4.7.1-1"]),
    # names and topology
    ({"clients": [{"name": "a"}, {"name": "a"}]},
     ["clients[1].name = 'a'", "already used by the client at clients[0]"]),
    ({"clients": [{"name": "s", "count": 2}, {"name": "s-2"}]},
     ["clients[1].name = 's-2'", "already used by the client at clients[0]"]),
    ({"clients": [{"name": "s-1"}, {"name": "s", "count": 2}]},
     ["clients[1].name = 's'", "'s-1' (from count)"]),
    ({"routers": ["ap"], "links": [{"a": "ap", "b": "broker"}], "clients": [{"name": "ap"}]},
     ["clients[0].name = 'ap'", "already used by a router"]),
    ({"routers": ["broker"], "clients": [{"name": "c"}]},
     ["routers[0] = 'broker'", "already used by the broker"]),
    ({"clients": [{"name": "c", "attach": "nowhere"}]},
     ["clients[0].attach = 'nowhere'", "no such node", "the broker ('broker')"]),
    ({"routers": ["ap"], "links": [{"a": "ap", "b": "wan"}], "clients": [{"name": "c"}]},
     ["links[0].b = 'wan'", "no such node", "'broker', 'ap'"]),
    ({"routers": ["ap"], "links": [{"a": "ap", "b": "ap"}], "clients": [{"name": "c"}]},
     ["links[0].b = 'ap'", "a node other than a"]),
    ({"routers": ["ap"], "links": [{"a": "ap", "b": "broker"}, {"a": "broker", "b": "ap"}],
      "clients": [{"name": "c"}]}, ["links[1].b = 'ap'", "a second link", "links[0]"]),
    ({"routers": ["ap", "wan"], "links": [{"a": "ap", "b": "wan"}],
      "clients": [{"name": "ok"}, {"name": "c", "attach": "ap"}]},
     ["clients[1].attach = 'ap'", "no path from 'ap' to the broker 'broker'"]),
    ({"routers": ["ap", "lonely"], "links": [{"a": "ap", "b": "broker"}],
      "clients": [{"name": "c"}]}, ["routers[1] = 'lonely'", "no [[links]] entry"]),
    (two_clients(routers=["ap", ""]), ["routers[1] = ''", "non-empty string"]),
    # sessions, timing, workloads
    ({"clients": [{"name": "c", "client_id": "", "clean": False}]},
     ["clients[0].client_id = ''", "non-empty client_id", "clean = false", "MQTT-3.1.3-7"]),
    ({"clients": [{"name": "p", "publish": {"topic": "t", "interval": 0}}]},
     ["clients[0].publish.interval = 0", "greater than 0"]),
    ({"clients": [{"name": "p", "publish": {"topic": "t", "pattern": "poisson",
                                            "interval": -1}}]},
     ["clients[0].publish.interval = -1", "greater than 0"]),
    ({"clients": [{"name": "p", "publish": {"topic": "t", "pattern": "burst", "burst": 0}}]},
     ["clients[0].publish.burst = 0", ">= 1"]),
    ({"clients": [{"name": "p", "publish": {"topic": "t", "start": 10, "stop": 10}}]},
     ["clients[0].publish.stop = 10", "greater than 10.0"]),
    ({"clients": [{"name": "p", "publish": {"topic": "t", "message": "x", "size": 3}}]},
     ["clients[0].publish.size = 3", "either message or size"]),
    ({"clients": [{"name": "p", "publish": {"topic": "t", "size": {"dist": "uniform",
                                                                   "low": 9, "high": 3}}}]},
     ["clients[0].publish.size.high = 3", "from 9 to"]),
    ({"clients": [{"name": "p", "publish": {"topic": "t", "size": -4}}]},
     ["clients[0].publish.size = -4", "bytes"]),
    ({"clients": [{"name": "p", "publish": {"qos": 1}}]},
     ["clients[0].publish.topic: missing", "expected a topic name"]),
    ({"clients": [{"name": "c", "connect_at": 5, "disconnect_at": 5}]},
     ["clients[0].disconnect_at = 5", "greater than 5.0"]),
    ({"clients": [{"name": "c", "crashes": [{"at": 10, "down": 0}]}]},
     ["clients[0].crashes[0].down = 0", "greater than 0"]),
    ({"clients": [{"name": "c", "crashes": [{"at": 10, "down": 5}, {"at": 12, "down": 1}]}]},
     ["clients[0].crashes[1].at = 12", ">= 15"]),
    ({"clients": [{"name": "c", "count": 0}]}, ["clients[0].count = 0", "from 1 to"]),
    (two_clients(duration=0), ["duration = 0", "greater than 0"]),
    (two_clients(duration=-5.0), ["duration = -5.0", "greater than 0"]),
    (two_clients(duration=float("nan")), ["duration = nan", "greater than 0"]),
    ({"duration": 5}, ["clients: missing", "at least one [[clients]]"]),
    # the transport model and the broker
    (two_clients(tcp={"mss": 1460, "window": 1000}), ["tcp.window = 1000", ">= 1460"]),
    (two_clients(tcp={"initial_rto": 0.1}), ["tcp.initial_rto = 0.1", ">= 0.2"]),
    (two_clients(tcp={"max_rto": 0.5}), ["tcp.max_rto = 0.5", ">= 1.0"]),
    (two_clients(tcp={"min_rto": 0}), ["tcp.min_rto = 0", "greater than 0"]),
    (two_clients(tcp={"max_retransmits": -1}), ["tcp.max_retransmits = -1", ">= 0"]),
    (two_clients(broker={"restarts": [{"at": -1, "down": 1}]}),
     ["broker.restarts[0].at = -1", ">= 0"]),
    (two_clients(broker={"max_qeued": 3}), ["broker.max_qeued = 3", "did you mean 'max_queued'"]),
]


@pytest.mark.parametrize("data, fragments", REFUSALS,
                         ids=lambda v: v[0] if isinstance(v, list) else None)
def test_mistakes_are_refused_naming_file_key_value_and_what_is_allowed(data, fragments):
    message = refusal(data)
    assert message.startswith("<dict>: ")
    for fragment in fragments:
        assert fragment in message


def test_a_refusal_from_a_file_names_the_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[[clients]]\nname = "p"\npublish = { topic = "t", qos = 3 }\n')
    with pytest.raises(ScenarioError) as info:
        load_file(path)
    assert str(info.value) == (f"{path}: clients[0].publish.qos = 3: expected an integer "
                               "from 0 to 2")


def test_bad_toml_is_a_scenario_error_with_the_file_and_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('duration = 5\n[[clients]\nname = "c"\n')
    with pytest.raises(ScenarioError, match=r"broken\.toml: not valid TOML: .*line 2"):
        load_file(path)


def test_a_file_scenario_is_named_after_its_file_unless_it_says_otherwise(tmp_path):
    path = tmp_path / "my-lab.toml"
    path.write_text('[[clients]]\nname = "c"\n')
    sc = load_file(path)
    assert sc.name == sc.raw["name"] == "my-lab" and sc.source == str(path)
    path.write_text('name = "other"\n[[clients]]\nname = "c"\n')
    assert load_file(path).name == "other"


# --- Overrides

def test_overrides_edit_the_raw_dict_by_path_creating_missing_tables():
    sc = from_dict({"clients": [{"name": "sub", "subscribe": ["t"]},
                                {"name": "pub", "publish": {"topic": "t"}}]})
    changed = apply_overrides(sc, {"link.loss": 0.1, "qos": 1, "clients.sub.keepalive": 30,
                                   "broker.max_queued": 10, "clients.1.publish.0.qos": 2})
    sub, pub = changed.clients
    assert sub.link.up.loss == pub.link.down.loss == Bernoulli(0.1)
    assert sub.subscribe[0].qos == 1 and pub.publish[0].qos == 2
    assert (sub.keepalive, pub.keepalive) == (30, 60)
    assert changed.broker.max_queued == 10
    assert changed.raw["link"] == {"loss": 0.1}
    assert sc.raw == from_dict(sc.raw).raw and "link" not in sc.raw  # the original is intact
    assert sc.clients[1].publish[0].qos == 0


def test_with_delegates_to_overrides_and_picks_count_tables_by_their_written_name():
    sc = load_file(SCENARIOS / "classroom.toml")
    changed = sc.with_(**{"clients.student.count": 3, "links.0.queue": 10,
                          "clients.student.publish.0.pattern": "poisson",
                          "clients.teacher.subscribe.0.qos": 2})
    assert [c.name for c in changed.clients] == ["student-1", "student-2", "student-3",
                                                 "teacher"]
    assert changed.links[0].link.up.queue == 10
    assert changed.clients[0].publish[0].pattern == "poisson"
    assert changed.clients[-1].subscribe == (SubscriptionSpec("class/#", 2),)
    assert changed.source == sc.source and changed.name == "classroom"


@pytest.mark.parametrize("override, fragments", [
    ({"link.los": 0.1}, ["override 'link.los' = 0.1", "unknown key 'los' in link",
                         "did you mean 'loss'"]),
    ({"dration": 3}, ["override 'dration' = 3", "did you mean 'duration'"]),
    ({"clients.nobody.keepalive": 3}, ["override 'clients.nobody.keepalive'",
                                       "clients has no entry 'nobody'", "or a client name"]),
    ({"clients.5.keepalive": 3}, ["clients has no entry '5'", "from 0 to 1"]),
    ({"qos.level": 1}, ["override 'qos.level' = 1", "qos is a value, not a table"]),
    ({"clients.sub.subscribe.0.topik": "x"}, ["unknown key 'topik'", "did you mean 'topic'"]),
])
def test_an_override_path_that_does_not_exist_is_refused(override, fragments):
    sc = from_dict(two_clients(), source="lab.toml")
    with pytest.raises(ScenarioError) as info:
        apply_overrides(sc, override)
    assert str(info.value).startswith("lab.toml: ")
    for fragment in fragments:
        assert fragment in str(info.value)


def test_an_overridden_scenario_is_checked_again():
    sc = from_dict(two_clients())
    with pytest.raises(ScenarioError) as info:
        sc.with_(**{"link.loss": 1.5})
    assert "link.loss = 1.5: expected a number from 0 to 1" in str(info.value)
    assert "after the overrides link.loss=1.5" in str(info.value)


def test_parse_set_reads_values_as_toml_and_bare_words_as_text():
    assert parse_set(["link.loss=0.1", "clean=true", "routers=[\"ap\", \"wan\"]", "qos = 2",
                      "transport=datagram", 'name="my lab"', "description=two words",
                      "link.gilbert={p_good_to_bad = 0.1, p_bad_to_good = 0.5}",
                      "links.0.outages=[[1, 2]]", "client_id=2024-01-01", "n=1e3"]) == {
        "link.loss": 0.1, "clean": True, "routers": ["ap", "wan"], "qos": 2,
        "transport": "datagram", "name": "my lab", "description": "two words",
        "link.gilbert": {"p_good_to_bad": 0.1, "p_bad_to_good": 0.5},
        "links.0.outages": [[1, 2]], "client_id": "2024-01-01", "n": 1000.0}
    assert not isinstance(parse_set(["x=2024-01-01"])["x"], datetime.date)


def test_parse_set_then_with_is_the_command_line_path():
    sc = load_file(SCENARIOS / "lossy-2g.toml")
    changed = sc.with_(**parse_set(["link.loss=0.15", "qos=2", "transport=datagram"]))
    assert changed.clients[0].link.up.loss == Bernoulli(0.15)
    assert changed.clients[0].publish[0].qos == 2 and changed.transport == "datagram"


@pytest.mark.parametrize("bad", ["link.loss", "=3", " = 1"])
def test_parse_set_refuses_an_assignment_without_key_or_equals(bad):
    with pytest.raises(ScenarioError, match="expected KEY=VALUE"):
        parse_set([bad])


def test_to_dict_is_a_copy_and_round_trips():
    sc = from_dict(two_clients(link={"up": {"gilbert": {"p_good_to_bad": 0.1,
                                                        "p_bad_to_good": 0.3}}}))
    data = sc.to_dict()
    data["clients"][0]["name"] = "changed"
    assert sc.raw["clients"][0]["name"] == "sub"
    assert from_dict(sc.to_dict()) == sc
