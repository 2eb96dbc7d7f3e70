"""MQTT 5.0 rules, part 5: the statements the other engine-rule files leave unnamed.

CONNECT payload order and its UTF-8 fields, client ids and sessions, DUP on redelivery, the
UTF-8 and forwarded-unchanged PUBLISH properties, subscription identifiers on separate
copies, SUBACK/UNSUBACK contents, the QoS 1/2 sender rules under a one-message window and the
MQTT 3.1-style retry timer, the "leave out the Reason String / User Property rather than
exceed the receiver's Maximum Packet Size" statements for every packet an engine sends, and
the ordered, lossless byte stream the engines are given. Each test drives the real engines
with exact packets (``Peer`` for the broker, ``Server`` for the client) and names its 5.0
statement id.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Callable

import pytest

from mqttsim.netmodel import TcpReceiver, TcpSender
from mqttsim.protocol import Decoder, encode
from mqttsim.protocol import events as ev
from mqttsim.protocol.auth import StaticUsers, TopicRules
from mqttsim.protocol.errors import MQTTError
from mqttsim.protocol.packets import (Auth, Connack, Connect, Disconnect, Puback, Pubcomp,
                                      Publish, Pubrec, Pubrel, Suback, Subscribe, Subscription,
                                      Unsuback, Unsubscribe, Will)
from mqttsim.protocol.properties import Properties

from engine_rules_v5_support import V5, Peer, Server, advance, broker, of, publishes


def client(b, name: str, *subs, now: float = 0.0, **connect) -> Peer:
    p = Peer(b, name, now)
    p.connect(name, now=now, **connect)
    if subs:
        p.subscribe(*subs)
    return p


def persistent(b, name: str, *subs, now: float = 0.0, **connect) -> Peer:
    return client(b, name, *subs, now=now, clean_start=False, session_expiry_interval=1000,
                  **connect)


def resume(b, name: str, now: float) -> Peer:
    p = Peer(b, f"{name}@{now}", now)
    assert p.connect(name, clean_start=False, session_expiry_interval=1000, now=now)\
        .session_present
    return p


def connected(**config) -> Server:
    srv = Server(**config)
    srv.start()
    srv.accept()
    return srv


def swap(data: bytes, placeholder: bytes, replacement: bytes) -> bytes:
    """Put bytes the encoder would refuse (ill-formed UTF-8) in place of a same-length
    placeholder, so every length field stays right."""
    assert len(placeholder) == len(replacement) and data.count(placeholder) == 1
    return data.replace(placeholder, replacement)


OVERLONG_SLASH = b"\xc0\xaf"  # '/' in two bytes: not well-formed UTF-8 [MQTT-1.5.4-1]


# --------------------------------------------------------------------------------------
# 3.1.2-30, 3.1.3 CONNECT payload, client ids
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_1_2_30_with_an_auth_method_the_client_sends_nothing_before_connack():
    srv = Server(client_id="c", version=V5, keepalive=5,
                 properties=Properties(authentication_method="SCRAM-SHA-1"))
    [connect] = srv.start()
    assert connect.properties.authentication_method == "SCRAM-SHA-1"
    c = srv.client
    c.publish("t", b"queued", 1)
    for request in (lambda: c.subscribe("s", qos=1), lambda: c.unsubscribe("s")):
        try:  # refusing the call is fine; writing the packet before CONNACK is not
            request()
        except MQTTError as exc:
            assert exc.rule == "MQTT-3.1.2-30"
    assert srv.tick(20) == []  # no PINGREQ either, however long the CONNACK takes
    [sent] = srv.accept(authentication_method="SCRAM-SHA-1")
    assert isinstance(sent, Publish) and sent.payload == b"queued"


def test_v5_MQTT_3_1_3_1_connect_payload_fields_in_order_client_id_first():
    """The client engine's CONNECT, checked byte by byte, then read by the broker engine."""
    will = Will("w/t", b"bye", 1, False, Properties(will_delay_interval=5))
    srv = Server(client_id="cid", version=V5, keepalive=60, username="user",
                 password=b"pw", will=will)
    srv.client.connect(0.0)
    data = srv.client.data_to_send()
    payload = (b"\x00\x03cid"  # client identifier
               b"\x05\x18\x00\x00\x00\x05"  # will properties: Will Delay Interval 5
               b"\x00\x03w/t" b"\x00\x03bye"  # will topic, will payload
               b"\x00\x04user" b"\x00\x02pw")  # user name, password
    header = b"\x00\x04MQTT\x05\xce\x00\x3c\x00"  # name, level, flags, keepalive, no props
    assert data == bytes([0x10, len(header) + len(payload)]) + header + payload
    b = broker(auth=StaticUsers({"user": "pw"}, anonymous=True))
    s = client(b, "s", ("w/t", 1))
    p = Peer(b, "conn")
    p.send_bytes(data)
    assert p.read() == [Connack(False, 0, Properties(topic_alias_maximum=10))]
    p.drop(1)
    advance(b, 10)
    assert [(m.topic, m.payload) for m in publishes(s.read())] == [("w/t", b"bye")]


def test_v5_MQTT_3_1_3_2_client_id_names_the_session_on_the_broker():
    b = broker()
    for name, topic in (("a", "ta"), ("b", "tb")):
        persistent(b, name, (topic, 1)).drop(0)
    pub = client(b, "p")
    for topic in ("ta", "tb", "ta"):
        pub.publish(topic, topic.encode(), 1)
    got_b = resume(b, "b", now=1)
    assert [m.payload for m in publishes(got_b.read())] == [b"tb"]
    got_a = resume(b, "a", now=2)
    assert [m.payload for m in publishes(got_a.read())] == [b"ta", b"ta"]
    assert Peer(b, "new", 3).connect("c", clean_start=False).session_present is False


def test_v5_MQTT_3_1_3_2_client_id_names_the_session_on_the_client():
    srv = Server(client_id="me", version=V5, clean_session=False, session_expiry=100)
    srv.start()
    srv.accept()
    srv.client.publish("t", b"x", 1)
    [sent] = srv.read()
    srv.lose(1)
    [connect] = srv.start(2)
    assert (connect.client_id, connect.clean_session) == ("me", False)
    assert publishes(srv.accept(session_present=True)) == [dataclasses.replace(sent, dup=True)]


@pytest.mark.parametrize("client_id", ["0", "Z", "0123456789abcdefghijklm",
                                       "nopqrstuvwxyzABCDEFGHIJ", "KLMNOPQRSTUVWXYZ9876543"])
def test_v5_MQTT_3_1_3_5_broker_accepts_1_to_23_alphanumeric_client_ids(client_id):
    b = broker(allow_zero_length_clientid=False)
    p = Peer(b, "conn")
    connack = p.connect(client_id, clean_start=False, session_expiry_interval=60)
    assert connack.reason_code == 0 and connack.properties.assigned_client_identifier is None
    assert [e.client_id for e in of(p.events, ev.Connected)] == [client_id]
    assert client_id in b.sessions


def test_v5_MQTT_3_1_3_11_will_topic_is_a_utf8_string():
    b = broker()
    s = client(b, "s", ("+/#", 1))
    good = Peer(b, "good")
    good.connect("good", will=Will("température/é", b"w"))
    good.drop(1)
    assert [m.topic for m in publishes(s.read())] == ["température/é"]
    bad = Peer(b, "bad", 2)
    data = encode(Connect("bad", True, 0, None, None, Will("wXY", b"w")), V5)
    bad.send_bytes(swap(data, b"XY", OVERLONG_SLASH))
    assert bad.read() == [] and bad.closed  # malformed: no CONNACK 0, no session, no will
    assert "bad" not in b.sessions and publishes(s.read()) == []


def test_v5_MQTT_3_1_3_12_user_name_is_a_utf8_string():
    b = broker(auth=StaticUsers({"jürgen": "pw"}))
    assert Peer(b, "ok").connect("ok", username="jürgen", password=b"pw").reason_code == 0
    bad = Peer(b, "bad")
    data = encode(Connect("bad", True, 0, "jXYgen", b"pw"), V5)
    bad.send_bytes(swap(data, b"XY", b"\xed\xa0"))  # half of a UTF-16 surrogate
    assert bad.read() == [] and bad.closed and "bad" not in b.sessions


# --------------------------------------------------------------------------------------
# 3.3 PUBLISH: DUP, the topic name, UTF-8 and forwarded properties, subscription ids
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["on_reconnect", "timer"])
def test_v5_MQTT_3_3_1_1_client_sets_dup_when_it_redelivers(policy):
    srv = Server(client_id="c", version=V5, clean_session=False, session_expiry=100,
                 keepalive=0, retry_policy=policy, retry_interval=5)
    srv.start()
    srv.accept()
    srv.client.publish("t", b"x", 1, properties=Properties(content_type="a/b"))
    [first] = srv.read()
    assert first.dup is False
    if policy == "timer":
        resent = srv.tick(6)
    else:
        srv.lose(1)
        srv.start(2)
        resent = srv.accept(session_present=True)
    assert resent == [dataclasses.replace(first, dup=True)]


@pytest.mark.parametrize("policy", ["on_reconnect", "timer"])
def test_v5_MQTT_3_3_1_1_broker_sets_dup_when_it_redelivers(policy):
    b = broker(retry_policy=policy, retry_interval=5)
    s = persistent(b, "s", ("t", 2))
    client(b, "p").publish("t", b"x", 2, correlation_data=b"\x01")
    [first] = publishes(s.read())
    assert first.dup is False
    if policy == "timer":
        advance(b, 6)
        resent = s.read()
    else:
        s.drop(1)
        resent = resume(b, "s", now=2).read()
    assert resent == [dataclasses.replace(first, dup=True)]


def test_v5_MQTT_3_3_2_1_topic_name_leads_the_publish_variable_header_as_utf8():
    topic = "capteur/température/€😀"
    wire_topic = len(topic.encode()).to_bytes(2, "big") + topic.encode()
    b = broker()
    s = client(b, "s", (topic, 1))
    srv = connected(client_id="c", version=V5)
    srv.client.publish(topic, b"1", 1)
    data = srv.client.data_to_send()
    assert data[2:2 + len(wire_topic)] == wire_topic  # right after the 2-byte fixed header
    Peer(b, "c").connect("c")
    b.receive("c", data, 0)
    forwarded, _ = b.take_output("s")
    assert forwarded[2:2 + len(wire_topic)] == wire_topic
    assert Decoder(V5).feed(forwarded)[0].topic == topic
    bad = swap(encode(Publish("tXY", b"", 0), V5), b"XY", OVERLONG_SLASH)
    s.send_bytes(bad)
    assert s.read() == [Disconnect(0x81)] and s.closed


def publish_with_bad_utf8(prop: str) -> bytes:
    data = encode(Publish("t", b"x", 1, False, False, 1, Properties(**{prop: "vXY"})), V5)
    return swap(data, b"XY", OVERLONG_SLASH)


def check_utf8_property(prop: str, value: str) -> None:
    """A well-formed value arrives intact; an ill-formed one is a malformed packet at both
    engines (DISCONNECT 0x81) and is never forwarded."""
    b = broker()
    s = client(b, "s", ("t", 1))
    p = client(b, "p")
    p.publish("t", b"x", 1, **{prop: value})
    [msg] = publishes(s.read())
    assert getattr(msg.properties, prop) == value
    p.send_bytes(publish_with_bad_utf8(prop))
    assert p.read() == [Disconnect(0x81)] and p.closed
    assert publishes(s.read()) == []
    srv = connected(client_id="c", version=V5)
    events = srv.client.receive(publish_with_bad_utf8(prop), 1)
    assert srv.read() == [Disconnect(0x81)] and srv.client.should_close
    assert of(events, ev.MessageReceived) == []


def test_v5_MQTT_3_3_2_13_response_topic_is_a_utf8_string():
    check_utf8_property("response_topic", "réponse/à/moi")


def test_v5_MQTT_3_3_2_19_content_type_is_a_utf8_string():
    check_utf8_property("content_type", "text/plain; charset=utf-8; note=€")


def test_v5_MQTT_3_3_2_15_16_20_request_response_properties_forwarded_unchanged():
    """Live, queued for an offline session, and retained: the three paths a message takes."""
    props = dict(response_topic="réponse/client-7", correlation_data=b"\x00\xff\x00req-7",
                 content_type="application/vnd.x+json; v=2")
    b = broker()
    live = client(b, "live", ("t", 1))
    persistent(b, "away", ("t", 2)).drop(0)
    client(b, "p").publish("t", b"{}", 2, retain=True, **props)
    later = client(b, "later")
    received = (publishes(live.read()) + publishes(resume(b, "away", 1).read())
                + publishes(later.subscribe(("t", 1))))
    assert len(received) == 3
    for msg in received:
        assert (msg.properties.response_topic, msg.properties.correlation_data,
                msg.properties.content_type) == tuple(props.values())
    empty = client(b, "p2")
    empty.publish("t", b"", 1, packet_id=2, correlation_data=b"", content_type="")
    [msg] = publishes(live.read())
    assert (msg.properties.correlation_data, msg.properties.content_type) == (b"", "")


def test_v5_MQTT_3_3_4_5_separate_copies_each_carry_their_own_identifier():
    """A retained message sent for each of two overlapping subscriptions goes out twice;
    each copy names the subscription it was sent for."""
    b = broker()
    client(b, "p").publish("r/a", b"kept", 0, retain=True)
    s = Peer(b, "s")
    s.connect("s")
    [first] = publishes(s.subscribe(("r/#", 1), identifier=1))
    [second] = publishes(s.subscribe(("r/+", 1), identifier=2, packet_id=2))
    assert first.properties.subscription_identifiers == (1,)
    assert second.properties.subscription_identifiers == (2,)


# --------------------------------------------------------------------------------------
# 3.8 / 3.9 SUBACK, 3.10 / 3.11 UNSUBACK
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_8_4_6_7_and_3_9_3_1_one_code_per_filter_granted_qos_or_failure_in_order():
    b = broker(authz=TopicRules({None: [("ok/#", "readwrite"), ("ro/#", "write")]}))
    s = client(b, "s")
    filters = [("ok/2", 2), ("ro/x", 1), ("ok/0", 0), ("ok/1", 1), ("ok/#", 0), ("ro/y", 2)]
    [suback] = s.subscribe(*filters, packet_id=300)
    assert suback.packet_id == 300 and len(suback.reason_codes) == len(filters)
    assert suback.reason_codes == (2, 0x87, 0, 1, 0, 0x87)
    pub = client(b, "p")
    for n, topic in enumerate(("ok/2", "ok/0", "ok/1", "ro/x")):
        pub.publish(topic, b"m", 2, packet_id=n + 1)
    got = {m.topic: m.qos for m in publishes(s.read())}
    # each granted code is the QoS the subscription really gets; failed ones deliver nothing
    assert got == {"ok/2": 2, "ok/0": 0, "ok/1": 1}


def test_v5_MQTT_3_10_4_5_6_and_3_11_3_1_unsubscribe_is_a_sequence_answered_once_in_order():
    b = broker()
    s = client(b, "s", ("a", 1), ("b", 1))
    s.send(Unsubscribe(0xFFFF, ("never",)))
    assert s.read() == [Unsuback(0xFFFF, (0x11,))]  # answered though nothing was removed
    s.send(Unsubscribe(7, ("a", "x", "a", "b")))
    assert s.read() == [Unsuback(7, (0x00, 0x11, 0x11, 0x00))]  # the 2nd "a" is already gone
    client(b, "p").publish("a", b"m", 1)
    assert s.read() == []


# --------------------------------------------------------------------------------------
# 4.3 QoS senders: one message in flight, and the retry timer
# --------------------------------------------------------------------------------------

def test_v5_MQTT_4_3_2_2_3_client_qos1_publish_holds_its_slot_until_puback():
    srv = Server(client_id="c", version=V5, keepalive=0)
    srv.start()
    srv.accept(receive_maximum=1)
    for n in (1, 2):
        srv.client.publish("t", b"%d" % n, 1)
    [first] = srv.read()
    assert (first.qos, first.dup, first.payload) == (1, False, b"1") and first.packet_id
    srv.send(Pubrec(first.packet_id), Puback(first.packet_id + 1))  # not its PUBACK
    assert publishes(srv.read()) == [] and srv.tick(100) == []
    srv.send(Puback(first.packet_id, 0x80))  # a failure code acknowledges it all the same
    [second] = srv.read()
    assert (second.qos, second.dup, second.payload) == (1, False, b"2")


def test_v5_MQTT_4_3_2_2_3_broker_qos1_publish_holds_its_slot_until_puback():
    b = broker()
    s = client(b, "s", ("t", 1), receive_maximum=1)
    pub = client(b, "p")
    for n in (1, 2):
        pub.publish("t", b"%d" % n, 1, packet_id=n)
    [first] = publishes(s.read())
    assert (first.qos, first.dup, first.payload) == (1, False, b"1")
    s.send(Puback(first.packet_id + 1))
    advance(b, 100)
    assert s.read() == []
    s.send(Puback(first.packet_id))
    [second] = publishes(s.read())
    assert (second.qos, second.dup, second.payload) == (1, False, b"2")


def test_v5_MQTT_4_3_3_2_3_5_6_client_qos2_sender_under_the_retry_timer():
    srv = Server(client_id="c", version=V5, keepalive=0, retry_policy="timer", retry_interval=5)
    srv.start()
    srv.accept(receive_maximum=1)
    for n in (1, 2):
        srv.client.publish("t", b"%d" % n, 2)
    [first] = srv.read()
    assert (first.qos, first.dup, first.payload) == (2, False, b"1")
    assert srv.tick(6) == [dataclasses.replace(first, dup=True)]  # unacknowledged: resent
    srv.send(Pubrec(first.packet_id))
    assert srv.read() == [Pubrel(first.packet_id)]
    # The PUBREL stays unacknowledged (and keeps the slot) until PUBCOMP; the PUBLISH is
    # never sent again.
    assert srv.tick(12) == [Pubrel(first.packet_id)]
    assert srv.tick(18) == [Pubrel(first.packet_id)]
    srv.send(Pubcomp(first.packet_id))
    [second] = srv.read()
    assert (second.qos, second.dup, second.payload) == (2, False, b"2")


def test_v5_MQTT_4_3_3_2_3_5_6_broker_qos2_sender_under_the_retry_timer():
    b = broker(retry_policy="timer", retry_interval=5)
    s = client(b, "s", ("t", 2), receive_maximum=1)
    pub = client(b, "p")
    for n in (1, 2):
        pub.publish("t", b"%d" % n, 2, packet_id=n)
    [first] = publishes(s.read())
    assert (first.qos, first.dup, first.payload) == (2, False, b"1")
    advance(b, 6)
    assert s.read() == [dataclasses.replace(first, dup=True)]
    s.send(Pubrec(first.packet_id), now=7)
    assert s.read() == [Pubrel(first.packet_id)]
    advance(b, 30)
    resent = s.read()
    assert resent and set(resent) == {Pubrel(first.packet_id)}  # never the PUBLISH again
    s.send(Pubcomp(first.packet_id), now=31)
    [second] = publishes(s.read())
    assert (second.qos, second.dup, second.payload) == (2, False, b"2")


# --------------------------------------------------------------------------------------
# Reason String / User Property are left out rather than exceed the receiver's Maximum
# Packet Size: 3.2.2-19/20, 3.4.2-2/3, 3.5.2-2/3, 3.6.2-2/3, 3.7.2-2/3, 3.9.2-1/2,
# 3.11.2-1/2, 3.14.2-3/4. Each scenario makes an engine send one packet of the kind; it
# runs once without a limit, then with the limit set to that packet's size without any
# Reason String or User Property, where adding either would exceed it.
# --------------------------------------------------------------------------------------

Wire = list[tuple[object, int]]  # (packet, size on the wire)
ACL = {None: [("ok/#", "readwrite")]}


def bare_size(packet) -> int:
    props = dataclasses.replace(packet.properties, reason_string=None, user_properties=())
    return len(encode(dataclasses.replace(packet, properties=props), V5))


def broker_wire(peer: Peer) -> Wire:
    """What the broker wrote to ``peer``, with sizes (the close is honoured as in Peer)."""
    data, close = peer.b.take_output(peer.conn)
    packets = peer.decoder.feed(data) if data else []
    sizes = list(peer.decoder.sizes) if data else []
    if close and not peer.closed:
        peer.closed = True
        peer.b.connection_lost(peer.conn, peer.now, "closed_by_server")
    return list(zip(packets, sizes))


def limited(limit: int | None) -> dict:
    return {} if limit is None else {"maximum_packet_size": limit}


def on_broker(action: Callable[[Peer], None], *, auth=None, **connect):
    """A scenario: connect a peer to a broker (ACL: ok/# only) with the limit, then act."""
    def run(limit: int | None) -> Wire:
        b = broker(authz=TopicRules(ACL), auth=auth)
        p = Peer(b, "c")
        p.send(Connect("c", True, 0, properties=Properties(**limited(limit), **connect)))
        out = broker_wire(p)
        if not p.closed:
            action(p)
            out += broker_wire(p)
        return out
    return run


def on_client(action: Callable[[Server], None], before: Callable[[Server], None] | None = None):
    """A scenario: a client engine whose server announced the limit in CONNACK, then act.
    With ``before``, that runs on an earlier connection of a persistent session, and the
    limit comes with the CONNACK that resumes it."""
    def run(limit: int | None) -> Wire:
        srv = Server(client_id="c", version=V5, keepalive=0, clean_session=before is None,
                     session_expiry=0 if before is None else 100)
        srv.start()
        if before is not None:
            srv.accept()
            before(srv)
            srv.read()
            srv.lose(1)
            srv.start(2)
        srv.send(Connack(before is not None, 0, Properties(**limited(limit))))
        action(srv)
        data = srv.client.data_to_send()
        packets = srv.decoder.feed(data) if data else []
        return list(zip(packets, srv.decoder.sizes if data else []))
    return run


def _qos2_in(srv: Server) -> None:
    srv.send(Publish("t", b"x", 2, False, False, 7))
    srv.send(Pubrel(7))


def _qos2_out(srv: Server) -> None:
    """QoS 2 out and PUBREC back: the PUBREL is then resent when the session resumes (the
    PUBLISH itself would not fit under a limit as small as a PUBREL)."""
    srv.client.publish("t", b"x", 2)
    [sent] = srv.read()
    srv.send(Pubrec(sent.packet_id))


def _takeover(p: Peer) -> None:
    Peer(p.b, "c2").connect("c")


SCENARIOS: dict[str, tuple[type, Callable[[int | None], Wire]]] = {
    "connack_ok": (Connack, on_broker(lambda p: None)),
    "connack_refused": (Connack, on_broker(lambda p: None, auth=StaticUsers({"u": "pw"}))),
    "broker_puback_ok": (Puback, on_broker(lambda p: p.send(Publish("ok/x", b"", 1, False,
                                                                    False, 1)))),
    "broker_puback_87": (Puback, on_broker(lambda p: p.send(Publish("no", b"", 1, False,
                                                                    False, 1)))),
    "client_puback": (Puback, on_client(lambda s: s.send(Publish("t", b"x", 1, False, False,
                                                                 7)))),
    "broker_pubrec_87": (Pubrec, on_broker(lambda p: p.send(Publish("no", b"", 2, False,
                                                                    False, 1)))),
    "client_pubrec": (Pubrec, on_client(lambda s: s.send(Publish("t", b"x", 2, False, False,
                                                                 7)))),
    "broker_pubrel_92": (Pubrel, on_broker(lambda p: p.send(Pubrec(9)))),
    "client_pubrel": (Pubrel, on_client(lambda s: None, before=_qos2_out)),
    "client_pubrel_92": (Pubrel, on_client(lambda s: s.send(Pubrec(9)))),
    "broker_pubcomp_92": (Pubcomp, on_broker(lambda p: p.send(Pubrel(9)))),
    "client_pubcomp": (Pubcomp, on_client(_qos2_in)),
    "client_pubcomp_92": (Pubcomp, on_client(lambda s: s.send(Pubrel(9)))),
    "suback_87": (Suback, on_broker(lambda p: p.send(Subscribe(1, (Subscription("no", 1),))))),
    "suback_ok": (Suback, on_broker(lambda p: p.send(Subscribe(1, (Subscription("ok/a", 1),))))),
    "unsuback_11": (Unsuback, on_broker(lambda p: p.send(Unsubscribe(1, ("x",))))),
    "broker_disconnect_82": (Disconnect, on_broker(lambda p: p.send(Auth(0x19)))),
    "broker_disconnect_8e": (Disconnect, on_broker(_takeover)),
    "client_disconnect_04": (Disconnect, on_client(lambda s: s.client.disconnect(1, 0x04))),
    "client_disconnect_82": (Disconnect, on_client(lambda s: s.send(Connack(False, 0)))),
}


def check_left_out_rather_than_exceed(scenario: str) -> None:
    kind, run = SCENARIOS[scenario]
    [(free, _)] = [(p, n) for p, n in run(None) if isinstance(p, kind)]
    limit = bare_size(free)
    [(packet, size)] = [(p, n) for p, n in run(limit) if isinstance(p, kind)]
    assert (getattr(packet, "reason_code", None), getattr(packet, "reason_codes", None)) == \
        (getattr(free, "reason_code", None), getattr(free, "reason_codes", None))
    assert size <= limit, f"{packet} is {size} bytes; the receiver accepts {limit}"
    assert packet.properties.reason_string is None
    assert packet.properties.user_properties == ()


@pytest.mark.parametrize("scenario", ["connack_ok", "connack_refused"])
def test_v5_MQTT_3_2_2_19_20_connack_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


@pytest.mark.parametrize("scenario", ["broker_puback_ok", "broker_puback_87", "client_puback"])
def test_v5_MQTT_3_4_2_2_3_puback_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


@pytest.mark.parametrize("scenario", ["broker_pubrec_87", "client_pubrec"])
def test_v5_MQTT_3_5_2_2_3_pubrec_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


@pytest.mark.parametrize("scenario", ["broker_pubrel_92", "client_pubrel", "client_pubrel_92"])
def test_v5_MQTT_3_6_2_2_3_pubrel_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


@pytest.mark.parametrize("scenario", ["broker_pubcomp_92", "client_pubcomp",
                                      "client_pubcomp_92"])
def test_v5_MQTT_3_7_2_2_3_pubcomp_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


@pytest.mark.parametrize("scenario", ["suback_87", "suback_ok"])
def test_v5_MQTT_3_9_2_1_2_suback_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


def test_v5_MQTT_3_11_2_1_2_unsuback_reason_string_and_user_property_left_out():
    check_left_out_rather_than_exceed("unsuback_11")


@pytest.mark.parametrize("scenario", ["broker_disconnect_82", "broker_disconnect_8e",
                                      "client_disconnect_04", "client_disconnect_82"])
def test_v5_MQTT_3_14_2_3_4_disconnect_reason_string_and_user_property_left_out(scenario):
    check_left_out_rather_than_exceed(scenario)


# --------------------------------------------------------------------------------------
# 4.2 the transport, and what neither engine implements (4.12 enhanced authentication)
# --------------------------------------------------------------------------------------

def test_v5_MQTT_4_2_0_1_the_tcp_model_gives_the_engines_an_ordered_lossless_stream():
    """The simulator's transport (mqttsim.netmodel.tcp) over a channel that loses a third of
    the segments and reorders the rest: the subscriber's decoder still reads exactly the
    packets the broker wrote, in order."""
    b = broker()
    client(b, "s", ("t", 0))
    pub = client(b, "p")
    for n in range(200):
        pub.publish("t", b"m%03d" % n * (1 + n % 7))  # QoS 0: no window holds any back
    data, _ = b.take_output("s")
    sent = Decoder(V5).feed(data)
    sender, receiver, rng = TcpSender(mss=100, window=1000), TcpReceiver(), random.Random(7)
    sender.write(data)
    got, now, in_flight = bytearray(), 0.0, sender.poll(0.0)
    while len(got) < len(data) and now < 10_000:
        rng.shuffle(in_flight)
        acks = []
        for segment in in_flight:
            if rng.random() < 1 / 3:
                continue  # lost
            delivered, ack = receiver.on_segment(segment)
            got += delivered
            acks.append(ack)
        in_flight = []
        for ack in acks:
            in_flight += sender.on_ack(ack, now)
        now = sender.next_deadline() or now + 1
        in_flight += sender.on_timer(now) + sender.poll(now)
    assert sender.retransmissions > 0  # segments really were lost
    assert bytes(got) == data
    assert Decoder(V5).feed(bytes(got)) == sent and len(publishes(sent)) == 200


def test_v5_client_without_enhanced_auth_never_answers_a_server_auth():
    """Why MQTT-4.12.0-3/-5 and 4.12.1-1 are not applicable: the client engine has no AUTH
    exchange, so an AUTH from the server ends the connection instead of being answered."""
    srv = Server(client_id="c", version=V5, properties=Properties(authentication_method="X"))
    srv.start()
    srv.send(Auth(0x18, Properties(authentication_method="X")))
    assert srv.read() == [] and srv.client.should_close


def test_v5_broker_accepts_a_will_at_qos_2():
    """Why MQTT-3.2.2-12 is not applicable: no Will QoS exceeds the broker's capabilities."""
    b = broker()
    s = client(b, "s", ("w", 2))
    p = Peer(b, "c")
    assert p.connect("c", will=Will("w", b"bye", 2)).properties.maximum_qos is None
    p.drop(1)
    [will] = publishes(s.read())
    assert (will.qos, will.payload) == (2, b"bye")
