"""MQTT 5.0 broker-engine rules: subscriptions, QoS flows, ordering, flow control.

SUBSCRIBE/UNSUBSCRIBE and their acknowledgements, subscription identifiers, No Local,
shared subscriptions, the QoS 1/2 protocols with the broker as sender and as receiver,
resending on session resume, message order, and Receive Maximum. One test per 5.0
statement id, driving the broker with exact packets (``Peer``).
"""

from __future__ import annotations

import dataclasses

import pytest

from mqttsim.protocol import events as ev
from mqttsim.protocol.auth import TopicRules
from mqttsim.protocol.packets import (Disconnect, Pingreq, Pingresp, Puback, Pubcomp,
                                      Publish, Pubrec, Pubrel, Suback, Subscribe,
                                      Subscription, Unsuback, Unsubscribe)
from mqttsim.protocol.reason_codes import SUBACK_V5, UNSUBACK_V5

from support.peer import (V5, advance, broker, of, online, payloads, persistent, publishes,
                          resume)


# --------------------------------------------------------------------------------------
# 2.2.1 packet identifiers
# --------------------------------------------------------------------------------------

def test_v5_MQTT_2_2_1_4_broker_gives_each_qos_publish_an_unused_nonzero_id():
    b = broker()
    s = online(b, "s", ("t", 2), version=V5)
    pub = online(b, "p", version=V5)
    for n in range(10):
        pub.publish("t", b"%d" % n, 1 + n % 2, packet_id=n + 1)
    ids = [m.packet_id for m in publishes(s.read())]
    assert len(ids) == 10 and len(set(ids)) == 10 and 0 not in ids


def test_v5_MQTT_2_2_1_5_acks_echo_the_publish_packet_id():
    b = broker()
    pub = online(b, "p", version=V5)
    assert pub.publish("t", b"x", 1, packet_id=17) == [Puback(17, 0x10)]
    assert pub.publish("t", b"x", 2, packet_id=65535) == [Pubrec(65535, 0x10)]
    pub.write(Pubrel(65535))
    assert pub.read() == [Pubcomp(65535)]


def test_v5_MQTT_2_2_1_6_suback_and_unsuback_echo_the_request_packet_id():
    b = broker()
    p = online(b, "c", version=V5)
    [suback] = p.subscribe(("a", 0), packet_id=4242)
    assert suback.packet_id == 4242
    p.write(Unsubscribe(999, ("a",)))
    [unsuback] = p.read()
    assert unsuback.packet_id == 999


# --------------------------------------------------------------------------------------
# 3.8 SUBSCRIBE / 3.9 SUBACK
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_8_4_1_and_2_every_subscribe_gets_a_suback_with_its_id():
    b = broker()
    p = online(b, "c", version=V5)
    for packet_id in (1, 2, 3):
        [suback] = p.subscribe((f"t/{packet_id}", 1), packet_id=packet_id)
        assert isinstance(suback, Suback) and suback.packet_id == packet_id


def test_v5_MQTT_3_8_4_3_identical_filter_replaces_the_subscription():
    b = broker()
    s = online(b, "s", ("t", 0), identifier=1, version=V5)
    s.subscribe(("t", 2), packet_id=2, identifier=2)
    online(b, "p", version=V5).publish("t", b"x", 2)
    [msg] = publishes(s.read())  # one copy, with the new options
    assert msg.qos == 2 and msg.properties.subscription_identifiers == (2,)


def test_v5_MQTT_3_8_4_4_replaced_subscription_resends_retained_messages():
    b = broker()
    online(b, "p", version=V5).publish("r", b"kept", 1, retain=True)
    s = online(b, "s", version=V5)
    assert payloads(s.subscribe(("r", 1), packet_id=1)) == [b"kept"]
    assert payloads(s.subscribe(("r", 2), packet_id=2)) == [b"kept"]


def test_v5_MQTT_3_8_4_5_6_7_and_3_9_3_1_multi_filter_subscribe_one_suback_in_order():
    rules = TopicRules({None: [("ok/#", "readwrite")]})
    b = broker(authz=rules)
    p = online(b, "c", version=V5)
    [suback] = p.subscribe(("ok/a", 2), ("denied", 1), ("ok/b", 0), ("ok/c", 1))
    assert suback.reason_codes == (2, 0x87, 0, 1)
    assert all(code in SUBACK_V5 for code in suback.reason_codes)  # [MQTT-3.9.3-2]


def test_v5_MQTT_3_8_4_8_delivered_qos_is_the_lower_of_published_and_granted():
    b = broker()
    subs = {q: online(b, f"s{q}", ("t", q), version=V5) for q in (0, 1, 2)}
    pub = online(b, "p", version=V5)
    for n, qos in enumerate((0, 1, 2)):
        pub.publish("t", b"%d" % qos, qos, packet_id=n + 1 if qos else None)
    for granted, s in subs.items():
        assert [m.qos for m in publishes(s.read())] == [min(q, granted) for q in (0, 1, 2)]


def test_v5_MQTT_3_8_3_3_no_local_messages_are_not_sent_back_to_the_publisher():
    b = broker()
    me = online(b, "me", Subscription("chat", 1, no_local=True), version=V5)
    other = online(b, "other", ("chat", 1), version=V5)
    assert me.publish("chat", b"hello", 1) == [Puback(1)]  # and no copy of its own message
    assert payloads(other.read()) == [b"hello"]
    other.publish("chat", b"hi", 1)
    assert payloads(me.read()) == [b"hi"]


def test_v5_MQTT_3_8_3_4_no_local_on_a_shared_subscription_is_a_protocol_error():
    b = broker()
    p = online(b, "c", version=V5)
    # The encoder refuses to build this, so the bytes are written out by hand:
    # SUBSCRIBE id 1, no properties, "$share/g/t" with QoS 1 and No Local (0x04).
    p.write_bytes(b"\x82\x10\x00\x01\x00\x00\x0a$share/g/t\x05")
    assert p.read() == [Disconnect(0x82)]
    assert p.closed


def test_v5_MQTT_3_8_4_6_7_and_3_9_3_1_one_code_per_filter_granted_qos_or_failure_in_order():
    b = broker(authz=TopicRules({None: [("ok/#", "readwrite"), ("ro/#", "write")]}))
    s = online(b, "s", version=V5)
    filters = [("ok/2", 2), ("ro/x", 1), ("ok/0", 0), ("ok/1", 1), ("ok/#", 0), ("ro/y", 2)]
    [suback] = s.subscribe(*filters, packet_id=300)
    assert suback.packet_id == 300 and len(suback.reason_codes) == len(filters)
    assert suback.reason_codes == (2, 0x87, 0, 1, 0, 0x87)
    pub = online(b, "p", version=V5)
    for n, topic in enumerate(("ok/2", "ok/0", "ok/1", "ro/x")):
        pub.publish(topic, b"m", 2, packet_id=n + 1)
    got = {m.topic: m.qos for m in publishes(s.read())}
    # each granted code is the QoS the subscription really gets; failed ones deliver nothing
    assert got == {"ok/2": 2, "ok/0": 0, "ok/1": 1}


# --------------------------------------------------------------------------------------
# 3.3.4 subscription identifiers and overlapping subscriptions
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_3_4_2_overlapping_subscriptions_deliver_once_at_the_highest_qos():
    b = broker()
    s = online(b, "s", ("a/#", 0), version=V5)
    s.subscribe(("a/+", 2), packet_id=2)
    s.subscribe(("a/b", 1), packet_id=3)
    online(b, "p", version=V5).publish("a/b", b"x", 2)
    [msg] = publishes(s.read())
    assert msg.qos == 2


def test_v5_MQTT_3_3_4_3_and_4_one_copy_carries_every_matching_identifier():
    b = broker()
    s = online(b, "s", ("a/#", 1), identifier=10, version=V5)
    s.subscribe(("a/+", 1), packet_id=2, identifier=20)
    s.subscribe(("a/b", 1), packet_id=3)  # no identifier
    s.subscribe(("z/#", 1), packet_id=4, identifier=30)  # does not match
    online(b, "p", version=V5).publish("a/b", b"x", 1)
    [msg] = publishes(s.read())
    assert sorted(msg.properties.subscription_identifiers) == [10, 20]


def test_v5_MQTT_3_3_4_3_subscription_without_identifier_forwards_none():
    b = broker()
    s = online(b, "s", ("t", 1), version=V5)
    online(b, "p", version=V5).publish("t", b"x", 1)
    [msg] = publishes(s.read())
    assert msg.properties.subscription_identifiers == ()


def test_v5_MQTT_3_3_4_3_retained_messages_carry_the_subscription_identifier():
    b = broker()
    online(b, "p", version=V5).publish("r", b"kept", 1, retain=True)
    s = online(b, "s", version=V5)
    [msg] = publishes(s.subscribe(("r", 1), identifier=77))
    assert msg.properties.subscription_identifiers == (77,)


# --------------------------------------------------------------------------------------
# 3.10 UNSUBSCRIBE / 3.11 UNSUBACK
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_10_4_1_unsubscribe_removes_only_the_exact_filter():
    b = broker()
    s = online(b, "s", ("a/#", 1), version=V5)
    s.subscribe(("a/b", 1), packet_id=2)
    s.write(Unsubscribe(3, ("a/+",)))  # matches neither filter character for character
    assert s.read() == [Unsuback(3, (0x11,))]
    s.write(Unsubscribe(4, ("a/b",)))
    assert s.read() == [Unsuback(4, (0x00,))]
    online(b, "p", version=V5).publish("a/b", b"x", 1)
    assert payloads(s.read()) == [b"x"]  # still subscribed through a/#


def test_v5_MQTT_3_10_4_2_no_new_messages_after_unsubscribe():
    b = broker()
    s = online(b, "s", ("t", 1), version=V5)
    s.write(Unsubscribe(2, ("t",)))
    s.read()
    online(b, "p", version=V5).publish("t", b"x", 1)
    assert publishes(s.read()) == []


def test_v5_MQTT_3_10_4_3_in_flight_deliveries_complete_after_unsubscribe():
    b = broker()
    s = online(b, "s", ("t", 2), version=V5)
    online(b, "p", version=V5).publish("t", b"x", 2)
    [msg] = publishes(s.read())
    s.write(Unsubscribe(9, ("t",)))
    assert s.read() == [Unsuback(9, (0x00,))]
    s.write(Pubrec(msg.packet_id))
    assert s.read() == [Pubrel(msg.packet_id)]
    s.write(Pubcomp(msg.packet_id))
    assert [e.packet_id for e in of(s.events, ev.MessageAcknowledged)] == [msg.packet_id]


def test_v5_MQTT_3_10_4_4_5_6_and_3_11_3_1_one_unsuback_per_unsubscribe_codes_in_order():
    b = broker()
    s = online(b, "s", ("a", 0), ("c", 0), version=V5)
    s.write(Unsubscribe(5, ("c", "b", "a", "a")))
    [unsuback] = s.read()  # sent even for the filter that was never there
    assert unsuback == Unsuback(5, (0x00, 0x11, 0x00, 0x11))
    assert all(code in UNSUBACK_V5 for code in unsuback.reason_codes)  # [MQTT-3.11.3-2]


def test_v5_MQTT_3_12_4_1_every_pingreq_gets_a_pingresp():
    b = broker()
    p = online(b, "c", keepalive=10, version=V5)
    for t in (1, 2, 3):
        p.write(Pingreq(), now=t)
    assert p.read() == [Pingresp()] * 3


def test_v5_MQTT_3_10_4_5_6_and_3_11_3_1_unsubscribe_is_a_sequence_answered_once_in_order():
    b = broker()
    s = online(b, "s", ("a", 1), ("b", 1), version=V5)
    s.write(Unsubscribe(0xFFFF, ("never",)))
    assert s.read() == [Unsuback(0xFFFF, (0x11,))]  # answered though nothing was removed
    s.write(Unsubscribe(7, ("a", "x", "a", "b")))
    assert s.read() == [Unsuback(7, (0x00, 0x11, 0x11, 0x00))]  # the 2nd "a" is already gone
    online(b, "p", version=V5).publish("a", b"m", 1)
    assert s.read() == []


# --------------------------------------------------------------------------------------
# 4.3 QoS protocols: the broker as sender
# --------------------------------------------------------------------------------------

def test_v5_MQTT_4_3_2_1_2_3_and_3_3_1_1_qos1_sender_unacked_until_puback_resent_dup():
    b = broker()
    s = persistent(b, "s", ("t", 1), version=V5)
    pub = online(b, "p", version=V5)
    for n in (1, 2, 3):
        pub.publish("t", b"%d" % n, 1, packet_id=n)
    sent = publishes(s.read())
    assert [m.dup for m in sent] == [False] * 3 and len({m.packet_id for m in sent}) == 3
    s.write(Puback(sent[1].packet_id))  # only the second is acknowledged
    s.lose(2)
    resent = publishes(resume(b, "s", now=3, version=V5).after_connack)
    assert [(m.payload, m.packet_id, m.dup) for m in resent] == [
        (b"1", sent[0].packet_id, True), (b"3", sent[2].packet_id, True)]


def test_v5_MQTT_4_3_3_1_2_3_qos2_sender_publish_unacked_until_pubrec():
    b = broker()
    s = persistent(b, "s", ("t", 2), version=V5)
    online(b, "p", version=V5).publish("t", b"x", 2)
    [msg] = publishes(s.read())
    assert (msg.qos, msg.dup) == (2, False) and msg.packet_id
    s.lose(1)
    [again] = publishes(resume(b, "s", now=2, version=V5).after_connack)
    assert (again.packet_id, again.dup, again.payload) == (msg.packet_id, True, b"x")


def test_v5_MQTT_4_3_3_4_5_6_qos2_sender_pubrel_after_pubrec_then_never_publish_again():
    b = broker()
    s = persistent(b, "s", ("t", 2), version=V5)
    online(b, "p", version=V5).publish("t", b"x", 2)
    [msg] = publishes(s.read())
    s.write(Pubrec(msg.packet_id))
    assert s.read() == [Pubrel(msg.packet_id)]
    s.lose(1)  # PUBREL unacknowledged: it, not the PUBLISH, is resent
    again = resume(b, "s", now=2, version=V5)
    assert again.after_connack == [Pubrel(msg.packet_id)]
    again.write(Pubcomp(msg.packet_id))
    again.lose(3)
    # the flow is complete: nothing to resend
    assert resume(b, "s", now=4, version=V5).after_connack == []


def test_v5_MQTT_4_3_3_7_no_message_expiry_once_the_publish_was_sent():
    b = broker()
    s = persistent(b, "s", ("t", 2), version=V5)
    online(b, "p", version=V5).publish("t", b"x", 2, message_expiry_interval=2)
    [msg] = publishes(s.read())
    s.lose(1)
    [again] = publishes(resume(b, "s", now=30, version=V5).after_connack)  # long after the expiry
    assert again.packet_id == msg.packet_id and again.dup


def test_v5_MQTT_4_4_0_1_resume_resends_unacked_in_order_and_nothing_else():
    b = broker()
    s = persistent(b, "s", ("t", 2), version=V5)
    pub = online(b, "p", version=V5)
    for n, qos in enumerate((1, 2, 1, 2, 2), start=1):
        pub.publish("t", b"%d" % n, qos, packet_id=n)
    sent = publishes(s.read())
    s.write(Puback(sent[0].packet_id))  # 1 done
    s.write(Pubrec(sent[1].packet_id))  # 2 released
    s.write(Pubrec(sent[3].packet_id))  # 4 released
    s.write(Pubcomp(sent[3].packet_id))  # 4 done
    s.read()
    s.lose(1)
    again = resume(b, "s", now=2, version=V5).after_connack
    assert [(type(x).__name__, x.packet_id) for x in again] == [
        ("Pubrel", sent[1].packet_id), ("Publish", sent[2].packet_id),
        ("Publish", sent[4].packet_id)]
    assert all(m.dup for m in publishes(again))


@pytest.mark.parametrize("qos, ack", [(1, Puback), (2, Pubrec)])
def test_v5_MQTT_4_4_0_2_refused_delivery_is_never_retransmitted(qos, ack):
    b = broker()
    s = persistent(b, "s", ("t", qos), version=V5)
    online(b, "p", version=V5).publish("t", b"x", qos)
    [msg] = publishes(s.read())
    s.write(ack(msg.packet_id, 0x80))
    assert s.read() == []  # no PUBREL after a failed PUBREC
    [acked] = of(s.events, ev.MessageAcknowledged)
    assert acked.reason_code == 0x80
    s.lose(1)
    assert resume(b, "s", now=2, version=V5).after_connack == []


def test_v5_MQTT_3_6_2_1_and_3_7_2_1_unknown_packet_ids_get_0x92():
    b = broker()
    s = online(b, "s", ("t", 2), version=V5)
    s.write(Pubrec(321))  # the broker never sent 321
    assert s.read() == [Pubrel(321, 0x92)]
    s.write(Pubrel(654))  # the client never sent 654
    assert s.read() == [Pubcomp(654, 0x92)]


def test_v5_MQTT_4_3_2_2_3_broker_qos1_publish_holds_its_slot_until_puback():
    b = broker()
    s = online(b, "s", ("t", 1), receive_maximum=1, version=V5)
    pub = online(b, "p", version=V5)
    for n in (1, 2):
        pub.publish("t", b"%d" % n, 1, packet_id=n)
    [first] = publishes(s.read())
    assert (first.qos, first.dup, first.payload) == (1, False, b"1")
    s.write(Puback(first.packet_id + 1))
    advance(b, 100)
    assert s.read() == []
    s.write(Puback(first.packet_id))
    [second] = publishes(s.read())
    assert (second.qos, second.dup, second.payload) == (1, False, b"2")


def test_v5_MQTT_4_3_3_2_3_5_6_broker_qos2_sender_under_the_retry_timer():
    b = broker(retry_policy="timer", retry_interval=5)
    s = online(b, "s", ("t", 2), receive_maximum=1, version=V5)
    pub = online(b, "p", version=V5)
    for n in (1, 2):
        pub.publish("t", b"%d" % n, 2, packet_id=n)
    [first] = publishes(s.read())
    assert (first.qos, first.dup, first.payload) == (2, False, b"1")
    advance(b, 6)
    assert s.read() == [dataclasses.replace(first, dup=True)]
    s.write(Pubrec(first.packet_id), now=7)
    assert s.read() == [Pubrel(first.packet_id)]
    advance(b, 30)
    resent = s.read()
    assert resent and set(resent) == {Pubrel(first.packet_id)}  # never the PUBLISH again
    s.write(Pubcomp(first.packet_id), now=31)
    [second] = publishes(s.read())
    assert (second.qos, second.dup, second.payload) == (2, False, b"2")


# --------------------------------------------------------------------------------------
# 4.3 QoS protocols: the broker as receiver
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_3_4_1_receiver_answers_as_the_qos_requires():
    b = broker()
    s = online(b, "s", ("t", 2), version=V5)
    pub = online(b, "p", version=V5)
    assert pub.publish("t", b"0", 0) == []
    assert pub.publish("t", b"1", 1, packet_id=1) == [Puback(1)]
    assert pub.publish("t", b"2", 2, packet_id=2) == [Pubrec(2)]
    assert len(publishes(s.read())) == 3


def test_v5_MQTT_4_3_2_4_and_5_qos1_receiver_acks_and_reused_id_is_a_new_message():
    b = broker()
    s = online(b, "s", ("t", 1), version=V5)
    pub = online(b, "p", version=V5)
    assert pub.publish("t", b"a", 1, packet_id=7) == [Puback(7)]
    assert pub.publish("t", b"b", 1, packet_id=7) == [Puback(7)]
    assert payloads(s.read()) == [b"a", b"b"]


def test_v5_MQTT_4_3_3_8_10_11_qos2_receiver_delivers_once_until_pubrel():
    b = broker()
    s = online(b, "s", ("t", 2), version=V5)
    pub = online(b, "p", version=V5)
    assert pub.publish("t", b"once", 2, packet_id=5) == [Pubrec(5)]
    assert pub.publish("t", b"once", 2, packet_id=5, dup=True) == [Pubrec(5)]
    pub.write(Pubrel(5))
    assert pub.read() == [Pubcomp(5)]
    assert payloads(s.read()) == [b"once"]


def test_v5_MQTT_4_3_3_12_after_pubcomp_the_same_id_is_a_new_message():
    b = broker()
    s = online(b, "s", ("t", 2), version=V5)
    pub = online(b, "p", version=V5)
    pub.publish("t", b"first", 2, packet_id=5)
    pub.write(Pubrel(5))
    pub.read()
    assert pub.publish("t", b"second", 2, packet_id=5) == [Pubrec(5)]
    assert payloads(s.read()) == [b"first", b"second"]


def test_v5_MQTT_4_3_3_9_after_a_failed_pubrec_the_same_id_is_a_new_message():
    b = broker(authz=TopicRules({None: [("ok/#", "readwrite")]}))
    s = online(b, "s", ("ok/#", 2), version=V5)
    pub = online(b, "p", version=V5)
    assert pub.publish("denied", b"no", 2, packet_id=5) == [Pubrec(5, 0x87)]
    assert pub.publish("ok/x", b"yes", 2, packet_id=5) == [Pubrec(5)]
    assert payloads(s.read()) == [b"yes"]


def test_v5_MQTT_4_3_3_13_qos2_handshake_completes_even_if_the_message_expired():
    b = broker()
    pub = online(b, "p", version=V5)
    pub.publish("t", b"x", 2, packet_id=3, message_expiry_interval=1, now=0)
    pub.write(Pubrel(3), now=60)
    assert pub.read() == [Pubcomp(3)]


# --------------------------------------------------------------------------------------
# 4.6 message ordering
# --------------------------------------------------------------------------------------

def test_v5_MQTT_4_6_0_5_and_6_messages_are_forwarded_in_arrival_order():
    b = broker()
    s = online(b, "s", ("t/#", 2), receive_maximum=2, version=V5)  # most wait behind the window
    pub = online(b, "p", version=V5)
    order = []
    for n in range(12):
        qos = n % 3
        pub.publish(f"t/{n % 4}", b"%d" % n, qos, packet_id=n + 1 if qos else None)
        order.append(b"%d" % n)
    received: list = []
    for _ in range(20):
        batch = publishes(s.read())
        if not batch:
            break
        received += batch
        for m in batch:
            if m.qos == 1:
                s.write(Puback(m.packet_id))
            elif m.qos == 2:
                s.write(Pubrec(m.packet_id))
                s.write(Pubcomp(m.packet_id))
    assert [m.payload for m in received] == order


# --------------------------------------------------------------------------------------
# 4.9 flow control: the client's Receive Maximum
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_3_4_9_and_4_9_0_1_2_broker_stays_within_the_clients_receive_maximum():
    b = broker()
    s = online(b, "s", ("t", 2), receive_maximum=2, version=V5)
    pub = online(b, "p", version=V5)
    for n in range(5):
        pub.publish("t", b"%d" % n, 1 + n % 2, packet_id=n + 1)
    first = publishes(s.read())
    assert [m.payload for m in first] == [b"0", b"1"]  # quota 2, then zero: nothing more
    s.write(Puback(first[0].packet_id))
    assert payloads(s.read()) == [b"2"]
    s.write(Pubrec(first[1].packet_id))  # PUBREC does not free the slot ...
    assert publishes(s.read()) == []
    s.write(Pubcomp(first[1].packet_id))  # ... PUBCOMP does
    assert payloads(s.read()) == [b"3"]


def test_v5_MQTT_3_3_4_10_and_4_9_0_3_other_packets_flow_while_the_quota_is_zero():
    b = broker()
    s = online(b, "s", ("t", 1), receive_maximum=1, keepalive=30, version=V5)
    pub = online(b, "p", version=V5)
    pub.publish("t", b"a", 1, packet_id=1)
    pub.publish("t", b"b", 1, packet_id=2)
    assert payloads(s.read()) == [b"a"]  # quota now zero
    s.write(Pingreq())
    s.write(Subscribe(5, (Subscription("other", 1),)))
    s.write(Unsubscribe(6, ("other",)))
    s.write(Publish("x", b"y", 1, packet_id=8))
    assert [type(x).__name__ for x in s.read()] == ["Pingresp", "Suback", "Unsuback", "Puback"]


def test_v5_MQTT_3_3_4_9_resume_resends_no_more_than_the_new_receive_maximum():
    b = broker()
    s = persistent(b, "s", ("t", 1), receive_maximum=3, version=V5)
    pub = online(b, "p", version=V5)
    for n in range(4):
        pub.publish("t", b"%d" % n, 1, packet_id=n + 1)
    first = publishes(s.read())
    assert len(first) == 3
    s.lose(1)
    again = resume(b, "s", now=2, receive_maximum=1, version=V5)  # quota is re-initialised [4.9]
    resent = publishes(again.after_connack)
    assert [(m.payload, m.dup) for m in resent] == [(b"0", True)]
    again.write(Puback(resent[0].packet_id))
    assert payloads(again.read()) == [b"1"]


# --------------------------------------------------------------------------------------
# 4.8.2 shared subscriptions
# --------------------------------------------------------------------------------------

def test_v5_shared_subscription_delivers_each_message_to_one_member():
    b = broker()
    members = [online(b, f"m{n}", ("$share/g/t", 1), version=V5) for n in range(3)]
    pub = online(b, "p", version=V5)
    for n in range(9):
        pub.publish("t", b"%d" % n, 1, packet_id=n + 1)
    got = [payloads(m.read()) for m in members]
    assert sorted(sum(got, [])) == sorted(b"%d" % n for n in range(9))
    assert all(got)  # round robin: every member took a share


def test_v5_MQTT_4_8_2_3_shared_delivery_honours_each_members_granted_qos():
    b = broker()
    m0 = online(b, "m0", ("$share/g/t", 0), version=V5)
    m2 = online(b, "m2", ("$share/g/t", 2), version=V5)
    pub = online(b, "p", version=V5)
    for n in range(4):
        pub.publish("t", b"%d" % n, 2, packet_id=n + 1)
    assert {m.qos for m in publishes(m0.read())} == {0}
    assert {m.qos for m in publishes(m2.read())} == {2}


def test_v5_MQTT_4_8_2_3_and_3_3_4_2_3_shared_and_plain_overlap_in_one_copy():
    b = broker()
    s = online(b, "s", ("t", 0), identifier=1, version=V5)
    s.subscribe(("$share/g/t", 2), packet_id=2, identifier=2)
    online(b, "p", version=V5).publish("t", b"x", 2)
    copies = publishes(s.read())
    assert max(m.qos for m in copies) == 2  # the shared subscription granted QoS 2
    assert sorted(i for m in copies for i in m.properties.subscription_identifiers) == [1, 2]


def test_v5_MQTT_4_8_2_4_interrupted_shared_qos2_delivery_completes_on_reconnect():
    b = broker()
    m1 = persistent(b, "m1", ("$share/g/t", 2), version=V5)
    m2 = online(b, "m2", ("$share/g/t", 2), version=V5)
    pub = online(b, "p", version=V5)
    pub.publish("t", b"a", 2, packet_id=1)
    pub.publish("t", b"b", 2, packet_id=2)
    got1, got2 = publishes(m1.read()), publishes(m2.read())
    assert len(got1) == 1 and len(got2) == 1
    m1.lose(1)
    again = resume(b, "m1", now=2, version=V5)
    assert [(m.payload, m.dup) for m in publishes(again.after_connack)] == [(got1[0].payload, True)]
    assert publishes(m2.read()) == []  # not handed to the other member


def test_v5_MQTT_4_8_2_5_shared_message_is_not_redirected_when_the_session_ends():
    b = broker()
    m1 = online(b, "m1", ("$share/g/t", 1), version=V5)  # session ends with the connection
    m2 = online(b, "m2", ("$share/g/t", 1), version=V5)
    pub = online(b, "p", version=V5)
    pub.publish("t", b"a", 1, packet_id=1)
    pub.publish("t", b"b", 1, packet_id=2)
    [lost] = publishes(m1.read())
    [kept] = publishes(m2.read())
    m1.lose(1)
    assert publishes(m2.read()) == []
    assert lost.payload != kept.payload


def test_v5_MQTT_4_8_2_6_shared_message_refused_by_a_member_is_not_redirected():
    b = broker()
    m1 = online(b, "m1", ("$share/g/t", 1), version=V5)
    m2 = online(b, "m2", ("$share/g/t", 1), version=V5)
    pub = online(b, "p", version=V5)
    pub.publish("t", b"a", 1, packet_id=1)
    pub.publish("t", b"b", 1, packet_id=2)
    [refused] = publishes(m1.read())
    publishes(m2.read())
    m1.write(Puback(refused.packet_id, 0x80))
    assert publishes(m1.read()) == [] and publishes(m2.read()) == []
