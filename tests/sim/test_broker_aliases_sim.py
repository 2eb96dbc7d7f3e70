"""The simulated broker gives its own topic aliases to a subscriber whose scenario sets
``topic_alias_maximum`` (the same engine as ``mqttsim broker``): the broker's PUBLISHes to it
shrink after the first by the topic's length, and every message is still delivered."""

from __future__ import annotations

from simstories import publisher, run, scenario

TOPIC = "fleet/vehicles/truck-0042/position"


def test_v5_MQTT_3_3_2_11_a_subscriber_allowing_aliases_gets_them_in_the_simulator():
    clients = [publisher("pub", TOPIC, 1, 5, version=5)]
    for name, extra in (("plain", {}), ("aliased", {"topic_alias_maximum": 2})):
        clients.append({"name": name, "version": 5, "subscribe": [{"topic": "fleet/#",
                                                                    "qos": 1}], **extra})
    res = run(scenario(clients, duration=10), seed=1)
    sent = res.packets[(res.packets["src"] == "broker") & (res.packets["type"] == "PUBLISH")]
    plain = sent[sent["dst"] == "plain"]["bytes"].tolist()
    aliased = sent[sent["dst"] == "aliased"]["bytes"].tolist()
    assert len(plain) == len(aliased) == 5
    assert aliased[0] == plain[0] + 3  # the topic and a 3-byte Topic Alias property
    assert aliased[1:] == [size - len(TOPIC) + 3 for size in plain[1:]]  # the alias alone
    out = res.outcomes[res.outcomes["expected"]]
    assert (out["outcome"] == "delivered").all() and len(out) == 10
    assert set(res.received["topic"]) == {TOPIC}  # resolved back to the name
