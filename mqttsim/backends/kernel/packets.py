"""Reading what the kernels sent: IPv4/TCP headers (RFC 791, RFC 9293), TCP_INFO, pcap.

The emulator logs every packet as the sending kernel built it. Here those bytes become the
``segments`` table's rows -- kind from the flags, sequence and acknowledgement numbers
relative to each direction's SYN (as Wireshark shows them), retransmissions as segments
whose data ends at or before data already seen -- and a pcap file of the real packets.
``TCP_INFO`` (``struct tcp_info``, linux/tcp.h) is read from the client sockets during the
run: the kernel's own retransmission count, RTT, RTO and congestion window.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ...netmodel.ipv4 import PROTO_TCP, ipv4_tcp_packet

LINKTYPE_RAW = 101  # the packet starts at the IPv4 header
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
MOD = 1 << 32


@dataclass(frozen=True, slots=True)
class TcpHeader:
    src: bytes
    dst: bytes
    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    payload: int  # payload bytes
    size: int  # the whole IP packet


def parse(packet: bytes) -> TcpHeader | None:
    """The IPv4/TCP header fields of ``packet``, or None when it is not IPv4/TCP."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != PROTO_TCP:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet, 2)[0]
    if len(packet) < ihl + 20:
        return None
    src_port, dst_port, seq, ack, offset_flags = struct.unpack_from("!HHIIH", packet, ihl)
    data_offset = (offset_flags >> 12) * 4
    return TcpHeader(packet[12:16], packet[16:20], src_port, dst_port, seq, ack,
                     offset_flags & 0x3F, total - ihl - data_offset, total)


def reset_packet(src: bytes, dst: bytes, src_port: int, dst_port: int, seq: int,
                 ack: int | None = None) -> bytes:
    """An IPv4 packet holding a bare TCP RST (with ACK when ``ack`` is given), as a
    middlebox forges one in the name of ``src``: 20 bytes of IP header (RFC 791), 20 of TCP
    (RFC 9293 3.1), both checksums set (the TCP one over the pseudo-header)."""
    flags = RST | (ACK if ack is not None else 0)
    return ipv4_tcp_packet(src, dst, src_port, dst_port, seq % MOD, (ack or 0) % MOD, flags)


def resets_for(header: TcpHeader) -> tuple[bytes, bytes]:
    """The two RSTs a middlebox answers a segment of a forgotten flow with, each with the
    sequence number its receiver expects (RFC 9293 3.10.7.1: a RST is accepted when its
    sequence number is RCV.NXT; RFC 5961 3.2): (to the segment's sender, in the name of its
    peer: seq = the segment's ACK; to its receiver, in the name of the sender: seq = the
    segment's own)."""
    back = (reset_packet(header.dst, header.src, header.dst_port, header.src_port, header.ack)
            if header.flags & ACK else
            reset_packet(header.dst, header.src, header.dst_port, header.src_port, 0,
                         header.seq + header.payload + (1 if header.flags & (SYN | FIN) else 0)))
    forward = reset_packet(header.src, header.dst, header.src_port, header.dst_port, header.seq)
    return back, forward


def kind_of(flags: int, payload: int) -> str:
    """The segments table's kind: syn, synack, rst, fin, data or ack."""
    if flags & SYN:
        return "synack" if flags & ACK else "syn"
    if flags & RST:
        return "rst"
    if flags & FIN:
        return "fin"
    return "data" if payload else "ack"


class SegmentReader:
    """Turns logged packets, in the order they were sent, into segments-table fields."""

    def __init__(self) -> None:
        self._isn: dict[tuple, int] = {}  # (src, sport, dst, dport) -> the SYN's seq
        self._highest: dict[tuple, int] = {}  # highest relative end of data seen

    def read(self, header: TcpHeader) -> tuple[str, int, int | None, bool]:
        """(kind, relative seq, relative ack or None, retransmission?)."""
        key = (header.src, header.src_port, header.dst, header.dst_port)
        back = (header.dst, header.dst_port, header.src, header.src_port)
        flags = header.flags
        if flags & SYN and key not in self._isn:
            self._isn[key] = header.seq
        isn = self._isn.get(key, (header.seq - 1) % MOD)
        relative = 0 if flags & SYN else (header.seq - isn - 1) % MOD
        ack = None
        if flags & ACK and back in self._isn:
            ack = (header.ack - self._isn[back] - 1) % MOD
        if flags & SYN:
            retransmission = key in self._highest  # a second SYN: the first got no answer
            self._highest[key] = 0
        else:
            end = relative + header.payload + (1 if flags & FIN else 0)
            highest = self._highest.get(key, 0)
            retransmission = bool(header.payload or flags & FIN) and end <= highest
            if end > highest:
                self._highest[key] = end
        return kind_of(flags, header.payload), relative, ack, retransmission


def record_segments(packets: Iterable[tuple], names: list[str], addresses: dict[bytes, str],
                    conn_of: Callable[[str, int], int | None], recorder: Any) -> int:
    """Feed the emulator's packet rows (``emulator.PACKET_FIELDS``) to ``recorder`` as
    segments with their fates; returns how many were TCP. ``conn_of(address, port)`` names
    the connection of a client-side socket."""
    reader = SegmentReader()
    count = 0
    for t, src, dst, size, t_arrival, dropped, hop, data in packets:
        header = parse(data)
        if header is None:
            continue
        kind, seq, ack, retransmission = reader.read(header)
        conn = conn_of(addresses.get(header.src, ""), header.src_port)
        if conn is None:
            conn = conn_of(addresses.get(header.dst, ""), header.dst_port)
        payload = data[len(data) - header.payload:] if header.payload and len(data) == size \
            else b"\0" * header.payload
        index = recorder.segment(t, -1 if conn is None else conn, names[src], names[dst], kind,
                                 seq, ack, payload, retransmission, size)
        if t_arrival is not None:
            recorder.segment_arrived(index, t_arrival)
        elif dropped is not None:
            recorder.losses[index] = (dropped, hop)
        count += 1
    return count


def write_raw_pcap(path: str | os.PathLike, packets: Iterable[tuple[float, bytes]]) -> int:
    """A classic libpcap file of raw IPv4 packets (LINKTYPE_RAW), each at its time."""
    count = 0
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW))
        for t, data in packets:
            seconds = int(t)
            micros = min(999_999, int(round((t - seconds) * 1e6)))
            out.write(struct.pack("<IIII", seconds, micros, len(data), len(data)) + data)
            count += 1
    return count


# -- TCP_INFO ---------------------------------------------------------------------------------

# struct tcp_info (linux/tcp.h), up to tcpi_total_retrans: 8 one-byte fields, then u32s.
_TCP_INFO = struct.Struct("=8B24I")
TCP_INFO_COLUMNS = ("t", "conn", "client", "side", "state", "ca_state", "retransmits",
                    "total_retrans", "lost", "rtt", "rttvar", "rto", "snd_cwnd",
                    "snd_ssthresh", "unacked")
_INFINITE_SSTHRESH = 0x7FFFFFFF


def tcp_info(sock: socket.socket) -> dict[str, Any] | None:
    """The kernel's view of one connection (times in seconds), or None if it is gone."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO.size)
    except OSError:
        return None
    if len(raw) < _TCP_INFO.size:
        return None
    v = _TCP_INFO.unpack(raw)
    # 0 state, 1 ca_state, 2 retransmits, 3 probes, 4 backoff, 5 options, 6 wscale, 7 flags;
    # 8 rto, 9 ato, 10 snd_mss, 11 rcv_mss, 12 unacked, 13 sacked, 14 lost, 15 retrans,
    # 16 fackets, 17-20 last_data_sent..last_ack_recv, 21 pmtu, 22 rcv_ssthresh, 23 rtt,
    # 24 rttvar, 25 snd_ssthresh, 26 snd_cwnd, 27 advmss, 28 reordering, 29 rcv_rtt,
    # 30 rcv_space, 31 total_retrans
    return {"state": v[0], "ca_state": v[1], "retransmits": v[2], "total_retrans": v[31],
            "lost": v[14], "rtt": v[23] / 1e6, "rttvar": v[24] / 1e6, "rto": v[8] / 1e6,
            "snd_cwnd": v[26],
            "snd_ssthresh": None if v[25] >= _INFINITE_SSTHRESH else v[25],
            "unacked": v[12]}
