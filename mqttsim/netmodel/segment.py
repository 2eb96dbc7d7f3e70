"""What crosses the wire in the TCP model: a segment and its header size."""

from __future__ import annotations

from dataclasses import dataclass

HEADER_BYTES = 40  # IPv4 (20) + TCP (20) without options, counted on every segment


@dataclass(slots=True)
class Segment:
    """A TCP segment: ``data`` starting at stream offset ``seq`` (a pure ACK has no data).

    ``tsval``/``tsecr`` are the timestamp option (RFC 7323 3): the sender's clock when it
    sent the segment, and the timestamp it echoes back. ``sack`` holds the SACK blocks
    (RFC 2018 3) as (start, end) stream offsets, most recent first."""

    seq: int
    data: bytes = b""
    ack: int | None = None  # cumulative acknowledgement carried by the segment
    retransmission: bool = False
    fin: bool = False  # the sender's last segment: takes one sequence number after ``data``
    tsval: float | None = None
    tsecr: float | None = None
    sack: tuple = ()

    @property
    def wire_size(self) -> int:
        return HEADER_BYTES + len(self.data)

    @property
    def end(self) -> int:
        return self.seq + len(self.data) + self.fin
