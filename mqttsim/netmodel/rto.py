"""TCP's retransmission timer, as RFC 6298 computes it (with Linux's bounds).

The simulator's TCP model uses it to decide when a lost segment is sent again, and the
real-socket relay uses it to turn "this segment was lost" into "these bytes arrive that much
later". Karn's rule: a retransmitted segment gives no RTT sample, and the backed-off RTO is
kept until a fresh sample arrives.
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
                 granularity: float = 0.001):
        if not 0 < minimum <= initial <= maximum:
            raise ValueError("RTO bounds must satisfy 0 < minimum <= initial <= maximum")
        self.minimum, self.maximum, self.granularity = minimum, maximum, granularity
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self._base = initial  # RTO before back-off
        self.backoffs = 0
        #: the current timeout, back-off included (2.5: at most ``maximum``); read on every
        #: ACK, so kept up to date rather than computed
        self.rto = min(maximum, initial)

    def sample(self, rtt: float) -> None:
        """A round-trip time measured on a segment that was not retransmitted."""
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
        granularity = self.granularity
        base = srtt + (spread if spread > granularity else granularity)
        # 2.4, with Linux's 200 ms floor
        minimum, maximum = self.minimum, self.maximum
        if not base > minimum:
            base = minimum
        if not base < maximum:
            base = maximum
        self._base = self.rto = base
        self.backoffs = 0

    def timed_out(self) -> None:
        """5.5: the retransmission timer expired: double the timeout."""
        if self._base * (2 ** self.backoffs) < self.maximum:
            self.backoffs += 1
        self.rto = min(self.maximum, self._base * (2 ** self.backoffs))
