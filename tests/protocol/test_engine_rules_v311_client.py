"""MQTT 3.1.1 client behaviour, one test per normative statement id (OASIS MQTT 3.1.1).

The test plays the server by hand: it decodes exactly what the client engine wrote and
feeds it exact packets back, with the time passed explicitly. That is the only way to check
statements such as "PUBRELs go out in the order the PUBRECs arrived" or "resends keep their
packet identifier", which a well-behaved broker would never provoke. The broker's side of
the same rules is in test_engine_rules_v311_broker*.py.
"""

from __future__ import annotations

import random

import pytest

from mqttsim.protocol import Decoder, MQTTError, encode
from mqttsim.protocol import events as ev
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.client import ClientConfig, ClientEngine
from mqttsim.protocol.packets import (Connack, Connect, Disconnect, Pingreq, Pingresp, Puback,
                                      Pubcomp, Publish, Pubrec, Pubrel, Suback, Unsuback, Will)

V = 4  # protocol level of MQTT 3.1.1


def sent(c: ClientEngine, version: int = V) -> list:
    """The packets the client wrote since the last look."""
    return Decoder(version).feed(c.data_to_send())


def feed(c: ClientEngine, *packets, now: float = 0.0, version: int = V) -> list:
    """Server packets into the client; returns the client's events."""
    return c.receive(b"".join(encode(p, version) for p in packets), now)


def connected(now: float = 0.0, session_present: bool = False, **config) -> ClientEngine:
    config.setdefault("client_id", "c")
    c = ClientEngine(ClientConfig(**config))
    c.connect(now)
    assert [type(p) for p in sent(c, c.version)] == [Connect]
    feed(c, Connack(session_present, 0), now=now, version=c.version)
    return c


def reconnect(c: ClientEngine, now: float = 1.0, session_present: bool = True) -> list:
    """Break the connection (if up), open a new one; returns what followed the CONNECT."""
    c.connection_lost(now)
    c.connect(now)
    out = sent(c)
    assert type(out[0]) is Connect and out[1:] == []
    feed(c, Connack(session_present, 0), now=now)
    return sent(c)


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


# -- 2.3.1 packet identifiers -----------------------------------------------------------

def test_v311_MQTT_2_3_1_2_client_gives_each_new_packet_an_unused_id():
    c = connected(max_inflight=100)
    c.publish("t", b"", 1)
    c.publish("t", b"", 2)
    c.subscribe("s", qos=1)
    c.unsubscribe("s")
    c.publish("t", b"", 1)
    ids = [p.packet_id for p in sent(c)]
    assert len(ids) == 5 and len(set(ids)) == 5 and 0 not in ids


@pytest.fixture(scope="module")
def wrapped() -> tuple[int, list[int]]:
    """Run the 16-bit packet id counter all the way round while id 1 stays unacknowledged.

    Returns (the first id, the ids of the two publishes after the wrap). Raw bytes keep it
    fast: PUBLISH to "t" at QoS 1 is 32 05 00 01 74 <id>, a PUBACK is 40 02 <id>."""
    c = connected(max_inflight=65535, emit_packet_events=False)
    c.publish("t", b"", 1)
    first = c.data_to_send()
    for _ in range(65534):
        c.publish("t", b"", 1)
        c.receive(b"\x40\x02" + c.data_to_send()[5:7], 0.0)
    c.publish("t", b"", 1)
    c.publish("t", b"", 1)
    after = c.data_to_send()
    assert len(after) == 14
    return (int.from_bytes(first[5:7], "big"),
            [int.from_bytes(after[5:7], "big"), int.from_bytes(after[12:14], "big")])


def test_v311_MQTT_2_3_1_2_id_still_in_use_is_skipped_after_the_wrap(wrapped):
    first, after = wrapped
    assert first == 1 and 1 not in after


def test_v311_MQTT_2_3_1_3_id_is_free_again_after_its_ack(wrapped):
    assert wrapped[1] == [2, 3]  # acknowledged long ago: reusable


def test_v311_MQTT_2_3_1_3_resends_keep_the_packet_id():
    c = connected(clean_session=False)
    c.publish("t", b"1", 1)
    c.publish("t", b"2", 2)
    one, two = sent(c)
    again = reconnect(c)
    assert [(p.packet_id, p.dup) for p in again] == [(one.packet_id, True), (two.packet_id, True)]
    feed(c, Pubrec(two.packet_id))
    assert sent(c) == [Pubrel(two.packet_id)]
    assert reconnect(c) == [Publish("t", b"1", 1, dup=True, packet_id=one.packet_id),
                            Pubrel(two.packet_id)]


def test_v311_MQTT_2_3_1_6_client_acks_echo_the_packet_id():
    c = connected()
    feed(c, Publish("t", b"1", 1, packet_id=0x1234))
    assert sent(c) == [Puback(0x1234)]
    feed(c, Publish("t", b"2", 2, packet_id=0xFFFF))
    assert sent(c) == [Pubrec(0xFFFF)]
    feed(c, Pubrel(0xFFFF))
    assert sent(c) == [Pubcomp(0xFFFF)]
    c.publish("t", b"3", 2)
    (mine,) = sent(c)
    feed(c, Pubrec(mine.packet_id))
    assert sent(c) == [Pubrel(mine.packet_id)]


# -- 2.2.2 flags ------------------------------------------------------------------------

def _frames(data: bytes) -> list[int]:
    """The first byte of every packet in a byte stream."""
    firsts, pos = [], 0
    while pos < len(data):
        firsts.append(data[pos])
        length, shift, pos = 0, 0, pos + 1
        while True:
            byte = data[pos]
            length, shift, pos = length | (byte & 0x7F) << shift, shift + 7, pos + 1
            if byte < 0x80:
                break
        pos += length
    return firsts


def test_v311_MQTT_2_2_2_1_engines_write_the_listed_flag_bits():
    broker = BrokerEngine()
    c = ClientEngine(ClientConfig("c", keepalive=5))
    broker.connection_made("x", 0.0)
    c.connect(0.0)
    wire = bytearray()

    def pump(now: float) -> None:
        while True:
            up = c.data_to_send()
            if up:
                broker.receive("x", up, now)
            down = broker.take_output("x")[0] if broker.pending() else b""
            if down:
                c.receive(down, now)
            wire.extend(up + down)
            if not up and not down:
                return

    pump(0.0)
    c.subscribe("t", qos=2)
    pump(0.0)
    for qos in (0, 1, 2):
        c.publish("t", b"x", qos, retain=qos == 1)
    pump(0.0)
    c.on_timer(5.0)  # PINGREQ
    pump(5.0)
    c.unsubscribe("t", 5.0)
    c.disconnect(5.0)
    pump(5.0)
    firsts = _frames(bytes(wire))
    assert {f >> 4 for f in firsts} == set(range(1, 15))  # every 3.1.1 packet type was seen
    for first in firsts:
        if first >> 4 != 3:  # PUBLISH flags are DUP/QoS/RETAIN, not reserved
            assert first & 0x0F == (0x02 if first >> 4 in (6, 8, 10) else 0), hex(first)


# -- 3.1 CONNECT ------------------------------------------------------------------------

def test_v311_MQTT_3_1_0_1_client_sends_connect_first():
    c = ClientEngine(ClientConfig("c", clean_session=False))
    c.publish("t", b"early", 1)  # the application is quicker than the network
    c.connect(0.0)
    assert [type(p) for p in sent(c)] == [Connect]
    feed(c, Connack(False, 0))
    assert [p.payload for p in sent(c)] == [b"early"]
    c.connection_lost(1.0)
    c.connect(1.0)  # a new connection with a message to resend: still CONNECT first
    assert [type(p) for p in sent(c)] == [Connect]


def test_v311_MQTT_3_1_2_4_client_keeps_its_session_across_connections():
    c = connected(clean_session=False)
    c.publish("t", b"x", 1)
    (first,) = sent(c)
    assert reconnect(c) == [Publish("t", b"x", 1, dup=True, packet_id=first.packet_id)]


def test_v311_MQTT_3_1_2_6_clean_session_client_forgets_the_old_session():
    c = connected(clean_session=True)
    c.publish("t", b"x", 1)
    sent(c)
    c.connection_lost(1.0)
    c.connect(1.0)
    dropped = of(c.take_events(), ev.MessageDropped)
    assert [(d.payload, d.reason) for d in dropped] == [(b"x", "clean_session")]
    assert [type(p) for p in sent(c)] == [Connect]
    feed(c, Connack(False, 0), now=1.0)
    assert sent(c) == []


def test_v311_MQTT_3_1_2_23_client_pings_when_idle_for_a_keepalive():
    c = connected(keepalive=10)
    c.on_timer(9.99)
    assert sent(c) == []
    c.on_timer(10.0)
    assert sent(c) == [Pingreq()]
    feed(c, Pingresp(), now=10.1)
    c.publish("t", b"x", 0, now=15.0)  # other traffic counts: the next ping moves out
    sent(c)
    c.on_timer(24.99)
    assert sent(c) == []
    c.on_timer(25.0)
    assert sent(c) == [Pingreq()]


def test_v311_MQTT_3_1_2_23_never_more_than_a_keepalive_between_packets():
    c = connected(keepalive=7)
    rng = random.Random(5)
    times, now = [0.0], 0.0
    while now < 300.0:
        due = c.next_deadline()
        assert due is not None
        if rng.random() < 0.3:  # sometimes the application publishes first
            now = rng.uniform(now, due)
            c.publish("t", b"", 0, now=now)
        else:
            now = due
            c.on_timer(now)
            assert c.next_deadline() != due, f"the timer at {due} did nothing"
        out = sent(c)
        if out:
            times.append(now)
        if Pingreq() in out:
            feed(c, Pingresp(), now=now)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) <= 7.0 and c.state == "connected"


def test_v311_MQTT_3_1_2_23_keepalive_0_sends_no_pingreq():
    c = connected(keepalive=0)
    assert c.next_deadline() is None
    c.on_timer(1e6)
    assert sent(c) == []


# -- 3.1.3 payload and client id --------------------------------------------------------

def test_v311_MQTT_3_1_3_1_connect_payload_field_order():
    c = ClientEngine(ClientConfig("cid", username="user", password=b"pw",
                                  will=Will("wt", b"wm", 1)))
    c.connect(0.0)
    data = c.data_to_send()
    assert data[0] == 0x10 and data[1] == len(data) - 2 and data[2:9] == b"\x00\x04MQTT\x04"
    fields, pos = [], 12  # fixed header (2) + variable header (10)
    while pos < len(data):
        size = int.from_bytes(data[pos:pos + 2], "big")
        fields.append(data[pos + 2:pos + 2 + size])
        pos += 2 + size
    assert fields == [b"cid", b"wt", b"wm", b"user", b"pw"]


def test_v311_MQTT_3_1_3_7_empty_client_id_requires_clean_session():
    with pytest.raises(ValueError, match=r"MQTT-3\.1\.3-7"):
        ClientEngine(ClientConfig("", clean_session=False))
    c = ClientEngine(ClientConfig("", clean_session=True))
    c.connect(0.0)
    assert sent(c) == [Connect("", True)]


# -- 3.2 CONNACK, 3.3 PUBLISH -----------------------------------------------------------

def test_v311_MQTT_3_2_0_1_client_refuses_a_server_that_skips_connack():
    c = ClientEngine(ClientConfig("c"))
    c.connect(0.0)
    sent(c)
    events = feed(c, Publish("t", b"x", 1, packet_id=1))
    assert c.should_close and sent(c) == []  # not even a PUBACK
    assert [e.rule for e in of(events, ev.ConnectionClosed)] == ["MQTT-3.2.0-1"]
    assert of(events, ev.MessageReceived) == []


def test_v311_MQTT_3_3_1_1_client_resends_with_dup_set():
    c = connected(clean_session=False)
    c.publish("t", b"1", 1)
    c.publish("t", b"2", 2)
    assert [p.dup for p in sent(c)] == [False, False]
    assert [p.dup for p in reconnect(c)] == [True, True]


def test_v311_MQTT_3_3_4_1_client_answers_publish_as_its_qos_requires():
    c = connected()
    feed(c, Publish("t", b"0", 0))
    assert sent(c) == []
    feed(c, Publish("t", b"1", 1, packet_id=7))
    assert sent(c) == [Puback(7)]
    feed(c, Publish("t", b"2", 2, packet_id=8))
    assert sent(c) == [Pubrec(8)]


# -- 3.14 DISCONNECT --------------------------------------------------------------------

def test_v311_MQTT_3_14_4_1_client_closes_after_disconnect():
    c = connected()
    events = c.disconnect(1.0)
    assert sent(c) == [Disconnect()] and c.should_close
    assert [e.reason for e in of(events, ev.ConnectionClosed)] == ["clean"]


def test_v311_MQTT_3_14_4_2_client_sends_nothing_after_disconnect():
    c = connected(clean_session=False)
    c.disconnect(1.0)
    # The application keeps going before the driver has flushed the DISCONNECT.
    c.publish("t", b"0", 0, now=1.0)
    c.publish("t", b"1", 1, now=1.0)
    for call in (lambda: c.subscribe("s", 1.0), lambda: c.unsubscribe("s", 1.0)):
        try:
            call()
        except MQTTError:
            pass  # refusing is fine; writing a packet is not
    c.on_timer(1000.0)
    feed(c, Publish("t", b"x", 1, packet_id=1), now=1000.0)
    assert sent(c) == [Disconnect()]


# -- 4.1 sessions, 4.3 QoS flows, 4.4 resend, 4.5 delivery, 4.6 ordering ----------------

def test_v311_MQTT_4_1_0_1_client_keeps_qos2_state_across_connections():
    c = connected(clean_session=False)
    events = feed(c, Publish("t", b"x", 2, packet_id=5))
    assert sent(c) == [Pubrec(5)]
    reconnect(c)
    events += feed(c, Publish("t", b"x", 2, dup=True, packet_id=5), now=1.0)
    assert sent(c) == [Pubrec(5)]
    feed(c, Pubrel(5), now=1.0)
    assert sent(c) == [Pubcomp(5)]
    assert [m.payload for m in of(events, ev.MessageReceived)] == [b"x"]


def test_v311_MQTT_4_3_1_1_qos0_is_sent_once_with_dup_0():
    c = connected(clean_session=False)
    c.publish("t", b"x", 0)
    assert sent(c) == [Publish("t", b"x", 0, dup=False, packet_id=None)]
    assert reconnect(c) == []


def test_v311_MQTT_4_3_2_1_qos1_sender_waits_for_puback():
    c = connected(clean_session=False)
    c.publish("t", b"1", 1)
    c.publish("t", b"2", 1)
    one, two = sent(c)
    assert one.packet_id != two.packet_id and not one.dup and not two.dup
    events = feed(c, Puback(one.packet_id))
    assert [e.packet_id for e in of(events, ev.MessageAcknowledged)] == [one.packet_id]
    assert reconnect(c) == [Publish("t", b"2", 1, dup=True, packet_id=two.packet_id)]
    assert of(c.take_events(), ev.MessageAcknowledged) == []


def test_v311_MQTT_4_3_2_2_client_puback_then_same_id_is_a_new_message():
    c = connected()
    events = feed(c, Publish("t", b"a", 1, packet_id=3))
    events += feed(c, Publish("t", b"b", 1, dup=True, packet_id=3))
    assert sent(c) == [Puback(3), Puback(3)]
    assert [m.payload for m in of(events, ev.MessageReceived)] == [b"a", b"b"]


def test_v311_MQTT_4_3_3_1_qos2_sender_publish_until_pubrec_then_pubrel():
    c = connected(clean_session=False)
    c.publish("t", b"x", 2)
    (p,) = sent(c)
    assert (p.qos, p.dup) == (2, False)
    assert reconnect(c) == [Publish("t", b"x", 2, dup=True, packet_id=p.packet_id)]
    feed(c, Pubrec(p.packet_id), now=1.0)
    assert sent(c) == [Pubrel(p.packet_id)]
    assert reconnect(c, 2.0) == [Pubrel(p.packet_id)]  # never the PUBLISH again
    events = feed(c, Pubcomp(p.packet_id), now=2.0)
    assert [e.packet_id for e in of(events, ev.MessageAcknowledged)] == [p.packet_id]
    assert reconnect(c, 3.0) == []


def test_v311_MQTT_4_3_3_2_client_delivers_qos2_once_until_pubrel():
    c = connected()
    events = feed(c, Publish("t", b"x", 2, packet_id=4))
    events += feed(c, Publish("t", b"x", 2, dup=True, packet_id=4))
    assert sent(c) == [Pubrec(4), Pubrec(4)]
    feed(c, Pubrel(4))
    assert sent(c) == [Pubcomp(4)]
    events += feed(c, Publish("t", b"y", 2, packet_id=4))  # new after PUBCOMP
    assert sent(c) == [Pubrec(4)]
    assert [m.payload for m in of(events, ev.MessageReceived)] == [b"x", b"y"]


def test_v311_MQTT_4_4_0_1_client_resends_publish_and_pubrel_with_original_ids():
    c = connected(clean_session=False)
    for data, qos in [(b"a", 1), (b"b", 2), (b"c", 2)]:
        c.publish("t", data, qos)
    a, b, cc = sent(c)
    feed(c, Pubrec(b.packet_id))
    assert sent(c) == [Pubrel(b.packet_id)]
    assert reconnect(c) == [Publish("t", b"a", 1, dup=True, packet_id=a.packet_id),
                            Pubrel(b.packet_id),
                            Publish("t", b"c", 2, dup=True, packet_id=cc.packet_id)]


def test_v311_MQTT_4_5_0_2_client_acks_messages_it_never_asked_for():
    c = connected()
    feed(c, Publish("not/subscribed", b"1", 1, packet_id=1),
         Publish("not/subscribed", b"2", 2, packet_id=2))
    assert sent(c) == [Puback(1), Pubrec(2)]


def test_v311_MQTT_4_6_0_1_resends_keep_the_original_order():
    c = connected(clean_session=False)
    for i in range(8):
        c.publish("t", b"%d" % i, 1 + i % 2)
    first = sent(c)
    for p in (first[5], first[1], first[2]):  # acknowledged out of order
        feed(c, Puback(p.packet_id) if p.qos == 1 else Pubrec(p.packet_id))
    sent(c)
    resent = [p.payload for p in reconnect(c) if isinstance(p, Publish)]
    assert resent == [b"0", b"3", b"4", b"6", b"7"]


def test_v311_MQTT_4_6_0_2_pubacks_in_publish_arrival_order():
    c = connected()
    feed(c, *(Publish("t", b"", 1, packet_id=i) for i in (9, 3, 5, 65535, 1)))
    assert [p.packet_id for p in sent(c)] == [9, 3, 5, 65535, 1]


def test_v311_MQTT_4_6_0_3_pubrecs_in_publish_arrival_order():
    c = connected()
    feed(c, *(Publish("t", b"", 2, packet_id=i) for i in (9, 3, 5, 65535, 1)))
    assert sent(c) == [Pubrec(i) for i in (9, 3, 5, 65535, 1)]


def test_v311_MQTT_4_6_0_4_pubrels_in_pubrec_arrival_order():
    c = connected()
    for i in range(4):
        c.publish("t", b"%d" % i, 2)
    ids = [p.packet_id for p in sent(c)]
    order = [ids[2], ids[0], ids[3], ids[1]]
    feed(c, *(Pubrec(i) for i in order))
    assert sent(c) == [Pubrel(i) for i in order]


# -- 7.1 transport ----------------------------------------------------------------------

def _session(chunks: list[bytes]) -> tuple[list, list]:
    c = connected(keepalive=0)
    c.subscribe("t", qos=2)
    c.publish("t", b"1", 1)
    c.publish("t", b"2", 2)
    sent(c)
    events = []
    for chunk in chunks:
        events += c.receive(chunk, 0.0)
    kept = [e for e in events if not isinstance(e, (ev.PacketReceived, ev.PacketSent))]
    return sent(c), kept


def test_v311_MQTT_7_1_2_1_client_reads_a_byte_stream_however_it_is_split():
    server = [Suback(1, (2,)), Puback(2), Pubrec(3), Pubcomp(3), Publish("t", b"in" * 200, 2,
              packet_id=7), Pubrel(7), Unsuback(9), Pingresp()]
    stream = b"".join(encode(p, V) for p in server)
    whole = _session([stream])
    assert whole[0] == [Pubrel(3), Pubrec(7), Pubcomp(7)]
    assert [type(e) for e in whole[1]] == [ev.Subscribed, ev.MessageAcknowledged,
                                           ev.MessageAcknowledged, ev.MessageReceived]
    assert _session([stream[i:i + 1] for i in range(len(stream))]) == whole
    rng = random.Random(11)
    cuts = sorted(rng.sample(range(1, len(stream)), 20))
    assert _session([stream[i:j] for i, j in zip([0] + cuts, cuts + [len(stream)])]) == whole


# -- MQTT 3.1 (protocol level 3) specifics ----------------------------------------------

def test_v31_client_resends_on_a_timer_without_reconnecting():
    c = connected(version=3, keepalive=0, retry_interval=5.0)
    c.publish("t", b"1", 1)
    c.publish("t", b"2", 2)
    one, two = sent(c, 3)
    assert c.next_deadline() == 5.0
    c.on_timer(4.99)
    assert sent(c, 3) == []
    c.on_timer(5.0)
    assert sent(c, 3) == [Publish("t", b"1", 1, dup=True, packet_id=one.packet_id),
                          Publish("t", b"2", 2, dup=True, packet_id=two.packet_id)]
    feed(c, Puback(one.packet_id), Pubrec(two.packet_id), now=6.0, version=3)
    assert sent(c, 3) == [Pubrel(two.packet_id)]
    c.on_timer(11.0)
    assert sent(c, 3) == [Pubrel(two.packet_id)]  # only the unfinished step is retried
    feed(c, Pubcomp(two.packet_id), now=12.0, version=3)
    assert c.next_deadline() is None and c.state == "connected"


def test_v311_client_does_not_resend_on_a_timer():
    """3.1.1 resends only when a session resumes [MQTT-4.4.0-1], never on a live link."""
    c = connected(keepalive=0, retry_interval=5.0)
    c.publish("t", b"1", 1)
    sent(c)
    assert c.next_deadline() is None
    c.on_timer(100.0)
    assert sent(c) == []

