"""IPv4 + TCP headers as bytes: what the pcap export writes around a simulated segment and
what the kernel backend's middlebox forges (an RST) onto a real link.

20 bytes of IPv4 header (RFC 791 3.1: no options, Don't Fragment, TTL 64) and 20 of TCP
(RFC 9293 3.1: no options), both checksums set, the TCP one over the pseudo-header."""

from __future__ import annotations

import struct

PROTO_TCP = 6


def internet_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones' complement sum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_tcp_packet(src: bytes, dst: bytes, src_port: int, dst_port: int, seq: int,
                    ack: int, flags: int, window: int = 0, payload: bytes = b"",
                    ip_id: int = 0) -> bytes:
    """One IPv4 packet holding one TCP segment; ``src``/``dst`` are 4-byte addresses, ``seq``
    and ``ack`` already the 32-bit numbers on the wire, ``flags`` TCP's flag bits."""
    tcp = struct.pack("!HHIIBBHHH", src_port, dst_port, seq, ack, 5 << 4, flags, window, 0,
                      0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, PROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", internet_checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id, 0x4000, 64, PROTO_TCP, 0,
                     src, dst)
    return ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:] + tcp
