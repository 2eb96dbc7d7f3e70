"""The decoder as a stream: TCP hands it arbitrary slices of the byte stream.

Every vector is fed whole, byte by byte, followed by part of the next packet, many at once,
and split at every position (h11's test_io idea). Also: ``max_packet_size`` refuses an
oversized packet as soon as its fixed header is known, and an error carries the packets
completed before it in the same ``feed`` call.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.errors import MalformedPacket, MQTTError, PacketTooLarge
from mqttsim.protocol.packets import Connect, Pingreq, Pingresp, Puback, Publish, Pubrel

from vectors import VECTORS, case_id, cases, h

ALL_CASES = cases(VECTORS)
SMALL_CASES = [(v, vec) for v, vec in ALL_CASES if len(vec.data) <= 300]
BIG_CASES = [(v, vec) for v, vec in ALL_CASES if len(vec.data) > 300]


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_whole(case):
    version, vec = case
    decoder = Decoder(version)
    assert decoder.feed(vec.data) == [vec.packet]
    assert decoder.feed(b"") == []


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_one_byte_at_a_time(case):
    version, vec = case
    decoder = Decoder(version)
    for i in range(len(vec.data) - 1):
        assert decoder.feed(vec.data[i:i + 1]) == [], f"packet returned after byte {i}"
    assert decoder.feed(vec.data[-1:]) == [vec.packet]
    assert decoder.feed(b"") == []


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_trailing_bytes_of_next_packet_stay_buffered(case):
    version, vec = case
    nxt = vec.data + h("d0 00")  # the same packet again, then a PINGRESP
    n = len(vec.data)
    for cut in sorted({1, min(2, n - 1), n - 1}):  # into the next fixed header / body
        decoder = Decoder(version)
        assert decoder.feed(vec.data + nxt[:cut]) == [vec.packet], cut
        assert decoder.feed(nxt[cut:]) == [vec.packet, Pingresp()], cut


@pytest.mark.parametrize("version", [3, 4, 5])
def test_many_packets_in_one_chunk(version):
    vecs = [vec for vec in VECTORS if version in vec.versions]
    decoder = Decoder(version)
    assert decoder.feed(b"".join(v.data for v in vecs)) == [v.packet for v in vecs]


@pytest.mark.parametrize("version", [3, 4, 5])
def test_many_packets_in_odd_chunks(version):
    """The whole stream cut into 7-byte chunks: packets cross chunk boundaries everywhere."""
    vecs = [vec for vec in VECTORS if version in vec.versions]
    stream = b"".join(v.data for v in vecs)
    decoder = Decoder(version)
    got = []
    for i in range(0, len(stream), 7):
        got.extend(decoder.feed(stream[i:i + 7]))
    assert got == [v.packet for v in vecs]


@pytest.mark.parametrize("case", SMALL_CASES, ids=case_id)
def test_split_at_every_position(case):
    version, vec = case
    for cut in range(len(vec.data) + 1):
        decoder = Decoder(version)
        first = decoder.feed(vec.data[:cut])
        second = decoder.feed(vec.data[cut:])
        if cut == len(vec.data):
            assert (first, second) == ([vec.packet], []), cut
        else:
            assert (first, second) == ([], [vec.packet]), cut


@pytest.mark.parametrize("case", BIG_CASES, ids=case_id)
def test_split_big_packets_around_header_and_body(case):
    version, vec = case
    n = len(vec.data)
    for cut in [*range(0, 12), n // 2, n - 2, n - 1]:
        decoder = Decoder(version)
        assert decoder.feed(vec.data[:cut]) + decoder.feed(vec.data[cut:]) == [vec.packet]


def test_feed_accepts_bytearray_and_memoryview():
    data = next(v for v in VECTORS if v.name == "publish_v5_all_properties")
    assert Decoder(5).feed(bytearray(data.data)) == [data.packet]
    assert Decoder(5).feed(memoryview(data.data)) == [data.packet]


def test_feeding_does_not_keep_a_reference_to_a_mutable_chunk():
    """A driver reuses its receive buffer: bytes already fed must be copied if kept."""
    data = next(v for v in VECTORS if v.name == "publish_old_qos1").data
    chunk = bytearray(data[:5])
    decoder = Decoder(4)
    assert decoder.feed(chunk) == []
    chunk[:] = b"\xff" * 5  # the driver overwrites its buffer
    assert decoder.feed(data[5:]) == [Publish(topic="a/b", payload=b"hi", qos=1, packet_id=10)]


# --------------------------------------------------------------------------------------
# max_packet_size: total packet size, fixed header included (5.0 section 3.1.2.11.4)
# --------------------------------------------------------------------------------------

def _publish_of_total_size(version: int, total: int) -> bytes:
    """A QoS 0 PUBLISH to "t" exactly ``total`` bytes long (for totals of 132..16000)."""
    header_len = 3 if total - 3 < 16384 else 4  # type byte + 2 or 3 length bytes
    body = total - header_len
    fixed = 3 + (1 if version == 5 else 0)  # topic "t" (+ property length in 5.0)
    data = encode(Publish(topic="t", payload=b"p" * (body - fixed)), version)
    assert len(data) == total
    return data


@pytest.mark.parametrize("version", [3, 4, 5])
def test_max_packet_size_exactly_at_limit_is_accepted(version):
    data = _publish_of_total_size(version, 1000)
    assert Decoder(version, max_packet_size=1000).feed(data) == \
        Decoder(version).feed(data)


@pytest.mark.parametrize("version", [3, 4, 5])
def test_max_packet_size_one_over_raises_before_body_arrives(version):
    data = _publish_of_total_size(version, 1001)
    decoder = Decoder(version, max_packet_size=1000)
    assert decoder.feed(data[:1]) == []  # only the type byte: size not known yet
    with pytest.raises(PacketTooLarge) as info:
        decoder.feed(data[1:3])  # the complete fixed header: 0x30, 2 length bytes
    assert info.value.reason_code == 0x95


def test_max_packet_size_refuses_huge_declared_length_without_buffering():
    """A peer announcing a 256 MB packet is refused from its 5 header bytes alone."""
    decoder = Decoder(5, max_packet_size=1 << 20)
    with pytest.raises(PacketTooLarge):
        decoder.feed(h("30 ff ff ff 7f   # PUBLISH, remaining length 268,435,455"))


def test_max_packet_size_counts_the_fixed_header():
    """Remaining length 998 + 3 header bytes = 1001 > 1000, though 998 alone would fit."""
    data = _publish_of_total_size(4, 1001)
    with pytest.raises(PacketTooLarge):
        Decoder(4, max_packet_size=1000).feed(data)
    assert len(Decoder(4, max_packet_size=1001).feed(data)) == 1


def test_max_packet_size_server_side():
    connect = encode(Connect(client_id="c"), 5)
    decoder = Decoder(max_packet_size=200)
    with pytest.raises(PacketTooLarge) as info:
        decoder.feed(connect + _publish_of_total_size(5, 201)[:3])
    assert [type(p).__name__ for p in info.value.decoded] == ["Connect"]


def test_packet_too_large_is_a_malformed_packet_subclass():
    """Drivers that only catch MQTTError/MalformedPacket still close the connection."""
    assert issubclass(PacketTooLarge, MalformedPacket)


# --------------------------------------------------------------------------------------
# Errors carry the packets completed before them in the same feed()
# --------------------------------------------------------------------------------------

def test_error_carries_packets_decoded_earlier_in_the_same_feed():
    decoder = Decoder(4)
    bad = h("c1 00   # PINGREQ with a reserved flag bit set")
    with pytest.raises(MalformedPacket) as info:
        decoder.feed(h("c0 00") + h("40 02 00 07") + bad + h("d0 00"))
    assert info.value.decoded == [Pingreq(), Puback(packet_id=7)]


def test_error_decoded_holds_only_this_feeds_packets():
    decoder = Decoder(4)
    assert decoder.feed(h("c0 00 40 02")) == [Pingreq()]
    with pytest.raises(MQTTError) as info:
        decoder.feed(h("00 07   # rest of the PUBACK") + h("36 00   # PUBLISH with QoS 3"))
    assert info.value.decoded == [Puback(packet_id=7)]


def test_error_on_first_packet_has_empty_decoded():
    with pytest.raises(MQTTError) as info:
        Decoder(5).feed(h("00 00   # packet type 0 is reserved") + h("c0 00"))
    assert info.value.decoded == []


def test_error_detected_when_bad_packet_completes_in_a_later_feed():
    decoder = Decoder(5)
    assert decoder.feed(h("c0 00  62 02 00")) == [Pingreq()]
    with pytest.raises(MQTTError) as info:
        decoder.feed(h("01   # completes the valid PUBREL id 1")
                     + h("60 02 00 01   # PUBREL with flags 0000: malformed"))
    assert info.value.decoded == [Pubrel(packet_id=1)]


def test_known_topic_names_are_each_decoders_own_and_bounded():
    """A topic name checked on one connection is not trusted on another (no process-wide
    cache), and a stream of ever new topics does not grow the decoder without bound."""
    from mqttsim.protocol.readers import KNOWN_TOPICS_LIMIT

    first, second = Decoder(4), Decoder(4)
    [got] = first.feed(encode(Publish("a/b", b"1"), 4))
    assert got.topic == "a/b" and second._known_topics == {}
    topics = [f"t/{i}" for i in range(KNOWN_TOPICS_LIMIT + 5)]
    stream = b"".join(encode(Publish(t, b""), 4) for t in topics * 2)
    assert [p.topic for p in first.feed(stream)] == topics * 2
    assert 0 < len(first._known_topics) <= KNOWN_TOPICS_LIMIT
