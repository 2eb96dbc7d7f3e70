"""RACK-TLP (RFC 8985) as Linux runs it: a part of ``TcpSender`` (tcp_sender.py).

RACK (RFC 8985 6; net/ipv4/tcp_recovery.c, tcp_rack_advance / tcp_rack_detect_loss /
tcp_rack_reo_wnd / tcp_rack_reo_timeout) deems a segment lost by time: sent before one that
was delivered, and outstanding for that one's RTT plus a reordering window. The tail loss
probe (RFC 8985 7; net/ipv4/tcp_output.c, tcp_schedule_loss_probe / tcp_send_loss_probe;
tcp_input.c tcp_process_tlp_ack) makes the peer say something when the last segments are
lost and nothing else would.
"""

from __future__ import annotations

from typing import Any

from .segment import Segment
from .tcp_state import (_EVER, _LOST, _ORDER, _RETX, _SACKED, _SENT, DUPTHRESH, INF,
                        OPEN, PROBE, REORDER, RTO, TCP_RTO_MIN, TCP_TIMEOUT_MIN, _jiffies)


class RackTlp:
    """RACK loss detection and the tail loss probe, over ``TcpSender``'s state."""

    __slots__ = ()
    # (attributes set by TcpSender.__init__)
    _outstanding: list
    rto: Any

    def _send_probe(self, now: float) -> list[Segment]:
        """tcp_send_loss_probe: new data if the windows allow, else the last segment."""
        out: list[Segment] = []
        if self.tlp_high_seq is None and self.state is OPEN:
            if self._can_send_new():
                out = self._push(now, new_only=True, probe=True)
                self._tlp_retrans = False
            if not out:
                last = self._outstanding[-1]
                if not last[_SACKED]:
                    out = [self._retransmit(last, now, probe=True)]
                    self._tlp_retrans = True
            if out:
                self.probes += 1
                self.tlp_high_seq = self.next_seq
        self._rearm_rto(now, from_now=bool(out))
        return out

    def _reorder_timeout(self, now: float) -> list[Segment]:
        """tcp_rack_reo_timeout: the reordering window passed; mark, recover, resend."""
        self._rack_detect(now)
        force = False
        if self.state is OPEN and self.lost_out:
            self._enter_recovery()
            force = True
        out = self._push(now, force_one=force)
        if self.timer_kind is not REORDER:
            self._rearm_rto(now)
        return out

    # -- helpers ----------------------------------------------------------------------------

    def _rack_update(self, entry: list, now: float, tsecr: float | None) -> None:
        """RFC 8985 6.2 step 2 (tcp_rack_advance): remember the most recently sent segment
        delivered, unless it was retransmitted less than min_rtt ago (the ACK may be for
        an earlier copy). Linux does not use the timestamp echo here: an out-of-order
        segment's ACK echoes an older timestamp (RFC 7323 4.3)."""
        sent = entry[_SENT]
        if entry[_EVER] and now - sent < self.min_rtt - 1e-9:
            return
        if sent > self._rack_sent or (sent == self._rack_sent
                                      and entry[_ORDER] > self._rack_order):
            self._rack_sent, self._rack_order, self._rack_rtt = sent, entry[_ORDER], now - sent

    def _reo_wnd(self) -> float:
        """RFC 8985 6.2 step 4 (tcp_rack_reo_wnd)."""
        if not self.reordering_seen and (self.state is not OPEN
                                         or self.sacked_out >= DUPTHRESH):
            return 0.0
        if self.min_rtt == INF:
            return 0.0
        srtt = self.rto.srtt if self.rto.srtt is not None else INF
        return min(self.min_rtt / 4, srtt)

    def _rack_detect(self, now: float) -> None:
        """RFC 8985 6.2 step 5 (tcp_rack_detect_loss): mark what was sent before the most
        recently delivered segment and has waited longer than its RTT plus the reordering
        window; arm the REORDER timer for the rest."""
        if self._rack_sent == -INF:
            return
        reo_wnd = self._reo_wnd()
        rack_sent, rack_order, rack_rtt = self._rack_sent, self._rack_order, self._rack_rtt
        wait = 0.0
        for entry in self._outstanding:
            if entry[_SACKED] or (entry[_LOST] and not entry[_RETX]):
                continue
            sent = entry[_SENT]
            if sent > rack_sent or (sent == rack_sent and entry[_ORDER] >= rack_order):
                continue
            remaining = sent + rack_rtt + reo_wnd - now
            if remaining <= 1e-12:
                self._mark_lost(entry)
            elif remaining > wait:
                wait = remaining
        if wait:
            self.timer_at, self.timer_kind = now + _jiffies(wait) + TCP_TIMEOUT_MIN, REORDER

    def _schedule_probe(self, now: float) -> bool:
        """tcp_schedule_loss_probe: PTO = 2 SRTT (+ TCP_RTO_MIN for a single segment, to
        cover the peer's delayed ACK; + TCP_TIMEOUT_MIN otherwise), at most the time left
        until the RTO would fire."""
        if (not self.tail_loss_probe or not self.sack or self.state is not OPEN
                or not self._outstanding or self.timer_kind is REORDER):
            return False
        srtt = self.rto.srtt
        if srtt is None:
            pto = 1.0  # TCP_TIMEOUT_INIT
        else:
            pto = _jiffies(2 * srtt) + (TCP_RTO_MIN if len(self._outstanding) == 1
                                        else TCP_TIMEOUT_MIN)
        if self.timer_kind is RTO and self.timer_at is not None:
            left = self.timer_at - now
        else:
            left = self.rto.rto
        if left > 0 and left < pto:
            pto = left
        self.timer_at, self.timer_kind = now + pto, PROBE
        return True

    def _tlp_ack(self, ack: int, advanced: bool, pure_dupack: bool, dsack: bool) -> None:
        """tcp_process_tlp_ack: a probe that repaired a loss costs a cwnd reduction; one
        whose copy the peer reports as a duplicate (D-SACK) was not needed."""
        high = self.tlp_high_seq
        if ack < high:
            return
        if not self._tlp_retrans or dsack:
            self.tlp_high_seq = None
        elif ack > high:
            self.ssthresh = self.cc.ssthresh(self.cwnd)  # CWR, ended at once
            self.cwnd = max(self.ssthresh, 1.0)
            self.tlp_high_seq = None
        elif pure_dupack:
            self.tlp_high_seq = None  # original and probe both arrived: no loss
