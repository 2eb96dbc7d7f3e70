"""A TCP byte stream, reduced to what decides MQTT's fate: segments, ACKs, retransmission.

Theory of operation: ``TcpSender`` cuts written bytes into segments of at most ``mss`` bytes,
keeps at most ``window`` bytes unacknowledged, and retransmits the earliest unacknowledged
segment when the retransmission timer (RFC 6298, via ``RtoEstimator``) expires or when three
duplicate ACKs arrive (fast retransmit, RFC 5681). After a timeout, the ACK that the resent
segment brings back triggers the resending of everything else outstanding at the time of
the timeout (go-back-N, as Linux does after an RTO by resetting ``snd_nxt`` to ``snd_una``),
so a burst of lost segments costs one timeout, not one per segment. Each expiry doubles the
timer; after
``max_retransmits`` expiries in a row the connection is declared dead (Linux's
``tcp_retries2``, 15 by default), which is how a TCP connection across a long outage ends.
``TcpReceiver`` delivers bytes in order, keeps out-of-order segments until the gap is
filled, and answers every segment with a cumulative ACK.

``close()`` queues a FIN after the written bytes; it takes one sequence number and is
retransmitted like data, so the peer learns of an orderly close even over a lossy path
(``TcpReceiver.eof``).

Left out, on purpose: congestion control (MQTT messages are small; the window rarely binds),
SACK, Nagle (MQTT brokers and clients set TCP_NODELAY). When to send an ACK (at once, riding
on data, or delayed) is the simulator's transport's business, not this module's. Like the engines, this is
sans-IO: time is passed in and segments are returned; the simulator puts them on links.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rto import RtoEstimator

HEADER_BYTES = 40  # IPv4 (20) + TCP (20) without options, counted on every segment


@dataclass(slots=True)
class Segment:
    """A TCP segment: ``data`` starting at stream offset ``seq`` (a pure ACK has no data)."""

    seq: int
    data: bytes = b""
    ack: int | None = None  # cumulative acknowledgement carried by the segment
    retransmission: bool = False
    fin: bool = False  # the sender's last segment: takes one sequence number after ``data``

    @property
    def wire_size(self) -> int:
        return HEADER_BYTES + len(self.data)

    @property
    def end(self) -> int:
        return self.seq + len(self.data) + self.fin


# A segment sent and not yet acknowledged is kept as a list (made and read on every
# segment, so a list rather than an object): [segment, sent_at, end, retransmitted], ``end``
# being the segment's end (every ACK compares against it).
_SEGMENT, _SENT_AT, _END, _RETRANSMITTED = range(4)


class TcpSender:
    """The sending half of one direction of a TCP connection."""

    def __init__(self, mss: int = 1460, window: int = 65535, rto: RtoEstimator | None = None,
                 max_retransmits: int = 15):
        if mss < 1 or window < mss:
            raise ValueError(f"need 1 <= mss <= window, got mss={mss}, window={window}")
        self.mss, self.window, self.max_retransmits = mss, window, max_retransmits
        self.rto = rto or RtoEstimator()
        self.acked = 0  # every byte below this offset is acknowledged
        self.next_seq = 0  # offset of the next byte never sent
        self._pending = bytearray()  # written, not yet sent
        self._fin = False  # close() was called: a FIN follows the pending bytes
        self.fin_sent = False
        self._outstanding: list[list] = []  # in sequence order (see _SEGMENT...)
        self.timer_at: float | None = None  # when the retransmission timer fires
        self._dupacks = 0
        self._go_back: list[list] = []  # outstanding at the last timeout, to resend
        self.timeouts_in_a_row = 0
        self.failed = False  # gave up: the connection must be reset
        self.retransmissions = 0

    @property
    def in_flight(self) -> int:
        return self.next_seq - self.acked

    @property
    def idle(self) -> bool:
        """Nothing written is still unacknowledged."""
        return not self._pending and not self._outstanding

    @property
    def closed(self) -> bool:
        """The FIN was sent and acknowledged: the peer has everything, EOF included."""
        return self.fin_sent and not self._outstanding

    def write(self, data: bytes) -> None:
        if self._fin:
            raise ValueError("write after close()")
        self._pending += data

    def send(self, data: bytes, now: float) -> list[Segment]:
        """``write`` then ``poll``; without a backlog, one MSS or less and room in the
        window (nearly every MQTT packet), the segment is made directly."""
        size = len(data)
        if (self._pending or self._fin or self.failed or size > self.mss
                or self.window - (self.next_seq - self.acked) < size):
            self.write(data)
            return self.poll(now)
        seq = self.next_seq
        segment = Segment(seq, data)
        self.next_seq = end = seq + size
        self._outstanding.append([segment, now, end, False])
        if self.timer_at is None:
            self.timer_at = now + self.rto.rto  # RFC 6298 5.1
        return [segment]

    def close(self) -> None:
        """Orderly close: a FIN goes out once every written byte has been sent."""
        self._fin = True

    def poll(self, now: float) -> list[Segment]:
        """New segments the window allows now."""
        out = []
        while self._pending and not self.failed:
            room = self.window - self.in_flight
            if room <= 0:
                break
            size = min(self.mss, room, len(self._pending))
            segment = Segment(self.next_seq, bytes(self._pending[:size]))
            del self._pending[:size]
            self.next_seq += size
            self._outstanding.append([segment, now, self.next_seq, False])
            out.append(segment)
        if self._fin and not self._pending and not self.fin_sent and not self.failed:
            segment = Segment(self.next_seq, b"", fin=True)
            self.next_seq += 1
            self.fin_sent = True
            self._outstanding.append([segment, now, self.next_seq, False])
            out.append(segment)
        if out and self.timer_at is None:
            self.timer_at = now + self.rto.rto  # RFC 6298 5.1
        return out

    def on_ack(self, ack: int, now: float, carries_data: bool = False) -> list[Segment]:
        """A cumulative ACK arrived; returns segments to send because of it.

        ``carries_data``: the segment also brought data (or a FIN). Such a segment with an
        unchanged ACK is not a duplicate ACK (RFC 5681, 2): in MQTT both sides talk, and
        the peer's PUBLISHes carrying the same ACK must not trigger a fast retransmit."""
        if self.failed:
            return []
        if ack > self.acked:
            sample = None
            outstanding = self._outstanding
            while outstanding and outstanding[0][2] <= ack:  # [2]: _END
                _, sent_at, _, retransmitted = outstanding.pop(0)
                if not retransmitted:
                    sample = now - sent_at  # Karn: never from a retransmission
            if sample is not None:
                self.rto.sample(sample)
            self.acked = ack
            self._dupacks = 0
            self.timeouts_in_a_row = 0
            # 5.2 / 5.3: stop the timer when all is acknowledged, else restart it.
            self.timer_at = now + self.rto.rto if outstanding else None
            resent = self._go_back_n(ack, now) if self._go_back else []
            if self._pending or (self._fin and not self.fin_sent):
                return resent + self.poll(now)  # the window may have opened
            return resent
        if ack == self.acked and self._outstanding and not carries_data:
            self._dupacks += 1
            if self._dupacks == 3:  # fast retransmit (RFC 5681 3.2)
                return [self._retransmit_first(now)]
        return []

    def next_deadline(self) -> float | None:
        return None if self.failed else self.timer_at

    def on_timer(self, now: float) -> list[Segment]:
        """The retransmission timer expired (5.4-5.6): resend the earliest segment, back off."""
        if self.timer_at is None or now < self.timer_at or self.failed:
            return []
        self.timeouts_in_a_row += 1
        if self.timeouts_in_a_row > self.max_retransmits:
            self.failed = True
            self.timer_at = None
            return []
        self.rto.timed_out()
        segment = self._retransmit_first(now)
        self._go_back = self._outstanding[1:]
        self.timer_at = now + self.rto.rto
        return [segment]

    def _go_back_n(self, ack: int, now: float) -> list[Segment]:
        """The first ACK after a timeout: resend what was outstanding then and is not yet
        acknowledged (it was most likely lost with the segment the timer resent)."""
        resent = []
        for entry in self._go_back:
            old = entry[_SEGMENT]
            if entry[_END] > ack:
                entry[_RETRANSMITTED], entry[_SENT_AT] = True, now
                self.retransmissions += 1
                resent.append(Segment(old.seq, old.data, old.ack, retransmission=True,
                                      fin=old.fin))
        self._go_back = []
        return resent

    def _retransmit_first(self, now: float) -> Segment:
        first = self._outstanding[0]
        first[_RETRANSMITTED] = True
        first[_SENT_AT] = now
        self.retransmissions += 1
        old = first[_SEGMENT]
        return Segment(old.seq, old.data, old.ack, retransmission=True, fin=old.fin)


class TcpReceiver:
    """The receiving half: in-order delivery and cumulative ACKs."""

    def __init__(self) -> None:
        self.expected = 0  # next stream offset the application has not received
        self.eof = False  # the peer's FIN arrived in order: no more bytes will come
        self._out_of_order: dict[int, Segment] = {}

    def on_segment(self, segment: Segment) -> tuple[bytes, int]:
        """Returns (bytes now deliverable in order, the cumulative ACK to send back)."""
        seq, data = segment.seq, segment.data
        if seq == self.expected and not self._out_of_order and not segment.fin and data:
            self.expected = seq + len(data)  # in order, nothing waiting: the common case
            return data, self.expected
        if not data and not segment.fin:
            return b"", self.expected
        if seq > self.expected:
            self._out_of_order.setdefault(seq, segment)
            return b"", self.expected  # a duplicate ACK tells the sender about the gap
        if segment.end <= self.expected:
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

    def _take(self, segment: Segment, delivered: bytearray) -> None:
        """Append the part of ``segment`` at or after ``expected`` (it starts at or before)."""
        delivered += segment.data[self.expected - segment.seq:]
        self.expected = segment.end
        if segment.fin:
            self.eof = True


def syn_schedule(initial_rto: float = 1.0, syn_retries: int = 6) -> tuple[list[float], float]:
    """When a connecting client (re)sends its SYN, and when it gives up (Linux defaults:
    1 s initial RTO doubling, 6 retries: SYNs at 0, 1, 3, 7, 15, 31, 63 s; failure at 127 s)."""
    times, t, rto = [], 0.0, initial_rto
    for _ in range(syn_retries + 1):
        times.append(t)
        t += rto
        rto *= 2
    return times, t
