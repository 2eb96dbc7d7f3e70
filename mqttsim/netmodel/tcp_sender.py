"""The sending half of a TCP connection, as Linux runs it with its default options.

Theory of operation. Written bytes wait in ``_pending`` until the congestion window
(``cwnd``, segments; ``congestion.py``) and the peer's window (``window``, bytes) allow a
segment of at most ``mss`` bytes out (no Nagle: MQTT stacks set TCP_NODELAY). Each segment
sent and not yet acknowledged is an entry of the retransmission queue with Linux's
scoreboard bits: SACKED (the peer holds it), LOST (deemed lost), RETRANS (a retransmitted
copy is in flight), EVER (retransmitted at least once). The flight ("pipe") is
``packets_out - sacked_out - lost_out + retrans_out`` (include/net/tcp.h,
tcp_packets_in_flight; RFC 6675 4).

The congestion state follows Linux's ``icsk_ca_state`` (Open, Recovery, Loss; Disorder and
CWR are folded into Open):

==========  =========================================================  ==================
state       entered when                                               left when
==========  =========================================================  ==================
OPEN        start; recovery over; an undo                              a loss is detected
RECOVERY    RACK (or 3 duplicate ACKs without SACK) marks a loss:       ``high_seq`` acked
            ssthresh = cc.ssthresh(cwnd), cwnd = ssthresh (RFC 6675 5)
LOSS        the retransmission timer expires (tcp_enter_loss):          ``high_seq`` acked,
            every unSACKed segment LOST, cwnd = 1                       or an undo
==========  =========================================================  ==================

Loss detection is RACK (RFC 8985 6; net/ipv4/tcp_recovery.c, tcp_rack_detect_loss): a
segment sent before one that was delivered is lost once it has been outstanding one RACK
RTT plus a reordering window (min_rtt / 4, 0 when no reordering was seen and recovery has
started or 3 segments are SACKed), else a REORDER timer waits for that moment. Lost
segments are retransmitted in sequence order as the pipe falls below cwnd
(tcp_xmit_retransmit_queue), the first one at once (fast retransmit). Without SACK
information (a peer that sends none), three duplicate ACKs mark the head lost (RFC 5681
3.2, tcp_add_reno_sack).

Timers share one slot, as Linux's ``icsk_pending`` (net/ipv4/tcp_timer.c,
tcp_write_timer_handler): RTO, PROBE (tail loss probe) or REORDER.

- RTO (RFC 6298 5; tcp_retransmit_timer): give up if the first retransmission of this
  episode is older than ``give_up_after(max_retransmits)`` (tcp_retries2 as Linux reads it,
  by elapsed time); else enter LOSS, retransmit the head only, double the RTO. Later ACKs
  bring the other LOST segments back as slow start lets cwnd grow from 1 -- from snd_una,
  never the whole window at once.
- PROBE (RFC 8985 7; net/ipv4/tcp_output.c tcp_schedule_loss_probe / tcp_send_loss_probe):
  in OPEN, 2 SRTT after the last send (+ TCP_RTO_MIN when one segment is out, for the
  peer's delayed ACK), capped by the RTO: send one new segment, or resend the last one, so
  that a lost tail is repaired by SACK recovery instead of waiting for the RTO. One probe
  at a time (``tlp_high_seq``); a probe that repaired a loss reduces cwnd
  (tcp_process_tlp_ack).

RTT samples (net/ipv4/tcp_input.c, tcp_clean_rtx_queue and tcp_ack_update_rtt): from the
oldest newly acknowledged segment when none of them was ever retransmitted (Karn, RFC 6298
3); else from a newly SACKed segment sent once; else from the timestamp echo (RFC 7323 4.1:
the echo names the very transmission that filled the hole, so retransmitted data gives
honest samples too). Each sample ends the RTO back-off. A retransmitted segment gives no
sample from its send time: the ACK may be for the original.

Spurious retransmissions are undone (tcp_try_undo_loss / tcp_try_undo_recovery): when the
timestamp echo predates the first retransmission (Eifel detection, RFC 3522; Linux
tcp_packet_delayed), or, after an RTO, F-RTO (RFC 5682 3, SACK-enhanced; Linux
tcp_process_loss) finds that data sent only once was acknowledged: cwnd and ssthresh go back
to what they were, the LOST marks are cleared. F-RTO's step 2: the first ACK after an RTO
that advances snd_una sends new data instead of retransmitting more.

Window growth (tcp_cong_avoid) happens on ACKs outside RECOVERY and only while the flow is
cwnd-limited (tcp_is_cwnd_limited): an MQTT client sending a message a second does not earn
a huge window. After an idle period longer than the RTO, cwnd restarts from at most the
initial window (RFC 5681 4.1; tcp_cwnd_restart). The initial window is 10 segments
(RFC 6928; include/net/tcp.h TCP_INIT_CWND).

RACK and the tail loss probe live in ``rack.py`` (a part of this class); the states, timer
kinds and the queue entry's layout in ``tcp_state.py``.

Left out: PRR (RFC 6937: Linux shrinks cwnd gradually during recovery; here it drops to
ssthresh at once, as RFC 6675 does), the undo driven by D-SACK and the reordering window it
adapts, HyStart, pacing, TSO, retransmission collapsing, the receiver's window scaling and
zero-window probes, ECN.
"""

from __future__ import annotations

from .congestion import Cubic, Reno, congestion_control
from .rto import RtoEstimator, give_up_after
from .segment import Segment

from .rack import RackTlp
from .tcp_state import (_END, _EVER, _LOST, _ORDER, _RETX, _SACKED, _SEG, _SENT, DUPTHRESH,
                        INF, INITIAL_WINDOW, LOSS, OPEN, PROBE, RECOVERY, REORDER, RTO, CaState,
                        TCP_TIMEOUT_MIN, TimerKind, ca_advance)


class TcpSender(RackTlp):
    """The sending half of one direction of a TCP connection (see the module's docstring)."""

    # Slots, because the instance has more attributes (48) than CPython 3.11 keeps in a
    # class-shared key table (30): past that each instance falls back to a plain dict, and
    # every attribute read on the hot path is a dict lookup. Measured with TcpEnd's slots
    # (transport.py): 541k -> 495k instructions per delivery in benchmarks/sim.py's model
    # (callgrind, 3,000 minus 100 deliveries), 1.9 % of it from these.
    __slots__ = (
        "mss", "window", "max_retransmits", "rto", "cc", "sack", "timestamps",
        "tail_loss_probe", "frto_enabled", "_probing", "initial_window", "give_up_after",
        "acked", "next_seq", "_pending", "_fin", "fin_sent", "_outstanding", "timer_at",
        "timer_kind", "failed", "retransmissions", "timeouts", "probes", "spurious_undone",
        "cwnd", "ssthresh", "state", "high_seq", "_prior_cwnd", "_prior_ssthresh",
        "retrans_stamp", "timeouts_in_a_row", "_frto", "_dupacks", "sacked_out", "lost_out",
        "retrans_out", "_rack_sent", "_rack_order", "_order", "_rack_rtt", "_fack",
        "reordering_seen", "min_rtt", "tlp_high_seq", "_tlp_retrans", "_last_send")

    def __init__(self, mss: int = 1460, window: int = 65535, rto: RtoEstimator | None = None,
                 max_retransmits: int = 15, congestion: str = "cubic",
                 initial_window: int = INITIAL_WINDOW, sack: bool = True,
                 timestamps: bool = True, tail_loss_probe: bool = True, frto: bool = True):
        if mss < 1 or window < mss:
            raise ValueError(f"need 1 <= mss <= window, got mss={mss}, window={window}")
        self.mss, self.window, self.max_retransmits = mss, window, max_retransmits
        self.rto = rto or RtoEstimator(linux_floor=True)
        self.cc: Reno | Cubic = congestion_control(congestion)
        self.sack, self.timestamps = sack, timestamps
        self.tail_loss_probe, self.frto_enabled = tail_loss_probe, frto
        self._probing = tail_loss_probe and sack
        self.initial_window = initial_window
        self.give_up_after = give_up_after(max_retransmits, self.rto.minimum, self.rto.maximum)
        self.acked = 0  # snd_una: every byte below this offset is acknowledged
        self.next_seq = 0  # snd_nxt: offset of the next byte never sent
        self._pending = bytearray()  # written, not yet sent
        self._fin = False  # close() was called: a FIN follows the pending bytes
        self.fin_sent = False
        self._outstanding: list[list] = []  # the retransmission queue, in sequence order
        self.timer_at: float | None = None  # when the pending timer fires
        self.timer_kind: TimerKind | None = None
        self.failed = False  # gave up: the connection must be reset
        self.retransmissions = 0
        self.timeouts = 0  # RTO expiries, all told
        self.probes = 0  # tail loss probes sent
        self.spurious_undone = 0
        # congestion state
        self.cwnd: float = float(initial_window)
        self.ssthresh: float = INF
        self.state: CaState = OPEN
        self.high_seq = 0
        self._prior_cwnd = self.cwnd
        self._prior_ssthresh = INF
        self.retrans_stamp: float | None = None  # first retransmission of this episode
        self.timeouts_in_a_row = 0  # icsk_retransmits
        self._frto = False
        self._dupacks = 0
        # scoreboard counters
        self.sacked_out = self.lost_out = self.retrans_out = 0
        # RACK (RFC 8985 6.1)
        self._rack_sent = -INF
        self._rack_order = 0
        self._order = 0
        self._rack_rtt = 0.0
        self._fack = 0  # highest end SACKed or acked
        self.reordering_seen = False
        self.min_rtt = INF
        # TLP
        self.tlp_high_seq: int | None = None
        self._tlp_retrans = False
        self._last_send = -INF  # lsndtime

    # -- what the driver reads --------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Bytes sent and not yet acknowledged (snd_nxt - snd_una)."""
        return self.next_seq - self.acked

    @property
    def packets_in_flight(self) -> int:
        """The pipe (tcp_packets_in_flight)."""
        return len(self._outstanding) - self.sacked_out - self.lost_out + self.retrans_out

    @property
    def idle(self) -> bool:
        """Nothing written is still unacknowledged."""
        return not self._pending and not self._outstanding

    @property
    def closed(self) -> bool:
        """The FIN was sent and acknowledged: the peer has everything, EOF included."""
        return self.fin_sent and not self._outstanding

    @property
    def unsent(self) -> int:
        """Bytes written and not yet sent once."""
        return len(self._pending)

    def next_deadline(self) -> float | None:
        return None if self.failed else self.timer_at

    # -- the application's side -------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._fin:
            raise ValueError("write after close()")
        self._pending += data

    def close(self) -> None:
        """Orderly close: a FIN goes out once every written byte has been sent."""
        self._fin = True

    def send(self, data: bytes, now: float) -> list[Segment]:
        """``write`` then ``poll``; without a backlog, one MSS or less, nothing lost or
        SACKed and room in both windows (nearly every MQTT packet), the segment is made
        directly."""
        size = len(data)
        outstanding = self._outstanding
        seq = self.next_seq
        flight = len(outstanding)
        if (self._pending or self.state is not OPEN or size > self.mss or self._fin
                or self.window - (seq - self.acked) < size or self.sacked_out
                or flight >= int(self.cwnd) or self.failed
                or (not flight and now - self._last_send > self.rto.rto)):
            self.write(data)
            return self.poll(now)
        segment = (Segment(seq, data, None, False, False, now) if self.timestamps
                   else Segment(seq, data))
        self.next_seq = end = seq + size
        self._order = order = self._order + 1
        outstanding.append([segment, now, end, False, False, False, False, order])
        self._last_send = now
        self._after_new_data(now)
        return [segment]

    def poll(self, now: float) -> list[Segment]:
        """Segments the windows allow now (new data; lost segments first in recovery)."""
        if self.failed:
            return []
        if not self._outstanding and (self._pending or (self._fin and not self.fin_sent)):
            self._restart_after_idle(now)
        return self._push(now)

    # -- ACKs -------------------------------------------------------------------------------
    def on_ack(self, ack: int, now: float, carries_data: bool = False, sack: tuple = (),
               tsecr: float | None = None) -> list[Segment]:
        """An ACK arrived (cumulative ``ack``, SACK blocks, timestamp echo); returns the
        segments to send because of it (tcp_ack).

        ``carries_data``: the segment also brought data (or a FIN). Such a segment with an
        unchanged ACK is not a duplicate ACK (RFC 5681, 2): in MQTT both sides talk, and
        the peer's PUBLISHes carrying the same ACK must not count as loss signals."""
        if self.failed or ack > self.next_seq:
            return []
        outstanding = self._outstanding
        if sack or self.state is not OPEN or self.sacked_out or self.lost_out \
                or self.tlp_high_seq is not None or ack < self.acked:
            return self._ack_scoreboard(ack, now, carries_data, sack, tsecr)
        if ack == self.acked:
            if carries_data or not outstanding:
                return []  # nothing new, and not a duplicate ACK (RFC 5681 2)
            return self._ack_scoreboard(ack, now, carries_data, sack, tsecr)
        return self._ack_fast(ack, now, tsecr)

    def _ack_fast(self, ack: int, now: float, tsecr: float | None) -> list[Segment]:
        """The common ACK: OPEN, nothing SACKed or lost, snd_una advances. The same steps as
        ``_ack_scoreboard`` without the scoreboard."""
        outstanding = self._outstanding
        prior_in_flight = len(outstanding)
        delivered = 0
        first_sent = None
        retrans_acked = False
        entry = None
        while outstanding and outstanding[0][_END] <= ack:
            entry = outstanding.pop(0)
            delivered += 1
            if entry[_EVER]:
                retrans_acked = True
                if entry[_RETX]:
                    self.retrans_out -= 1
            elif first_sent is None:
                first_sent = entry[_SENT]
        self.acked = ack
        if ack > self._fack:
            self._fack = ack
        self._dupacks = 0
        self.timeouts_in_a_row = 0
        if entry is not None:
            self._rack_update(entry, now, tsecr)
        if first_sent is not None and not retrans_acked:
            rtt = now - first_sent
        elif tsecr is not None:
            rtt = now - tsecr
        else:
            rtt = None
        if rtt is not None:
            self.rto.sample(rtt, ack, self.next_seq)
            if rtt < self.min_rtt:
                self.min_rtt = rtt
        self._grow(now, prior_in_flight, delivered)
        if self.retrans_stamp is not None and not any(e[_EVER] for e in outstanding):
            self.retrans_stamp = None
        if self._pending or (self._fin and not self.fin_sent):
            out = self._push(now)
            if out:
                return out
        if not outstanding:
            self.timer_at = self.timer_kind = None
        elif self.timer_kind is not REORDER and not self._schedule_probe(now):
            self._rearm_rto(now, from_now=True)
        return []

    def _ack_scoreboard(self, ack: int, now: float, carries_data: bool, sack: tuple,
                        tsecr: float | None) -> list[Segment]:
        """``on_ack`` for every other ACK: SACK blocks, recovery, duplicate ACKs."""
        outstanding = self._outstanding
        dsack = False
        if sack and sack[0][1] <= ack:  # RFC 2883 D-SACK: a segment arrived twice
            dsack, sack = True, sack[1:]
        prior_in_flight = self.packets_in_flight
        delivered = 0
        retrans_acked = orig_acked = False
        first_sent = None
        sack_rtt = None
        advanced = ack > self.acked
        if advanced:
            fack = self._fack
            while outstanding and outstanding[0][_END] <= ack:
                entry = outstanding.pop(0)
                if entry[_SACKED]:
                    self.sacked_out -= 1
                else:
                    delivered += 1
                    if entry[_EVER]:
                        retrans_acked = True
                    else:
                        orig_acked = True
                        if first_sent is None:
                            first_sent = entry[_SENT]
                        if entry[_END] < fack:
                            self.reordering_seen = True  # RFC 8985 6.2 step 3
                    self._rack_update(entry, now, tsecr)
                if entry[_LOST]:
                    self.lost_out -= 1
                if entry[_RETX]:
                    self.retrans_out -= 1
            self.acked = ack
            self._dupacks = 0
            self.timeouts_in_a_row = 0
            if ack > self._fack:
                self._fack = ack
        newly_sacked = False
        if sack and self.sack:
            prior_fack = self._fack
            for start, end in sorted(sack):  # ascending, as tcp_sacktag_write_queue
                if end <= self.acked:
                    continue
                for entry in outstanding:
                    seg_start = entry[_SEG].seq
                    if seg_start >= end:
                        break
                    if entry[_SACKED] or seg_start < start or entry[_END] > end:
                        continue
                    entry[_SACKED] = True
                    self.sacked_out += 1
                    newly_sacked = True
                    delivered += 1
                    if entry[_LOST]:
                        entry[_LOST] = False
                        self.lost_out -= 1
                    if entry[_RETX]:
                        entry[_RETX] = False
                        self.retrans_out -= 1
                    if not entry[_EVER]:
                        orig_acked = True
                        if sack_rtt is None:  # the oldest newly SACKed (first_sackt)
                            sack_rtt = now - entry[_SENT]
                        if entry[_END] < prior_fack:
                            self.reordering_seen = True
                    if entry[_END] > self._fack:
                        self._fack = entry[_END]
                    self._rack_update(entry, now, tsecr)
        # RTT (tcp_ack_update_rtt): Karn first, then SACK, then the timestamp echo.
        if advanced and first_sent is not None and not retrans_acked:
            self._rtt_sample(now - first_sent)
        elif sack_rtt is not None:
            self._rtt_sample(sack_rtt)
        elif advanced and tsecr is not None:
            self._rtt_sample(now - tsecr)
        is_dupack = (not advanced and not carries_data and bool(outstanding)
                     and ack == self.acked)
        if is_dupack and not sack and not dsack:
            self._dupacks += 1
        if self.tlp_high_seq is not None:
            self._tlp_ack(ack, advanced, is_dupack and not newly_sacked, dsack)
        # Undo a spurious retransmission (Eifel with timestamps): an ACK that moves snd_una
        # and echoes a timestamp older than the first retransmission was caused by an
        # original (tcp_try_undo_partial / tcp_try_undo_loss -> tcp_packet_delayed). Only
        # such ACKs: a duplicate ACK echoes the last in-order segment, always older.
        if (advanced and self.state is not OPEN and tsecr is not None
                and self.retrans_stamp is not None and tsecr < self.retrans_stamp):
            self._undo()
        state = self.state
        rexmit_new = False
        if state is LOSS:  # tcp_process_loss
            recovered = self.acked >= self.high_seq
            if self._frto and orig_acked:
                self._undo()  # F-RTO step 3.b: data sent once got through (RFC 5682 3.1)
            elif self._frto:
                if self.next_seq > self.high_seq:
                    if newly_sacked or is_dupack:
                        self._frto = False  # step 3.a: the loss was real
                elif advanced and not recovered:
                    self.high_seq = self.next_seq  # step 2.b: send new data instead
                    if self._can_send_new():
                        rexmit_new = True
                    else:
                        self._frto = False
            if self.state is LOSS and recovered:
                self._to_open()
        elif state is RECOVERY and self.acked >= self.high_seq:
            self.cwnd = max(self.ssthresh, 1.0)  # tcp_end_cwnd_reduction
            self._to_open()
        # Loss detection (tcp_identify_packet_loss) on dubious ACKs.
        if not rexmit_new and (newly_sacked or self.state is not OPEN or self.sacked_out
                               or self._dupacks):
            if self.sack:
                self._rack_detect(now)
            if (self._dupacks >= DUPTHRESH and outstanding and not outstanding[0][_SACKED]
                    and not outstanding[0][_LOST]):
                self._mark_lost(outstanding[0])  # no SACK: tcp_mark_head_lost
        force = False
        if self.state is OPEN and self.lost_out:
            self._enter_recovery()
            force = True
        if advanced and self.state is not RECOVERY:  # tcp_cong_control, before sending
            self._grow(now, prior_in_flight, delivered)
        if self.state is OPEN and self.retrans_stamp is not None:
            if not any(entry[_EVER] for entry in outstanding):
                self.retrans_stamp = None  # tcp_try_to_open: no retransmission outstanding
        if rexmit_new:  # tcp_xmit_recovery(REXMIT_NEW)
            out = self._push(now, new_only=True)
            if self.next_seq <= self.high_seq:
                self._frto = False
                out += self._push(now)
        else:
            out = self._push(now, force_one=force)
        if self.timer_kind is not REORDER or advanced or not outstanding:
            self._set_timer_after_ack(now, advanced)
        return out

    # -- timers -----------------------------------------------------------------------------
    def on_timer(self, now: float) -> list[Segment]:
        """The pending timer expired (tcp_write_timer_handler)."""
        if self.timer_at is None or now < self.timer_at or self.failed:
            return []
        kind = self.timer_kind
        self.timer_at = self.timer_kind = None
        if not self._outstanding:
            return []
        if kind is PROBE:
            return self._send_probe(now)
        if kind is REORDER:
            return self._reorder_timeout(now)
        return self._retransmit_timeout(now)

    def _retransmit_timeout(self, now: float) -> list[Segment]:
        """tcp_retransmit_timer: give up by elapsed time, else LOSS and resend the head."""
        if (self.retrans_stamp is not None and self.timeouts_in_a_row
                and now - self.retrans_stamp >= self.give_up_after):
            self.failed = True  # tcp_write_timeout -> tcp_write_err
            return []
        self.timeouts += 1
        self._enter_loss()
        self.timeouts_in_a_row += 1
        head = self._outstanding[0]
        out = [self._retransmit(head, now)]
        self.rto.timed_out()
        self.timer_at, self.timer_kind = now + self.rto.rto, RTO
        return out

    def _rtt_sample(self, rtt: float) -> None:
        self.rto.sample(rtt, self.acked, self.next_seq)
        if rtt < self.min_rtt:
            self.min_rtt = rtt

    def _mark_lost(self, entry: list) -> None:
        if entry[_RETX]:
            entry[_RETX] = False  # the retransmission was lost too
            self.retrans_out -= 1
        if not entry[_LOST]:
            entry[_LOST] = True
            self.lost_out += 1

    def _retransmit(self, entry: list, now: float, probe: bool = False) -> Segment:
        """tcp_retransmit_skb: send a copy now; the entry's send time moves (RACK, RTT).
        ``retrans_stamp`` (give-up clock, Eifel undo) starts with the first retransmission
        of an episode; a loss probe goes through __tcp_retransmit_skb and does not start it."""
        if self.retrans_stamp is None and not probe:
            self.retrans_stamp = now
        entry[_EVER] = True
        if not entry[_RETX]:
            entry[_RETX] = True
            self.retrans_out += 1
        entry[_SENT] = now
        self._order += 1
        entry[_ORDER] = self._order
        self.retransmissions += 1
        self._last_send = now
        old = entry[_SEG]
        return Segment(old.seq, old.data, None, True, old.fin,
                       now if self.timestamps else None)

    def _can_send_new(self) -> bool:
        if self._pending:
            return self.window - (self.next_seq - self.acked) >= min(self.mss,
                                                                      len(self._pending))
        return self._fin and not self.fin_sent

    def _push(self, now: float, new_only: bool = False, force_one: bool = False,
              probe: bool = False) -> list[Segment]:
        """tcp_xmit_retransmit_queue then tcp_write_xmit: LOST segments first (in
        sequence order), then new data, while the pipe is below cwnd."""
        out: list[Segment] = []
        cwnd = int(self.cwnd) or 1
        pipe = self.packets_in_flight
        if self.lost_out and not new_only:
            for entry in self._outstanding:
                if pipe >= cwnd and not force_one:
                    break
                if entry[_LOST] and not entry[_RETX] and not entry[_SACKED]:
                    out.append(self._retransmit(entry, now))
                    pipe += 1
                    force_one = False
        sent_new = False
        while (self._pending or (self._fin and not self.fin_sent)) and (pipe < cwnd or probe):
            probe = False
            if self._pending:
                size = min(self.mss, len(self._pending))
                if size > self.window - (self.next_seq - self.acked):
                    break  # the segment must fit the peer's window whole (tcp_snd_wnd_test)
                segment = Segment(self.next_seq, bytes(self._pending[:size]),
                                  tsval=now if self.timestamps else None)
                del self._pending[:size]
                self.next_seq += size
            else:
                segment = Segment(self.next_seq, b"", fin=True,
                                  tsval=now if self.timestamps else None)
                self.next_seq += 1
                self.fin_sent = True
            self._order += 1
            self._outstanding.append([segment, now, self.next_seq, False, False, False, False,
                                      self._order])
            out.append(segment)
            pipe += 1
            sent_new = True
        if out:
            self._last_send = now
        if sent_new and self.state is OPEN:
            self._after_new_data(now)
        elif out and self.timer_at is None:
            self._rearm_rto(now, from_now=True)
        return out

    def _after_new_data(self, now: float) -> None:
        """tcp_event_new_data_sent and the end of tcp_write_xmit: start the RTO if it was
        not running, and (re)schedule the tail loss probe."""
        if self.timer_kind is REORDER:
            return
        if not self._schedule_probe(now) and (self.timer_at is None
                                              or self.timer_kind is not RTO):
            self._rearm_rto(now, from_now=True)

    def _rearm_rto(self, now: float, from_now: bool = False) -> None:
        """tcp_rearm_rto: RTO from now, or from the head's transmission when another timer
        held the slot (tcp_rto_delta_us)."""
        if not self._outstanding:
            self.timer_at = self.timer_kind = None
            return
        at = now + self.rto.rto
        if not from_now:
            head_due = self._outstanding[0][_SENT] + self.rto.rto
            at = head_due if head_due > now else now + TCP_TIMEOUT_MIN
        self.timer_at, self.timer_kind = at, RTO

    def _set_timer_after_ack(self, now: float, advanced: bool) -> None:
        """tcp_set_xmit_timer after an ACK: a probe if one may be sent, else the RTO
        (restarted on forward progress: RFC 6298 5.3)."""
        if not self._outstanding:
            self.timer_at = self.timer_kind = None
            return
        if self.timer_kind is REORDER and self.timer_at is not None:
            return
        if advanced or self.timer_at is None:
            if not self._schedule_probe(now):
                self._rearm_rto(now, from_now=True)

    def _grow(self, now: float, prior_in_flight: int, delivered: int) -> None:
        """tcp_cong_avoid, only when the flight was limited by cwnd (tcp_is_cwnd_limited:
        in slow start, while cwnd < 2 * flight)."""
        if not delivered:
            return
        cwnd = self.cwnd
        limited = (prior_in_flight >= int(cwnd) or (cwnd < self.ssthresh
                                                     and cwnd < 2 * prior_in_flight))
        if limited:
            self.cwnd = self.cc.increase(cwnd, self.ssthresh, delivered, now, self.min_rtt)

    def _restart_after_idle(self, now: float) -> None:
        """tcp_cwnd_restart (RFC 5681 4.1 / RFC 7661 off): after more than an RTO idle,
        halve cwnd per RTO idle, down to the initial window at most."""
        idle = now - self._last_send
        rto = self.rto.rto
        if idle <= rto or self._last_send == -INF:
            return
        self.cc.restart(idle)
        restart = min(float(self.initial_window), self.cwnd)
        cwnd = self.cwnd
        while idle > rto and cwnd > restart:
            cwnd /= 2
            idle -= rto
        self.cwnd = max(cwnd, restart)

    def _enter_recovery(self) -> None:
        """tcp_enter_recovery (RFC 6675 5 step 4): remember what to undo to, cut cwnd."""
        self._prior_cwnd, self._prior_ssthresh = self.cwnd, self.ssthresh
        self.ssthresh = self.cc.ssthresh(self.cwnd)
        self.cwnd = max(self.ssthresh, 1.0)
        self.high_seq = self.next_seq
        self.state = ca_advance(self.state, RECOVERY)

    def _enter_loss(self) -> None:
        """tcp_enter_loss: ssthresh cut once per episode, cwnd = 1, every unSACKed segment
        LOST, F-RTO armed (RFC 5682) when not already retransmitting in RECOVERY."""
        new_recovery = self.state is OPEN
        if new_recovery or (self.state is LOSS and not self.timeouts_in_a_row) \
                or self.high_seq <= self.acked:
            self._prior_cwnd, self._prior_ssthresh = self.cwnd, self.ssthresh
            self.ssthresh = self.cc.ssthresh(self.cwnd)
        self.cc.reset()
        self.cwnd = 1.0
        for entry in self._outstanding:
            if entry[_RETX]:
                entry[_RETX] = False
            if not entry[_SACKED] and not entry[_LOST]:
                entry[_LOST] = True
        self.retrans_out = 0
        self.lost_out = len(self._outstanding) - self.sacked_out
        self.high_seq = self.next_seq
        self.state = ca_advance(self.state, LOSS)
        self._frto = self.frto_enabled and (new_recovery or self.timeouts_in_a_row > 0)
        self.tlp_high_seq = None

    def _undo(self) -> None:
        """tcp_undo_cwnd_reduction: the retransmissions were spurious."""
        self.cwnd = max(self.cwnd, self._prior_cwnd)
        if self._prior_ssthresh > self.ssthresh:
            self.ssthresh = self._prior_ssthresh
        for entry in self._outstanding:
            if entry[_LOST]:
                entry[_LOST] = False
        self.lost_out = 0
        self.spurious_undone += 1
        self._to_open()

    def _to_open(self) -> None:
        self.state = ca_advance(self.state, OPEN)
        self._frto = False
