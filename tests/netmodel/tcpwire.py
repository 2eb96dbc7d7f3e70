"""A tiny event loop for TCP stories: one sender, one receiver, a link each way.

Data segments cross ``forward``; the receiver answers each with an ACK that carries its SACK
blocks and timestamp echo (as Linux does with its defaults), optionally delayed by Linux's
delayed-ACK machine; ACKs cross ``back``. Everything the sender decides is logged so that a
test can check the RTT samples it took and the RTO it used.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from mqttsim.netmodel import (HEADER_BYTES, DelayedAck, LinkDirection, LinkParams, Segment,
                              TcpReceiver, TcpSender)
from mqttsim.netmodel.tcp_state import TimerKind


@dataclass
class Log:
    samples: list[tuple[float, float]] = field(default_factory=list)  # (t, rtt)
    timeouts: list[tuple[float, float]] = field(default_factory=list)  # (t, rto used)
    sent: list[tuple[float, int, bool]] = field(default_factory=list)  # (t, seq, retx)
    delivered: list[tuple[float, int]] = field(default_factory=list)  # (t, bytes so far)


class Wire:
    """Sender -> forward link -> receiver; ACKs (SACK, timestamps) -> back link -> sender.

    ``drop``: indexes of data transmissions to lose (counted from 0), on top of the link's
    own loss; ``drop_acks``: indexes of ACKs to lose. ``writes``: (time, bytes) the
    application writes."""

    def __init__(self, forward: LinkParams, back: LinkParams | None = None, drop=(),
                 drop_acks=(), seed: int = 5, delayed_ack: bool = False, sack: bool = True,
                 **sender):
        rng = random.Random(seed)
        self.forward = LinkDirection(forward, rng)
        self.back = LinkDirection(back or LinkParams(latency=forward.latency), rng)
        self.sender = TcpSender(**sender)
        self.receiver = TcpReceiver()
        self.delack = DelayedAck(self.sender.mss) if delayed_ack else None
        self.use_sack = sack
        self.drop, self.drop_acks = set(drop), set(drop_acks)
        self.sent = self.acks = 0
        self.events: list = []
        self.order = 0
        self.got = bytearray()
        self.log = Log()
        self._owed = 0
        self._delack_at: float | None = None
        estimator = self.sender.rto
        real_sample = estimator.sample

        def logged(rtt: float, *marks) -> None:
            self.log.samples.append((self.now, rtt))
            real_sample(rtt, *marks)
        estimator.sample = logged
        self.now = 0.0

    @property
    def arrivals(self) -> list[tuple[float, int]]:
        return self.log.delivered

    def _push(self, at: float, kind: str, item) -> None:
        self.order += 1
        heapq.heappush(self.events, (at, self.order, kind, item))

    def write(self, at: float, data: bytes) -> None:
        self._push(at, "write", data)

    def put(self, now: float, segments: list[Segment]) -> None:
        for seg in segments:
            index, self.sent = self.sent, self.sent + 1
            self.log.sent.append((now, seg.seq, seg.retransmission))
            fate = self.forward.send(now, seg.wire_size)
            if index not in self.drop and fate.arrival is not None:
                self._push(fate.arrival, "data", seg)

    def _ack(self, now: float) -> None:
        r = self.receiver
        ack = Segment(0, ack=r.expected, tsecr=r.ts_recent,
                      sack=r.sack_blocks() if self.use_sack else ())
        r.ack_sent()
        self._owed, self._delack_at = 0, None
        if self.delack:
            self.delack.on_ack_sent()
        index, self.acks = self.acks, self.acks + 1
        fate = self.back.send(now, HEADER_BYTES)
        if index not in self.drop_acks and fate.arrival is not None:
            self._push(fate.arrival, "ack", ack)

    def run(self, until: float = 1e9) -> float:
        sender = self.sender
        while True:
            timer = sender.next_deadline()
            candidates = [t for t in (timer, self._delack_at,
                                      self.events[0][0] if self.events else None)
                          if t is not None]
            if not candidates:
                return self.now
            at = min(candidates)
            if at > until:
                return self.now
            self.now = now = at
            if at == timer:
                before = sender.rto.rto
                kind = sender.timer_kind
                self.put(now, sender.on_timer(now))
                if kind is TimerKind.RTO:
                    self.log.timeouts.append((now, before))
                continue
            if at == self._delack_at:
                self.delack.on_timer(sender.rto.rto)
                self._ack(now)
                continue
            now, _, kind, item = heapq.heappop(self.events)
            if kind == "write":
                self.put(now, sender.send(item, now))
            elif kind == "ack":
                self.put(now, sender.on_ack(item.ack, now, sack=item.sack, tsecr=item.tsecr))
            else:
                before = self.receiver.expected
                data, _ = self.receiver.on_segment(item)
                if data:
                    self.got += data
                    self.log.delivered.append((now, len(self.got)))
                self._owed += len(item.data) or 1
                if self.delack is None:
                    self._ack(now)
                    continue
                in_order = self.receiver.expected > before and not self.receiver.has_gap
                wait = self.delack.on_data(now, in_order, self._owed, len(item.data),
                                           sender.rto.srtt, sender.rto.rto)
                if wait == 0:
                    self._ack(now)
                elif self._delack_at is None:
                    self._delack_at = now + wait
