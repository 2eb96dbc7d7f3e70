"""MQTT 3.1.1 broker behaviour around connections, one test per statement id.

CONNECT, CONNACK, sessions, will messages, authentication, keepalive and client ids (OASIS
MQTT 3.1.1 sections 2.3, 3.1 and 3.2). The broker engine is driven over hand-played
connections (``support.peer.Peer``): exact packets in, exact replies out, time passed
explicitly so keepalive boundaries are tested to the millisecond. Byte-format statements are
in test_codec_rules_v311.py; publish/subscribe behaviour in
test_engine_rules_v311_broker_pubsub.py; the client engine in test_engine_rules_v311_client.py.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol import events as ev
from mqttsim.protocol.auth import StaticUsers
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.packets import (Connack, Connect, Disconnect, Pingreq, Pingresp, Puback,
                                      Pubcomp, Publish, Pubrec, Pubrel, Suback, Subscribe,
                                      Subscription, Unsuback, Unsubscribe, Will)

from support.peer import V, Peer, online, payloads, publishes


# -- 2.3.1 packet identifiers -----------------------------------------------------------

def test_v311_MQTT_2_3_1_4_server_uses_unused_ids_and_keeps_them_on_resend():
    b = BrokerEngine()
    sub = online(b, "s", ("t", 1), clean_start=False)
    pub = online(b, "p")
    for i in range(3):
        pub.send(Publish("t", b"%d" % i, 1, packet_id=10 + i))
    ids = [p.packet_id for p in publishes(sub.read())]
    assert len(set(ids)) == 3 and 0 not in ids
    sub.send(Puback(ids[1]))
    pub.send(Publish("t", b"3", 1, packet_id=20))
    (fourth,) = publishes(sub.read())
    assert fourth.packet_id not in (ids[0], ids[2])  # those two are still unacknowledged
    sub.lose()
    again = online(b, "s", clean_start=False)
    assert [(p.packet_id, p.dup) for p in again.after_connack] == [
        (ids[0], True), (ids[2], True), (fourth.packet_id, True)]


def test_v311_MQTT_2_3_1_6_acks_echo_the_publish_packet_id():
    b = BrokerEngine()
    sub = online(b, "s", ("t", 2))
    pub = online(b, "p")
    assert pub.send(Publish("t", b"1", 1, packet_id=0x1234)) == [Puback(0x1234)]
    assert pub.send(Publish("t", b"2", 2, packet_id=0xFFFF)) == [Pubrec(0xFFFF)]
    assert pub.send(Pubrel(0xFFFF)) == [Pubcomp(0xFFFF)]
    out = publishes(sub.read())
    assert [p.qos for p in out] == [1, 2]
    assert sub.send(Pubrec(out[1].packet_id)) == [Pubrel(out[1].packet_id)]


def test_v311_MQTT_2_3_1_7_suback_and_unsuback_echo_the_request_id():
    b = BrokerEngine()
    c = online(b, "c")
    assert c.send(Subscribe(0x0102, (Subscription("a", 1),))) == [Suback(0x0102, (1,))]
    assert c.send(Unsubscribe(65535, ("a",))) == [Unsuback(65535)]


# -- 3.1 CONNECT ------------------------------------------------------------------------

@pytest.mark.parametrize("first", [Pingreq(), Publish("t", b"x"), Subscribe(1, (Subscription("t"),))],
                         ids=lambda p: type(p).__name__)
def test_v311_MQTT_3_1_0_1_first_packet_must_be_connect(first):
    b = BrokerEngine()
    watcher = online(b, "w", ("#", 0))
    c = Peer(b, "c")
    assert c.send(first) == [] and c.closed
    assert [e.rule for e in c.closes()] == ["MQTT-3.1.0-1"]
    assert watcher.read() == []


def test_v311_MQTT_3_1_0_2_second_connect_closes_the_connection():
    b = BrokerEngine()
    c = online(b, "c")
    assert c.send(Connect("c"), Pingreq()) == [] and c.closed  # no CONNACK, no PINGRESP
    assert [(e.reason, e.rule) for e in c.closes()] == [("protocol_error", "MQTT-3.1.0-2")]


def test_v311_MQTT_3_1_2_2_unsupported_level_gets_connack_0x01_then_close():
    data = bytearray(encode(Connect("c"), V))
    assert data[2:9] == b"\x00\x04MQTT\x04"
    data[8] = 6  # a protocol level this broker does not speak
    c = Peer(BrokerEngine(), "c")
    assert c.send_bytes(bytes(data) + encode(Pingreq(), V)) == [Connack(False, 0x01)]
    assert c.closed


def test_v311_MQTT_3_1_2_4_persistent_session_is_resumed_and_kept():
    b = BrokerEngine()
    s = online(b, "s", ("t", 1), clean_start=False)
    assert not s.connack.session_present
    s.send(Disconnect())
    s = online(b, "s", clean_start=False)
    assert s.connack.session_present
    online(b, "p").send(Publish("t", b"m", 1, packet_id=1))
    assert payloads(s.read()) == [b"m"]  # the subscription came back with the session


def test_v311_MQTT_3_1_2_5_qos1_and_qos2_messages_stored_while_away():
    b = BrokerEngine()
    online(b, "s", ("t", 2), clean_start=False).lose()
    pub = online(b, "p")
    pub.send(Publish("t", b"one", 1, packet_id=1), Publish("t", b"two", 2, packet_id=2))
    s = online(b, "s", clean_start=False)
    assert [(p.payload, p.qos) for p in s.after_connack] == [(b"one", 1), (b"two", 2)]


def test_v311_MQTT_3_1_2_6_clean_session_discards_the_old_one():
    b = BrokerEngine()
    online(b, "s", ("t", 1), clean_start=False).lose()
    pub = online(b, "p")
    pub.send(Publish("t", b"queued", 1, packet_id=1))
    s = online(b, "s", clean_start=True)
    assert not s.connack.session_present and s.after_connack == []
    pub.send(Publish("t", b"later", 1, packet_id=2))
    assert s.read() == []  # the old subscription is gone
    s.send(Disconnect())
    # The clean session lived only as long as its connection.
    assert not online(b, "s", clean_start=False).connack.session_present


def test_v311_MQTT_3_1_2_7_retained_messages_outlive_the_session():
    b = BrokerEngine()
    p = online(b, "p")
    p.send(Publish("r", b"keep", 1, retain=True, packet_id=1))
    p.send(Disconnect())
    s = online(b, "s")
    assert s.send(Subscribe(1, (Subscription("r", 1),)))[1:] == [
        Publish("r", b"keep", 1, retain=True, packet_id=1)]


# -- will messages ----------------------------------------------------------------------

WILL = Will("dead/p", b"gone", qos=1)


def _end_without_disconnect(b: BrokerEngine, p: Peer, how: str) -> None:
    if how == "transport":
        p.lose(1.0)
    elif how == "keepalive":
        p.events += b.on_timer(100.0)
    elif how == "protocol_error":
        p.send(Connect("p"))
    elif how == "takeover":
        online(b, "p")


@pytest.mark.parametrize("how", ["transport", "keepalive", "protocol_error", "takeover"])
def test_v311_MQTT_3_1_2_8_will_published_when_connection_ends_without_disconnect(how):
    b = BrokerEngine()
    watcher = online(b, "w", ("dead/#", 2), keepalive=0)
    p = online(b, "p", will=WILL, keepalive=10)
    assert watcher.read() == []
    _end_without_disconnect(b, p, how)
    (will,) = publishes(watcher.read())
    assert (will.topic, will.payload) == ("dead/p", b"gone")


def test_v311_MQTT_3_1_2_9_will_fields_from_connect_are_used():
    b = BrokerEngine()
    watcher = online(b, "w", ("#", 2))
    online(b, "p", will=Will("x/y", b"\x00\xffbye", qos=1)).lose()
    (will,) = publishes(watcher.read())
    assert (will.topic, will.payload, will.qos) == ("x/y", b"\x00\xffbye", 1)


def test_v311_MQTT_3_1_2_10_will_removed_once_published_or_after_disconnect():
    b = BrokerEngine()
    watcher = online(b, "w", ("dead/#", 1), keepalive=0)
    p = online(b, "p", will=WILL, keepalive=10)
    b.on_timer(16.0)  # keepalive expiry: the will goes out once...
    p.lose(16.5)  # ...and the driver closing the socket afterwards sends nothing more
    assert payloads(watcher.read()) == [b"gone"]
    q = online(b, "q", will=Will("dead/q", b"q"), now=20.0)
    q.send(Disconnect(), now=21.0)
    q.lose(21.0)
    assert watcher.read() == []


def test_v311_MQTT_3_1_2_12_no_will_flag_no_will_message():
    b = BrokerEngine()
    watcher = online(b, "w", ("#", 2))
    p = online(b, "p")
    p.lose()
    assert watcher.read() == []
    assert [e.will_published for e in p.closes()] == [False]


def test_v311_MQTT_3_1_2_16_will_retain_0_is_not_retained():
    b = BrokerEngine()
    watcher = online(b, "w", ("dead/#", 1))
    online(b, "p", will=Will("dead/p", b"gone", 1, retain=False)).lose()
    assert [p.retain for p in publishes(watcher.read())] == [False]
    late = online(b, "late")
    assert late.send(Subscribe(1, (Subscription("dead/#", 1),))) == [Suback(1, (1,))]


def test_v311_MQTT_3_1_2_17_will_retain_1_is_retained():
    b = BrokerEngine()
    online(b, "p", will=Will("dead/p", b"gone", 1, retain=True)).lose()
    late = online(b, "late")
    assert late.send(Subscribe(1, (Subscription("dead/#", 1),)))[1:] == [
        Publish("dead/p", b"gone", 1, retain=True, packet_id=1)]


# -- user name and password from the CONNECT payload ----------------------------------

def _connack(b: BrokerEngine, **fields) -> int:
    peer = Peer(b)
    (connack,) = peer.send(Connect("c", **fields))
    return connack.reason_code


def test_v311_MQTT_3_1_2_18_without_user_name_the_client_is_anonymous():
    assert _connack(BrokerEngine(auth=StaticUsers({"alice": "pw"}))) == 0x05
    assert _connack(BrokerEngine(auth=StaticUsers({"alice": "pw"}, anonymous=True))) == 0


def test_v311_MQTT_3_1_2_19_user_name_from_payload_is_checked():
    b = BrokerEngine(auth=StaticUsers({"alice": "pw"}))
    assert _connack(b, username="alice", password=b"pw") == 0
    assert _connack(b, username="bob", password=b"pw") == 0x04


def test_v311_MQTT_3_1_2_20_user_name_without_password_has_no_password():
    b = BrokerEngine(auth=StaticUsers({"alice": "pw", "guest": ""}))
    assert _connack(b, username="alice") == 0x04
    assert _connack(b, username="guest") == 0x04  # absent is not the same as empty


def test_v311_MQTT_3_1_2_21_password_from_payload_is_checked():
    b = BrokerEngine(auth=StaticUsers({"alice": "pw", "guest": ""}))
    assert _connack(b, username="alice", password=b"wrong") == 0x04
    assert _connack(b, username="alice", password=b"pw") == 0
    assert _connack(b, username="guest", password=b"") == 0


# -- 3.1.2-24 keepalive -----------------------------------------------------------------

def test_v311_MQTT_3_1_2_24_server_closes_after_one_and_a_half_keepalives():
    b = BrokerEngine()
    c = online(b, "c", keepalive=10)
    b.on_timer(14.99)
    c.read()
    assert not c.closed  # 1.5 x 10 s has not passed yet
    c.events += b.on_timer(15.01)
    c.read()
    assert c.closed
    assert [(e.reason, e.rule) for e in c.closes()] == [("keepalive", "MQTT-3.1.2-24")]


def test_v311_MQTT_3_1_2_24_every_packet_restarts_the_keepalive_clock():
    b = BrokerEngine()
    c = online(b, "c", keepalive=10)
    assert c.send(Pingreq(), now=12.0) == [Pingresp()]
    for t in (15.01, 26.99):
        b.on_timer(t)
        c.read()
        assert not c.closed, t
    b.on_timer(27.01)
    c.read()
    assert c.closed


def test_v311_MQTT_3_1_2_24_keepalive_0_disables_the_check():
    b = BrokerEngine()
    c = online(b, "c", keepalive=0)
    b.on_timer(1e6)
    assert c.read() == [] and not c.closed
    assert c.send(Pingreq(), now=1e6) == [Pingresp()]


# -- 3.1.3 client identifier ------------------------------------------------------------

def test_v311_MQTT_3_1_3_2_client_id_selects_the_session():
    b = BrokerEngine()
    online(b, "dev1", ("t", 1), clean_start=False).lose()
    online(b, "p").send(Publish("t", b"m", 1, packet_id=1))
    other = online(b, "dev2", clean_start=False)
    assert not other.connack.session_present and other.after_connack == []
    same = online(b, "dev1", clean_start=False)
    assert same.connack.session_present and payloads(same.after_connack) == [b"m"]


@pytest.mark.parametrize("client_id", ["a", "0", "Z" * 23, "09azAZ" * 3 + "19byB"])
def test_v311_MQTT_3_1_3_5_server_accepts_1_to_23_alphanumeric_characters(client_id):
    c = online(BrokerEngine(), client_id)
    assert c.connack == Connack(False, 0)


def test_v311_MQTT_3_1_3_6_empty_client_id_gets_a_unique_id():
    b = BrokerEngine()
    first, second = online(b, ""), online(b, "")
    ids = [e.client_id for p in (first, second) for e in p.events if isinstance(e, ev.Connected)]
    assert len(set(ids)) == 2 and "" not in ids
    assert not first.closed and not second.closed  # no takeover: two different clients
    first.send(Subscribe(1, (Subscription("x", 0),)))
    second.send(Publish("x", b"hi"))
    assert payloads(first.read()) == [b"hi"]


def test_v311_MQTT_3_1_3_8_empty_client_id_with_clean_session_0_refused():
    c = Peer(BrokerEngine(), "c")
    assert c.send(Connect("", clean_session=False)) == [Connack(False, 0x02)]
    assert c.closed


def test_v311_MQTT_3_1_3_9_rejected_client_id_gets_0x02_then_close():
    c = Peer(BrokerEngine(BrokerConfig(allow_zero_length_clientid=False)), "c")
    assert c.send(Connect("", clean_session=True), Pingreq()) == [Connack(False, 0x02)]
    assert c.closed


def _corrupt(packet: Connect, field: bytes, bad: bytes) -> bytes:
    data = encode(packet, V)
    assert len(field) == len(bad) and data.count(field) == 1
    return data.replace(field, bad)


def test_v311_MQTT_3_1_3_10_will_topic_must_be_utf8():
    c = Peer(BrokerEngine(), "c")
    data = _corrupt(Connect("c", will=Will("wt", b"m")), b"\x00\x02wt", b"\x00\x02\xc0\xaf")
    assert c.send_bytes(data) == [] and c.closed
    assert not any(isinstance(e, ev.Connected) for e in c.events)


def test_v311_MQTT_3_1_3_11_user_name_must_be_utf8():
    c = Peer(BrokerEngine(), "c")
    data = _corrupt(Connect("c", username="usr"), b"\x00\x03usr", b"\x00\x03\xed\xa0\x80")
    assert c.send_bytes(data) == [] and c.closed


# -- 3.1.4 CONNECT actions --------------------------------------------------------------

def _flags_or(mask: int) -> bytes:
    data = bytearray(encode(Connect("c"), V))
    data[9] |= mask  # the Connect Flags byte
    return bytes(data)


@pytest.mark.parametrize("data", [_flags_or(0x01), _flags_or(0x18), _flags_or(0x40)],
                         ids=["reserved_flag", "will_qos_3_without_will", "password_no_user"])
def test_v311_MQTT_3_1_4_1_bad_connect_is_closed_without_connack(data):
    c = Peer(BrokerEngine(), "c")
    assert c.send_bytes(data) == [] and c.closed
    assert not any(isinstance(e, (ev.Connected, ev.ConnectionRefused)) for e in c.events)


def test_v311_MQTT_3_1_4_2_same_client_id_disconnects_the_old_connection():
    b = BrokerEngine()
    old = online(b, "c")
    new = online(b, "c")
    old.read()
    assert old.closed and not new.closed
    assert [(e.reason, e.conn) for e in new.events if isinstance(e, ev.ConnectionClosed)] == [
        ("takeover", old.conn)]


def test_v311_MQTT_3_1_4_3_clean_session_applied_after_a_valid_connect():
    b = BrokerEngine()
    s = online(b, "s", ("t", 1), clean_start=False)
    s.lose()
    online(b, "p").send(Publish("t", b"queued", 1, packet_id=1))
    new = online(b, "s", clean_start=True)
    assert new.after_connack == []
    dropped = [e for e in new.events if isinstance(e, ev.MessageDropped)]
    assert [(e.payload, e.reason) for e in dropped] == [(b"queued", "clean_session")]


def test_v311_MQTT_3_1_4_4_valid_connect_gets_return_code_0():
    b = BrokerEngine()
    b.connection_made("c", 0.0)
    b.receive("c", encode(Connect("c"), V), 0.0)
    assert b.take_output("c") == (bytes.fromhex("20 02 00 00"), False)


def test_v311_MQTT_3_1_4_5_data_after_a_refused_connect_is_ignored():
    b = BrokerEngine(auth=StaticUsers({"alice": "pw"}))
    watcher = online(b, "w", ("#", 1), username="alice", password=b"pw")
    c = Peer(b, "c")
    reply = c.send(Connect("c", username="alice", password=b"bad"),
                   Publish("t", b"x", 1, packet_id=1), Pingreq())
    assert reply == [Connack(False, 0x04)] and c.closed
    assert c.send(Publish("t", b"y")) == []
    assert watcher.read() == []
    assert not any(isinstance(e, ev.MessageReceived) for e in c.events)


# -- 3.2 CONNACK ------------------------------------------------------------------------

def test_v311_MQTT_3_2_0_1_connack_comes_first_even_with_messages_waiting():
    b = BrokerEngine()
    online(b, "s", ("t", 1), clean_start=False).lose()
    online(b, "p").send(Publish("t", b"m", 1, packet_id=1))
    b.connection_made("s2", 0.0)
    b.receive("s2", encode(Connect("s", clean_session=False), V), 0.0)
    data, _ = b.take_output("s2")
    assert data[0] == 0x20
    assert [type(p) for p in Decoder(V).feed(data)] == [Connack, Publish]


def test_v311_MQTT_3_2_2_1_clean_session_1_gets_session_present_0():
    b = BrokerEngine()
    online(b, "s", clean_start=False).lose()
    assert online(b, "s", clean_start=True).connack == Connack(False, 0)


def test_v311_MQTT_3_2_2_2_stored_session_gets_session_present_1():
    b = BrokerEngine()
    online(b, "s", clean_start=False).send(Disconnect())
    assert online(b, "s", clean_start=False).connack == Connack(True, 0)


def test_v311_MQTT_3_2_2_3_no_stored_session_gets_session_present_0():
    b = BrokerEngine()
    online(b, "other", clean_start=False).lose()
    assert online(b, "s", clean_start=False).connack == Connack(False, 0)


def test_v311_MQTT_3_2_2_4_refusal_has_session_present_0():
    b = BrokerEngine(auth=StaticUsers({"alice": "pw"}))
    online(b, "s", clean_start=False, username="alice", password=b"pw").lose()
    b.connection_made("again", 0.0)
    b.receive("again", encode(Connect("s", False, username="alice", password=b"x"), V), 0.0)
    assert b.take_output("again") == (bytes.fromhex("20 02 00 04"), True)


@pytest.mark.parametrize("connect,code", [
    (Connect("c", username="alice", password=b"bad"), 0x04),
    (Connect("c"), 0x05),
    (Connect("", clean_session=False), 0x02),
], ids=["bad_password", "anonymous", "empty_id"])
def test_v311_MQTT_3_2_2_5_server_closes_after_a_refusal(connect, code):
    c = Peer(BrokerEngine(auth=StaticUsers({"alice": "pw"})), "c")
    assert c.send(connect) == [Connack(False, code)]
    assert c.closed
    assert [e.reason for e in c.closes()] == ["refused"]


def test_v311_MQTT_3_2_2_6_no_fitting_return_code_closes_without_connack():
    class SaysQuota:
        """An authenticator answering with a code 3.1.1 has no CONNACK value for."""

        def authenticate(self, client_id, username, password) -> int:
            return 0x97  # MQTT 5 "Quota exceeded"

    c = Peer(BrokerEngine(auth=SaysQuota()), "c")
    assert c.send(Connect("c")) == [] and c.closed
    assert [e.rule for e in c.closes()] == ["MQTT-3.2.2-6"]
