"""TCP's retransmission timer, as RFC 6298 computes it (with Linux's bounds).

The simulator's TCP model uses it to decide when a lost segment is sent again. Which
round trips count is the sender's business (``tcp_sender``): Karn's rule (RFC 6298 3) and
the timestamp option (RFC 7323 4) decide what reaches ``sample``. Every valid sample ends
the back-off, as Linux does (net/ipv4/tcp_input.c, tcp_ack_update_rtt: "only reset backoff
on valid RTT measurement").

Two floors exist: RFC 6298 2.4 bounds the whole RTO below (``max(SRTT + 4*RTTVAR, 1 s)``,
here ``minimum``); Linux instead floors the variance term, RTO = SRTT + max(4*RTTVAR,
TCP_RTO_MIN = 200 ms) (net/ipv4/tcp_input.c, tcp_rtt_estimator keeps ``rttvar_us`` at least
``tcp_rto_min_us``; include/net/tcp.h, __tcp_set_rto returns srtt + rttvar). The TCP model
uses the Linux form (``linux_floor=True``); the RFC form stays for the formulas' own tests.
Linux lets ``rttvar`` fall only once per round trip (``mdev_max_us``); this estimator lets
it decay per sample as RFC 6298 2.3 says -- the floor dominates on the short paths where the
two differ.
"""

from __future__ import annotations


ALPHA, BETA = 1 / 8, 1 / 4  # RFC 6298 2.3 gains for SRTT and RTTVAR
_KEEP_SRTT, _KEEP_RTTVAR = 1 - ALPHA, 1 - BETA


class RtoEstimator:
    """SRTT, RTTVAR and the RTO with exponential back-off (RFC 6298 sections 2 and 5)."""

    ALPHA = ALPHA
    BETA = BETA
    K = 4

    def __init__(self, initial: float = 1.0, minimum: float = 0.2, maximum: float = 120.0,
                 granularity: float = 0.001, linux_floor: bool = False):
        if not 0 < minimum <= initial <= maximum:
            raise ValueError("RTO bounds must satisfy 0 < minimum <= initial <= maximum")
        self.minimum, self.maximum, self.granularity = minimum, maximum, granularity
        self.linux_floor = linux_floor
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self._base = initial  # RTO before back-off
        self.backoffs = 0
        #: the current timeout, back-off included (2.5: at most ``maximum``); read on every
        #: ACK, so kept up to date rather than computed
        self.rto = min(maximum, initial)

    def sample(self, rtt: float) -> None:
        """A valid round-trip time (never one made ambiguous by a retransmission)."""
        if rtt < 0:
            raise ValueError(f"an RTT cannot be negative, got {rtt}")
        srtt = self.srtt
        if srtt is None:  # 2.2: the first measurement
            srtt, rttvar = rtt, rtt / 2
        else:  # 2.3 (|srtt - rtt| and the bounds below written out: one sample per ACK)
            error = srtt - rtt
            rttvar = _KEEP_RTTVAR * self.rttvar + BETA * (error if error >= 0 else -error)
            srtt = _KEEP_SRTT * srtt + ALPHA * rtt
        self.srtt, self.rttvar = srtt, rttvar
        spread = self.K * rttvar
        minimum, maximum = self.minimum, self.maximum
        if self.linux_floor:  # __tcp_set_rto: srtt + max(4 * mdev, TCP_RTO_MIN)
            base = srtt + (spread if spread > minimum else minimum)
        else:  # 2.4: max(srtt + max(G, K * rttvar), minimum)
            granularity = self.granularity
            base = srtt + (spread if spread > granularity else granularity)
            if not base > minimum:
                base = minimum
        if not base < maximum:
            base = maximum
        self._base = self.rto = base
        self.backoffs = 0

    def timed_out(self) -> None:
        """5.5: the retransmission timer expired: double the timeout (Linux,
        net/ipv4/tcp_timer.c tcp_retransmit_timer: ``icsk_rto = min(icsk_rto << 1,
        TCP_RTO_MAX)``)."""
        if self._base * (2 ** self.backoffs) < self.maximum:
            self.backoffs += 1
        self.rto = min(self.maximum, self._base * (2 ** self.backoffs))


def give_up_after(retries: int, rto_base: float = 0.2, rto_max: float = 120.0) -> float:
    """How long after its first retransmission Linux keeps retransmitting a segment before
    it declares the connection dead: ``tcp_retries2`` is not a count of retransmissions but
    the number of doublings of ``rto_base`` (TCP_RTO_MIN) it takes to reach the time limit,
    each doubling capped at ``rto_max`` (net/ipv4/tcp_timer.c, tcp_model_timeout and
    retransmits_timed_out). Linux's default 15 gives 924.6 s; 3 gives 3 s."""
    threshold = max(1, int(round(rto_max / rto_base, 9))).bit_length() - 1  # ilog2
    if retries <= threshold:
        return ((2 << retries) - 1) * rto_base
    return ((2 << threshold) - 1) * rto_base + (retries - threshold) * rto_max
