"""MQTT 5 features set from scenario files, and their effects (data/scenarios/mqtt5-features.toml).

The expectations come from the MQTT 5.0 specification: an expired message is not delivered
[MQTT-3.3.2-5]; a session that expired keeps nothing (3.1.2.11.2); a shared subscription
gives each message to one member of the group (4.8.2); a topic alias replaces the topic
name's characters (an empty name is sent) by a 3-byte property (3.3.2.3.4); the server
keeps no more unacknowledged QoS 1/2 PUBLISHes towards a client than its Receive Maximum
[MQTT-3.3.4-9].
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mqttsim import Scenario, run
from mqttsim.scenario.checks import ScenarioError

SCENARIO = Path(__file__).resolve().parents[2] / "data/scenarios/mqtt5-features.toml"


@pytest.fixture(scope="module")
def features():
    return run(Scenario.load(SCENARIO), seed=1)


def outcomes(res, subscriber: str) -> dict[str, int]:
    rows = res.outcomes[res.outcomes["subscriber"] == subscriber]
    return rows["outcome"].value_counts().to_dict()


def test_v5_MQTT_3_3_2_5_expired_messages_are_counted_and_never_delivered(features):
    res = features
    expired = res.drops[(res.drops["client"] == "pager-long") & (res.drops["reason"] == "expired")]
    assert len(expired) > 0
    received = res.received[res.received["subscriber"] == "pager-long"]
    assert not set(expired["payload"]) & set(received["payload"])
    # What arrived after the pager's return (80 s) was published at most 30 s before it
    late = received[received["t"] > 80]
    published = res.outcomes.set_index(["subscriber", "msg_id"])
    ages = [80 - published.loc[("pager-long", m), "t_pub"] for m in
            res.outcomes[(res.outcomes["subscriber"] == "pager-long")
                         & (res.outcomes["t_first_delivery"] > 80)]["msg_id"]]
    assert len(late) > 0 and max(ages) <= 30
    assert outcomes(res, "pager-long")["lost"] == len(expired)


def test_v5_a_short_session_expiry_keeps_nothing_while_the_client_is_away(features):
    res = features
    conns = res.connections[res.connections["client"].str.startswith("pager")]
    back = conns[conns["t_up"] > 80].set_index("client")["session_present"]
    assert bool(back["pager-long"]) is True and bool(back["pager-short"]) is False
    short, long_ = outcomes(res, "pager-short"), outcomes(res, "pager-long")
    assert short["lost"] > long_["lost"]  # every ring while away, not only the old ones


def test_v5_shared_subscription_members_split_the_jobs_about_half_and_half(features):
    res = features
    jobs = res.outcomes[res.outcomes["topic"] == "jobs/resize"]
    per_worker = jobs[jobs["outcome"] == "delivered"]["subscriber"].value_counts()
    assert set(per_worker.index) == {"worker-1", "worker-2"}
    assert per_worker.sum() == jobs["msg_id"].nunique()  # each job once, to one of them
    assert abs(per_worker["worker-1"] - per_worker["worker-2"]) <= 2


def test_v5_topic_alias_saves_the_topic_on_every_publish_after_the_first(features):
    res = features
    p = res.packets
    publishes = p[p["type"] == "PUBLISH"]
    alias = publishes[publishes["src"] == "tracker-alias"]["bytes"].tolist()
    plain = publishes[publishes["src"] == "tracker-plain"]["bytes"].tolist()
    topic = "fleet/trucks/truck-0042/telemetry/gps/position"
    assert alias[0] == plain[0] + 3  # the first carries the topic and the alias property
    # later ones: an empty topic name (its 2-byte length stays) and the 3-byte property
    assert set(alias[1:]) == {plain[1] - len(topic) + 3}
    links = res.links.set_index("link")["bytes"]
    assert links["tracker-alias->broker"] < 0.8 * links["tracker-plain->broker"]


def max_in_flight(res, subscriber: str) -> int:
    """The most QoS 1 PUBLISHes the broker had sent to ``subscriber`` and not yet had
    acknowledged: +1 when one is sent, -1 when its PUBACK reaches the broker."""
    p = res.packets
    sent = p[(p["src"] == "broker") & (p["dst"] == subscriber) & (p["type"] == "PUBLISH")]
    acked = p[(p["src"] == subscriber) & (p["type"] == "PUBACK")]
    steps = sorted([(t, 1) for t in sent["t"]] + [(t, -1) for t in acked["t_recv"]],
                   key=lambda step: (step[0], step[1]))  # an ack before a send at one instant
    level = peak = 0
    for _, change in steps:
        level += change
        peak = max(peak, level)
    return peak


def test_v5_MQTT_3_3_4_9_receive_maximum_bounds_what_is_in_flight_to_the_client(features):
    assert max_in_flight(features, "display-rm2") == 2
    assert max_in_flight(features, "display") == 10  # the whole burst at once
    assert outcomes(features, "display-rm2") == outcomes(features, "display") == {"delivered": 40}


def test_v5_connect_properties_go_on_the_wire():
    base = {"name": "c", "version": 5}
    sizes = {}
    for extra in ({}, {"receive_maximum": 5}, {"topic_alias_maximum": 4}):
        res = run(Scenario.from_dict({"duration": 1, "clients": [{**base, **extra}]}))
        sizes[tuple(extra)] = res.packets[res.packets["type"] == "CONNECT"]["bytes"].iloc[0]
    # each a one-byte identifier and a two-byte integer (MQTT 5 3.1.2.11.3, 3.1.2.11.5)
    assert sizes[("receive_maximum",)] == sizes[()] + 3 == sizes[("topic_alias_maximum",)]


@pytest.mark.parametrize("client, words", [
    ({"publish": {"topic": "t", "message_expiry": 30}},
     ["clients[0].publish.message_expiry = 30", "a PUBLISH property of MQTT 5",
      "set version = 5"]),
    ({"version": 5, "publish": {"topic": "t", "message_expiry": -1}},
     ["message_expiry = -1", "an integer from 0 to 4294967295"]),
    ({"version": 5, "publish": {"topic": "t", "topic_alias": 0}},
     ["topic_alias = 0", "from 1 to 10", "MQTT-3.3.2-9"]),
    ({"version": 5, "publish": {"topic": "t", "topic_alias": 11}}, ["topic_alias = 11"]),
    ({"version": 5, "receive_maximum": 0}, ["receive_maximum = 0", "Protocol Error"]),
    ({"receive_maximum": 4}, ["receive_maximum = 4", "a CONNECT property of MQTT 5"]),
    ({"version": 5, "topic_alias_maximum": 70000}, ["topic_alias_maximum = 70000",
                                                    "from 0 to 65535"]),
])
def test_a_wrong_mqtt5_setting_is_named_in_one_line(client, words):
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_dict({"clients": [{"name": "c", **client}]}, "v5.toml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("v5.toml: clients[0].")
    for word in words:
        assert word in message


def test_the_mqtt5_keys_round_trip_through_the_file_format():
    sc = Scenario.load(SCENARIO)
    assert Scenario.from_dict(sc.to_dict()) == sc
    tracker = next(c for c in sc.clients if c.name == "tracker-alias")
    assert tracker.publish[0].topic_alias == 1
    assert next(c for c in sc.clients if c.name == "display-rm2").receive_maximum == 2
    assert sc.with_(**{"clients.display-rm2.receive_maximum": 5}).clients[-2].receive_maximum == 5
