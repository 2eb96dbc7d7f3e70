"""Interop: decode and re-encode the exact bytes real mosquitto tools put on the wire (issue #2).

A recording relay sits between Debian's ``mosquitto_sub``/``mosquitto_pub`` and a real
``mosquitto`` broker, for MQTT 3.1, 3.1.1 and 5.0. Every recorded stream must decode with our
``Decoder`` (fed in the chunks the network produced, and byte by byte, with the same result),
must say what the command lines asked for, and must re-encode with ``encode`` to the very same
bytes. Byte vectors we write ourselves can share our misreadings of the spec; another
implementation's bytes cannot.

The one legitimate difference: the spec fixes no order for MQTT 5 properties, mosquitto writes
CONNACK's properties in its own order and our encoder in identifier order, so for that packet
the re-encoding must hold the same property entries, possibly reordered.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.packets import (Connack, Connect, Disconnect, Pingreq, Pingresp, Puback,
                                      Pubcomp, Publish, Pubrec, Pubrel, Suback, Subscribe,
                                      Subscription, Will)
from mqttsim.protocol.properties import BY_ID, NO_PROPERTIES, Properties
from support.mosquitto import CLIENT_VERSIONS, mosquitto_broker, require_mosquitto, stop_process
from support.relay import (BROKER_TO_CLIENT, CLIENT_TO_BROKER, RecordedConnection, Relay,
                           frame_types, split_frames)

# Each test takes well under a second; the marker only stops a hung client from hanging CI.
pytestmark = pytest.mark.timeout(30)

TOPIC = "sensor"
PAYLOAD = b"12"
SUB_KEEPALIVE = 5
PUB_KEEPALIVE = 60  # mosquitto_pub's default
QOS_LEVELS = (0, 1, 2)
WAIT = 5.0  # seconds for any single step on loopback
# Non-default broker limits, so the MQTT 5 CONNACK carries values this test chose.
RECEIVE_MAXIMUM = 7
TOPIC_ALIAS_MAXIMUM = 4
MAXIMUM_PACKET_SIZE = 4096
BROKER_CONFIG = (f"max_inflight_messages {RECEIVE_MAXIMUM}\n"
                 f"max_topic_alias {TOPIC_ALIAS_MAXIMUM}\n"
                 f"max_packet_size {MAXIMUM_PACKET_SIZE}\n")
# What each publisher adds to the command line, and the CONNECT fields that must show it.
USERNAME, PASSWORD = "user", "pass"
WILL = Will(topic="sensor/will", payload=b"bye", qos=1, retain=True)
PUB_EXTRA_ARGS = {
    0: [],
    1: ["-u", USERNAME, "-P", PASSWORD, "--will-topic", WILL.topic,
        "--will-payload", WILL.payload.decode(), "--will-qos", str(WILL.qos), "--will-retain"],
    2: ["-r"],
}
SUBACK_TYPE = 9


@dataclass(frozen=True)
class Recording:
    """One version's run: the subscriber's and each publisher's relayed connection."""

    name: str  # mosquitto's -V spelling
    version: int
    sub: RecordedConnection
    pubs: dict[int, RecordedConnection]  # by the publisher's QoS
    sub_stdout: str
    sub_returncode: int


@dataclass(frozen=True)
class Decoded:
    """One connection decoded: the packets of each direction, and both merged in wire order."""

    from_client: list
    from_broker: list
    merged: list[tuple[str, object]]
    learned_version: int | None


def _client_args(relay: Relay, name: str) -> list[str]:
    return ["-h", relay.host, "-p", str(relay.port), "-V", name]


def _record(name: str, workdir: Path) -> Recording:
    """Run one subscriber and three publishers (QoS 0, 1, 2) through the relay."""
    require_mosquitto("mosquitto_sub", "mosquitto_pub")
    with mosquitto_broker(workdir, BROKER_CONFIG) as broker, \
            Relay(broker.host, broker.port) as relay:
        sub = subprocess.Popen(
            ["mosquitto_sub", *_client_args(relay, name), "-v", "-t", TOPIC, "-q", "2",
             "-i", f"sub-{name}", "-C", str(len(QOS_LEVELS)), "-k", str(SUB_KEEPALIVE)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            sub_conn = relay.wait_connection(0, WAIT)
            relay.wait_for(lambda: SUBACK_TYPE in frame_types(sub_conn.broker_bytes), WAIT,
                           "the subscriber's SUBACK")
            pubs = {}
            for qos in QOS_LEVELS:
                index = len(relay.connections)
                done = subprocess.run(
                    ["mosquitto_pub", *_client_args(relay, name), "-t", TOPIC,
                     "-m", PAYLOAD.decode(), "-q", str(qos), "-i", f"pub-{name}-q{qos}",
                     *PUB_EXTRA_ARGS[qos]],
                    capture_output=True, timeout=WAIT, stdin=subprocess.DEVNULL)
                assert done.returncode == 0, f"mosquitto_pub failed: {done.stderr!r}"
                pubs[qos] = relay.wait_connection(index, WAIT)
                relay.wait_closed(pubs[qos], WAIT)
            out, err = sub.communicate(timeout=WAIT)
            relay.wait_closed(sub_conn, WAIT)
        finally:
            stop_process(sub)
    return Recording(name, CLIENT_VERSIONS[name], sub_conn, pubs, out.decode(errors="replace"),
                     sub.returncode)


@pytest.fixture(scope="module", params=list(CLIENT_VERSIONS), ids=list(CLIENT_VERSIONS))
def recording(request, tmp_path_factory) -> Recording:
    return _record(request.param, tmp_path_factory.mktemp(f"mosquitto-{request.param}"))


def _feed_all(decoder: Decoder, chunks) -> list:
    packets = []
    for chunk in chunks:
        packets.extend(decoder.feed(chunk))
    return packets


def _decode(conn: RecordedConnection, version: int) -> Decoded:
    """Decode both directions, server side learning the version from CONNECT.

    Keepalive probes are left out: whether one falls inside the run depends on the machine's
    speed (the byte-level tests below still decode and re-encode them).
    """
    server_side, client_side = Decoder(version=None), Decoder(version=version)
    merged = []
    for direction, chunk in conn.log:
        decoder = server_side if direction == CLIENT_TO_BROKER else client_side
        merged.extend((direction, packet) for packet in decoder.feed(chunk)
                      if not isinstance(packet, (Pingreq, Pingresp)))
    return Decoded([p for d, p in merged if d == CLIENT_TO_BROKER],
                   [p for d, p in merged if d == BROKER_TO_CLIENT], merged, server_side.version)


def _connections(rec: Recording) -> list[tuple[str, RecordedConnection]]:
    return [("sub", rec.sub)] + [(f"pub q{qos}", conn) for qos, conn in rec.pubs.items()]


def _kinds(merged) -> list[tuple[str, str]]:
    return [(direction, type(packet).__name__) for direction, packet in merged]


# -- the clients did what they were asked -------------------------------------------------------

def test_subscriber_printed_the_three_messages(recording: Recording) -> None:
    assert recording.sub_returncode == 0
    assert recording.sub_stdout.splitlines() == ["sensor 12"] * len(QOS_LEVELS)


# -- decoding: same packets however the stream is cut ----------------------------------------

@pytest.mark.parametrize("direction", [CLIENT_TO_BROKER, BROKER_TO_CLIENT])
def test_chunked_and_byte_by_byte_decoding_agree(recording: Recording, direction: str) -> None:
    for label, conn in _connections(recording):
        version = None if direction == CLIENT_TO_BROKER else recording.version
        stream = b"".join(conn.chunks(direction))
        as_read = _feed_all(Decoder(version=version), conn.chunks(direction))
        by_byte = _feed_all(Decoder(version=version),
                            (stream[i:i + 1] for i in range(len(stream))))
        whole = _feed_all(Decoder(version=version), [stream])
        frames = split_frames(stream)
        assert sum(map(len, frames)) == len(stream), f"{label}: trailing partial packet"
        assert len(as_read) == len(frames), f"{label} {direction}: {as_read}"
        assert by_byte == as_read, label
        assert whole == as_read, label


def test_server_side_decoder_learns_the_version_from_connect(recording: Recording) -> None:
    for label, conn in _connections(recording):
        decoder = Decoder(version=None)
        packets = _feed_all(decoder, conn.chunks(CLIENT_TO_BROKER))
        assert isinstance(packets[0], Connect), label
        assert decoder.version == recording.version, label


# -- what a user would check in the publishers' conversations ------------------------------

@pytest.mark.parametrize("qos", QOS_LEVELS)
def test_publisher_connect_carries_the_command_line(recording: Recording, qos: int) -> None:
    connect = _decode(recording.pubs[qos], recording.version).from_client[0]
    assert isinstance(connect, Connect)
    assert connect.client_id == f"pub-{recording.name}-q{qos}"
    assert connect.clean_session is True
    assert connect.keepalive == PUB_KEEPALIVE
    if qos == 1:
        assert (connect.username, connect.password) == (USERNAME, PASSWORD.encode())
        assert connect.will == WILL  # will properties are empty in MQTT 5 as well
    else:
        assert (connect.username, connect.password, connect.will) == (None, None, None)
    if recording.version == 5:
        # mosquitto_pub advertises only its Receive Maximum (its in-flight window).
        receive_maximum = connect.properties.receive_maximum
        assert receive_maximum is not None and 1 <= receive_maximum <= 0xFFFF
        assert connect.properties == Properties(receive_maximum=receive_maximum)
    else:
        assert connect.properties == NO_PROPERTIES


@pytest.mark.parametrize("qos", QOS_LEVELS)
def test_publisher_flow_in_wire_order(recording: Recording, qos: int) -> None:
    decoded = _decode(recording.pubs[qos], recording.version)
    c2b, b2c = CLIENT_TO_BROKER, BROKER_TO_CLIENT
    flow = {0: [], 1: [(b2c, "Puback")], 2: [(b2c, "Pubrec"), (c2b, "Pubrel"), (b2c, "Pubcomp")]}
    assert _kinds(decoded.merged) == ([(c2b, "Connect"), (b2c, "Connack"), (c2b, "Publish")]
                                      + flow[qos] + [(c2b, "Disconnect")])
    connack = decoded.from_broker[0]
    assert (connack.session_present, connack.reason_code) == (False, 0)
    publish = decoded.from_client[1]
    assert (publish.topic, publish.payload, publish.qos) == (TOPIC, PAYLOAD, qos)
    assert publish.retain is (qos == 2) and publish.dup is False
    assert publish.properties == NO_PROPERTIES
    if qos == 0:
        assert publish.packet_id is None
    else:
        assert publish.packet_id is not None
        acks = [p for _, p in decoded.merged[3:-1]]
        assert [p.packet_id for p in acks] == [publish.packet_id] * len(acks)
        assert [p.reason_code for p in acks] == [0] * len(acks)
    assert decoded.from_client[-1] == Disconnect()


# -- ... and in the subscriber's -------------------------------------------------------------

def test_subscriber_connect_and_subscribe(recording: Recording) -> None:
    decoded = _decode(recording.sub, recording.version)
    connect, subscribe = decoded.from_client[:2]
    assert isinstance(connect, Connect)
    assert connect.client_id == f"sub-{recording.name}"
    assert connect.clean_session is True and connect.keepalive == SUB_KEEPALIVE
    assert (connect.username, connect.password, connect.will) == (None, None, None)
    assert isinstance(subscribe, Subscribe)
    assert subscribe.subscriptions == (Subscription(TOPIC, qos=2),)
    assert subscribe.properties == NO_PROPERTIES
    connack, suback = decoded.from_broker[:2]
    assert connack == Connack(session_present=False, reason_code=0,
                              properties=connack.properties)
    assert suback == Suback(packet_id=subscribe.packet_id, reason_codes=(2,))


def test_subscriber_receives_each_qos_with_its_flow(recording: Recording) -> None:
    decoded = _decode(recording.sub, recording.version)
    deliveries = decoded.from_broker[2:5]
    assert [type(p) for p in deliveries] == [Publish] * 3
    assert [(p.topic, p.payload, p.qos) for p in deliveries] == [(TOPIC, PAYLOAD, q)
                                                                 for q in QOS_LEVELS]
    # The retained QoS 2 message reached an existing subscription: retain is 0
    # [MQTT-3.3.1-9] in 3.1.1; in 5.0 Retain As Published is off, so also 0 [MQTT-3.3.1-12].
    assert [(p.retain, p.dup) for p in deliveries] == [(False, False)] * 3
    q0, q1, q2 = deliveries
    assert q0.packet_id is None and None not in (q1.packet_id, q2.packet_id)
    assert decoded.from_client[2:] == [Puback(q1.packet_id), Pubrec(q2.packet_id),
                                       Pubcomp(q2.packet_id), Disconnect()]
    assert decoded.from_broker[5:] == [Pubrel(q2.packet_id)]
    # Each acknowledgement was read only after the packet it answers.
    position = {(d, type(p).__name__, getattr(p, "packet_id", None)): i
                for i, (d, p) in enumerate(decoded.merged)}
    c2b, b2c = CLIENT_TO_BROKER, BROKER_TO_CLIENT
    chain = [(b2c, "Publish", q2.packet_id), (c2b, "Pubrec", q2.packet_id),
             (b2c, "Pubrel", q2.packet_id), (c2b, "Pubcomp", q2.packet_id)]
    assert [position[step] for step in chain] == sorted(position[step] for step in chain)
    assert position[(b2c, "Publish", q1.packet_id)] < position[(c2b, "Puback", q1.packet_id)]


def test_v5_connack_carries_the_broker_limits(recording: Recording) -> None:
    if recording.version != 5:
        for _, conn in _connections(recording):
            assert _decode(conn, recording.version).from_broker[0].properties == NO_PROPERTIES
        return
    for label, conn in _connections(recording):
        props = _decode(conn, recording.version).from_broker[0].properties
        assert props.receive_maximum == RECEIVE_MAXIMUM, label
        assert props.topic_alias_maximum == TOPIC_ALIAS_MAXIMUM, label
        assert props.maximum_packet_size == MAXIMUM_PACKET_SIZE, label
        assert props.assigned_client_identifier is None, label  # every client sent an id


# -- re-encoding gives back mosquitto's bytes ------------------------------------------------

def _property_entries(block: bytes) -> list[bytes]:
    """Split a property list (without its length prefix) into one bytes value per property."""
    entries, pos = [], 0
    sizes = {"byte": 1, "u16": 2, "u32": 4}
    while pos < len(block):
        kind = BY_ID[block[pos]].kind  # every id mosquitto sends here is below 0x80
        if kind in sizes:
            end = pos + 1 + sizes[kind]
        elif kind in ("utf8", "binary"):
            end = pos + 3 + int.from_bytes(block[pos + 1:pos + 3], "big")
        else:
            raise AssertionError(f"unexpected property kind {kind} in {block.hex()}")
        entries.append(block[pos:end])
        pos = end
    return entries


def _same_connack_up_to_property_order(original: bytes, ours: bytes) -> bool:
    """True when two MQTT 5 CONNACKs differ only in the order of their properties."""
    # fixed header (remaining length < 128 here), flags, reason code, property length
    head = 5
    if len(original) != len(ours) or original[:head] != ours[:head] or original[4] > 0x7F:
        return False
    return sorted(_property_entries(original[head:])) == sorted(_property_entries(ours[head:]))


@pytest.mark.parametrize("direction", [CLIENT_TO_BROKER, BROKER_TO_CLIENT])
def test_reencoding_gives_mosquittos_bytes(recording: Recording, direction: str) -> None:
    version = recording.version
    for label, conn in _connections(recording):
        frames = split_frames(b"".join(conn.chunks(direction)))
        decoder = Decoder(version=None if direction == CLIENT_TO_BROKER else version)
        packets = _feed_all(decoder, conn.chunks(direction))
        assert len(packets) == len(frames)
        for frame, packet in zip(frames, packets):
            ours = encode(packet, version)
            if ours == frame:
                continue
            legit = (version == 5 and isinstance(packet, Connack)
                     and _same_connack_up_to_property_order(frame, ours))
            assert legit, (f"{label} {direction}: {packet!r}\n mosquitto: {frame.hex()}"
                           f"\n ours:      {ours.hex()}")
            assert _feed_all(Decoder(version=version), [ours]) == [packet]
