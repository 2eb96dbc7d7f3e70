"""MQTT 5.0 broker-engine rules: PUBLISH from clients and what subscribers receive.

Retained messages and the MQTT 5 subscription options that shape them, forwarded properties,
message expiry, maximum packet size and the publish reason codes. Each test
is named after the 5.0 statement it checks and drives the broker with exact packets
(``Peer``). Subscribing, QoS flows and flow control are in
``test_engine_rules_v5_broker_delivery.py``; DUP, the topic name and the UTF-8 properties (both
engines) in ``test_engine_rules_v5_publish_fields.py``; topic aliases in
``test_engine_rules_v5_topic_aliases.py``.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import events as ev
from mqttsim.protocol.auth import TopicRules
from mqttsim.protocol.packets import (Auth, Disconnect, Puback, Pubrec, Pubrel, Subscription,
                                      Unsubscribe)

from support.peer import V5, Peer, broker, of, online, persistent, publishes, resume


def offline_subscriber(b, name: str = "s", topic: str = "t", now: float = 0.0,
                       **subscription) -> None:
    """A persistent session subscribed to ``topic`` whose connection has gone away."""
    persistent(b, name, Subscription(topic, 1, **subscription), now=now, version=V5).lose(now)


# --------------------------------------------------------------------------------------
# 3.3.1 RETAIN and the retain subscription options
# --------------------------------------------------------------------------------------

def retained_for_new_subscriber(b, topic_filter: str = "r/#") -> list[bytes]:
    late = online(b, f"late{len(b.connections)}", version=V5)
    return [m.payload for m in publishes(late.subscribe((topic_filter, 1)))]


def test_v5_MQTT_3_3_1_5_retained_publish_replaces_the_retained_message():
    b = broker()
    pub = online(b, "p", version=V5)
    pub.publish("r/1", b"old", 0, retain=True)
    pub.publish("r/1", b"new", 0, retain=True)
    assert retained_for_new_subscriber(b) == [b"new"]


def test_v5_MQTT_3_3_1_6_zero_byte_retained_publish_deletes_the_retained_message():
    b = broker()
    pub = online(b, "p", version=V5)
    pub.publish("r/1", b"old", 0, retain=True)
    pub.publish("r/1", b"", 0, retain=True)
    assert retained_for_new_subscriber(b) == []


def test_v5_MQTT_3_3_1_7_zero_byte_payload_is_never_stored_as_retained():
    b = broker()
    pub = online(b, "p", version=V5)
    pub.publish("r/empty", b"", 1, retain=True)
    assert retained_for_new_subscriber(b) == []


def test_v5_MQTT_3_3_1_8_non_retained_publish_leaves_the_retained_message_alone():
    b = broker()
    pub = online(b, "p", version=V5)
    pub.publish("r/1", b"kept", 0, retain=True)
    pub.publish("r/1", b"passing", 0, retain=False)
    pub.publish("r/1", b"", 0, retain=False)
    assert retained_for_new_subscriber(b) == [b"kept"]


def test_v5_MQTT_3_3_1_9_retain_handling_0_sends_retained_on_every_subscribe():
    b = broker()
    online(b, "p", version=V5).publish("r/1", b"kept", 0, retain=True)
    s = online(b, "s", version=V5)
    for packet_id in (1, 2):
        [msg] = publishes(s.subscribe(Subscription("r/#", 1, retain_handling=0),
                                      packet_id=packet_id))
        assert msg.payload == b"kept" and msg.retain is True


def test_v5_MQTT_3_3_1_10_retain_handling_1_sends_retained_only_for_a_new_subscription():
    b = broker()
    online(b, "p", version=V5).publish("r/1", b"kept", 0, retain=True)
    s = online(b, "s", version=V5)
    sub = Subscription("r/#", 1, retain_handling=1)
    assert [m.payload for m in publishes(s.subscribe(sub, packet_id=1))] == [b"kept"]
    assert publishes(s.subscribe(sub, packet_id=2)) == []  # it already existed


def test_v5_MQTT_3_3_1_11_retain_handling_2_sends_no_retained_messages():
    b = broker()
    online(b, "p", version=V5).publish("r/1", b"kept", 0, retain=True)
    s = online(b, "s", version=V5)
    assert publishes(s.subscribe(Subscription("r/#", 1, retain_handling=2))) == []


@pytest.mark.parametrize("as_published", [False, True])
def test_v5_MQTT_3_3_1_12_and_13_retain_as_published(as_published):
    b = broker()
    s = online(b, "s", version=V5)
    s.subscribe(Subscription("r/#", 1, retain_as_published=as_published))
    pub = online(b, "p", version=V5)
    pub.publish("r/1", b"live", 1, retain=True)
    pub.publish("r/2", b"plain", 1, retain=False, packet_id=2)
    assert [(m.payload, m.retain) for m in publishes(s.read())] == [
        (b"live", as_published), (b"plain", False)]


# --------------------------------------------------------------------------------------
# 3.3.2 topic name and forwarded properties
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_3_2_3_forwarded_topic_matches_the_subscription():
    b = broker()
    s = online(b, "s", ("a/+/c", 1), version=V5)
    pub = online(b, "p", version=V5)
    for topic in ("a/b/c", "a/b/d", "a/b/c/d", "a/x/c"):
        pub.publish(topic, b"m")
    assert [m.topic for m in publishes(s.read())] == ["a/b/c", "a/x/c"]


@pytest.mark.parametrize("rule, props", [
    ("MQTT-3.3.2-4", {"payload_format_indicator": 1}),
    ("MQTT-3.3.2-15", {"response_topic": "reply/to/me"}),
    ("MQTT-3.3.2-16", {"correlation_data": b"\x00\x01request-7\xff"}),
    ("MQTT-3.3.2-20", {"content_type": "application/json; charset=utf-8"}),
], ids=["3_3_2_4_payload_format", "3_3_2_15_response_topic", "3_3_2_16_correlation_data",
        "3_3_2_20_content_type"])
def test_v5_MQTT_3_3_2_x_properties_are_forwarded_unchanged(rule, props):
    b = broker()
    s = online(b, "s", ("t", 1), version=V5)
    online(b, "p", version=V5).publish("t", b"{}", 1, **props)
    [msg] = publishes(s.read())
    for name, value in props.items():
        assert getattr(msg.properties, name) == value, rule


def test_v5_MQTT_3_3_2_4_payload_format_absent_stays_absent():
    b = broker()
    s = online(b, "s", ("t", 1), version=V5)
    online(b, "p", version=V5).publish("t", b"\xff\xfe", 1)
    [msg] = publishes(s.read())
    assert msg.properties.payload_format_indicator is None


def test_v5_MQTT_3_3_2_17_and_18_user_properties_forwarded_all_and_in_order():
    b = broker()
    s = online(b, "s", ("t", 1), version=V5)
    pairs = (("k", "2"), ("a", "1"), ("k", "1"), ("k", "2"), ("", ""))
    online(b, "p", version=V5).publish("t", b"x", 1, user_properties=pairs)
    [msg] = publishes(s.read())
    assert msg.properties.user_properties == pairs


def test_v5_MQTT_3_3_2_5_message_expired_while_queued_is_not_delivered():
    b = broker()
    offline_subscriber(b)
    pub = online(b, "p", version=V5)
    pub.publish("t", b"short", 1, message_expiry_interval=5, now=1)
    pub.publish("t", b"long", 1, packet_id=2, message_expiry_interval=100, now=1)
    s = resume(b, "s", now=10, version=V5)
    assert [m.payload for m in publishes(s.after_connack)] == [b"long"]
    assert [(d.reason, d.payload) for d in of(s.events, ev.MessageDropped)] == [
        ("expired", b"short")]


def test_v5_MQTT_3_3_2_5_message_expired_behind_the_window_is_not_delivered():
    b = broker()
    s = online(b, "s", ("t", 1), receive_maximum=1, version=V5)
    pub = online(b, "p", version=V5)
    pub.publish("t", b"first", 1, now=0)
    pub.publish("t", b"expires", 1, packet_id=2, message_expiry_interval=5, now=0)
    [first] = publishes(s.read())
    s.write(Puback(first.packet_id), now=6)  # the window opens after the expiry
    assert publishes(s.read()) == []


def test_v5_MQTT_3_3_2_6_forwarded_expiry_is_reduced_by_the_time_spent_waiting():
    b = broker()
    offline_subscriber(b)
    online(b, "p", version=V5).publish("t", b"m", 1, message_expiry_interval=60, now=0)
    s = resume(b, "s", now=20, version=V5)
    [msg] = publishes(s.after_connack)
    assert msg.properties.message_expiry_interval == 40


def test_v5_MQTT_3_3_2_6_retained_message_expiry_is_reduced_too():
    b = broker()
    online(b, "p", version=V5).publish("r/1", b"m", 1, retain=True,
                                       message_expiry_interval=60, now=0)
    s = online(b, "s", now=15, version=V5)
    [msg] = publishes(s.subscribe(("r/#", 1), now=15))
    assert msg.properties.message_expiry_interval == 45
    late = online(b, "late", now=61, version=V5)
    assert publishes(late.subscribe(("r/#", 1), now=61)) == []  # expired: gone


def test_v5_message_without_expiry_is_forwarded_without_one():
    b = broker()
    offline_subscriber(b)
    online(b, "p", version=V5).publish("t", b"m", 1, now=0)
    [msg] = publishes(resume(b, "s", now=500, version=V5).after_connack)
    assert msg.properties.message_expiry_interval is None


# --------------------------------------------------------------------------------------
# 3.1.2-24/25 the client's Maximum Packet Size
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_1_2_24_broker_never_sends_a_packet_above_the_clients_maximum():
    b = broker()
    s = online(b, "s", ("t", 1), maximum_packet_size=40, version=V5)
    pub = online(b, "p", version=V5)
    pub.publish("t", b"x" * 100, 1)
    pub.publish("t", b"small", 1, packet_id=2)
    received = publishes(s.read())
    assert [m.payload for m in received] == [b"small"]
    [dropped] = of(pub.events, ev.MessageDropped)
    assert (dropped.reason, dropped.client_id) == ("packet_too_large", "s")


def test_v5_MQTT_3_1_2_25_oversized_message_is_dropped_as_if_it_had_been_sent():
    b = broker()
    s = online(b, "s", ("t", 1), clean_start=False, session_expiry_interval=100,
               maximum_packet_size=40, receive_maximum=1, version=V5)
    pub = online(b, "p", version=V5)
    pub.publish("t", b"x" * 100, 1)  # must not take the only slot of the window
    pub.publish("t", b"next", 1, packet_id=2)
    assert [m.payload for m in publishes(s.read())] == [b"next"]
    s.lose(1)  # "next" is unacknowledged; the big message must not be pending anywhere
    again = Peer(b, "s@", 2, version=V5)
    again.connect("s", clean_start=False, session_expiry_interval=100, maximum_packet_size=40)
    assert [(m.payload, m.dup) for m in publishes(again.read())] == [(b"next", True)]


def test_v5_MQTT_3_1_2_24_oversized_retained_message_is_not_sent_on_subscribe():
    b = broker()
    pub = online(b, "p", version=V5)
    pub.publish("r/big", b"x" * 100, 0, retain=True)
    pub.publish("r/small", b"y", 0, retain=True)
    s = online(b, "s", maximum_packet_size=40, version=V5)
    assert [m.payload for m in publishes(s.subscribe(("r/#", 0)))] == [b"y"]


def test_v5_replies_never_exceed_the_clients_maximum_packet_size():
    """[MQTT-3.1.2-24] for every packet type, and the statements that say a Reason String or
    User Property must be left out rather than exceed the limit: MQTT-3.2.2-19/20 (CONNACK),
    3.4.2-2/3 (PUBACK), 3.5.2-2/3 (PUBREC), 3.6.2-2/3 (PUBREL), 3.7.2-2/3 (PUBCOMP),
    3.9.2-1/2 (SUBACK), 3.11.2-1/2 (UNSUBACK), 3.14.2-3/4 (DISCONNECT)."""
    limit = 16
    b = broker(authz=TopicRules({None: [("ok/#", "readwrite")]}))
    p = Peer(b, "c", version=V5)
    p.connect("c", maximum_packet_size=limit)
    p.subscribe(("denied", 1), ("ok/#", 2))
    p.publish("denied", b"x", 1)  # PUBACK 0x87
    p.publish("denied", b"x", 2, packet_id=2)  # PUBREC 0x87
    p.publish("nobody", b"", 1, packet_id=3)  # PUBACK 0x10
    p.write(Pubrel(99))  # PUBCOMP 0x92
    p.write(Pubrec(98))  # PUBREL 0x92
    p.write(Unsubscribe(4, ("never",)))  # UNSUBACK 0x11
    p.write(Pubrel(99))
    p.read()
    p.write(Auth(0x19))  # DISCONNECT 0x82
    p.read()
    assert len(p.sizes) == 10 and p.closed
    assert max(p.sizes) <= limit


# --------------------------------------------------------------------------------------
# PUBLISH reason codes (3.4.2 / 3.5.2) and forbidden properties (3.3.4-6)
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("qos, ack", [(1, Puback), (2, Pubrec)])
def test_v5_MQTT_3_4_2_1_and_3_5_2_1_no_matching_subscribers_is_0x10(qos, ack):
    b = broker()
    pub = online(b, "p", version=V5)
    assert pub.publish("nobody/listens", b"x", qos, packet_id=9) == [ack(9, 0x10)]
    s = online(b, "s", ("t", 1), version=V5)
    assert pub.publish("t", b"x", qos, packet_id=10) == [ack(10, 0x00)]
    assert len(publishes(s.read())) == 1


@pytest.mark.parametrize("qos, ack", [(1, Puback), (2, Pubrec)])
def test_v5_MQTT_3_4_2_1_and_3_5_2_1_unauthorized_publish_is_0x87_and_not_routed(qos, ack):
    rules = TopicRules({None: [("open/#", "readwrite"), ("#", "read")]})
    b = broker(authz=rules)
    s = online(b, "s", ("#", 1), version=V5)
    pub = online(b, "p", version=V5)
    assert pub.publish("closed/x", b"x", qos, packet_id=4) == [ack(4, 0x87)]
    assert pub.publish("open/x", b"y", qos, packet_id=5) == [ack(5, 0x00)]
    assert [m.payload for m in publishes(s.read())] == [b"y"]


def test_v5_MQTT_3_3_4_6_client_publish_with_a_subscription_identifier_is_rejected():
    b = broker()
    s = online(b, "s", ("t", 1), version=V5)
    pub = online(b, "p", version=V5)
    assert pub.publish("t", b"x", 1, subscription_identifiers=(5,)) == [Disconnect(0x82)]
    assert pub.closed
    [closed] = of(pub.events, ev.ConnectionClosed)
    assert closed.rule == "MQTT-3.3.4-6"
    assert publishes(s.read()) == []


def test_v5_MQTT_3_3_1_3_forwarded_dup_does_not_copy_the_incoming_dup():
    b = broker()
    s = online(b, "s", ("t", 1), version=V5)
    online(b, "p", version=V5).publish("t", b"again?", 1, dup=True)
    [msg] = publishes(s.read())
    assert msg.dup is False


def test_v5_MQTT_4_3_1_1_qos_0_is_forwarded_with_qos_0_and_dup_0():
    b = broker()
    s = online(b, "s", ("t", 2), version=V5)
    online(b, "p", version=V5).publish("t", b"fire and forget", 0)
    [msg] = publishes(s.read())
    assert (msg.qos, msg.dup, msg.packet_id) == (0, False, None)


def test_v5_MQTT_4_5_0_1_accepted_message_goes_to_every_matching_session():
    b = broker()
    offline_subscriber(b, "off", "t/#")
    on = online(b, "on", ("t/+", 1), version=V5)
    other = online(b, "other", ("u/#", 1), version=V5)
    online(b, "p", version=V5).publish("t/1", b"m", 1)
    assert [m.payload for m in publishes(on.read())] == [b"m"]
    resumed = resume(b, "off", now=1, version=V5)
    assert [m.payload for m in publishes(resumed.after_connack)] == [b"m"]
    assert publishes(other.read()) == []
