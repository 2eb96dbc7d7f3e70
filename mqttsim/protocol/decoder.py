"""Incremental packet decoder: ``Decoder(version).feed(chunk) -> [packet, ...]``.

TCP delivers a byte stream, not packets: a chunk may hold half a packet or ten of them. The
decoder buffers what it has not yet used and returns every packet completed so far, so the
simulator and the socket server can hand it whatever arrived. A server-side decoder is made
with ``version=None`` and learns the version from the CONNECT packet, which must come first
[MQTT-3.1.0-1]. Where a packet ends is framing.py's rule; what is in it, readers.py's. Every
check raises one of the codec's own errors (``errors.MQTTError``).
"""

from __future__ import annotations

from ._rules import rule
from .errors import (MalformedPacket, MQTTError, PacketTooLarge, ProtocolError,
                     UnsupportedProtocolVersion)
from .framing import PACKET_NAMES, remaining_length
from .packets import MQTT_5, VERSIONS
from .readers import PLAIN_ACKS, READERS, check_flags, read_connect, read_publish


class Decoder:
    """Turns a byte stream into packets for one connection."""

    __slots__ = ("version", "max_packet_size", "max_user_properties", "sizes", "_parts",
                 "_have", "_need", "_error", "_known_topics")

    def __init__(self, version: int | None = None, max_packet_size: int | None = None,
                 max_user_properties: int | None = None):
        if version is not None and version not in VERSIONS:
            raise UnsupportedProtocolVersion(f"protocol level {version!r} is not 3, 4 or 5",
                                             protocol_level=version)
        self.version = version
        self.max_packet_size = max_packet_size
        # User Properties one packet may carry (None: no limit). Decoding stops at the first
        # one past the limit, so the work a packet costs is bounded by it, not by its size.
        self.max_user_properties = max_user_properties
        # Bytes not yet decoded, kept as received: joined only once they can complete a packet,
        # so a big packet trickling in byte by byte costs linear, not quadratic, time.
        self._parts: list[bytes] = []
        self._have = 0  # bytes in _parts
        self._need = 0  # size of the packet they start, when its header is complete
        self._error: MQTTError | None = None
        #: wire size of each packet the last ``feed`` returned (engines report it in events)
        self.sizes: list[int] = []
        # PUBLISH topic names this connection has sent and that passed the checks, by their
        # bytes: one dict lookup instead of decoding and checking the name again.
        self._known_topics: dict[bytes, str] = {}

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet form a whole packet."""
        return self._have

    def feed(self, data) -> list:
        """Add ``data`` to the stream; return the packets it completed, in order."""
        if self._error is not None:
            err = self._error
            raise MalformedPacket(f"stream already broken by an earlier error: {err}", err.rule,
                                  reason_code=err.reason_code)
        held = self._parts
        if held:
            self._have += len(data)
            held.append(bytes(data))
            if self._have < self._need:
                self.sizes = []
                return []
            buf = b"".join(held)
        else:
            buf = data if data.__class__ is bytes else bytes(data)
        self._need = 0
        out: list = []
        self.sizes = sizes = []
        pos = 0
        size = len(buf)
        version = self.version
        known_topics = self._known_topics
        user_limit = self.max_user_properties
        quick = self._quick_length()
        try:
            while size - pos >= 2:
                # PUBLISH and plain PUBACK/PUBREC/PUBREL/PUBCOMP with a one-byte remaining
                # length, the bulk of any exchange, are recognised here without a call.
                first = buf[pos]
                length = buf[pos + 1]
                end = pos + 2 + length
                if length <= quick and end <= size:
                    if first & 0xF0 == 0x30:
                        out.append(read_publish(first, buf, pos + 2, end, version,
                                                known_topics, user_limit))
                        sizes.append(length + 2)
                        pos = end
                        continue
                    if length == 2 and first in PLAIN_ACKS \
                            and (packet_id := (buf[pos + 2] << 8) | buf[pos + 3]):
                        out.append(PLAIN_ACKS[first](packet_id))
                        sizes.append(4)
                        pos = end
                        continue
                packet, end = self._decode_next(buf, pos, size)  # anything else
                if packet is None:
                    break  # the rest of the packet has not arrived yet
                out.append(packet)
                sizes.append(end - pos)
                pos = end
                version = self.version  # a CONNECT may just have set it
                quick = self._quick_length()
        except MQTTError as exc:
            exc.decoded = out
            self._error = exc
            self._parts, self._have = [], 0
            raise
        if pos < size:
            rest = buf[pos:] if pos else buf
            self._parts, self._have = [rest], len(rest)  # _need stays 0 if the header is short
        elif held:  # (else nothing was held and nothing is: _parts is empty, _need 0)
            self._parts, self._have = [], 0
        return out

    def _quick_length(self) -> int:
        """Largest remaining length ``feed`` may decode inline: one that fits in one byte,
        within the size limit, once the version is known (-1: none)."""
        if self.version is None:
            return -1
        limit = self.max_packet_size
        return 127 if limit is None or limit > 129 else limit - 2

    def _decode_next(self, buf, pos: int, size: int) -> tuple:
        """The packet starting at ``pos`` and where it ends, with every check; (None, 0) when
        it is not complete yet."""
        first = buf[pos]
        version = self.version
        if first < 0x10 or (first >= 0xF0 and version is not None and version != MQTT_5):
            raise MalformedPacket(f"unknown control packet type {first >> 4} "
                                  f"(first byte 0x{first:02X})")
        length = buf[pos + 1]
        if length < 0x80:
            head = 2
        else:
            length, head = remaining_length(buf, pos, size, version)
            if head == 0:
                return None, 0  # the length itself is not complete yet
        total = head + length
        limit = self.max_packet_size
        if limit is not None and total > limit:
            raise PacketTooLarge(f"{PACKET_NAMES[first >> 4]} of {total} bytes exceeds the "
                                 f"maximum packet size {limit}")
        if size - pos < total:
            self._need = total
            return None, 0
        end = pos + total
        if 0x30 <= first < 0x40 and version is not None:
            return read_publish(first, buf, pos + head, end, version, self._known_topics,
                                self.max_user_properties), end
        if total == 4 and first in PLAIN_ACKS and version is not None \
                and (buf[pos + 2] or buf[pos + 3]):
            return PLAIN_ACKS[first]((buf[pos + 2] << 8) | buf[pos + 3]), end
        return self._decode_other(first, buf, pos + head, end), end

    def _decode_other(self, first: int, buf, start: int, end: int):
        ptype = first >> 4
        version = self.version
        if version is None and ptype != 1:
            raise ProtocolError(f"the first packet on a connection must be CONNECT, not "
                                f"{PACKET_NAMES[ptype]}", rule("first_packet_connect", None))
        check_flags(first, version)
        if ptype == 1:
            packet, level = read_connect(buf, start, end, version, self.max_user_properties)
            if self.version is None:
                self.version = level
            return packet
        return READERS[ptype](buf, start, end, version, self.max_user_properties)
