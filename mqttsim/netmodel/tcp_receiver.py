"""The receiving half of a TCP connection: in-order delivery, SACK, timestamps, and when to
send the ACK (Linux's delayed-ACK machine).

``TcpReceiver`` delivers bytes in order and keeps out-of-order segments until the gap is
filled. It reports what it holds beyond the gap as SACK blocks (RFC 2018 4: the block with
the most recently received segment first, at most 3 when timestamps take option space), and
reports a segment that arrived twice as a D-SACK block (RFC 2883: the first block, below the
cumulative ACK; Linux tcp_dsack_set) so that the sender can tell a needless retransmission,
and keeps ``ts_recent``, the timestamp to echo (RFC 7323 4.3: updated only from a segment that
starts at or before the last ACK sent, so a delayed ACK echoes its earliest segment and the
ACK of a retransmission that fills a hole echoes that retransmission). As Linux does it, a
segment that lies wholly below the last ACK sent (a needless retransmission) is discarded
before that rule (net/ipv4/tcp_input.c: tcp_validate_incoming fails tcp_sequence, which
wants end_seq >= rcv_wup, before tcp_replace_ts_recent): its duplicate ACK echoes the
timestamp of the segment that last advanced the window. When the ACK of a retransmission was
lost and the next retransmission arrives as such a duplicate, the echo is old and the
sender's RTT sample spans the whole wait -- Linux inflates its RTO there, and so does this
model.

``DelayedAck`` decides when an ACK goes out when the application does not answer at once
(net/ipv4/tcp_input.c tcp_event_data_recv, __tcp_ack_snd_check, tcp_incr_quickack;
net/ipv4/tcp_output.c tcp_send_delayed_ack, tcp_event_data_sent; net/ipv4/tcp_timer.c
tcp_delack_timer_handler; constants from include/net/tcp.h):

- quick-ACK mode at the start: the first data arms up to TCP_MAX_QUICKACKS (16) immediate
  ACKs (bounded by half the receive window in segments); each ACK sent uses one up. So
  does a gap longer than the RTO between data segments;
- out-of-order data, or more than one full segment (``rcv_mss``) unacknowledged, is ACKed
  at once;
- otherwise the ACK waits ``ato`` (TCP_ATO_MIN = 40 ms at first, adapting to the gaps
  between arriving segments), at most TCP_DELACK_MAX (200 ms) in ping-pong mode and at
  most the smoothed RTT (but never under TCP_DELACK_MIN = 40 ms);
- ping-pong (interactive) mode: the application answered within ``ato`` of receiving, so
  the ACK may wait to ride on the answer and quick ACKs stop (tcp_pingpong_thresh = 1);
  a delayed-ACK timer that fires leaves ping-pong mode, and one that fires outside it
  doubles ``ato``.
"""

from __future__ import annotations

from .segment import Segment

TCP_ATO_MIN = 0.04
TCP_DELACK_MIN = 0.04
TCP_DELACK_MAX = 0.2
TCP_MAX_QUICKACKS = 16
TCP_MSS_DEFAULT = 536
MAX_SACK_BLOCKS = 3  # 4 fit in 40 option bytes, 3 beside the timestamp option (RFC 2018 3)


class TcpReceiver:
    """The receiving half: in-order delivery, cumulative ACKs, SACK blocks, ``ts_recent``."""

    def __init__(self) -> None:
        self.expected = 0  # rcv_nxt: next stream offset the application has not received
        self.eof = False  # the peer's FIN arrived in order: no more bytes will come
        self._out_of_order: dict[int, Segment] = {}
        self.ts_recent: float | None = None
        self.last_ack_sent = 0  # rcv_wup: the ACK the driver last sent (``ack_sent``)
        self._latest_early: int | None = None  # seq of the latest out-of-order arrival
        #: a segment that arrived a second time, to report once as a D-SACK block
        self.dsack: tuple[int, int] | None = None

    def on_segment(self, segment: Segment) -> tuple[bytes, int]:
        """Returns (bytes now deliverable in order, the cumulative ACK to send back)."""
        seq, data = segment.seq, segment.data
        tsval = segment.tsval
        if seq == self.expected and data and not self._out_of_order and not segment.fin:
            # in order, nothing waiting: the common case (the timestamp rule below, for a
            # segment that starts at rcv_nxt: taken when everything before was ACKed)
            if tsval is not None and seq == self.last_ack_sent and (
                    self.ts_recent is None or tsval >= self.ts_recent):
                self.ts_recent = tsval
            self.expected = end = seq + len(data)
            return data, end
        if tsval is not None and seq <= self.last_ack_sent <= seq + len(data) + segment.fin \
                and (self.ts_recent is None or tsval >= self.ts_recent):
            self.ts_recent = tsval  # RFC 7323 4.3 (2), within Linux's tcp_sequence
        if not data and not segment.fin:
            return b"", self.expected
        if seq > self.expected:
            self._out_of_order.setdefault(seq, segment)
            self._latest_early = seq
            return b"", self.expected  # a duplicate ACK (with SACK) tells of the gap
        if segment.end <= self.expected:
            self.dsack = (seq, segment.end)  # RFC 2883: tell the sender it came twice
            return b"", self.expected  # all of it was delivered before
        delivered = bytearray()
        self._take(segment, delivered)
        for s in sorted(self._out_of_order):  # segments that came early may now fit
            if s > self.expected:
                break
            early = self._out_of_order.pop(s)
            if early.end > self.expected:
                self._take(early, delivered)
        return bytes(delivered), self.expected

    def ack_sent(self) -> None:
        """The driver sent a segment acknowledging ``expected`` (rcv_wup moves)."""
        self.last_ack_sent = self.expected

    @property
    def has_gap(self) -> bool:
        return bool(self._out_of_order)

    def sack_blocks(self) -> tuple:
        """RFC 2018 4: the contiguous ranges held above ``expected``, the one holding the
        latest arrival first, then the others from the highest down."""
        if not self._out_of_order:
            return ()
        blocks: list[list[int]] = []
        for seq in sorted(self._out_of_order):
            end = self._out_of_order[seq].end
            if blocks and seq <= blocks[-1][1]:
                if end > blocks[-1][1]:
                    blocks[-1][1] = end
            else:
                blocks.append([seq, end])
        latest = self._latest_early
        first = [b for b in blocks if latest is not None and b[0] <= latest < b[1]]
        rest = [b for b in reversed(blocks) if not first or b is not first[0]]
        return tuple((a, b) for a, b in (first + rest)[:MAX_SACK_BLOCKS])

    def _take(self, segment: Segment, delivered: bytearray) -> None:
        """Append the part of ``segment`` at or after ``expected`` (it starts at or before)."""
        delivered += segment.data[self.expected - segment.seq:]
        self.expected = segment.end
        if segment.fin:
            self.eof = True


class DelayedAck:
    """When a received segment's ACK goes out (see the module's docstring)."""

    def __init__(self, mss: int, window: int = 65535, ato_min: float = TCP_ATO_MIN,
                 delack_max: float = TCP_DELACK_MAX):
        self.mss = mss
        self.rcv_mss = min(mss, TCP_MSS_DEFAULT)
        self.ato_min, self.delack_max = ato_min, delack_max
        self.max_quick = max(2, min(window // (2 * mss), TCP_MAX_QUICKACKS))
        self.quick = 0
        self.ato = 0.0  # 0: no data received yet
        self.pingpong = False
        self.last_received: float | None = None  # lrcvtime

    def on_data(self, now: float, in_order: bool, owed: int, size: int, srtt: float | None,
                rto: float) -> float:
        """Data arrived (``size`` bytes; ``owed``: bytes now unacknowledged). Returns 0 for
        an ACK at once, else how long the ACK may wait (tcp_event_data_recv,
        __tcp_ack_snd_check). "A full segment" is ``rcv_mss``: TCP_MSS_DEFAULT (536) until
        larger segments are seen (tcp_measure_rcv_mss)."""
        if size > self.rcv_mss:
            self.rcv_mss = min(size, self.mss)
        ato = self.ato  # (halved with / 2.0: float literals, as in rto.py)
        if not ato:
            self.quick = self.max_quick  # tcp_incr_quickack on the first data
            ato = self.ato_min
        else:
            gap = now - self.last_received
            if gap <= self.ato_min / 2.0:
                ato = ato / 2.0 + self.ato_min / 2.0
            elif gap < ato:
                ato = ato / 2.0 + gap
                if ato > rto:
                    ato = rto
            elif gap > rto:
                self.quick = self.max_quick  # "apparently sender failed to restart window"
        self.ato = ato
        self.last_received = now
        if not in_order:
            self.quick = self.max_quick  # tcp_enter_quickack_mode on out-of-order data
            self.pingpong = False
            return 0.0
        if owed > self.rcv_mss or (self.quick and not self.pingpong):
            return 0.0
        if ato > TCP_DELACK_MIN:  # tcp_send_delayed_ack
            most = self.delack_max if self.pingpong else 0.5
            if srtt is not None:
                floor = srtt if srtt > TCP_DELACK_MIN else TCP_DELACK_MIN
                if floor < most:
                    most = floor
            if most < ato:
                ato = most
        return ato

    def on_ack_sent(self) -> None:
        """An ACK went out, pure or on data (tcp_dec_quickack_mode)."""
        if self.quick:
            self.quick -= 1

    def on_data_sent(self, now: float) -> None:
        """The application sent data: a reply within ``ato`` of the last data received
        means an interactive exchange (tcp_event_data_sent)."""
        if self.last_received is not None and now - self.last_received < self.ato:
            self.pingpong = True

    def on_timer(self, rto: float) -> None:
        """The delayed-ACK timer fired with an ACK owed (tcp_delack_timer_handler)."""
        if self.pingpong:
            self.pingpong = False
            self.ato = self.ato_min
        else:
            self.ato = min(2 * self.ato, rto)
