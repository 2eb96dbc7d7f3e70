"""MQTT 3.1.1 broker behaviour for publish/subscribe, one test per statement id.

PUBLISH flags and retained messages, routing, SUBSCRIBE/UNSUBSCRIBE, PINGREQ, DISCONNECT,
QoS flows, session resume, ordering and error handling (OASIS MQTT 3.1.1 sections 3.3-3.14,
4 and 7), plus the MQTT 3.1 timer retry. Driven over hand-played connections
(``support.peer.Peer``) with exact packets in and exact replies out.
"""

from __future__ import annotations

import random

import pytest

from mqttsim.protocol import encode
from mqttsim.protocol import events as ev
from mqttsim.protocol.auth import StaticUsers, TopicRules
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.packets import (Connack, Connect, Disconnect, Pingreq, Pingresp, Puback,
                                      Pubcomp, Publish, Pubrec, Pubrel, Suback, Subscribe,
                                      Subscription, Unsuback, Unsubscribe, Will)
from mqttsim.protocol.topics import topic_matches

from support.peer import V, Peer, drain, online, payloads, publishes


# -- 3.3 PUBLISH flags and routing ------------------------------------------------------

def test_v311_MQTT_3_3_1_1_redelivery_sets_dup():
    b = BrokerEngine()
    s = online(b, "s", ("t", 2), clean_start=False)
    online(b, "p").send(Publish("t", b"1", 1, packet_id=1), Publish("t", b"2", 2, packet_id=2))
    first = publishes(s.read())
    assert [p.dup for p in first] == [False, False]
    s.lose()
    again = online(b, "s", clean_start=False).after_connack
    assert [(p.packet_id, p.dup) for p in again] == [(p.packet_id, True) for p in first]


def test_v311_MQTT_3_3_1_3_outgoing_dup_is_independent_of_incoming_dup():
    b = BrokerEngine()
    s = online(b, "s", ("t", 2))
    online(b, "p").send(Publish("t", b"x", 1, dup=True, packet_id=5),
                        Publish("t", b"y", 2, dup=True, packet_id=6))
    assert [p.dup for p in publishes(s.read())] == [False, False]


def test_v311_MQTT_3_3_1_5_retained_message_kept_with_its_qos():
    b = BrokerEngine()
    online(b, "p").send(Publish("r", b"v", 1, retain=True, packet_id=1))
    assert [p.qos for p in online(b, "hi", ("r", 2)).after_suback] == [1]
    assert [p.qos for p in online(b, "lo", ("r", 0)).after_suback] == [0]


def test_v311_MQTT_3_3_1_6_new_subscription_gets_last_retained_per_topic():
    b = BrokerEngine()
    p = online(b, "p")
    for topic, value in [("a/1", b"old"), ("a/1", b"new"), ("a/2", b"two"), ("b/1", b"no")]:
        p.send(Publish(topic, value, 0, retain=True))
    got = online(b, "s", ("a/+", 0)).after_suback
    assert sorted((m.topic, m.payload) for m in got) == [("a/1", b"new"), ("a/2", b"two")]


def test_v311_MQTT_3_3_1_7_retained_qos0_replaces_the_previous_one():
    b = BrokerEngine()
    p = online(b, "p")
    p.send(Publish("r", b"old", 1, retain=True, packet_id=1))
    p.send(Publish("r", b"new", 0, retain=True))
    got = online(b, "s", ("r", 1)).after_suback
    assert [(m.payload, m.qos) for m in got] == [(b"new", 0)]


def test_v311_MQTT_3_3_1_8_retained_sent_for_a_new_subscription_has_retain_1():
    b = BrokerEngine()
    online(b, "p").send(Publish("r", b"v", 0, retain=True))
    assert [m.retain for m in online(b, "s", ("#", 0)).after_suback] == [True]


def test_v311_MQTT_3_3_1_9_established_subscription_gets_retain_0():
    b = BrokerEngine()
    s = online(b, "s", ("r", 1))
    online(b, "p").send(Publish("r", b"v", 1, retain=True, packet_id=1))
    assert [(m.payload, m.retain) for m in publishes(s.read())] == [(b"v", False)]


def test_v311_MQTT_3_3_1_10_empty_retained_publish_clears_the_topic():
    b = BrokerEngine()
    p = online(b, "p")
    p.send(Publish("r", b"v", 0, retain=True))
    s = online(b, "s", ("r", 0))
    p.send(Publish("r", b"", 0, retain=True))
    assert [(m.payload, m.retain) for m in publishes(s.read())] == [(b"", False)]  # as normal
    assert online(b, "late", ("r", 0)).after_suback == []


def test_v311_MQTT_3_3_1_11_empty_retained_message_never_stored():
    b = BrokerEngine()
    online(b, "p").send(Publish("r", b"", 1, retain=True, packet_id=1))
    assert online(b, "late", ("#", 1)).after_suback == []


def test_v311_MQTT_3_3_1_12_retain_0_leaves_the_retained_message_alone():
    b = BrokerEngine()
    p = online(b, "p")
    p.send(Publish("r", b"keep", 0, retain=True))
    p.send(Publish("r", b"live", 0, retain=False))
    assert payloads(online(b, "late", ("r", 0)).after_suback) == [b"keep"]


def test_v311_MQTT_3_3_2_1_server_publish_starts_with_the_utf8_topic_name():
    b = BrokerEngine()
    s = online(b, "s", ("#", 1))
    topic = "température/é"
    online(b, "p").send(Publish(topic, b"21", 1, packet_id=9))
    data, _ = b.take_output(s.conn)
    name = topic.encode()
    assert data[0] >> 4 == 3 and data[1] == 2 + len(name) + 2 + 2  # one-byte remaining length
    assert data[2:4 + len(name)] == len(name).to_bytes(2, "big") + name


def test_v311_MQTT_3_3_2_3_server_publish_topic_matches_the_filter():
    b = BrokerEngine()
    filters = ("a/+/c", "x/#")
    s = online(b, "s", *((f, 0) for f in filters))
    p = online(b, "p")
    for topic in ("a/b/c", "a/b/d", "x", "x/y/z", "ax/y", "b/x"):
        p.send(Publish(topic, b""))
    got = [m.topic for m in publishes(s.read())]
    assert got == ["a/b/c", "x", "x/y/z"]
    assert all(any(topic_matches(f, t) for f in filters) for t in got)


def test_v311_MQTT_3_3_4_1_server_answers_publish_as_its_qos_requires():
    c = online(BrokerEngine(), "c")
    assert c.send(Publish("t", b"0", 0)) == []
    assert c.send(Publish("t", b"1", 1, packet_id=7)) == [Puback(7)]
    assert c.send(Publish("t", b"2", 2, packet_id=8)) == [Pubrec(8)]


def test_v311_MQTT_3_3_5_1_overlapping_subscriptions_use_the_highest_qos():
    b = BrokerEngine()
    s = online(b, "s", ("a/#", 0), ("a/+", 2), ("+/b", 1))
    p = online(b, "p")
    p.send(Publish("a/b", b"2", 2, packet_id=1))
    p.send(Publish("a/b", b"1", 1, packet_id=2))
    # The spec allows extra copies; this broker sends one, at the highest granted QoS.
    assert [(m.payload, m.qos) for m in publishes(s.read())] == [(b"2", 2), (b"1", 1)]


def test_v311_MQTT_3_3_5_2_unauthorized_publish_is_acked_and_dropped():
    b = BrokerEngine(auth=StaticUsers({"alice": "pw", "eve": "pw"}),
                     authz=TopicRules({"alice": [("#", "readwrite")], "eve": [("eve/#", "write")]}))
    watcher = online(b, "w", ("#", 2), username="alice", password=b"pw")
    eve = online(b, "e", username="eve", password=b"pw")
    assert eve.send(Publish("a/x", b"0", 0)) == []
    assert eve.send(Publish("a/x", b"1", 1, packet_id=1)) == [Puback(1)]
    assert eve.send(Publish("a/x", b"2", 2, packet_id=2)) == [Pubrec(2)]
    assert eve.send(Pubrel(2)) == [Pubcomp(2)]
    assert watcher.read() == [] and not eve.closed
    dropped = [(e.payload, e.reason) for e in eve.events if isinstance(e, ev.MessageDropped)]
    assert dropped == [(b"0", "not_authorized"), (b"1", "not_authorized"),
                       (b"2", "not_authorized")]
    eve.send(Publish("eve/1", b"ok", 1, packet_id=3))
    assert payloads(watcher.read()) == [b"ok"]  # what she may publish still flows


# -- 3.8 SUBSCRIBE / 3.9 SUBACK ---------------------------------------------------------

def _guarded() -> BrokerEngine:
    return BrokerEngine(authz=TopicRules({None: [("open/#", "readwrite")]}))


def test_v311_MQTT_3_8_4_1_every_subscribe_gets_a_suback():
    c = online(_guarded(), "c")
    assert c.send(Subscribe(1, (Subscription("open/a", 1),))) == [Suback(1, (1,))]
    assert c.send(Subscribe(2, (Subscription("closed", 1),))) == [Suback(2, (0x80,))]
    assert c.send(Subscribe(3, (Subscription("open/a", 2),))) == [Suback(3, (2,))]


@pytest.mark.parametrize("packet_id", [1, 0x7FFF, 0xFFFF])
def test_v311_MQTT_3_8_4_2_suback_has_the_subscribe_packet_id(packet_id):
    c = online(BrokerEngine(), "c")
    (suback,) = c.send(Subscribe(packet_id, (Subscription("t", 0),)))
    assert suback.packet_id == packet_id


def test_v311_MQTT_3_8_4_3_identical_filter_replaces_the_subscription():
    b = BrokerEngine()
    p = online(b, "p")
    p.send(Publish("t", b"r", 1, retain=True, packet_id=1))
    s = online(b, "s", ("t", 1))
    p.send(Publish("t", b"inflight", 1, packet_id=2))
    (inflight,) = publishes(s.read())
    reply = s.send(Subscribe(2, (Subscription("t", 2),)))
    assert reply[0] == Suback(2, (2,))
    assert [(m.payload, m.retain) for m in reply[1:]] == [(b"r", True)]  # retained re-sent
    s.send(Puback(inflight.packet_id))  # the earlier delivery still completes
    assert any(isinstance(e, ev.MessageAcknowledged) for e in s.events)
    p.send(Publish("t", b"next", 2, packet_id=3))
    assert [(m.payload, m.qos) for m in publishes(s.read())] == [(b"next", 2)]  # one copy


def test_v311_MQTT_3_8_4_4_multi_filter_subscribe_is_a_sequence_with_one_suback():
    b = BrokerEngine()
    s = online(b, "s")
    subs = (Subscription("a", 0), Subscription("b", 1), Subscription("a", 2))
    assert s.send(Subscribe(4, subs)) == [Suback(4, (0, 1, 2))]
    p = online(b, "p")
    p.send(Publish("a", b"A", 2, packet_id=1), Publish("b", b"B", 2, packet_id=2))
    assert [(m.payload, m.qos) for m in publishes(s.read())] == [(b"A", 2), (b"B", 1)]


def test_v311_MQTT_3_8_4_5_suback_has_one_code_per_filter():
    b = _guarded()
    s = online(b, "s")
    subs = (Subscription("open/x", 1), Subscription("secret", 2), Subscription("open/y", 0))
    assert s.send(Subscribe(1, subs)) == [Suback(1, (1, 0x80, 0))]
    p = online(b, "p")
    p.send(Publish("secret", b"s"), Publish("open/y", b"y"))
    assert payloads(s.read()) == [b"y"]


@pytest.mark.parametrize("published", [0, 1, 2])
@pytest.mark.parametrize("granted", [0, 1, 2])
def test_v311_MQTT_3_8_4_6_delivered_qos_is_min_of_published_and_granted(published, granted):
    b = BrokerEngine()
    s = online(b, "s", ("t", granted))
    online(b, "p").send(Publish("t", b"x", published, packet_id=published and 1 or None))
    assert [m.qos for m in publishes(s.read())] == [min(published, granted)]


def test_v311_MQTT_3_9_3_1_return_codes_follow_the_filter_order():
    c = online(_guarded(), "c")
    subs = [("open/2", 2), ("x", 0), ("open/0", 0), ("open/1", 1), ("y", 2)]
    (suback,) = c.send(Subscribe(1, tuple(Subscription(f, q) for f, q in subs)))
    assert suback.reason_codes == (2, 0x80, 0, 1, 0x80)


# -- 3.10 UNSUBSCRIBE -------------------------------------------------------------------

def test_v311_MQTT_3_10_4_1_unsubscribe_compares_filters_character_by_character():
    b = BrokerEngine()
    s = online(b, "s", ("a/+", 0), ("x/#", 0))
    p = online(b, "p")
    assert s.send(Unsubscribe(2, ("a/b", "A/+", "x/+", "x"))) == [Unsuback(2)]
    p.send(Publish("a/b", b"1"), Publish("x/y", b"2"))
    assert payloads(s.read()) == [b"1", b"2"]  # nothing matched exactly: nothing removed
    s.send(Unsubscribe(3, ("a/+",)))
    p.send(Publish("a/b", b"3"), Publish("x/y", b"4"))
    assert payloads(s.read()) == [b"4"]


def test_v311_MQTT_3_10_4_2_no_new_messages_after_unsubscribe():
    b = BrokerEngine()
    s = online(b, "s", ("t", 1), clean_start=False)
    s.send(Unsubscribe(2, ("t",)))
    p = online(b, "p")
    p.send(Publish("t", b"now", 1, packet_id=1))
    assert s.read() == []
    s.lose()
    p.send(Publish("t", b"offline", 1, packet_id=2))
    assert online(b, "s", clean_start=False).after_connack == []


def test_v311_MQTT_3_10_4_3_started_deliveries_complete_after_unsubscribe():
    b = BrokerEngine()
    s = online(b, "s", ("q1", 1), ("q2", 2))
    online(b, "p").send(Publish("q1", b"1", 1, packet_id=1), Publish("q2", b"2", 2, packet_id=2))
    one, two = publishes(s.read())
    assert s.send(Unsubscribe(3, ("q1", "q2"))) == [Unsuback(3)]
    assert s.send(Puback(one.packet_id)) == []
    assert s.send(Pubrec(two.packet_id)) == [Pubrel(two.packet_id)]
    s.send(Pubcomp(two.packet_id))
    acked = [e.packet_id for e in s.events if isinstance(e, ev.MessageAcknowledged)]
    assert acked == [one.packet_id, two.packet_id]


@pytest.mark.parametrize("packet_id", [1, 0x0A0B, 0xFFFF])
def test_v311_MQTT_3_10_4_4_unsuback_has_the_unsubscribe_packet_id(packet_id):
    s = online(BrokerEngine(), "s", ("t", 0))
    assert s.send(Unsubscribe(packet_id, ("t",))) == [Unsuback(packet_id)]


def test_v311_MQTT_3_10_4_5_unsuback_even_when_nothing_was_removed():
    c = online(BrokerEngine(), "c")
    assert c.send(Unsubscribe(7, ("never/subscribed",))) == [Unsuback(7)]


def test_v311_MQTT_3_10_4_6_multi_filter_unsubscribe_is_a_sequence_with_one_unsuback():
    b = BrokerEngine()
    s = online(b, "s", ("a", 0), ("b", 0), ("c", 0))
    assert s.send(Unsubscribe(9, ("a", "c", "zzz"))) == [Unsuback(9)]
    online(b, "p").send(Publish("a", b"a"), Publish("b", b"b"), Publish("c", b"c"))
    assert payloads(s.read()) == [b"b"]


# -- 3.12 PINGREQ / 3.14 DISCONNECT -----------------------------------------------------

def test_v311_MQTT_3_12_4_1_every_pingreq_gets_a_pingresp():
    c = online(BrokerEngine(), "c")
    assert c.send(Pingreq(), Pingreq(), Pingreq(), now=1.0) == [Pingresp()] * 3
    assert c.send(Pingreq(), now=2.0) == [Pingresp()]


def test_v311_MQTT_3_14_4_3_disconnect_discards_the_will():
    b = BrokerEngine()
    watcher = online(b, "w", ("#", 2))
    p = online(b, "p", will=Will("dead/p", b"gone", qos=1))
    assert p.send(Disconnect()) == [] and p.closed
    p.lose()
    assert watcher.read() == []
    assert not any(isinstance(e, ev.WillPublished) for e in p.events)


# -- 4.1 sessions, 4.3 QoS, 4.4 resend, 4.5 delivery, 4.6 ordering ----------------------

def test_v311_MQTT_4_1_0_1_server_keeps_qos2_state_across_connections():
    b = BrokerEngine()
    watcher = online(b, "w", ("t", 2))
    p = online(b, "p", clean_start=False)
    assert p.send(Publish("t", b"x", 2, packet_id=7)) == [Pubrec(7)]
    p.lose()
    p = online(b, "p", clean_start=False)
    assert p.send(Publish("t", b"x", 2, dup=True, packet_id=7)) == [Pubrec(7)]
    assert p.send(Pubrel(7)) == [Pubcomp(7)]
    assert payloads(watcher.read()) == [b"x"]  # delivered once, not twice


def test_v311_MQTT_4_1_0_2_session_lasts_as_long_as_the_connection():
    b = BrokerEngine()
    s = online(b, "s", ("t", 1), keepalive=60)
    online(b, "p", keepalive=0).send(Publish("t", b"x", 1, packet_id=1))
    (msg,) = publishes(s.read())
    for t in range(50, 1001, 50):  # an hour-long quiet connection kept alive by pings
        b.on_timer(float(t))
        assert s.send(Pingreq(), now=float(t)) == [Pingresp()]
    assert s.send(Puback(msg.packet_id), now=1000.0) == []
    assert any(isinstance(e, ev.MessageAcknowledged) for e in s.events)
    online(b, "p2", keepalive=0, now=1000.0).send(Publish("t", b"y", 0), now=1000.0)
    assert payloads(s.read()) == [b"y"]


def test_v311_MQTT_4_3_2_2_server_puback_then_same_id_is_a_new_message():
    b = BrokerEngine()
    watcher = online(b, "w", ("t", 1))
    p = online(b, "p")
    assert p.send(Publish("t", b"a", 1, packet_id=3)) == [Puback(3)]
    assert p.send(Publish("t", b"b", 1, dup=True, packet_id=3)) == [Puback(3)]
    assert payloads(watcher.read()) == [b"a", b"b"]


def test_v311_MQTT_4_3_3_2_server_delivers_qos2_once_until_pubrel():
    b = BrokerEngine()
    watcher = online(b, "w", ("t", 2))
    p = online(b, "p")
    assert p.send(Publish("t", b"x", 2, packet_id=4)) == [Pubrec(4)]
    assert p.send(Publish("t", b"x", 2, dup=True, packet_id=4)) == [Pubrec(4)]
    assert p.send(Pubrel(4)) == [Pubcomp(4)]
    assert p.send(Publish("t", b"y", 2, packet_id=4)) == [Pubrec(4)]  # new after PUBCOMP
    assert payloads(watcher.read()) == [b"x", b"y"]


def test_v311_MQTT_4_4_0_1_server_resends_publish_and_pubrel_on_resume():
    b = BrokerEngine()
    s = online(b, "s", ("t", 2), clean_start=False)
    online(b, "p").send(Publish("t", b"one", 1, packet_id=1), Publish("t", b"two", 2, packet_id=2),
                        Publish("t", b"three", 2, packet_id=3))
    one, two, three = publishes(s.read())
    assert s.send(Pubrec(two.packet_id)) == [Pubrel(two.packet_id)]
    s.lose()
    s = online(b, "s", clean_start=False)
    assert s.after_connack == [Publish("t", b"one", 1, dup=True, packet_id=one.packet_id),
                               Pubrel(two.packet_id),
                               Publish("t", b"three", 2, dup=True, packet_id=three.packet_id)]


def test_v311_MQTT_4_5_0_1_message_added_to_every_matching_session():
    b = BrokerEngine()
    online_sub = online(b, "a", ("t/#", 1))
    online(b, "b", ("t/+", 1), clean_start=False).lose()
    other = online(b, "c", ("u", 1))
    online(b, "p").send(Publish("t/x", b"m", 1, packet_id=1))
    assert payloads(online_sub.read()) == [b"m"]
    assert other.read() == []
    assert payloads(online(b, "b", clean_start=False).after_connack) == [b"m"]


def test_v311_MQTT_4_6_0_5_every_topic_is_ordered_by_default():
    b = BrokerEngine(BrokerConfig(max_inflight=2))  # most messages wait in the queue
    s = online(b, "s", ("#", 1))
    p = online(b, "p")
    sent = [(f"t/{i % 3}", b"%d" % i) for i in range(30)]
    for i, (topic, data) in enumerate(sent):
        p.send(Publish(topic, data, 1, packet_id=i + 1))
    assert [(m.topic, m.payload) for m in drain(s)] == sent


def test_v311_MQTT_4_6_0_6_each_clients_messages_forwarded_in_arrival_order():
    b = BrokerEngine(BrokerConfig(max_inflight=1))
    s = online(b, "s", ("t", 2), clean_start=False)
    pubs = [online(b, "p1"), online(b, "p2")]
    rng = random.Random(7)
    for i in range(40):
        who = rng.randrange(2)
        pubs[who].send(Publish("t", b"%d:%d" % (who, i), rng.choice((1, 2)), packet_id=i + 1))
    s.lose()  # a break in the middle: resends must not reorder anything
    s = online(b, "s", clean_start=False)
    got = drain(s, s.after_connack)
    for who in (0, 1):
        mine = [int(m.payload.split(b":")[1]) for m in got if m.payload.startswith(b"%d:" % who)]
        assert mine == sorted(mine) and mine
    assert len(got) == 40


@pytest.mark.parametrize("data", [
    encode(Connack(False, 0), V),
    encode(Suback(1, (0,)), V),
    bytes.fromhex("30 05 00 03 61 2f 23"),  # PUBLISH to "a/#": a wildcard in a topic name
    bytes.fromhex("60 02 00 01"),  # PUBREL with flags 0000
], ids=["connack", "suback", "publish_wildcard", "pubrel_flags"])
def test_v311_MQTT_4_8_0_1_protocol_violation_closes_that_connection_only(data):
    b = BrokerEngine()
    bystander = online(b, "w", ("#", 0))
    bad = online(b, "bad")
    assert bad.send_bytes(data + encode(Pingreq(), V)) == [] and bad.closed
    assert [e.reason for e in bad.closes()] == ["protocol_error"]
    assert bystander.send(Pingreq()) == [Pingresp()] and not bystander.closed


# -- 7.1 transport ----------------------------------------------------------------------

SCRIPT = [Connect("c", keepalive=0), Subscribe(1, (Subscription("t", 2),)),
          Publish("t", b"a" * 300, 1, packet_id=2), Publish("t", b"b", 2, packet_id=3),
          Pubrel(3), Pingreq(), Unsubscribe(4, ("t",)), Disconnect()]


def _replay(chunks: list[bytes]) -> list:
    b = BrokerEngine()
    c = Peer(b, "c")
    out = []
    for chunk in chunks:
        out += c.send_bytes(chunk)
    return out


def test_v311_MQTT_7_1_1_1_broker_reads_a_byte_stream_however_it_is_split():
    stream = b"".join(encode(p, V) for p in SCRIPT)
    whole = _replay([stream])
    assert [type(p) for p in whole] == [Connack, Suback, Publish, Puback, Publish, Pubrec,
                                        Pubcomp, Pingresp, Unsuback]
    assert _replay([stream[i:i + 1] for i in range(len(stream))]) == whole
    rng = random.Random(3)
    cuts = sorted(rng.sample(range(1, len(stream)), 25))
    assert _replay([stream[i:j] for i, j in zip([0] + cuts, cuts + [len(stream)])]) == whole


# -- MQTT 3.1 (protocol level 3) specifics ----------------------------------------------

def test_v31_client_id_longer_than_23_characters_refused_with_0x02():
    b = BrokerEngine()
    c = Peer(b, "long", version=3)
    assert c.send(Connect("x" * 24)) == [Connack(False, 0x02)] and c.closed
    assert online(b, "x" * 23, version=3).connack == Connack(False, 0)


def test_v31_broker_resends_to_a_31_subscriber_on_a_timer():
    b = BrokerEngine(BrokerConfig(retry_interval=5.0))
    s = online(b, "s", ("t", 2), version=3, keepalive=0)
    online(b, "p", keepalive=0).send(Publish("t", b"1", 1, packet_id=1),
                                     Publish("t", b"2", 2, packet_id=2))
    one, two = publishes(s.read())
    b.on_timer(4.99)
    assert s.read() == []
    b.on_timer(5.0)  # same connection, no reconnect: DUP copies of both
    assert s.read() == [Publish("t", b"1", 1, dup=True, packet_id=one.packet_id),
                        Publish("t", b"2", 2, dup=True, packet_id=two.packet_id)]
    s.send(Puback(one.packet_id), now=6.0)
    assert s.send(Pubrec(two.packet_id), now=6.0) == [Pubrel(two.packet_id)]
    b.on_timer(11.0)
    assert s.read() == [Pubrel(two.packet_id)]  # only the unfinished step is retried
    s.send(Pubcomp(two.packet_id), now=12.0)
    b.on_timer(100.0)
    assert s.read() == [] and not s.closed


def test_v311_broker_does_not_resend_on_a_timer():
    """3.1.1 resends only when a session resumes [MQTT-4.4.0-1], never on a live link."""
    b = BrokerEngine(BrokerConfig(retry_interval=5.0))
    s = online(b, "s", ("t", 1), keepalive=0)
    online(b, "p", keepalive=0).send(Publish("t", b"1", 1, packet_id=1))
    assert len(publishes(s.read())) == 1
    b.on_timer(100.0)
    assert s.read() == []
