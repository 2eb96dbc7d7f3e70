"""Congestion control: how the congestion window grows, and what it becomes after a loss.

The window counts segments, as Linux's ``snd_cwnd`` does. Linux keeps it an integer and
counts ACKs in ``snd_cwnd_cnt`` until a whole segment is earned; here it is a float that
grows by the same fraction per ACK, and the sender sends while its flight is below
``int(cwnd)``, which is the same thing without the counter.

- ``Reno``: slow start then additive increase of one segment per window of ACKs, halved on
  loss (RFC 5681 3.1; net/ipv4/tcp_cong.c, tcp_slow_start, tcp_cong_avoid_ai,
  tcp_reno_ssthresh ``max(cwnd >> 1, 2)``).
- ``Cubic``: the window follows W(t) = C (t - K)^3 + W_max since the last reduction, with a
  Reno-friendly floor, multiplicative decrease to 0.7 and fast convergence (RFC 9438;
  net/ipv4/tcp_cubic.c, bictcp_update, bictcp_recalc_ssthresh: beta = 717/1024,
  C = 0.4 from bic_scale = 41). The time is taken one minimum RTT ahead, as bictcp_update
  does with ``delay_min``. HyStart (on by default in tcp_cubic.c) is not modelled: slow
  start ends at the first loss, as with Reno.
"""

from __future__ import annotations

CUBIC_BETA = 717 / 1024
CUBIC_C = 41 * 10 / 1024  # bic_scale * 10 >> 10
_RENO_FRIENDLY = 3 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA)  # RFC 9438 4.3 alpha_cubic


def slow_start(cwnd: float, ssthresh: float, acked: int) -> tuple[float, int]:
    """tcp_slow_start: one segment per segment acknowledged, up to ``ssthresh``; returns the
    new window and the ACKs left over for congestion avoidance."""
    grown = cwnd + acked
    if grown <= ssthresh:
        return grown, 0
    return ssthresh, int(grown - ssthresh)


class Reno:
    """RFC 5681 slow start and congestion avoidance."""

    name = "reno"

    def ssthresh(self, cwnd: float) -> float:
        return max(cwnd / 2, 2.0)

    def increase(self, cwnd: float, ssthresh: float, acked: int, now: float,
                 min_rtt: float) -> float:
        if cwnd < ssthresh:
            cwnd, acked = slow_start(cwnd, ssthresh, acked)
            if not acked:
                return cwnd
        return cwnd + acked / cwnd  # tcp_cong_avoid_ai with w = cwnd

    def reset(self) -> None:
        """After a retransmission timeout (tcp_ca_event / CA_EVENT_LOSS): nothing kept."""

    def restart(self, idle: float) -> None:
        """The sender was idle ``idle`` s and starts again (CA_EVENT_TX_START)."""


class Cubic:
    """RFC 9438 CUBIC as net/ipv4/tcp_cubic.c runs it (without HyStart)."""

    name = "cubic"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """bictcp_reset (also on entering the Loss state: bictcp_state)."""
        self.last_max = 0.0  # W_max, segments
        self.epoch: float | None = None  # when the current growth curve started
        self.k = 0.0
        self.origin = 0.0
        self.reno_estimate = 0.0  # the window Reno would have now (TCP friendliness)

    def ssthresh(self, cwnd: float) -> float:
        """bictcp_recalc_ssthresh: remember W_max (lowered further when the previous
        W_max was not reached: fast convergence), cut to beta * cwnd."""
        self.epoch = None
        if cwnd < self.last_max:
            self.last_max = cwnd * (1 + CUBIC_BETA) / 2
        else:
            self.last_max = cwnd
        return max(cwnd * CUBIC_BETA, 2.0)

    def restart(self, idle: float) -> None:
        """bictcp_cwnd_event(CA_EVENT_TX_START): the curve does not advance while idle."""
        if self.epoch is not None and idle > 0:
            self.epoch += idle

    def increase(self, cwnd: float, ssthresh: float, acked: int, now: float,
                 min_rtt: float) -> float:
        if cwnd < ssthresh:
            cwnd, acked = slow_start(cwnd, ssthresh, acked)
            if not acked:
                return cwnd
        if self.epoch is None:  # first ACK of a new growth curve
            self.epoch = now
            self.reno_estimate = cwnd
            if self.last_max <= cwnd:
                self.k, self.origin = 0.0, cwnd
            else:
                self.k = ((self.last_max - cwnd) / CUBIC_C) ** (1 / 3)
                self.origin = self.last_max
        t = now - self.epoch + (min_rtt if min_rtt != float("inf") else 0.0)
        target = self.origin + CUBIC_C * (t - self.k) ** 3
        if target > cwnd:
            per_segment = cwnd / (target - cwnd)  # ACKs needed to grow one segment
        else:
            per_segment = 100 * cwnd  # hardly grow
        # TCP friendliness (RFC 9438 4.3): never slower than Reno would be.
        self.reno_estimate += acked * _RENO_FRIENDLY / self.reno_estimate
        if self.reno_estimate > cwnd:
            per_segment = min(per_segment, cwnd / (self.reno_estimate - cwnd))
        per_segment = max(per_segment, 2.0)  # ca->cnt >= 2: at most 1.5x per round trip
        return cwnd + acked / per_segment


CONGESTION_CONTROLS = {"reno": Reno, "cubic": Cubic}


def congestion_control(name: str) -> Reno | Cubic:
    try:
        return CONGESTION_CONTROLS[name]()
    except KeyError:
        raise ValueError(f"tcp.congestion {name!r} is not in the simulator's TCP model, which "
                         f"has {' and '.join(sorted(CONGESTION_CONTROLS))} (the kernel "
                         f"backend runs any the kernel has)") from None
