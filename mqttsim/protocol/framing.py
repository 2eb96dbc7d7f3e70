"""Framing: where each MQTT packet ends in a byte stream, without decoding it.

TCP delivers a byte stream, not packets. Every MQTT control packet starts with a fixed
header: one byte (packet type and flags), then the Remaining Length, a variable byte integer
of one to four bytes counting the bytes that follow (MQTT 3.1.1 section 2.2.3; 5.0 sections
2.1.4 and 1.5.5). That is all it takes to cut a stream into packets: ``take_packets`` does it
for drivers that move packets without reading them (a relay, a datagram transport), and the
``Decoder`` reads lengths with the same ``remaining_length``.
"""

from __future__ import annotations

from .errors import MalformedPacket
from .packets import MQTT_5

__all__ = ["take_packets", "remaining_length", "PACKET_NAMES"]

PACKET_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
                6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE",
                11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}


def remaining_length(buf, pos: int, size: int, version: int | None) -> tuple[int, int]:
    """(remaining length, fixed header size) of the packet starting at ``pos``, reading no
    further than ``size``; (0, 0) when the length itself has not fully arrived yet.

    Raises ``MalformedPacket`` for a length of more than four bytes (3.1.1 section 2.2.3,
    5.0 section 1.5.5 allow four) and, in MQTT 5, for one not in the fewest bytes
    [MQTT-1.5.5-1] (3.1.1 has no such statement, so it is accepted there, like Mosquitto).
    """
    end = min(size, pos + 5)
    value, shift, index = 0, 0, pos + 1
    while index < end:
        byte = buf[index]
        value |= (byte & 0x7F) << shift
        index += 1
        if not byte & 0x80:
            if index - pos > 2 and byte == 0 and version == MQTT_5:
                raise MalformedPacket("remaining length not encoded in the fewest bytes",
                                      "MQTT-1.5.5-1")
            return value, index - pos
        shift += 7
        if shift >= 28:
            raise MalformedPacket("remaining length is longer than 4 bytes (MQTT 3.1.1 "
                                  "section 2.2.3, 5.0 section 1.5.5)")
    return 0, 0


def take_packets(buffer: bytearray, version: int | None = None) -> list[bytes]:
    """Take the complete packets off the front of ``buffer`` (a stream's unread bytes) and
    return them, each whole (fixed header included); an incomplete packet stays in
    ``buffer`` for the next call.

    ``version`` (3, 4 or 5; None: not known yet) only decides whether a remaining length in
    more bytes than needed is refused (MQTT 5 only). A bad remaining length raises
    ``MalformedPacket`` (the stream cannot be cut any further: close the connection,
    [MQTT-4.8.0-1] in 3.1.1, [MQTT-4.13.1-1] in 5.0); the whole packets before it are taken off
    ``buffer`` all the same and ride on the error as ``error.decoded``.
    """
    packets: list[bytes] = []
    pos, size = 0, len(buffer)
    try:
        while size - pos >= 2:
            length, head = remaining_length(buffer, pos, size, version)
            if head == 0 or size - pos < head + length:
                break
            packets.append(bytes(buffer[pos:pos + head + length]))
            pos += head + length
    except MalformedPacket as error:
        error.decoded = packets
        raise
    finally:
        del buffer[:pos]
    return packets
