"""MQTT 5.0 rules for the CONNECT payload (3.1.3), both engines.

The payload's fields in order, the Client Identifier as the name of the session on both
sides, the client ids a broker must accept, the UTF-8 fields (Will Topic, User Name), a
will at QoS 2, and MQTT-3.1.2-30 (nothing before CONNACK once an authentication method was
sent). Each test drives the real engines with exact packets (``Peer`` for the broker,
``Server`` for the client) and names its 5.0 statement id.
"""

from __future__ import annotations

import dataclasses

import pytest

from mqttsim.protocol import encode
from mqttsim.protocol import events as ev
from mqttsim.protocol.auth import StaticUsers
from mqttsim.protocol.errors import MQTTError
from mqttsim.protocol.packets import Connack, Connect, Publish, Will
from mqttsim.protocol.properties import Properties

from support.peer import (OVERLONG_SLASH, V5, Peer, Server, advance, broker, of, online, persistent,
                          publishes, resume, swap)


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
    s = online(b, "s", ("w/t", 1), version=V5)
    p = Peer(b, "conn", version=V5)
    p.write_bytes(data)
    assert p.read() == [Connack(False, 0, Properties(topic_alias_maximum=10))]
    p.lose(1)
    advance(b, 10)
    assert [(m.topic, m.payload) for m in publishes(s.read())] == [("w/t", b"bye")]


def test_v5_MQTT_3_1_3_2_client_id_names_the_session_on_the_broker():
    b = broker()
    for name, topic in (("a", "ta"), ("b", "tb")):
        persistent(b, name, (topic, 1), version=V5).lose(0)
    pub = online(b, "p", version=V5)
    for topic in ("ta", "tb", "ta"):
        pub.publish(topic, topic.encode(), 1)
    got_b = resume(b, "b", now=1, version=V5)
    assert [m.payload for m in publishes(got_b.after_connack)] == [b"tb"]
    got_a = resume(b, "a", now=2, version=V5)
    assert [m.payload for m in publishes(got_a.after_connack)] == [b"ta", b"ta"]
    assert Peer(b, "new", 3, version=V5).connect("c", clean_start=False).session_present is False


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
    p = Peer(b, "conn", version=V5)
    connack = p.connect(client_id, clean_start=False, session_expiry_interval=60)
    assert connack.reason_code == 0 and connack.properties.assigned_client_identifier is None
    assert [e.client_id for e in of(p.events, ev.Connected)] == [client_id]
    assert client_id in b.sessions


def test_v5_MQTT_3_1_3_11_will_topic_is_a_utf8_string():
    b = broker()
    s = online(b, "s", ("+/#", 1), version=V5)
    good = Peer(b, "good", version=V5)
    good.connect("good", will=Will("température/é", b"w"))
    good.lose(1)
    assert [m.topic for m in publishes(s.read())] == ["température/é"]
    bad = Peer(b, "bad", 2, version=V5)
    data = encode(Connect("bad", True, 0, None, None, Will("wXY", b"w")), V5)
    bad.write_bytes(swap(data, b"XY", OVERLONG_SLASH))
    assert bad.read() == [] and bad.closed  # malformed: no CONNACK 0, no session, no will
    assert "bad" not in b.sessions and publishes(s.read()) == []


def test_v5_MQTT_3_1_3_12_user_name_is_a_utf8_string():
    b = broker(auth=StaticUsers({"jürgen": "pw"}))
    ok = Peer(b, "ok", version=V5)
    assert ok.connect("ok", username="jürgen", password=b"pw").reason_code == 0
    bad = Peer(b, "bad", version=V5)
    data = encode(Connect("bad", True, 0, "jXYgen", b"pw"), V5)
    bad.write_bytes(swap(data, b"XY", b"\xed\xa0"))  # half of a UTF-16 surrogate
    assert bad.read() == [] and bad.closed and "bad" not in b.sessions


def test_v5_broker_accepts_a_will_at_qos_2():
    """Why MQTT-3.2.2-12 is not applicable: no Will QoS exceeds the broker's capabilities."""
    b = broker()
    s = online(b, "s", ("w", 2), version=V5)
    p = Peer(b, "c", version=V5)
    assert p.connect("c", will=Will("w", b"bye", 2)).properties.maximum_qos is None
    p.lose(1)
    [will] = publishes(s.read())
    assert (will.qos, will.payload) == (2, b"bye")
