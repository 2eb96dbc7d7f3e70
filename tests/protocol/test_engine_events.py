"""The engines' events are a complete and exact account of what happened.

The simulator's tables, the server's log and the notebooks are all built from these events,
so they must add up: every byte on the wire is in a PacketSent/PacketReceived event of the
right size, each party reports exactly the packets of the exchange, every message the
engines give up on is a MessageDropped with its reason, the in-flight windows are never
exceeded, and one misbehaving client is closed (naming the spec statement) without any
other client noticing.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.client import ClientConfig, ClientEngine
from mqttsim.protocol.events import (ConnectionClosed, ConnectionOpened, MessageAcknowledged,
                                     MessageDropped,
                                     MessageReceived, PacketReceived, PacketSent, WillPublished)
from mqttsim.protocol.packets import (Connect, Disconnect, Puback, Pubcomp, Publish,
                                      Subscription, Will)
from mqttsim.protocol.properties import Properties

from support.pipe import Pipe

VERSIONS = [3, 4, 5]


# ------------------------------------------------------------ byte-exact packet events

class TapClient(ClientEngine):
    """A client engine that also keeps every byte it wrote and was given."""

    def __init__(self, config: ClientConfig):
        super().__init__(config)
        self.wrote = bytearray()
        self.got = bytearray()

    def data_to_send(self) -> bytes:
        data = super().data_to_send()
        self.wrote += data
        return data

    def receive(self, data: bytes, now: float) -> list:
        self.got += data
        return super().receive(data, now)


def tapped_pipe(version: int, names: list[str], broker: BrokerEngine | None = None) -> Pipe:
    p = Pipe(broker or BrokerEngine())
    for name in names:
        p.add_client(name, connect=False)
        p.clients[name] = TapClient(ClientConfig(name, version=version, keepalive=10,
                                                 emit_packet_events=True))
        p.connect(name, now=0)
    p.run(0)
    return p


def busy_story(p: Pipe, version: int) -> None:
    """A bit of everything: subscriptions, all QoS levels, small and large payloads
    (1-, 2- and 3-byte remaining lengths), retained, unsubscribe, ping, disconnect."""
    sub, pub = p.clients["sub"], p.clients["pub"]
    sub.subscribe([("a/#", 2), ("b/+", 1)], now=0)
    p.run(0)
    for i, (qos, size) in enumerate([(0, 3), (1, 200), (2, 20_000), (1, 0), (2, 90)]):
        pub.publish(f"a/{i}", bytes(size), qos=qos, retain=(i == 1), now=1)
    pub.publish("b/x", b"hello", qos=2, now=1)
    p.run(1)
    sub.unsubscribe("b/+", now=2)
    p.run(2)
    p.advance(12.5)  # both clients ping at 12
    # disconnect() hands its events back instead of leaving them for take_events().
    p.events.extend(("pub", e) for e in pub.disconnect(now=13))
    p.run(13)


def decode_stream(data: bytes, version: int | None) -> tuple[list, list[int]]:
    decoder = Decoder(version)
    packets = decoder.feed(bytes(data))
    return packets, list(decoder.sizes)


@pytest.mark.parametrize("version", VERSIONS)
def test_packet_events_match_the_bytes_on_the_wire_exactly(version):
    """For each connection: the client's PacketSent events, in order, are exactly the
    packets decoded from the bytes it wrote, with sizes equal to their encoded length; the
    broker's PacketReceived events for that connection are the same packets and sizes; and
    likewise in the other direction."""
    p = tapped_pipe(version, ["sub", "pub"])
    conns = dict(p.conn_of)  # before the publisher disconnects
    busy_story(p, version)
    for name in ("sub", "pub"):
        client = p.clients[name]
        conn = conns[name]
        up, up_sizes = decode_stream(client.wrote, None)
        down, down_sizes = decode_stream(client.got, version)
        assert len(up) > 5 and len(down) > 5

        sent = p.of(PacketSent, name)
        assert [e.packet for e in sent] == up
        assert [e.size for e in sent] == up_sizes == [len(encode(x, version)) for x in up]
        assert sum(e.size for e in sent) == len(client.wrote)

        broker_in = [e for e in p.of(PacketReceived, "broker") if e.conn == conn]
        assert [(e.packet, e.size) for e in broker_in] == list(zip(up, up_sizes))

        broker_out = [e for e in p.of(PacketSent, "broker") if e.conn == conn]
        assert [(e.packet, e.size) for e in broker_out] == list(zip(down, down_sizes))
        assert sum(e.size for e in broker_out) == len(client.got)

        got = p.of(PacketReceived, name)
        assert [(e.packet, e.size) for e in got] == list(zip(down, down_sizes))
        assert all(e.client_id == name for e in sent + got + broker_out)


@pytest.mark.parametrize("version", VERSIONS)
def test_without_packet_events_the_other_events_are_unchanged(version):
    """emit_packet_events=False (for speed) removes PacketSent/PacketReceived (and
    ConnectionOpened, the -v log's "New connection" line) and nothing else: the same story
    yields the same remaining events."""
    def story(emit: bool) -> list:
        broker = BrokerEngine(BrokerConfig(emit_packet_events=emit))
        p = Pipe(broker, trace=emit)
        for name in ("sub", "pub"):
            p.add_client(name, ClientConfig(name, version=version, keepalive=10,
                                            emit_packet_events=emit), now=0)
        p.run(0)
        busy_story(p, version)
        return [(who, e) for who, e in p.events
                if not isinstance(e, (PacketSent, PacketReceived, ConnectionOpened))], p

    with_packets, p1 = story(True)
    without, p2 = story(False)
    assert with_packets == without
    assert p1.of(PacketSent) and not p2.of(PacketSent) and not p2.of(PacketReceived)


# ----------------------------------------------------------- the exact QoS 1 exchange

def label(event) -> str:
    name = type(event).__name__
    if isinstance(event, (PacketSent, PacketReceived)):
        name += ":" + type(event.packet).__name__
    return name


@pytest.mark.parametrize("version", VERSIONS)
def test_a_qos1_exchange_produces_exactly_the_expected_events_per_party(version):
    p = Pipe(BrokerEngine())
    sub = p.add_client("sub", ClientConfig("sub", version=version), now=0)
    pub = p.add_client("pub", ClientConfig("pub", version=version), now=0)
    p.run(0)
    sub.subscribe("t", qos=1, now=0)
    p.run(0)
    number = pub.publish("t", b"m", qos=1, now=1)
    p.run(1)

    conns = {"sub": p.conn_of["sub"], "pub": p.conn_of["pub"]}

    def story(who: str, client: str | None = None) -> list[str]:
        return [label(e) for w, e in p.events
                if w == who and (client is None or e.conn == conns[client])]

    assert story("pub") == [
        "PacketSent:Connect", "PacketReceived:Connack", "Connected",
        "PacketSent:Publish", "PacketReceived:Puback", "MessageAcknowledged"]
    assert story("sub") == [
        "PacketSent:Connect", "PacketReceived:Connack", "Connected",
        "PacketSent:Subscribe", "PacketReceived:Suback", "Subscribed",
        "PacketReceived:Publish", "PacketSent:Puback", "MessageReceived"]
    assert story("broker", "pub") == [
        "ConnectionOpened", "PacketReceived:Connect", "PacketSent:Connack", "Connected",
        "PacketReceived:Publish", "MessageReceived", "PacketSent:Puback"]
    assert story("broker", "sub") == [
        "ConnectionOpened", "PacketReceived:Connect", "PacketSent:Connack", "Connected",
        "PacketReceived:Subscribe", "PacketSent:Suback", "Subscribed",
        "PacketSent:Publish", "PacketReceived:Puback", "MessageAcknowledged"]

    [acked] = p.of(MessageAcknowledged, "pub")
    assert (acked.message, acked.qos, acked.reason_code) == (number, 1, 0)
    [got] = p.of(MessageReceived, "sub")
    assert (got.topic, got.payload, got.qos, got.dup) == ("t", b"m", 1, False)
    assert p.of(MessageDropped) == [] and p.of(ConnectionClosed) == []


# ----------------------------------------------------------------- drops and windows

def persistent_config(name: str, version: int, **extra) -> ClientConfig:
    """A client config that keeps its session (the Pipe drives real engines, not Peers)."""
    return ClientConfig(name, version=version, clean_session=False,
                        session_expiry=3600 if version == 5 else 0, **extra)


@pytest.mark.parametrize("version", VERSIONS)
def test_broker_queue_overflow_drops_the_newest_with_reason_queue_full(version):
    p = Pipe(BrokerEngine(BrokerConfig(max_queued_messages=3)))
    sub = p.add_client("sub", persistent_config("sub", version), now=0)
    pub = p.add_client("pub", ClientConfig("pub", version=version), now=0)
    p.run(0)
    sub.subscribe("t", qos=1, now=0)
    p.run(0)
    p.cut("sub", now=1)
    for i in range(5):
        pub.publish("t", f"{i}".encode(), qos=1, now=1)
    p.run(1)
    drops = p.of(MessageDropped, "broker")
    assert [(d.payload, d.qos, d.reason, d.client_id) for d in drops] == [
        (b"3", 1, "queue_full", "sub"), (b"4", 1, "queue_full", "sub")]
    assert len(p.of(MessageAcknowledged, "pub")) == 5  # the publisher's side all went well
    p.connect("sub", now=2)
    p.run(2)
    assert [e.payload for e in p.of(MessageReceived, "sub")] == [b"0", b"1", b"2"]


@pytest.mark.parametrize("version", VERSIONS)
def test_client_queue_limit_drops_with_reason_queue_full(version):
    p = Pipe(BrokerEngine())
    pub = p.add_client("pub", ClientConfig("pub", version=version, max_queued=2), now=0,
                       connect=False)
    numbers = [pub.publish("t", f"{i}".encode(), qos=1, now=0) for i in range(4)]
    assert [(d.message, d.reason) for d in pub.take_events()
            if isinstance(d, MessageDropped)] == [(numbers[2], "queue_full"),
                                                  (numbers[3], "queue_full")]
    p.connect("pub", now=1)
    p.run(1)
    assert [e.message for e in p.of(MessageAcknowledged, "pub")] == numbers[:2]


def unacked_publishes(p: Pipe, who: str, client_id: str | None = None) -> int:
    """PUBLISH (QoS > 0) sent by ``who`` minus PUBACK/PUBCOMP it received, so far."""
    def ours(e) -> bool:
        return client_id is None or e.client_id == client_id

    sent = [e for e in p.of(PacketSent, who) if isinstance(e.packet, Publish)
            and e.packet.qos and not e.packet.dup and ours(e)]
    done = [e for e in p.of(PacketReceived, who)
            if isinstance(e.packet, (Puback, Pubcomp)) and ours(e)]
    return len(sent) - len(done)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", [1, 2])
def test_broker_inflight_window_holds_back_the_rest_and_releases_in_order(version, qos):
    """BrokerConfig(max_inflight=2): never more than two unacknowledged PUBLISHes to the
    subscriber; the other four wait in the queue and go out, in order, as acks arrive."""
    p = Pipe(BrokerEngine(BrokerConfig(max_inflight=2)))
    sub = p.add_client("sub", ClientConfig("sub", version=version), now=0)
    pub = p.add_client("pub", ClientConfig("pub", version=version), now=0)
    p.run(0)
    sub.subscribe("t", qos=2, now=0)
    p.run(0)
    for i in range(6):
        pub.publish("t", f"{i}".encode(), qos=qos, now=1)
    assert p.step(1)  # all six PUBLISHes reach the broker in one chunk
    flow = p.broker.sessions["sub"].flow
    assert (len(flow.inflight), len(flow.queue)) == (2, 4)
    peak = 0
    while p.step(1):
        now_unacked = unacked_publishes(p, "broker", "sub")
        assert now_unacked <= 2
        peak = max(peak, now_unacked)
    assert peak == 2
    assert [e.payload for e in p.of(MessageReceived, "sub")] == [f"{i}".encode()
                                                                 for i in range(6)]
    assert (len(flow.inflight), len(flow.queue)) == (0, 0)
    assert p.of(MessageDropped) == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", [1, 2])
def test_client_inflight_window_holds_back_the_rest_and_releases_in_order(version, qos):
    p = Pipe(BrokerEngine())
    sub = p.add_client("sub", ClientConfig("sub", version=version), now=0)
    pub = p.add_client("pub", ClientConfig("pub", version=version, max_inflight=2), now=0)
    p.run(0)
    sub.subscribe("t", qos=2, now=0)
    p.run(0)
    numbers = [pub.publish("t", f"{i}".encode(), qos=qos, now=1) for i in range(5)]
    assert (pub.inflight_count, pub.queued_count) == (2, 3)
    assert unacked_publishes(p, "pub") == 0  # nothing collected by the pipe yet
    p.step(1)
    assert len([e for e in p.of(PacketSent, "pub") if isinstance(e.packet, Publish)]) == 2
    peak = 0
    while p.step(1):
        assert pub.inflight_count <= 2
        peak = max(peak, unacked_publishes(p, "pub"))
        assert unacked_publishes(p, "pub") <= 2
    assert peak == 2
    assert [e.message for e in p.of(MessageAcknowledged, "pub")] == numbers
    assert [e.payload for e in p.of(MessageReceived, "sub")] == [f"{i}".encode()
                                                                 for i in range(5)]


def test_v5_MQTT_3_3_4_7_client_stays_within_the_servers_receive_maximum():
    """The broker's CONNACK says Receive Maximum 2; the client asked for a window of 20 but
    never has more than two QoS 1 PUBLISHes unacknowledged."""
    p = Pipe(BrokerEngine(BrokerConfig(receive_maximum=2)))
    pub = p.add_client("pub", ClientConfig("pub", version=5), now=0)
    p.run(0)
    assert pub.server_properties.receive_maximum == 2
    numbers = [pub.publish("t", b"x", qos=1, now=1) for _ in range(5)]
    assert (pub.inflight_count, pub.queued_count) == (2, 3)
    peak = 0
    while p.step(1):
        peak = max(peak, unacked_publishes(p, "pub"))
        assert unacked_publishes(p, "pub") <= 2
    assert peak == 2
    assert [e.message for e in p.of(MessageAcknowledged, "pub")] == numbers


# --------------------------------------------------------- one bad client, others fine

CONNECT_BAD = Connect("bad", keepalive=0, will=Will("status/bad", b"crashed", qos=1))
GARBAGE = {
    # name: (bytes after CONNECT, or whole stream when CONNECT is left out; rule 3.1.1, 5.0)
    "publish_qos3": (b"\x36\x06\x00\x01t\x00\x01x", "MQTT-3.3.1-4", "MQTT-3.3.1-4"),
    "subscribe_flags": (b"\x80\x06\x00\x01\x00\x01t\x00", "MQTT-3.8.1-1", "MQTT-3.8.1-1"),
    "pubrel_flags": (b"\x60\x02\x00\x01", "MQTT-3.6.1-1", "MQTT-3.6.1-1"),
    "second_connect": (None, "MQTT-3.1.0-2", "MQTT-3.1.0-2"),
}


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_a_client_sending_garbage_is_closed_naming_the_rule_and_nobody_else_notices(
        version, case):
    garbage, rule311, rule5 = GARBAGE[case]
    if garbage is None:
        garbage = encode(Connect("bad"), version)
    p = Pipe(BrokerEngine())
    sub = p.add_client("sub", ClientConfig("sub", version=version), now=0)
    pub = p.add_client("pub", ClientConfig("pub", version=version), now=0)
    p.run(0)
    sub.subscribe([("t", 2), ("status/#", 1)], now=0)
    p.run(0)
    pub.publish("t", b"0", qos=1, now=1)
    p.run(1)

    broker = p.broker
    broker.connection_made("bad", 2)
    broker.receive("bad", encode(CONNECT_BAD, version), 2)
    broker.take_output("bad")
    pub.publish("t", b"1", qos=2, now=2)  # in flight while the bad client misbehaves
    p.step(2)
    events = broker.receive("bad", garbage, 3)
    data, close = broker.take_output("bad")
    p.events.extend(("broker", e) for e in events)
    pub.publish("t", b"2", qos=1, now=4)
    p.run(4)

    [closed] = [e for e in p.of(ConnectionClosed, "broker") if e.conn == "bad"]
    assert closed.reason == "protocol_error"
    assert closed.rule == (rule5 if version == 5 else rule311)
    assert close is True
    replies = Decoder(version).feed(data)
    if version == 5:  # MQTT 5 tells the client why [MQTT-3.14.0-1 allows it after CONNACK]
        assert [type(x) for x in replies] == [Disconnect]
        assert replies[0].reason_code in (0x81, 0x82)
    else:
        assert replies == []
    # The bad client's will goes out: it did not say goodbye with DISCONNECT.
    assert [w.client_id for w in p.of(WillPublished)] == ["bad"]

    assert [e.payload for e in p.of(MessageReceived, "sub")] == [b"0", b"1", b"crashed", b"2"]
    assert len(p.of(MessageAcknowledged, "pub")) == 3
    assert [e for e in p.of(ConnectionClosed) if e.conn != "bad"] == []
    assert p.clients["sub"].state == p.clients["pub"].state == "connected"
    assert set(broker.sessions) == {"sub", "pub"}  # the bad clean session is gone


@pytest.mark.parametrize("version", [4, 5])
def test_a_client_whose_first_packet_is_not_connect_is_closed(version):
    b = BrokerEngine()
    b.connection_made("bad", 0)
    events = b.receive("bad", encode(Publish("t", b"x"), version), 0)
    [closed] = [e for e in events if isinstance(e, ConnectionClosed)]
    assert (closed.reason, closed.rule) == ("protocol_error", "MQTT-3.1.0-1")
    data, close = b.take_output("bad")
    assert (data, close) == (b"", True)  # nothing at all before a CONNACK [MQTT-3.2.0-1]
    assert [type(e) for e in events if not isinstance(e, (PacketReceived, ConnectionClosed))] \
        == []


def test_user_properties_survive_routing_and_are_counted_in_the_size():
    """MQTT 5: a PUBLISH with properties is forwarded with them, and the PacketSent sizes
    on both hops are the encoded sizes including the properties."""
    p = tapped_pipe(5, ["sub", "pub"])
    p.clients["sub"].subscribe(Subscription("t", 1), now=0)
    p.run(0)
    props = Properties(user_properties=(("k", "v" * 50),), content_type="text/plain")
    p.clients["pub"].publish("t", b"m", qos=1, now=1, properties=props)
    p.run(1)
    [got] = p.of(MessageReceived, "sub")
    assert got.properties.user_properties == (("k", "v" * 50),)
    assert got.properties.content_type == "text/plain"
    for who in ("pub", "broker"):
        [sent] = [e for e in p.of(PacketSent, who) if isinstance(e.packet, Publish)]
        bare = Publish(sent.packet.topic, b"m", 1, packet_id=sent.packet.packet_id)
        assert sent.size == len(encode(sent.packet, 5)) > len(encode(bare, 5)) + 60


def test_trace_sent_alone_reports_packets_sent_and_none_received():
    from mqttsim.protocol.broker import BrokerEngine
    from mqttsim.protocol.client import ClientConfig, ClientEngine
    from mqttsim.protocol.events import PacketReceived, PacketSent
    broker, client = BrokerEngine(), ClientEngine(ClientConfig("c", emit_packet_events=True))
    broker.trace_packets = True
    broker.trace_received = client.trace_received = False
    assert not broker.trace_packets and broker.trace_sent
    client.connect(0.0)
    broker.connection_made(1, 0.0)
    seen = client.take_events() + broker.receive(1, client.data_to_send(), 0.0)
    data, _ = broker.take_output(1)
    seen += client.receive(data, 0.0)
    client.publish("t", b"x", qos=1, now=0.0)
    seen += client.take_events() + broker.receive(1, client.data_to_send(), 0.0)
    data, _ = broker.take_output(1)
    seen += client.receive(data, 0.0)
    sent = [type(e.packet).__name__ for e in seen if isinstance(e, PacketSent)]
    assert sent == ["Connect", "Connack", "Publish", "Puback"]
    assert not any(isinstance(e, PacketReceived) for e in seen)


def test_an_abandoned_client_reports_every_message_it_held_but_not_one_past_pubrec():
    from mqttsim.protocol.client import ClientConfig, ClientEngine
    from mqttsim.protocol.events import MessageDropped
    from mqttsim.protocol.packets import Connack, Pubrec
    from mqttsim.protocol import encode
    client = ClientEngine(ClientConfig("c", max_inflight=2))
    client.connect(0.0)
    client.receive(encode(Connack(), 4), 0.0)
    for topic, qos in (("a", 2), ("b", 1), ("c", 1)):  # two in flight, one queued
        client.publish(topic, b"x", qos=qos, now=0.0)
    client.receive(encode(Pubrec(1), 4), 0.0)  # "a" now belongs to the server
    dropped = [e for e in client.abandon(1.0, "client_crash") if isinstance(e, MessageDropped)]
    assert [(e.topic, e.reason) for e in dropped] == [("b", "client_crash"),
                                                      ("c", "client_crash")]


def test_an_abandoned_broker_loses_only_what_no_store_keeps():
    from mqttsim.protocol.broker import BrokerEngine
    from mqttsim.protocol.broker_state import BrokerStore
    from mqttsim.protocol.client import ClientConfig, ClientEngine
    from mqttsim.protocol.events import MessageDropped
    broker = BrokerEngine(store=BrokerStore())
    for conn, (name, clean) in enumerate((("keeper", False), ("loser", True)), 1):
        client = ClientEngine(ClientConfig(name, clean_session=clean))
        client.connect(0.0)
        broker.connection_made(conn, 0.0)
        broker.receive(conn, client.data_to_send(), 0.0)
        client.receive(broker.take_output(conn)[0], 0.0)
        client.subscribe("t", 0.0, qos=1)
        broker.receive(conn, client.data_to_send(), 0.0)
        broker.take_output(conn)
        broker.connection_lost(conn, 0.0)
    publisher = ClientEngine(ClientConfig("pub"))
    publisher.connect(0.0)
    broker.connection_made(9, 0.0)
    broker.receive(9, publisher.data_to_send(), 0.0)
    publisher.receive(broker.take_output(9)[0], 0.0)
    publisher.publish("t", b"x", qos=1, now=0.0)
    broker.receive(9, publisher.data_to_send(), 0.0)  # queued for the offline keeper only
    dropped = [e for e in broker.abandon(1.0, "broker_restart")
               if isinstance(e, MessageDropped)]
    assert dropped == []  # the keeper's queued message is the store's to keep
    broker.sessions["keeper"].expiry = 0  # were it not persistent, it would be lost
    dropped = [e for e in broker.abandon(1.0, "broker_restart")
               if isinstance(e, MessageDropped)]
    assert [(e.client_id, e.reason) for e in dropped] == [("keeper", "broker_restart")]
