"""MQTT 5.0 topic aliases (3.3.2.3.4) and Topic Alias Maximum (3.1.2 / 3.2.2), both engines.

The broker as the receiver of aliases (up to its maximum, 0 and above it refused), the
broker as a sender (its own aliases towards a subscriber that allows them, never above the
subscriber's maximum, never the publisher's aliases; some tests publish through an alias,
the way a real client saves bytes, and check what each subscriber may receive, live and
queued), and the client's side. Aliases belong to one connection and never outlive it.
"""

from __future__ import annotations


import pytest

from mqttsim.protocol import events as ev
from mqttsim.protocol.errors import MQTTError
from mqttsim.protocol.packets import Disconnect, Puback, Publish
from mqttsim.protocol.properties import Properties

from support.peer import (V5, Peer, Server, broker, connected, of, online, persistent,
                          publishes)


# --------------------------------------------------------------------------------------
# Topic aliases (3.3.2.3.4) and Topic Alias Maximum (3.1.2 / 3.2.2)
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_3_2_12_broker_accepts_aliases_up_to_its_maximum():
    b = broker(topic_alias_maximum=4)
    s = online(b, "s", ("a/#", 1), version=V5)
    pub = online(b, "p", version=V5)
    assert pub.publish("a/one", b"1", 1, topic_alias=4) == [Puback(1)]  # sets alias 4
    assert pub.publish("", b"2", 1, packet_id=2, topic_alias=4) == [Puback(2)]  # uses it
    pub.publish("a/two", b"3", 1, packet_id=3, topic_alias=4)  # remaps it
    pub.publish("", b"4", 1, packet_id=4, topic_alias=4)
    received = publishes(s.read())
    assert [(m.topic, m.payload) for m in received] == [
        ("a/one", b"1"), ("a/one", b"2"), ("a/two", b"3"), ("a/two", b"4")]
    # the publisher's aliases belong to its connection, not the subscriber's [MQTT-3.1.2-27]
    assert all(m.properties.topic_alias is None for m in received)


def test_v5_MQTT_3_3_2_12_alias_above_the_maximum_is_disconnect_0x94():
    b = broker(topic_alias_maximum=4)
    pub = Peer(b, "p", version=V5)
    assert pub.connect("p").properties.topic_alias_maximum == 4
    assert pub.publish("a", b"x", 0, topic_alias=5) == [Disconnect(0x94)]
    assert pub.closed
    [closed] = of(pub.events, ev.ConnectionClosed)
    assert closed.rule == "MQTT-3.3.2-12"


def test_v5_MQTT_3_2_2_18_broker_with_alias_maximum_0_accepts_no_alias():
    b = broker(topic_alias_maximum=0)
    pub = Peer(b, "p", version=V5)
    assert not pub.connect("p").properties.topic_alias_maximum  # absent or 0
    assert pub.publish("a", b"x", 0, topic_alias=1) == [Disconnect(0x94)]


def test_v5_MQTT_3_3_2_12_alias_0_is_a_protocol_error():
    b = broker()
    pub = online(b, "p", version=V5)
    data = b"\x30\x08\x00\x01a\x03\x23\x00\x00x"  # PUBLISH "a", Topic Alias 0, payload "x"
    pub.write_bytes(data)
    [disconnect] = pub.read()
    assert disconnect.reason_code in (0x94, 0x82) and pub.closed


def test_v5_MQTT_3_3_2_7_aliases_do_not_carry_over_to_a_new_connection():
    b = broker()
    s = online(b, "s", ("a/#", 1), version=V5)
    pub = online(b, "p", version=V5)
    pub.publish("a/1", b"set", 0, topic_alias=1)
    pub.lose(1)
    again = online(b, "p", now=2, version=V5)
    reply = again.publish("", b"use", 0, topic_alias=1)
    assert [type(x) for x in reply] == [Disconnect] and reply[0].reason_code >= 0x80
    assert [m.payload for m in publishes(s.read())] == [b"set"]


@pytest.mark.parametrize("alias_maximum", [None, 0, 2])
def test_v5_MQTT_3_1_2_26_27_and_3_3_2_11_broker_aliases_stay_within_the_clients_maximum(
        alias_maximum):
    b = broker()
    props = {} if alias_maximum is None else {"topic_alias_maximum": alias_maximum}
    s = online(b, "s", ("a/#", 1), **props, version=V5)
    pub = online(b, "p", version=V5)
    for n in range(5):
        pub.publish("a/long/topic/name", b"%d" % n, 1, packet_id=n + 1)
    received = publishes(s.read())
    assert len(received) == 5
    for msg in received:
        alias = msg.properties.topic_alias
        assert alias is None or 1 <= alias <= (alias_maximum or 0)  # never 0 [MQTT-3.3.2-8]
        assert msg.topic == "a/long/topic/name" or alias is not None


# --------------------------------------------------------------------------------------
# Topic aliases, the client's side
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_3_2_10_client_accepts_aliases_up_to_its_maximum():
    srv = connected(properties=Properties(topic_alias_maximum=3))
    srv.write(Publish("a/b", b"1", properties=Properties(topic_alias=3)),
             Publish("", b"2", properties=Properties(topic_alias=3)))
    assert [(m.topic, m.payload) for m in of(srv.events, ev.MessageReceived)] == [
        ("a/b", b"1"), ("a/b", b"2")]
    assert not srv.client.should_close


@pytest.mark.parametrize("maximum, alias", [(3, 4), (None, 1)])
def test_v5_MQTT_3_3_2_10_alias_beyond_the_clients_maximum_is_disconnect_0x94(maximum, alias):
    props = Properties(topic_alias_maximum=maximum) if maximum else Properties()
    srv = connected(properties=props)
    srv.write(Publish("a/b", b"1", properties=Properties(topic_alias=alias)))
    assert srv.read() == [Disconnect(0x94)]
    assert srv.client.should_close and of(srv.events, ev.MessageReceived) == []


def test_v5_MQTT_3_3_2_7_client_forgets_aliases_with_the_connection():
    srv = connected(properties=Properties(topic_alias_maximum=3))
    srv.write(Publish("a/b", b"1", properties=Properties(topic_alias=1)))
    srv.lose(1)
    srv.start(2)
    srv.accept()
    srv.write(Publish("", b"2", properties=Properties(topic_alias=1)))
    [disconnect] = srv.read()
    assert disconnect.reason_code >= 0x80 and srv.client.should_close
    assert [m.payload for m in of(srv.events, ev.MessageReceived)] == [b"1"]


@pytest.mark.parametrize("server_maximum", [None, 2])
def test_v5_MQTT_3_2_2_17_18_and_3_3_2_9_client_aliases_stay_within_the_servers_maximum(
        server_maximum):
    srv = Server()
    srv.start()
    srv.accept(**({} if server_maximum is None else {"topic_alias_maximum": server_maximum}))
    for alias in (1, 2, 3):
        try:
            srv.client.publish("t", b"x", 0, properties=Properties(topic_alias=alias))
        except MQTTError:
            pass
    for packet in publishes(srv.read()):
        alias = packet.properties.topic_alias
        assert alias is None or alias <= (server_maximum or 0)


# --------------------------------------------------------------------------------------
# The publisher's aliases never reach a subscriber
# --------------------------------------------------------------------------------------

TOPIC = "plant/line-4/press/temperature"


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
    s = online(b, "s", version=V5, **props)
    s.subscribe(("plant/#", 1))
    pub = online(b, "p", version=V5)
    pub.publish(TOPIC, b"20.5", 1, packet_id=1, topic_alias=7)
    pub.publish("", b"20.7", 1, packet_id=2, topic_alias=7)  # the alias alone
    received = publishes(s.read())
    assert [m.payload for m in received] == [b"20.5", b"20.7"]
    assert _topics_seen(received, alias_maximum or 0) == [TOPIC, TOPIC]


def test_v5_MQTT_3_3_2_11_queued_messages_carry_no_alias_of_the_publishers():
    """A message stored for an offline session goes out on a later connection, where the
    publisher's alias means nothing: the subscriber must get the topic itself."""
    b = broker()
    s = online(b, "s", clean_start=False, session_expiry_interval=100, version=V5)
    s.subscribe(("plant/#", 1))
    s.lose(1)
    pub = online(b, "p", version=V5)
    pub.publish(TOPIC, b"a", 1, packet_id=1, topic_alias=3, now=2)
    pub.publish("", b"b", 1, packet_id=2, topic_alias=3, now=2)
    again = Peer(b, "s2", 3, version=V5)
    assert again.connect("s", clean_start=False, session_expiry_interval=100).session_present
    received = publishes(again.read())
    assert [m.payload for m in received] == [b"a", b"b"]
    assert _topics_seen(received, 0) == [TOPIC, TOPIC]


# --------------------------------------------------------------------------------------
# The broker's own aliases towards a subscriber that allows them (issue 18)
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_3_2_11_broker_assigns_aliases_to_a_subscriber_that_allows_them():
    """Topic Alias Maximum 2 in the subscriber's CONNECT: each of the first two topics goes
    once by name with a new alias, then by alias alone (empty name); a third topic goes by
    name. The subscriber's engine resolves them back to the names."""
    b = broker()
    s = online(b, "s", ("a/#", 1), version=V5, topic_alias_maximum=2)
    pub = online(b, "p", version=V5)
    sent = ["a/one", "a/two", "a/one", "a/three", "a/two", "a/three"]
    for n, topic in enumerate(sent):
        pub.publish(topic, b"%d" % n, 1, packet_id=n + 1)
    wire = [(m.topic, m.properties.topic_alias) for m in publishes(s.read())]
    assert wire == [("a/one", 1), ("a/two", 2), ("", 1), ("a/three", None), ("", 2),
                    ("a/three", None)]
    assert all(alias is None or 1 <= alias <= 2 for _, alias in wire)  # [MQTT-3.3.2-8]


def test_v5_MQTT_3_3_2_7_broker_aliases_start_afresh_on_a_new_connection():
    b = broker()
    s = persistent(b, "s", ("a/#", 1), version=V5, topic_alias_maximum=1)
    pub = online(b, "p", version=V5)
    pub.publish("a/x", b"1", 1, packet_id=1)
    assert [(m.topic, m.properties.topic_alias) for m in publishes(s.read())] == [("a/x", 1)]
    s.send(Puback(1))
    s.lose(1)
    pub.publish("a/x", b"2", 1, packet_id=2, now=2)  # queued for the offline session
    again = Peer(b, "s2", 3, version=V5)
    again.connect("s", clean_start=False, session_expiry_interval=100, topic_alias_maximum=1)
    [first] = publishes(again.read())
    assert (first.topic, first.properties.topic_alias) == ("a/x", 1)  # named again


def test_v5_MQTT_3_3_2_8_aliases_towards_a_client_engine_resolve_to_the_topic_names():
    """Our own client engine as the subscriber: it announces a maximum and reads aliases."""
    from mqttsim.protocol.client import ClientConfig, ClientEngine
    from mqttsim.protocol.packets import Subscription

    b = broker()
    client = ClientEngine(ClientConfig("sub", version=V5,
                                       properties=Properties(topic_alias_maximum=3)))
    b.connection_made("c", 0)
    client.connect(0)
    b.receive("c", client.data_to_send(), 0)
    client.receive(b.take_output("c")[0], 0)
    client.subscribe([Subscription("t/#", 0)], 0)
    b.receive("c", client.data_to_send(), 0)
    client.receive(b.take_output("c")[0], 0)
    pub = online(b, "p", version=V5)
    for n in range(3):
        pub.publish("t/long/topic/name", b"%d" % n)
    events = client.receive(b.take_output("c")[0], 1)
    assert [(m.topic, m.packet.payload) for m in of(events, ev.MessageReceived)] == [
        ("t/long/topic/name", b"0"), ("t/long/topic/name", b"1"), ("t/long/topic/name", b"2")]


def test_v5_MQTT_3_3_2_12_an_alias_on_a_packet_too_large_to_send_is_not_taken_as_known():
    """The first PUBLISH of a topic is dropped for the subscriber's Maximum Packet Size: the
    alias it would have set never reached the client, so the next one names the topic."""
    b = broker()
    s = online(b, "s", ("a/#", 0), version=V5, topic_alias_maximum=1, maximum_packet_size=40)
    pub = online(b, "p", version=V5)
    pub.publish("a/x", b"x" * 100)
    pub.publish("a/x", b"small")
    pub.publish("a/x", b"again")
    wire = [(m.topic, m.properties.topic_alias, m.payload) for m in publishes(s.read())]
    assert wire == [("a/x", 1, b"small"), ("", 1, b"again")]
