"""MQTT 5.0 conformance: stronger checks for statements whose first test could not catch a
likely regression.

The broker never chooses topic aliases of its own, so a subscriber only ever sees an alias
if the broker forwards the *publisher's* one. The alias test in
``test_engine_rules_v5_broker_publish.py`` publishes without aliases and therefore passes even
when the broker stops stripping them; these tests publish through an alias, the way a real
client saves bytes, and check what each subscriber is allowed to receive.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol.packets import Publish

from engine_rules_v5_support import Peer, broker, publishes

TOPIC = "plant/line-4/press/temperature"


def _connected(b, name: str, **connect) -> Peer:
    p = Peer(b, name)
    p.connect(name, **connect)
    return p


def _topics_seen(received: list[Publish], alias_maximum: int) -> list[str]:
    """The topic of each PUBLISH as the subscriber must resolve it on its own connection,
    asserting every alias is one it allowed (1..its Topic Alias Maximum)."""
    known: dict[int, str] = {}
    topics = []
    for msg in received:
        alias = msg.properties.topic_alias
        if alias is None:
            topics.append(msg.topic)
            continue
        assert 1 <= alias <= alias_maximum, f"alias {alias} with a maximum of {alias_maximum}"
        if msg.topic:
            known[alias] = msg.topic
        assert alias in known, f"alias {alias} used before the broker said what it stands for"
        topics.append(known[alias])
    return topics


@pytest.mark.parametrize("alias_maximum", [None, 0, 2])
def test_v5_MQTT_3_1_2_27_and_3_3_2_11_publishers_aliases_never_reach_subscribers(
        alias_maximum):
    """The publisher maps alias 7 to the topic, then sends by alias only. Alias 7 is valid
    towards the broker (its maximum is 10) but above what any subscriber here allows."""
    b = broker()
    props = {} if alias_maximum is None else {"topic_alias_maximum": alias_maximum}
    s = _connected(b, "s", **props)
    s.subscribe(("plant/#", 1))
    pub = _connected(b, "p")
    pub.publish(TOPIC, b"20.5", 1, packet_id=1, topic_alias=7)
    pub.publish("", b"20.7", 1, packet_id=2, topic_alias=7)  # the alias alone
    received = publishes(s.read())
    assert [m.payload for m in received] == [b"20.5", b"20.7"]
    assert _topics_seen(received, alias_maximum or 0) == [TOPIC, TOPIC]


def test_v5_MQTT_3_3_2_11_queued_messages_carry_no_alias_of_the_publishers():
    """A message stored for an offline session goes out on a later connection, where the
    publisher's alias means nothing: the subscriber must get the topic itself."""
    b = broker()
    s = _connected(b, "s", clean_start=False, session_expiry_interval=100)
    s.subscribe(("plant/#", 1))
    s.drop(1)
    pub = _connected(b, "p")
    pub.publish(TOPIC, b"a", 1, packet_id=1, topic_alias=3, now=2)
    pub.publish("", b"b", 1, packet_id=2, topic_alias=3, now=2)
    again = Peer(b, "s2", 3)
    assert again.connect("s", clean_start=False, session_expiry_interval=100).session_present
    received = publishes(again.read())
    assert [m.payload for m in received] == [b"a", b"b"]
    assert _topics_seen(received, 0) == [TOPIC, TOPIC]
