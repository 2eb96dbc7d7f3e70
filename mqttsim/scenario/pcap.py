"""Write simulated TCP traffic as a classic libpcap file that Wireshark/tshark can open.

The simulator moves real MQTT bytes but no IP or TCP headers, so this module invents them:
addresses from node names, per-connection initial sequence numbers, checksums that verify.
Everything is derived from the input alone (no clock, no salted ``hash()``), so the same run
gives a byte-identical file, which makes captures diffable and testable.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..netmodel.ipv4 import ipv4_tcp_packet

__all__ = ["CapturedSegment", "write_pcap", "read_pcap", "assign_addresses",
           "initial_sequence_number", "BROKER_NAME", "LINKTYPE_RAW"]

BROKER_NAME = "broker"
LINKTYPE_RAW = 101  # packets start at the IPv4 header: no link layer to invent
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW)
_MAX_PAYLOAD = 65535 - 20 - 20  # IPv4 total length is 16 bits
_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04}
_PSH, _ACK = 0x08, 0x10


@dataclass(frozen=True, slots=True)
class CapturedSegment:
    """One TCP segment as the simulator saw it; sequence numbers are stream offsets.

    ``seq`` is the offset of the first payload byte in the sender's stream (0 = the first
    byte after the SYN); a SYN itself uses 0 and a FIN uses the offset just past the last data
    byte (the FIN then occupies that offset, so the peer acks it with ``length + 1``). ``ack``
    is the cumulative offset acknowledged in the peer's stream, None for no ACK flag.
    ``flags`` holds any of "S", "F", "R"; ACK and PSH follow from ``ack`` and ``payload``.
    """

    t: float
    src: str
    dst: str
    src_port: int
    dst_port: int
    seq: int
    ack: int | None
    payload: bytes = b""
    flags: str = ""


def initial_sequence_number(src: str, src_port: int, dst: str, dst_port: int) -> int:
    """A stable 32-bit ISN for one direction of a connection (sha256, not the salted hash())."""
    key = f"{src}:{src_port}>{dst}:{dst_port}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big")


def assign_addresses(names: Iterable[str],
                     given: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map node names to IPv4 addresses: ``given`` first, then "broker" -> 10.0.0.1 and the
    rest 10.0.x.y in order of first appearance, skipping any address already taken."""
    result: dict[str, str] = {}
    for name, addr in (given or {}).items():
        try:
            result[name] = str(ipaddress.IPv4Address(addr))
        except ValueError:
            raise ValueError(f"address {addr!r} for node {name!r} is not an IPv4 address") \
                from None
    taken = set(result.values())
    host = 1
    for name in names:
        if name in result:
            continue
        if name == BROKER_NAME and "10.0.0.1" not in taken:
            addr = "10.0.0.1"
        else:
            while True:
                host += 1
                addr = f"10.0.{host >> 8 & 0xFF}.{host & 0xFF}"
                if host >> 16:
                    raise ValueError("too many nodes to allocate in 10.0.0.0/16")
                if host & 0xFF not in (0, 255) and addr not in taken and addr != "10.0.0.1":
                    break
        result[name] = addr
        taken.add(addr)
    return result


def _check(seg: CapturedSegment) -> None:
    for field in ("src_port", "dst_port"):
        port = getattr(seg, field)
        if not isinstance(port, int) or not 0 <= port <= 0xFFFF:
            raise ValueError(f"{field} {port!r} of segment at t={seg.t} is not a TCP port")
    bad = set(seg.flags) - set(_FLAG_BITS)
    if bad:
        raise ValueError(f"flags {seg.flags!r} of segment at t={seg.t} contain "
                         f"{''.join(sorted(bad))!r}; only 'S', 'F' and 'R' are allowed")
    if len(seg.payload) > _MAX_PAYLOAD:
        raise ValueError(f"payload of {len(seg.payload)} bytes at t={seg.t} does not fit in "
                         f"one IPv4 packet (max {_MAX_PAYLOAD})")
    if not math.isfinite(seg.t):
        raise ValueError(f"segment time {seg.t!r} is not a finite number")
    if seg.seq < 0 or (seg.ack is not None and seg.ack < 0):
        raise ValueError(f"segment at t={seg.t} has a negative seq or ack offset")


def _packet(seg: CapturedSegment, src_ip: bytes, dst_ip: bytes, ip_id: int) -> bytes:
    """IPv4 + TCP headers with correct lengths and checksums around ``seg.payload``."""
    isn = initial_sequence_number(seg.src, seg.src_port, seg.dst, seg.dst_port)
    seq = (isn + seg.seq + (0 if "S" in seg.flags else 1)) & 0xFFFFFFFF
    flags = sum(_FLAG_BITS[f] for f in set(seg.flags))
    ack = 0
    if seg.ack is not None:
        flags |= _ACK
        peer_isn = initial_sequence_number(seg.dst, seg.dst_port, seg.src, seg.src_port)
        ack = (peer_isn + 1 + seg.ack) & 0xFFFFFFFF
    if seg.payload:
        flags |= _PSH
    return ipv4_tcp_packet(src_ip, dst_ip, seg.src_port, seg.dst_port, seq, ack, flags,
                           window=65535, payload=seg.payload, ip_id=ip_id)


def write_pcap(path: str | os.PathLike[str], segments: Iterable[CapturedSegment],
               addresses: Mapping[str, str] | None = None,
               start_time: float = 1_700_000_000.0) -> int:
    """Write ``segments`` to ``path`` as a pcap (raw IPv4, microsecond timestamps).

    Packets are written in time order (stable, so equal times keep their input order), each
    stamped ``start_time + t``. Returns the number of packets written.
    """
    segs = sorted(segments, key=lambda s: s.t)
    for seg in segs:
        _check(seg)
    names = [n for seg in segs for n in (seg.src, seg.dst)]
    addrs = {name: ipaddress.IPv4Address(a).packed
             for name, a in assign_addresses(names, addresses).items()}
    base_us = round(start_time * 1_000_000)
    stamps = [divmod(base_us + round(seg.t * 1_000_000), 1_000_000) for seg in segs]
    for seg, (sec, _) in zip(segs, stamps):
        if not 0 <= sec <= 0xFFFFFFFF:
            raise ValueError(f"timestamp start_time + t = {start_time} + {seg.t} does not "
                             "fit a classic pcap record")
    ip_ids: dict[str, int] = {}
    with open(path, "wb") as out:
        out.write(_PCAP_HEADER)
        for seg, (sec, usec) in zip(segs, stamps):
            ip_id = ip_ids[seg.src] = (ip_ids.get(seg.src, 0) + 1) & 0xFFFF
            frame = _packet(seg, addrs[seg.src], addrs[seg.dst], ip_id)
            out.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    return len(segs)


# --- Reading a capture back ------------------------------------------------------------------

_LINK_HEADER = {LINKTYPE_RAW: 0, 1: 14, 113: 16}  # raw IPv4, Ethernet, Linux cooked (SLL)
_MAGICS = {0xA1B2C3D4: 1e-6, 0xA1B23C4D: 1e-9}  # microsecond and nanosecond pcaps
_FLAG_LETTERS = (("S", 0x02), ("F", 0x01), ("R", 0x04), ("P", _PSH), ("A", _ACK))
READ_COLUMNS = ("t", "src", "dst", "src_port", "dst_port", "flags", "seq", "ack", "length",
                "payload")


def read_pcap(path: str | os.PathLike[str]) -> Any:
    """The TCP/IPv4 packets of a classic pcap file as a DataFrame, one row per packet.

    Columns: ``t`` (seconds since the first packet), ``src``/``dst`` (IPv4 addresses),
    ``src_port``/``dst_port``, ``flags`` (letters of S, F, R, P, A, as tshark's summary
    names them), ``seq``/``ack`` (raw 32-bit numbers), ``length`` (TCP payload bytes:
    tshark's ``tcp.len``) and ``payload`` (those bytes). Reads what ``Results.to_pcap``
    writes and captures of raw IP, Ethernet or Linux cooked frames (tcpdump -i any); other
    packets (ARP, IPv6, UDP) are skipped. Headers are read as RFC 791 and RFC 9293 lay them
    out; the file format is libpcap's (both byte orders, micro- or nanosecond stamps).
    """
    import pandas as pd
    data = open(path, "rb").read()
    if len(data) < 24:
        raise ValueError(f"{path}: not a pcap file (only {len(data)} bytes)")
    for order in "<>":
        magic = struct.unpack(order + "I", data[:4])[0]
        if magic in _MAGICS:
            unit = _MAGICS[magic]
            break
    else:
        raise ValueError(f"{path}: not a classic pcap file (magic {data[:4].hex()}); "
                         "pcapng files can be converted with: editcap -F pcap IN OUT")
    linktype = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF
    if linktype not in _LINK_HEADER:
        raise ValueError(f"{path}: link type {linktype} is not raw IP, Ethernet or Linux "
                         "cooked capture")
    rows, offset, first = [], 24, None
    while offset + 16 <= len(data):
        sec, frac, caught, _ = struct.unpack(order + "IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + caught]
        offset += 16 + caught
        stamp = sec + frac * unit
        first = stamp if first is None else first
        packet = _tcp_row(frame[_LINK_HEADER[linktype]:], frame, linktype)
        if packet is not None:
            rows.append((round(stamp - first, 9), *packet))
    return pd.DataFrame(rows, columns=list(READ_COLUMNS))


def _tcp_row(ip: bytes, frame: bytes, linktype: int) -> tuple | None:
    """(src, dst, ports, flags, seq, ack, length, payload) of an IPv4/TCP packet, else None."""
    if linktype == 1 and frame[12:14] != b"\x08\x00":  # Ethernet: IPv4 only
        return None
    if linktype == 113 and frame[14:16] != b"\x08\x00":
        return None
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
        return None
    ihl, total = (ip[0] & 0x0F) * 4, struct.unpack("!H", ip[2:4])[0]
    tcp = ip[ihl:total]
    if len(tcp) < 20:
        return None
    src_port, dst_port, seq, ack, offset_byte, flag_bits = struct.unpack("!HHIIBB", tcp[:14])
    payload = tcp[(offset_byte >> 4) * 4:]
    flags = "".join(letter for letter, bit in _FLAG_LETTERS if flag_bits & bit)
    return (str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20])),
            src_port, dst_port, flags, seq, ack, len(payload), bytes(payload))
