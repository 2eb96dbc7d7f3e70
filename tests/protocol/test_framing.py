"""Framing: cutting a byte stream into whole MQTT packets by their fixed header alone.

The remaining-length vectors are the spec's own table (MQTT 3.1.1 section 2.2.3, Table 2.4;
the same values in 5.0 section 1.5.5), not computed by the code under test.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import MalformedPacket, Pingreq, Publish, encode, take_packets
from mqttsim.protocol.framing import remaining_length

SPEC_TABLE = [  # (value, its bytes) at each boundary of Table 2.4
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"), (2_097_151, b"\xff\xff\x7f"), (2_097_152, b"\x80\x80\x80\x01"),
    (268_435_455, b"\xff\xff\xff\x7f"),
]


@pytest.mark.parametrize("value, encoded", SPEC_TABLE)
def test_remaining_length_reads_the_spec_table(value, encoded):
    header = b"\x30" + encoded
    assert remaining_length(header, 0, len(header), 5) == (value, 1 + len(encoded))
    for cut in range(1, len(header)):  # the length itself not all here yet
        assert remaining_length(header[:cut], 0, cut, 5) == (0, 0)


def test_take_packets_takes_whole_packets_and_leaves_the_rest_for_later():
    first = encode(Publish("sensor", b"12"), 4)
    second = encode(Publish("x" * 200, b"y" * 100), 4)  # a two-byte remaining length
    ping = encode(Pingreq(), 4)
    assert (first[1], second[1:3]) == (10, b"\xae\x02")  # 10 and 2 + 200 + 100 follow
    stream = first + second + ping
    for chunk in (1, 2, 3, 50, len(stream)):
        buffer, got = bytearray(), []
        for offset in range(0, len(stream), chunk):
            buffer += stream[offset:offset + chunk]
            got += take_packets(buffer)
        assert got == [first, second, ping] and buffer == bytearray()
    buffer = bytearray(first + second[:50])
    assert take_packets(buffer) == [first] and bytes(buffer) == second[:50]


def test_a_remaining_length_of_five_bytes_is_malformed_and_the_packets_before_it_are_kept():
    ping = encode(Pingreq(), 4)
    buffer = bytearray(ping + b"\x30\xff\xff\xff\xff\x01" + b"\x00" * 8)
    with pytest.raises(MalformedPacket, match="longer than 4 bytes.*2.2.3") as info:
        take_packets(buffer)
    assert info.value.decoded == [ping]
    assert bytes(buffer).startswith(b"\x30\xff")  # taken off up to the bad packet


def test_v5_MQTT_1_5_5_1_remaining_length_in_more_bytes_than_needed_is_malformed():
    padded = b"\xc0\x80\x00"  # PINGREQ, remaining length 0 written in two bytes
    with pytest.raises(MalformedPacket) as info:
        take_packets(bytearray(padded), version=5)
    assert info.value.rule == "MQTT-1.5.5-1" and "[MQTT-1.5.5-1]" in str(info.value)
    assert take_packets(bytearray(padded), version=4) == [padded]  # 3.1.1 has no such rule
