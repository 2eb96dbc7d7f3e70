"""MQTT 5.0 client-engine rules, one test per normative statement (named after its 5.0 id).

Most tests put a scripted server (``Server``) in front of ``ClientEngine``: the test writes
every server byte and reads every client packet, so the client's side of each statement is
checked on the wire. The last few wire the client to the real broker engine (``Pipe``) for
the statements that are about both ends agreeing (Receive Maximum, Server Keep Alive,
session takeover). Topic aliases are in ``test_engine_rules_v5_topic_aliases.py``, the
CONNECT payload and PUBLISH header fields in ``test_engine_rules_v5_connect_payload.py`` and
``test_engine_rules_v5_publish_fields.py`` (both engines each).
"""

from __future__ import annotations

import dataclasses

import pytest

from mqttsim.protocol import events as ev
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.errors import MQTTError
from mqttsim.protocol.packets import (Auth, Connack, Disconnect, Pingreq, Pingresp,
                                      Puback, Pubcomp, Publish, Pubrec, Pubrel, Suback,
                                      Unsuback)
from mqttsim.protocol.properties import Properties

from support.peer import V5, ClientConfig, Server, connected, of, publishes
from support.pipe import Pipe


def names(packets: list) -> list[str]:
    return [type(p).__name__ for p in packets]


# --------------------------------------------------------------------------------------
# 2.2.1 packet identifiers
# --------------------------------------------------------------------------------------

def test_v5_MQTT_2_2_1_3_client_ids_are_unused_and_nonzero():
    srv = connected()
    c = srv.client
    for n in range(5):
        c.publish("t", b"%d" % n, 1 + n % 2)
    c.subscribe("a", qos=1)
    c.unsubscribe("b")
    ids = [p.packet_id for p in srv.read()]
    assert len(ids) == 7 and len(set(ids)) == 7 and 0 not in ids


# --------------------------------------------------------------------------------------
# 3.1 CONNECT and 3.2 CONNACK, the client's side
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_1_2_4_clean_start_client_discards_its_session_state():
    srv = connected()
    srv.client.publish("t", b"x", 1)
    srv.read()
    srv.lose(1)
    [connect] = srv.start(2)
    assert connect.clean_session is True
    assert publishes(srv.accept()) == []  # nothing of the old session is resent
    assert [d.reason for d in of(srv.events, ev.MessageDropped)] == ["clean_session"]


def test_v5_MQTT_3_1_2_20_client_sends_pingreq_when_idle_for_keepalive():
    srv = connected(keepalive=10)
    assert srv.tick(9.9) == []
    assert srv.tick(10) == [Pingreq()]
    srv.write(Pingresp(), now=10.5)
    srv.client.publish("t", b"x", 0, now=15)  # traffic postpones the next ping ...
    srv.read()
    assert srv.tick(24.9) == []
    assert srv.tick(25) == [Pingreq()]  # ... to a keepalive after the last packet sent


@pytest.mark.parametrize("server_keep_alive", [5, 120])
def test_v5_MQTT_3_1_2_21_and_3_2_2_21_client_adopts_the_server_keep_alive(server_keep_alive):
    srv = Server(keepalive=60)
    srv.start()
    srv.accept(server_keep_alive=server_keep_alive)
    [connected_event] = of(srv.events, ev.Connected)
    assert connected_event.keepalive == server_keep_alive
    assert srv.tick(server_keep_alive - 0.1) == []
    assert srv.tick(server_keep_alive) == [Pingreq()]


def test_v5_MQTT_3_2_0_1_client_treats_a_packet_before_connack_as_an_error():
    srv = Server()
    srv.start()
    srv.write(Publish("t", b"early"))
    assert of(srv.events, ev.MessageReceived) == []
    assert srv.client.should_close
    [closed] = of(srv.events, ev.ConnectionClosed)
    assert closed.rule == "MQTT-3.2.0-1"


def test_v5_MQTT_3_2_0_2_second_connack_is_a_protocol_error():
    srv = connected()
    srv.write(Connack(False, 0))
    assert srv.read() == [Disconnect(0x82)]
    assert srv.client.should_close


def test_v5_MQTT_3_2_2_4_session_present_without_a_session_closes_the_connection():
    srv = Server(clean_session=True)
    srv.start()
    srv.write(Connack(True, 0))  # the client asked for a clean start: it has no session
    assert srv.client.should_close
    assert of(srv.events, ev.Connected) == []


def test_v5_MQTT_3_2_2_5_session_present_0_discards_the_clients_session():
    srv = connected(clean_session=False, session_expiry=100)
    srv.client.publish("t", b"x", 1)
    srv.client.publish("t", b"y", 2)
    srv.read()
    srv.lose(1)
    srv.start(2)
    assert publishes(srv.accept(session_present=False)) == []  # nothing resent
    assert sorted(d.payload for d in of(srv.events, ev.MessageDropped)) == [b"x", b"y"]
    assert srv.client.inflight_count == 0


def test_v5_MQTT_3_2_2_16_client_uses_the_assigned_client_identifier():
    srv = Server(client_id="")
    [connect] = srv.start()
    assert connect.client_id == ""
    srv.accept(assigned_client_identifier="auto-7")
    [connected_event] = of(srv.events, ev.Connected)
    assert connected_event.client_id == "auto-7" == srv.client.client_id


def test_v5_MQTT_3_2_2_11_client_never_publishes_above_the_servers_maximum_qos():
    srv = Server()
    srv.start()
    srv.accept(maximum_qos=1)
    for qos in (0, 1, 2):
        try:
            srv.client.publish("t", b"%d" % qos, qos)
        except MQTTError:
            pass  # refusing the message is one way to obey
    assert all(p.qos <= 1 for p in publishes(srv.read()))


def test_v5_MQTT_3_2_2_14_client_sends_no_retained_publish_when_retain_is_unavailable():
    srv = Server()
    srv.start()
    srv.accept(retain_available=0)
    try:
        srv.client.publish("t", b"x", 1, retain=True)
    except MQTTError:
        pass
    assert all(not p.retain for p in publishes(srv.read()))


def test_v5_MQTT_3_2_2_15_client_never_sends_a_packet_above_the_servers_maximum():
    srv = Server()
    srv.start()
    srv.client.publish("t", b"q" * 200, 1)  # queued before CONNACK: checked when sent
    srv.accept(maximum_packet_size=64)
    srv.client.publish("t", b"x" * 200, 1)
    srv.client.publish("t", b"small", 1)
    out = publishes(srv.read())
    assert [p.payload for p in out] == [b"small"]
    assert [d.reason for d in of(srv.events, ev.MessageDropped)] == ["packet_too_large"] * 2


def test_v5_MQTT_3_1_2_24_client_enforces_its_own_maximum_packet_size():
    srv = Server(properties=Properties(maximum_packet_size=50))
    [connect] = srv.start()
    assert connect.properties.maximum_packet_size == 50
    srv.accept()
    srv.write(Publish("t", b"x" * 100))
    assert srv.read() == [Disconnect(0x95)]
    assert srv.client.should_close and of(srv.events, ev.MessageReceived) == []


# --------------------------------------------------------------------------------------
# 3.3.4 / 4.9 flow control: the server's Receive Maximum
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_3_4_7_and_4_9_0_1_2_client_stays_within_the_servers_receive_maximum():
    srv = Server()
    srv.start()
    srv.accept(receive_maximum=2)
    c = srv.client
    for n in range(5):
        c.publish("t", b"%d" % n, 1 + n % 2)
    first = publishes(srv.read())
    assert [p.payload for p in first] == [b"0", b"1"]
    srv.write(Puback(first[0].packet_id))
    assert [p.payload for p in publishes(srv.read())] == [b"2"]
    srv.write(Pubrec(first[1].packet_id))  # PUBREC does not free the slot ...
    assert srv.read() == [Pubrel(first[1].packet_id)]
    srv.write(Pubcomp(first[1].packet_id))  # ... PUBCOMP does
    assert [p.payload for p in publishes(srv.read())] == [b"3"]


def test_v5_MQTT_3_3_4_8_and_4_9_0_3_other_packets_are_not_delayed_by_receive_maximum():
    srv = Server(keepalive=10)
    srv.start()
    srv.accept(receive_maximum=1)
    c = srv.client
    c.publish("t", b"a", 1)
    c.publish("t", b"b", 1)
    assert [p.payload for p in publishes(srv.read())] == [b"a"]  # quota zero now
    c.subscribe("s", qos=1)
    c.unsubscribe("s")
    srv.write(Publish("in", b"m", 1, packet_id=9))
    assert names(srv.read()) == ["Subscribe", "Unsubscribe", "Puback"]
    assert srv.tick(20) == [Pingreq()]


# --------------------------------------------------------------------------------------
# 4.3 QoS protocols, the client as sender
# --------------------------------------------------------------------------------------

def test_v5_MQTT_4_3_1_1_qos0_publish_has_qos0_and_dup0():
    srv = connected()
    srv.client.publish("t", b"x", 0)
    [p] = srv.read()
    assert (p.qos, p.dup, p.packet_id) == (0, False, None)


def test_v5_MQTT_4_3_2_1_2_3_qos1_sender_unacked_until_puback():
    srv = connected(clean_session=False, session_expiry=100)
    c = srv.client
    for n in range(3):
        c.publish("t", b"%d" % n, 1)
    sent = publishes(srv.read())
    assert [(p.qos, p.dup) for p in sent] == [(1, False)] * 3
    assert len({p.packet_id for p in sent}) == 3
    srv.write(Puback(sent[1].packet_id))
    assert [a.message for a in of(srv.events, ev.MessageAcknowledged)] == [2]
    resent = publishes(srv.resume())
    assert [(p.payload, p.packet_id, p.dup) for p in resent] == [
        (b"0", sent[0].packet_id, True), (b"2", sent[2].packet_id, True)]


def test_v5_MQTT_4_3_3_1_2_3_4_5_6_qos2_sender_flow_and_resume():
    srv = connected(clean_session=False, session_expiry=100)
    srv.client.publish("t", b"x", 2)
    [p] = srv.read()
    assert (p.qos, p.dup) == (2, False) and p.packet_id
    assert publishes(srv.resume()) == [Publish("t", b"x", 2, False, True, p.packet_id)]
    srv.write(Pubrec(p.packet_id))
    assert srv.read() == [Pubrel(p.packet_id)]
    assert srv.resume(now=2) == [Pubrel(p.packet_id)]  # PUBREL, never the PUBLISH again
    srv.write(Pubcomp(p.packet_id))
    [acked] = of(srv.events, ev.MessageAcknowledged)
    assert (acked.qos, acked.reason_code) == (2, 0)
    assert srv.resume(now=3) == []


@pytest.mark.parametrize("qos, ack", [(1, Puback), (2, Pubrec)])
def test_v5_MQTT_4_4_0_2_refused_publish_is_never_retransmitted(qos, ack):
    srv = connected(clean_session=False, session_expiry=100)
    srv.client.publish("t", b"x", qos)
    [p] = srv.read()
    srv.write(ack(p.packet_id, 0x87))
    assert srv.read() == []  # no PUBREL after a failed PUBREC
    [acked] = of(srv.events, ev.MessageAcknowledged)
    assert acked.reason_code == 0x87
    assert srv.resume() == []


def test_v5_MQTT_4_4_0_1_and_4_6_0_1_resume_resends_in_order_with_the_same_ids():
    srv = connected(clean_session=False, session_expiry=100)
    c = srv.client
    for n, qos in enumerate((1, 2, 1, 2)):
        c.publish("t", b"%d" % n, qos)
    sent = publishes(srv.read())
    srv.write(Pubrec(sent[3].packet_id))  # the last one is released
    srv.read()
    again = srv.resume()
    assert [(names([x])[0], x.packet_id) for x in again] == [
        ("Publish", sent[0].packet_id), ("Publish", sent[1].packet_id),
        ("Publish", sent[2].packet_id), ("Pubrel", sent[3].packet_id)]


def test_v5_MQTT_4_6_0_4_pubrels_go_out_in_the_order_pubrecs_arrived():
    srv = connected()
    for n in range(3):
        srv.client.publish("t", b"%d" % n, 2)
    ids = [p.packet_id for p in publishes(srv.read())]
    srv.write(*(Pubrec(i) for i in reversed(ids)))
    assert srv.read() == [Pubrel(i) for i in reversed(ids)]


def test_v5_MQTT_4_3_2_2_3_client_qos1_publish_holds_its_slot_until_puback():
    srv = Server(client_id="c", version=V5, keepalive=0)
    srv.start()
    srv.accept(receive_maximum=1)
    for n in (1, 2):
        srv.client.publish("t", b"%d" % n, 1)
    [first] = srv.read()
    assert (first.qos, first.dup, first.payload) == (1, False, b"1") and first.packet_id
    srv.write(Pubrec(first.packet_id), Puback(first.packet_id + 1))  # not its PUBACK
    assert publishes(srv.read()) == [] and srv.tick(100) == []
    srv.write(Puback(first.packet_id, 0x80))  # a failure code acknowledges it all the same
    [second] = srv.read()
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
    srv.write(Pubrec(first.packet_id))
    assert srv.read() == [Pubrel(first.packet_id)]
    # The PUBREL stays unacknowledged (and keeps the slot) until PUBCOMP; the PUBLISH is
    # never sent again.
    assert srv.tick(12) == [Pubrel(first.packet_id)]
    assert srv.tick(18) == [Pubrel(first.packet_id)]
    srv.write(Pubcomp(first.packet_id))
    [second] = srv.read()
    assert (second.qos, second.dup, second.payload) == (2, False, b"2")


# --------------------------------------------------------------------------------------
# 4.3 QoS protocols, the client as receiver
# --------------------------------------------------------------------------------------

def test_v5_MQTT_4_3_2_4_and_5_qos1_receiver_acks_and_reused_id_is_a_new_message():
    srv = connected()
    srv.write(Publish("t", b"a", 1, packet_id=4))
    assert srv.read() == [Puback(4)]
    srv.write(Publish("t", b"b", 1, packet_id=4))
    assert srv.read() == [Puback(4)]
    assert [m.payload for m in of(srv.events, ev.MessageReceived)] == [b"a", b"b"]


def test_v5_MQTT_4_3_3_8_10_11_12_qos2_receiver_delivers_once_per_flow():
    srv = connected()
    srv.write(Publish("t", b"a", 2, packet_id=4))
    srv.write(Publish("t", b"a", 2, dup=True, packet_id=4))
    assert srv.read() == [Pubrec(4), Pubrec(4)]
    srv.write(Pubrel(4))
    assert srv.read() == [Pubcomp(4)]
    srv.write(Publish("t", b"b", 2, packet_id=4))  # after PUBCOMP: a new message
    assert [m.payload for m in of(srv.events, ev.MessageReceived)] == [b"a", b"b"]


def test_v5_MQTT_4_3_3_10_qos2_dedupe_survives_a_reconnect():
    srv = connected(clean_session=False, session_expiry=100)
    srv.write(Publish("t", b"a", 2, packet_id=4))
    srv.resume()
    srv.write(Publish("t", b"a", 2, dup=True, packet_id=4))
    assert srv.read() == [Pubrec(4)]
    assert len(of(srv.events, ev.MessageReceived)) == 1


def test_v5_MQTT_4_5_0_2_client_acknowledges_every_publish_even_unwanted_ones():
    srv = connected()  # subscribed to nothing at all
    srv.write(Publish("never/asked", b"1", 1, packet_id=1),
             Publish("never/asked", b"2", 2, packet_id=2))
    assert srv.read() == [Puback(1), Pubrec(2)]


def test_v5_MQTT_4_6_0_2_and_3_acks_go_out_in_the_order_publishes_arrived():
    srv = connected()
    incoming = [Publish("t", b"%d" % n, 1 + n % 2, packet_id=100 - n) for n in range(6)]
    srv.write(*incoming)
    acks = srv.read()
    assert [(names([a])[0], a.packet_id) for a in acks] == [
        ("Puback" if p.qos == 1 else "Pubrec", p.packet_id) for p in incoming]


def test_v5_MQTT_3_6_2_1_and_3_7_2_1_client_answers_unknown_ids_with_0x92():
    srv = connected()
    srv.write(Pubrec(77))
    assert srv.read() == [Pubrel(77, 0x92)]
    srv.write(Pubrel(78))
    assert srv.read() == [Pubcomp(78, 0x92)]


def test_v5_MQTT_2_2_1_6_suback_and_unsuback_are_matched_by_packet_id():
    srv = connected()
    c = srv.client
    sid = c.subscribe([("a", 1), ("b", 2)])
    uid = c.unsubscribe("c")
    srv.read()
    srv.write(Unsuback(uid, (0x11,)), Suback(sid, (1, 0x87)))
    [sub] = of(srv.events, ev.Subscribed)
    [unsub] = of(srv.events, ev.Unsubscribed)
    assert (sub.topic_filters, sub.granted) == (("a", "b"), (1, 0x87))
    assert (unsub.topic_filters, unsub.reason_codes) == (("c",), (0x11,))


# --------------------------------------------------------------------------------------
# 3.14 DISCONNECT, 4.12 AUTH, 4.13 errors
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_14_4_1_and_2_nothing_follows_the_clients_disconnect():
    srv = connected()
    srv.client.disconnect(1)
    assert srv.read() == [Disconnect(0x00)]
    assert srv.client.should_close
    srv.client.publish("t", b"late", 1, now=2)  # waits for a new connection, if any
    with pytest.raises(MQTTError):
        srv.client.subscribe("t", now=2)  # cannot wait: refused outright
    assert srv.client.data_to_send() == b""


def test_v5_MQTT_3_14_4_3_disconnect_with_will_sends_reason_0x04():
    srv = connected()
    srv.client.disconnect(1, reason_code=0x04)
    assert srv.read() == [Disconnect(0x04)]


def test_v5_MQTT_4_12_0_6_auth_from_the_server_without_a_method_is_a_protocol_error():
    srv = connected()
    srv.write(Auth(0x18))
    assert srv.read() == [Disconnect(0x82)]
    assert srv.client.should_close


def test_v5_MQTT_4_12_0_7_client_without_auth_method_never_sends_auth():
    srv = Server(keepalive=5, clean_session=False, session_expiry=100)
    packets = srv.start()
    assert packets[0].properties.authentication_method is None
    packets += srv.accept()
    c = srv.client
    c.subscribe("t", qos=2)
    c.publish("t", b"x", 2)
    packets += srv.read()
    packets += srv.tick(30)
    packets += srv.resume(now=31)
    assert "Auth" not in names(packets) and len(packets) > 4


@pytest.mark.parametrize("code", [0x80, 0x85, 0x86, 0x87, 0x8C, 0x9C])
def test_v5_MQTT_4_13_2_1_refusing_connack_closes_the_connection(code):
    srv = Server()
    srv.start()
    srv.write(Connack(False, code))
    assert srv.client.should_close and srv.read() == []
    [refused] = of(srv.events, ev.ConnectionRefused)
    assert refused.reason_code == code


def test_v5_MQTT_4_13_2_1_server_disconnect_closes_the_connection():
    srv = connected()
    srv.write(Disconnect(0x8B))
    assert srv.client.should_close and srv.read() == []  # no DISCONNECT back
    [closed] = of(srv.events, ev.ConnectionClosed)
    assert closed.reason == "server_disconnect"


def test_v5_client_answers_a_malformed_packet_with_disconnect_0x81():
    srv = connected()
    srv.client.receive(b"\x30\x02\x00\x05", 1)  # PUBLISH whose topic runs past the packet
    assert srv.read() == [Disconnect(0x81)]
    assert srv.client.should_close


def test_v5_client_without_enhanced_auth_never_answers_a_server_auth():
    """Why MQTT-4.12.0-3/-5 and 4.12.1-1 are not applicable: the client engine has no AUTH
    exchange, so an AUTH from the server ends the connection instead of being answered."""
    srv = Server(client_id="c", version=V5, properties=Properties(authentication_method="X"))
    srv.start()
    srv.write(Auth(0x18, Properties(authentication_method="X")))
    assert srv.read() == [] and srv.client.should_close


# --------------------------------------------------------------------------------------
# Both engines together
# --------------------------------------------------------------------------------------

def test_v5_receive_maximum_is_honoured_in_both_directions():
    """[MQTT-3.3.4-7] and [MQTT-3.3.4-9] with both engines: each sender's own count of
    unacknowledged QoS 1 PUBLISHes never exceeds the receiver's Receive Maximum."""
    broker = BrokerEngine(BrokerConfig(receive_maximum=3))
    p = Pipe(broker)
    sub = p.add_client("sub", ClientConfig("sub", version=5,
                                           properties=Properties(receive_maximum=2)))
    pub = p.add_client("pub", ClientConfig("pub", version=5))
    p.run()
    sub.subscribe("t", qos=1)
    p.run()
    for n in range(10):
        pub.publish("t", b"%d" % n, 1)
    p.run()
    assert [m.payload for m in p.of(ev.MessageReceived, "sub")] == [b"%d" % n for n in range(10)]

    def peak_in_flight(who: str, peer: str | None) -> int:
        """Largest number of PUBLISHes ``who`` had sent (to ``peer``) and not seen acked."""
        peak = count = 0
        for w, e in p.events:
            if w != who or (peer is not None and e.client_id != peer):
                continue
            if isinstance(e, ev.PacketSent) and isinstance(e.packet, Publish) and e.packet.qos:
                count += 1
            elif isinstance(e, ev.PacketReceived) and isinstance(e.packet, Puback):
                count -= 1
            peak = max(peak, count)
        return peak

    assert peak_in_flight("pub", None) == 3  # the broker's Receive Maximum
    assert peak_in_flight("broker", "sub") == 2  # the subscriber's Receive Maximum


def test_v5_server_keep_alive_from_the_broker_drives_the_clients_pings():
    p = Pipe(BrokerEngine(BrokerConfig(max_keepalive=10)))
    c = p.add_client("c", ClientConfig("c", version=5, keepalive=300))
    p.run()
    assert c.keepalive == 10
    p.advance(100)
    pings = [e.t for e in p.of(ev.PacketSent, "c") if isinstance(e.packet, Pingreq)]
    assert pings[:3] == [10, 20, 30]
    assert not p.of(ev.ConnectionClosed)


def test_v5_MQTT_3_1_4_3_taken_over_client_sees_disconnect_0x8e():
    p = Pipe(BrokerEngine())
    first = p.add_client("a", ClientConfig("same", version=5))
    p.run()
    p.add_client("b", ClientConfig("same", version=5))
    p.run()
    assert first.should_close or first.state == "disconnected"
    [closed] = p.of(ev.ConnectionClosed, "a")
    assert closed.reason == "server_disconnect" and "taken over" in closed.detail
    assert p.clients["b"].state == "connected"
