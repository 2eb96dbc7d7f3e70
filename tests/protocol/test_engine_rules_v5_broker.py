"""MQTT 5.0 broker-engine rules: connecting, sessions, wills, keep alive, closing.

One test per normative statement (named after its 5.0 id). Each drives ``BrokerEngine`` with
exact packets through ``Peer`` and checks the exact packets it answers with, so a test fails
the moment the broker sends one byte the statement forbids. Publishing, subscribing and
flow control are in ``test_engine_rules_v5_broker_publish.py`` and
``test_engine_rules_v5_broker_delivery.py``; the CONNECT payload's own statements (both engines)
in ``test_engine_rules_v5_connect_payload.py``; the client engine's rules in
``test_engine_rules_v5_client.py``.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import encode
from mqttsim.protocol import events as ev
from mqttsim.protocol.auth import StaticUsers, TopicRules
from mqttsim.protocol.packets import (Auth, Connack, Connect, Disconnect, Pingreq, Pingresp,
                                      Publish, Subscription, Will)
from mqttsim.protocol.properties import Properties
from mqttsim.protocol.reason_codes import CONNACK_V5

from support.peer import V5, Peer, advance, broker, of, persistent, publishes


def watcher(b, topic: str = "will/#", name: str = "w", **sub) -> Peer:
    """A connected subscriber that sees (retained flag included) what is published."""
    w = Peer(b, name, version=V5)
    w.connect(name)
    w.subscribe(Subscription(topic, 1, retain_as_published=True, **sub))
    return w


# --------------------------------------------------------------------------------------
# 3.1 CONNECT
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_1_0_1_first_packet_must_be_connect():
    b = broker()
    p = Peer(b, "c", version=V5)
    p.write(Pingreq())
    assert p.read() == []  # no PINGRESP, and no DISCONNECT before a CONNACK [MQTT-3.14.0-1]
    assert p.closed
    [closed] = of(p.events, ev.ConnectionClosed)
    assert closed.rule == "MQTT-3.1.0-1"


def test_v5_MQTT_3_1_0_2_second_connect_is_a_protocol_error():
    b = broker()
    p = Peer(b, "c", version=V5)
    p.connect("c")
    p.write(Connect("c"))
    assert p.read() == [Disconnect(0x82)]  # and no second CONNACK [MQTT-3.2.0-2]
    assert p.closed


def test_v5_MQTT_3_1_2_2_unsupported_protocol_level_is_refused_and_closed():
    b = broker()
    p = Peer(b, "c", version=V5)
    data = bytearray(encode(Connect("c"), 5))
    assert data[2:8] == b"\x00\x04MQTT" and data[8] == 5
    data[8] = 6  # a protocol level nobody speaks
    p.write_bytes(bytes(data))
    out, close = b.take_output("c")  # raw: the broker may answer in a 3.1.1 CONNACK
    assert close
    assert out == b"" or (out[0] == 0x20 and out[-1] != 0)  # optional refusing CONNACK


def test_v5_MQTT_3_1_2_4_and_3_2_2_2_clean_start_discards_the_existing_session():
    b = broker()
    s = persistent(b, "s", ("t", 1), expiry=100, version=V5)
    s.lose(1)
    pub = Peer(b, "p", version=V5)
    pub.connect("p")
    pub.publish("t", b"queued", 1, now=2)
    again = Peer(b, "s2", version=V5)
    connack = again.connect("s", clean_start=True, session_expiry_interval=100, now=3)
    assert connack.session_present is False  # [MQTT-3.2.2-2]
    assert again.read() == []  # the queued message went with the old session
    pub.publish("t", b"after", 1, packet_id=2, now=4)
    assert publishes(again.read()) == []  # and so did the subscription


def test_v5_MQTT_3_1_2_5_and_3_2_2_3_clean_start_0_resumes_the_existing_session():
    b = broker()
    s = persistent(b, "s", ("t", 1), expiry=100, version=V5)
    s.lose(1)
    pub = Peer(b, "p", version=V5)
    pub.connect("p")
    pub.publish("t", b"queued", 1, now=2)
    again = Peer(b, "s2", version=V5)
    connack = again.connect("s", clean_start=False, session_expiry_interval=100, now=3)
    assert connack.session_present is True  # [MQTT-3.2.2-3]
    assert [(m.topic, m.payload) for m in publishes(again.read())] == [("t", b"queued")]
    pub.publish("t", b"after", 1, packet_id=2, now=4)
    assert [m.payload for m in publishes(again.read())] == [b"after"]


def test_v5_MQTT_3_1_2_6_and_3_2_2_3_clean_start_0_without_a_session_creates_one():
    b = broker()
    s = Peer(b, "s", version=V5)
    connack = s.connect("s", clean_start=False, session_expiry_interval=100)
    assert connack.session_present is False  # nothing to resume [MQTT-3.2.2-3]
    s.subscribe(("t", 1))
    s.lose(1)
    again = Peer(b, "s2", version=V5)
    assert again.connect("s", clean_start=False, session_expiry_interval=100).session_present


def test_v5_MQTT_3_1_2_7_will_is_stored_and_published_when_the_connection_breaks():
    b = broker()
    w = watcher(b)
    c = Peer(b, "c", version=V5)
    c.connect("c", will=Will("will/c", b"gone", 1))
    assert publishes(w.read()) == []  # stored, not published, while the client is there
    c.lose(5)
    [will] = publishes(w.read())
    assert (will.topic, will.payload, will.qos) == ("will/c", b"gone", 1)
    [published] = of(c.events, ev.WillPublished)
    assert published.client_id == "c"


def test_v5_MQTT_3_1_2_8_will_waits_for_the_will_delay_interval():
    b = broker()
    w = watcher(b)
    c = Peer(b, "c", version=V5)
    c.connect("c", will=Will("will/c", b"gone", 0, properties=Properties(will_delay_interval=10)),
              session_expiry_interval=100)
    c.lose(1)
    advance(b, 10.9)
    assert publishes(w.read()) == []
    advance(b, 11)
    assert [m.payload for m in publishes(w.read())] == [b"gone"]


def test_v5_MQTT_3_1_2_8_will_goes_out_when_the_session_ends_before_the_delay():
    b = broker()
    w = watcher(b)
    c = Peer(b, "c", version=V5)
    c.connect("c", will=Will("will/c", b"gone", 0, properties=Properties(will_delay_interval=100)),
              session_expiry_interval=5)
    c.lose(1)
    advance(b, 5.9)
    assert publishes(w.read()) == []
    advance(b, 6)
    assert [m.payload for m in publishes(w.read())] == [b"gone"]


def test_v5_MQTT_3_1_2_10_will_is_published_once_then_deleted():
    b = broker()
    w = watcher(b)
    c = Peer(b, "c", version=V5)
    c.connect("c", will=Will("will/c", b"gone", 0, properties=Properties(will_delay_interval=5)),
              session_expiry_interval=20)
    c.lose(0)
    advance(b, 100)  # delay passes, then the session expires: one will, not two
    assert [m.payload for m in publishes(w.read())] == [b"gone"]


def test_v5_MQTT_3_1_2_10_normal_disconnect_deletes_the_will():
    b = broker()
    w = watcher(b)
    c = Peer(b, "c", version=V5)
    c.connect("c", will=Will("will/c", b"gone"), session_expiry_interval=20)
    c.disconnect(0x00, now=1)
    assert c.closed
    advance(b, 100)
    assert publishes(w.read()) == []
    assert of(c.events, ev.WillPublished) == []


@pytest.mark.parametrize("retain", [False, True])
def test_v5_MQTT_3_1_2_14_and_15_will_retain_flag_is_honoured(retain):
    b = broker()
    w = watcher(b)  # Retain As Published: the forwarded RETAIN shows the will's flag
    c = Peer(b, "c", version=V5)
    c.connect("c", will=Will("will/c", b"gone", 0, retain))
    c.lose(1)
    [will] = publishes(w.read())
    assert will.retain is retain
    late = Peer(b, "late", version=V5)
    late.connect("late")
    retained = publishes(late.subscribe(("will/#", 0)))
    assert [m.payload for m in retained] == ([b"gone"] if retain else [])


def test_v5_MQTT_3_1_2_22_broker_closes_after_one_and_a_half_keepalives():
    b = broker()
    w = watcher(b)
    c = Peer(b, "c", version=V5)
    c.connect("c", keepalive=10, will=Will("will/c", b"gone"))
    c.write(Pingreq(), now=4)
    assert c.read() == [Pingresp()]
    advance(b, 4 + 14.9)
    assert c.read() == [] and not c.closed
    advance(b, 4 + 15)
    assert c.read() == [Disconnect(0x8D)]  # Keep Alive timeout, then close
    assert c.closed
    assert [m.payload for m in publishes(w.read())] == [b"gone"]


def test_v5_MQTT_3_1_2_23_session_is_kept_while_the_expiry_interval_runs():
    b = broker()
    s = persistent(b, "s", ("t", 1), expiry=10, version=V5)
    s.lose(0)
    pub = Peer(b, "p", version=V5)
    pub.connect("p")
    pub.publish("t", b"m", 1, now=5)
    advance(b, 9.9)
    again = Peer(b, "s2", 9.9, version=V5)
    assert again.connect("s", clean_start=False, session_expiry_interval=10).session_present
    assert [m.payload for m in publishes(again.read())] == [b"m"]


def test_v5_MQTT_3_1_2_23_expiry_0xffffffff_never_ends_the_session():
    b = broker()
    s = persistent(b, "s", ("t", 1), expiry=0xFFFFFFFF, version=V5)
    s.lose(0)
    advance(b, 10 * 365 * 86400.0)
    again = Peer(b, "s2", 10 * 365 * 86400.0, version=V5)
    assert again.connect("s", clean_start=False, session_expiry_interval=1).session_present


def test_v5_MQTT_4_1_0_2_session_is_discarded_when_the_expiry_interval_passes():
    b = broker()
    s = persistent(b, "s", ("t", 1), expiry=10, version=V5)
    s.lose(0)
    pub = Peer(b, "p", version=V5)
    pub.connect("p")
    pub.publish("t", b"m", 1, now=5)
    events = advance(b, 10)
    assert [(d.reason, d.payload) for d in of(events, ev.MessageDropped)] == [
        ("session_expired", b"m")]
    again = Peer(b, "s2", 11, version=V5)
    assert again.connect("s", clean_start=False, session_expiry_interval=10).session_present \
        is False
    assert again.read() == []
    pub.publish("t", b"after", 1, packet_id=2, now=12)
    assert publishes(again.read()) == []  # the subscription expired with the session


def test_v5_MQTT_3_1_2_23_expiry_0_ends_the_session_with_the_connection():
    b = broker()
    s = Peer(b, "s", version=V5)
    s.connect("s", clean_start=False)  # no Session Expiry Interval: 0
    s.subscribe(("t", 1))
    s.lose(1)
    again = Peer(b, "s2", 1, version=V5)
    assert again.connect("s", clean_start=False).session_present is False


def test_v5_MQTT_3_1_2_23_disconnect_can_shorten_the_session_expiry():
    b = broker()
    s = persistent(b, "s", ("t", 1), expiry=100, version=V5)
    s.disconnect(0, session_expiry_interval=0, now=1)
    again = Peer(b, "s2", 2, version=V5)
    assert again.connect("s", clean_start=False).session_present is False


def test_v5_disconnect_may_not_set_an_expiry_when_connect_had_none():
    # 3.14.2.2.2: a non-zero Session Expiry Interval in DISCONNECT after 0 in CONNECT is a
    # Protocol Error.
    b = broker()
    s = Peer(b, "s", version=V5)
    s.connect("s", clean_start=False)
    assert s.disconnect(0, session_expiry_interval=50) == [Disconnect(0x82)]
    assert s.closed


def test_v5_MQTT_4_1_0_1_session_is_not_discarded_while_the_connection_is_open():
    b = broker()
    # a one-second expiry must not start while connected
    s = persistent(b, "s", ("t", 1), expiry=1, version=V5)
    advance(b, 100)
    pub = Peer(b, "p", 100, version=V5)
    pub.connect("p")
    pub.publish("t", b"still here", 1)
    assert [m.payload for m in publishes(s.read())] == [b"still here"]
    assert not s.closed


# --------------------------------------------------------------------------------------
# 3.1.3 client identifier and will payload
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_1_3_6_and_3_2_2_16_empty_client_id_gets_a_unique_assigned_one():
    b = broker()
    ids = []
    for n in range(3):
        p = Peer(b, f"anon{n}", version=V5)
        connack = p.connect("")
        assert connack.reason_code == 0
        ids.append(connack.properties.assigned_client_identifier)
    assert all(ids) and len(set(ids)) == 3


def test_v5_MQTT_3_1_3_7_assigned_client_id_names_the_session():
    b = broker()
    p = Peer(b, "anon", version=V5)
    assigned = p.connect("", session_expiry_interval=100).properties.assigned_client_identifier
    [connected] = of(p.events, ev.Connected)
    assert connected.client_id == assigned
    p.subscribe(("t", 1))
    p.lose(1)
    again = Peer(b, "again", 2, version=V5)
    assert again.connect(assigned, clean_start=False,
                         session_expiry_interval=100).session_present


def test_v5_MQTT_3_1_3_8_rejected_empty_client_id_gets_0x85_and_close():
    b = broker(allow_zero_length_clientid=False)
    p = Peer(b, "c", version=V5)
    assert p.connect("").reason_code == 0x85
    assert p.closed


def test_v5_MQTT_3_1_3_9_reconnecting_before_the_will_delay_cancels_the_will():
    b = broker()
    w = watcher(b)
    will = Will("will/c", b"gone", properties=Properties(will_delay_interval=10))
    c = Peer(b, "c", version=V5)
    c.connect("c", clean_start=False, will=will, session_expiry_interval=100)
    c.lose(0)
    again = Peer(b, "c2", 5, version=V5)
    again.connect("c", clean_start=False, session_expiry_interval=100)
    advance(b, 50)
    assert publishes(w.read()) == []


def test_v5_MQTT_3_1_3_9_a_cancelled_will_timer_does_not_fire_a_later_will_early():
    b = broker()
    w = watcher(b)
    will = Will("will/c", b"gone", properties=Properties(will_delay_interval=10))
    first = Peer(b, "c1", version=V5)
    first.connect("c", clean_start=False, will=will, session_expiry_interval=100)
    first.lose(0)  # will due at 10 ...
    second = Peer(b, "c2", 1, version=V5)
    second.connect("c", clean_start=False, will=will, session_expiry_interval=100)  # ... cancelled
    second.lose(5)  # the new will is due at 15
    advance(b, 14.9)
    assert publishes(w.read()) == []
    advance(b, 15)
    assert [m.payload for m in publishes(w.read())] == [b"gone"]


def test_v5_MQTT_3_1_3_10_will_user_properties_keep_their_order():
    b = broker()
    w = watcher(b)
    pairs = (("z", "1"), ("a", "2"), ("z", "0"), ("m", "3"))
    c = Peer(b, "c", version=V5)
    c.connect("c", will=Will("will/c", b"x", properties=Properties(user_properties=pairs)))
    c.lose(1)
    [will] = publishes(w.read())
    assert will.properties.user_properties == pairs


# --------------------------------------------------------------------------------------
# 3.1.4 CONNECT actions, 3.2 CONNACK
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("username, password, code", [
    ("alice", b"wrong", 0x86),  # Bad User Name or Password
    (None, None, 0x87),  # anonymous not allowed: Not authorized
])
def test_v5_MQTT_3_1_4_2_failed_authentication_is_refused_and_closed(username, password, code):
    b = broker(auth=StaticUsers({"alice": "secret"}, anonymous=False))
    p = Peer(b, "c", version=V5)
    connack = p.connect("c", username=username, password=password)
    assert connack.reason_code == code
    assert connack.session_present is False  # [MQTT-3.2.2-6]
    assert p.closed  # [MQTT-3.2.2-7]


def test_v5_MQTT_3_1_4_3_takeover_sends_disconnect_0x8e_to_the_old_connection():
    b = broker()
    old = Peer(b, "old", version=V5)
    old.connect("c")
    new = Peer(b, "new", 1, version=V5)
    assert new.connect("c").reason_code == 0
    assert old.read() == [Disconnect(0x8E)]
    assert old.closed
    [closed] = [e for e in of(new.events, ev.ConnectionClosed) if e.conn == "old"]
    assert closed.reason == "takeover"


@pytest.mark.parametrize("clean_start", [True, False])
def test_v5_MQTT_3_1_4_4_takeover_applies_clean_start(clean_start):
    b = broker()
    old = persistent(b, "c", ("t", 1), expiry=100, version=V5)
    new = Peer(b, "new", 1, version=V5)
    connack = new.connect("c", clean_start=clean_start, session_expiry_interval=100)
    assert connack.session_present is (not clean_start)
    pub = Peer(b, "p", 2, version=V5)
    pub.connect("p")
    pub.publish("t", b"m", 1)
    assert len(publishes(new.read())) == (0 if clean_start else 1)
    assert old.read() == [Disconnect(0x8E)]


def test_v5_MQTT_3_1_4_5_valid_connect_is_acknowledged_with_0x00():
    b = broker()
    p = Peer(b, "c", version=V5)
    connack = p.connect("c")
    assert connack.reason_code == 0x00 and not p.closed


def test_v5_MQTT_3_1_4_6_nothing_is_processed_after_a_refused_connect():
    b = broker(auth=StaticUsers({"alice": "secret"}))
    p = Peer(b, "c", version=V5)
    p.write(Connect("c", username="alice", password=b"wrong"))
    p.write(Publish("r", b"sneaky", 0, True))  # arrives before the driver closes
    assert [type(x) for x in p.read()] == [Connack]
    assert of(p.events, ev.MessageReceived) == []
    assert list(b.retained.match_filter("#")) == []


def test_v5_MQTT_3_2_0_1_connack_comes_before_anything_else():
    b = broker()
    s = persistent(b, "s", ("t", 1), expiry=100, version=V5)
    s.lose(0)
    pub = Peer(b, "p", version=V5)
    pub.connect("p")
    pub.publish("t", b"m", 1)
    again = Peer(b, "s2", 1, version=V5)
    again.write(Connect("s", False, 0, properties=Properties(session_expiry_interval=100)))
    packets = again.read()
    assert [type(x) for x in packets] == [Connack, Publish]


def test_v5_MQTT_3_2_2_6_refused_connect_has_session_present_0_even_with_a_session():
    b = broker(auth=StaticUsers({"alice": "secret"}))
    s = Peer(b, "s", version=V5)
    s.connect("s", clean_start=False, username="alice", password=b"secret",
              session_expiry_interval=100)
    s.lose(1)
    again = Peer(b, "s2", 2, version=V5)
    connack = again.connect("s", clean_start=False, username="alice", password=b"bad")
    assert connack.reason_code == 0x86 and connack.session_present is False


@pytest.mark.parametrize("setup, connect, code", [
    ({"auth": StaticUsers({"a": "pw"})}, {"username": "a", "password": b"x"}, 0x86),
    ({"auth": StaticUsers({"a": "pw"})}, {}, 0x87),
    ({"allow_zero_length_clientid": False}, {"client_id": ""}, 0x85),
    ({}, {"authentication_method": "SCRAM-SHA-1"}, 0x8C),
    ({"retain_available": False}, {"will": Will("w", b"x", retain=True)}, 0x9A),
], ids=["bad_password", "not_authorized", "client_id", "auth_method", "retained_will"])
def test_v5_MQTT_3_2_2_8_and_3_2_2_7_refusals_use_connect_reason_codes_and_close(
        setup, connect, code):
    b = broker(**setup)
    p = Peer(b, "c", version=V5)
    connect.setdefault("client_id", "c")
    connack = p.connect(**connect)
    assert connack.reason_code == code and code in CONNACK_V5
    assert p.closed


def test_v5_MQTT_3_2_2_9_and_10_broker_supports_qos_2_so_advertises_no_maximum_qos():
    b = broker()
    p = Peer(b, "c", version=V5)
    assert p.connect("c").properties.maximum_qos is None  # absent means QoS 2 is supported
    [suback] = p.subscribe(("t", 2))
    assert suback.reason_codes == (2,)
    assert sorted(type(x).__name__ for x in p.publish("t", b"x", 2)) == ["Publish", "Pubrec"]


def test_v5_MQTT_3_2_2_13_retained_will_without_retain_support_is_refused_0x9a():
    b = broker(retain_available=False)
    p = Peer(b, "c", version=V5)
    assert p.connect("c", will=Will("w", b"x", retain=True)).reason_code == 0x9A
    assert p.closed


def test_v5_MQTT_3_2_2_14_broker_without_retain_refuses_a_retained_publish():
    b = broker(retain_available=False)
    p = Peer(b, "c", version=V5)
    assert p.connect("c").properties.retain_available == 0
    assert p.publish("t", b"x", 0, retain=True) == [Disconnect(0x9A)]
    assert p.closed


def test_v5_MQTT_3_2_2_15_broker_advertises_and_enforces_its_maximum_packet_size():
    b = broker(max_packet_size=64)
    p = Peer(b, "c", version=V5)
    assert p.connect("c").properties.maximum_packet_size == 64
    assert p.publish("t", b"x" * 100) == [Disconnect(0x95)]
    assert p.closed


def test_v5_MQTT_3_2_2_21_broker_sends_server_keep_alive_and_uses_it():
    b = broker(max_keepalive=30)
    p = Peer(b, "c", version=V5)
    assert p.connect("c", keepalive=60).properties.server_keep_alive == 30
    advance(b, 44.9)
    assert not p.read() and not p.closed
    advance(b, 45)  # 1.5 x 30, not 1.5 x 60
    assert p.read() == [Disconnect(0x8D)] and p.closed


def test_v5_MQTT_3_2_2_21_keepalive_0_is_replaced_by_the_brokers_maximum():
    b = broker(max_keepalive=30)
    p = Peer(b, "c", version=V5)
    assert p.connect("c", keepalive=0).properties.server_keep_alive == 30


def test_v5_MQTT_3_2_2_22_without_server_keep_alive_the_clients_value_is_used():
    b = broker(max_keepalive=30)
    p = Peer(b, "c", version=V5)
    assert p.connect("c", keepalive=20).properties.server_keep_alive is None
    advance(b, 29.9)
    assert not p.closed
    advance(b, 30)
    assert p.read() == [Disconnect(0x8D)] and p.closed


def test_v5_MQTT_3_1_2_28_no_response_information_unless_requested():
    b = broker()
    p = Peer(b, "c", version=V5)
    assert p.connect("c", request_response_information=0).properties.response_information \
        is None


def test_v5_MQTT_3_1_2_29_no_reason_strings_when_problem_information_is_off():
    b = broker(authz=TopicRules({None: [("ok/#", "readwrite")]}))
    p = Peer(b, "c", version=V5)
    p.connect("c", request_problem_information=0)
    replies = p.publish("denied", b"x", 1) + p.subscribe(("denied", 1), packet_id=2)
    assert [x.reason_codes if hasattr(x, "reason_codes") else x.reason_code
            for x in replies] == [0x87, (0x87,)]
    for reply in replies:
        assert reply.properties.reason_string is None
        assert reply.properties.user_properties == ()


# --------------------------------------------------------------------------------------
# 3.14 DISCONNECT, 4.12 enhanced authentication, 4.13 errors
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("first", [
    Publish("t", b"x"),  # anything but CONNECT first
    "garbage",  # not even a packet
], ids=["publish_first", "malformed"])
def test_v5_MQTT_3_14_0_1_and_3_1_4_1_bad_first_packet_closes_without_disconnect(first):
    b = broker()
    p = Peer(b, "c", version=V5)
    if first == "garbage":
        p.write_bytes(b"\x10\x02\x00\x04")  # protocol name runs past the packet
    else:
        p.write(first)
    assert p.read() == []
    assert p.closed


def test_v5_MQTT_3_14_0_1_connect_timeout_closes_without_disconnect():
    b = broker(connect_timeout=5)
    p = Peer(b, "c", version=V5)
    advance(b, 5)
    assert p.read() == [] and p.closed


def test_v5_MQTT_3_14_2_2_broker_disconnects_carry_no_session_expiry():
    b = broker()
    old = Peer(b, "old", version=V5)
    old.connect("c", keepalive=0, session_expiry_interval=100)
    Peer(b, "new", 1, version=V5).connect("c", clean_start=False, session_expiry_interval=100)
    slow = Peer(b, "slow", version=V5)
    slow.connect("slow", keepalive=2, session_expiry_interval=100)
    advance(b, 10)
    sent = old.read() + slow.read()
    assert [d.reason_code for d in sent] == [0x8E, 0x8D]
    assert all(d.properties.session_expiry_interval is None for d in sent)


def test_v5_MQTT_3_14_4_1_and_2_nothing_follows_the_brokers_disconnect():
    b = broker()
    old = Peer(b, "old", version=V5)
    old.connect("c", session_expiry_interval=100)
    old.subscribe(("t", 0))
    Peer(b, "new", 1, version=V5).connect("c", clean_start=False, session_expiry_interval=100)
    pub = Peer(b, "p", version=V5)
    pub.connect("p")
    pub.publish("t", b"for the new connection")
    assert old.read() == [Disconnect(0x8E)]  # the last thing on the old connection
    assert old.closed


def test_v5_MQTT_3_14_4_3_normal_disconnect_drops_the_will_0x04_publishes_it():
    b = broker()
    w = watcher(b)
    for name, code in (("normal", 0x00), ("with_will", 0x04)):
        c = Peer(b, name, version=V5)
        c.connect(name, will=Will(f"will/{name}", b"gone"))
        c.disconnect(code, now=1)
        assert c.closed
    assert [m.topic for m in publishes(w.read())] == ["will/with_will"]


def test_v5_MQTT_4_12_0_1_unsupported_authentication_method_gets_0x8c_and_close():
    b = broker()
    p = Peer(b, "c", version=V5)
    connack = p.connect("c", authentication_method="SCRAM-SHA-256")
    assert connack.reason_code == 0x8C and p.closed
    p.write(Auth(0x18, Properties(authentication_method="SCRAM-SHA-256")))
    assert p.read() == []


def test_v5_MQTT_4_12_0_6_no_auth_method_means_no_auth_from_the_broker():
    b = broker()
    p = Peer(b, "c", version=V5)
    connack = p.connect("c", keepalive=10)
    assert connack.properties.authentication_method is None
    assert connack.properties.authentication_data is None
    p.subscribe(("t", 1))
    p.publish("t", b"x", 1)
    p.write(Pingreq())
    assert not [x for x in p.read() if isinstance(x, Auth)]


def test_v5_MQTT_4_12_0_7_auth_without_an_auth_method_is_a_protocol_error():
    b = broker()
    p = Peer(b, "c", version=V5)
    p.connect("c")
    p.write(Auth(0x19))
    assert p.read() == [Disconnect(0x82)] and p.closed
    [closed] = of(p.events, ev.ConnectionClosed)
    assert closed.rule == "MQTT-4.12.0-7"


@pytest.mark.parametrize("bad, code", [
    (encode(Publish("t", b"x", properties=Properties(subscription_identifiers=(3,))), 5),
     0x82),  # protocol error
    (b"\x30\x02\x00\x05", 0x81),  # malformed: the topic runs past the packet
    (b"\xe2\x00", 0x81),  # DISCONNECT with reserved flag bits set
])
def test_v5_MQTT_4_13_1_1_errors_send_disconnect_with_a_reason_code_then_close(bad, code):
    b = broker()
    w = watcher(b)
    p = Peer(b, "c", version=V5)
    p.connect("c", will=Will("will/c", b"gone"))
    p.write_bytes(bad)
    assert p.read() == [Disconnect(code)]
    assert p.closed
    assert [m.topic for m in publishes(w.read())] == ["will/c"]  # not a normal disconnect


def test_v5_MQTT_4_13_2_1_client_disconnect_with_an_error_code_closes_the_connection():
    b = broker()
    p = Peer(b, "c", version=V5)
    p.connect("c")
    assert p.disconnect(0x80) == []
    assert p.closed
