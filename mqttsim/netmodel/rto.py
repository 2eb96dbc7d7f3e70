"""TCP's retransmission timer, as RFC 6298 computes it (with Linux's bounds).

The simulator's TCP model uses it to decide when a lost segment is sent again, and the
real-socket relay uses it to turn "this segment was lost" into "these bytes arrive that much
later". Karn's rule: a retransmitted segment gives no RTT sample, and the backed-off RTO is
kept until a fresh sample arrives.
"""

from __future__ import annotations


class RtoEstimator:
    """SRTT, RTTVAR and the RTO with exponential back-off (RFC 6298 sections 2 and 5)."""

    ALPHA = 1 / 8
    BETA = 1 / 4
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

    @property
    def rto(self) -> float:
        """The current timeout, back-off included (2.5: at most ``maximum``)."""
        return min(self.maximum, self._base * (2 ** self.backoffs))

    def sample(self, rtt: float) -> None:
        """A round-trip time measured on a segment that was not retransmitted."""
        if rtt < 0:
            raise ValueError(f"an RTT cannot be negative, got {rtt}")
        if self.srtt is None:  # 2.2: the first measurement
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:  # 2.3
            self.rttvar = (1 - self.BETA) * self.rttvar + self.BETA * abs(self.srtt - rtt)
            self.srtt = (1 - self.ALPHA) * self.srtt + self.ALPHA * rtt
        base = self.srtt + max(self.granularity, self.K * self.rttvar)
        self._base = min(self.maximum, max(self.minimum, base))  # 2.4 (Linux: 200 ms floor)
        self.backoffs = 0

    def timed_out(self) -> None:
        """5.5: the retransmission timer expired: double the timeout."""
        if self._base * (2 ** self.backoffs) < self.maximum:
            self.backoffs += 1
