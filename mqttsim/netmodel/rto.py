"""TCP's retransmission timer, as RFC 6298 computes it (with Linux's bounds).

The simulator's TCP model uses it to decide when a lost segment is sent again. Which
round trips count is the sender's business (``tcp_sender``): Karn's rule (RFC 6298 3) and
the timestamp option (RFC 7323 4) decide what reaches ``sample``. Every valid sample ends
the back-off, as Linux does (net/ipv4/tcp_input.c, tcp_ack_update_rtt: "only reset backoff
on valid RTT measurement").

Two estimators. RFC 6298 (the default here, for the formulas' own tests): SRTT and RTTVAR
per 2.2-2.3, RTO = max(SRTT + 4 RTTVAR, ``minimum``). Linux's (``linux_floor=True``, what the
TCP model uses; net/ipv4/tcp_input.c tcp_rtt_estimator, include/net/tcp.h __tcp_set_rto):

- the deviation ``mdev`` follows |error| with gain 1/4, but a sample *below* SRTT moves it
  up with gain 1/32 only (an RTT that shrinks should not inflate the timeout);
- the variance term of the RTO, ``rttvar``, is the largest ``4 mdev`` seen in the current
  round trip and never below TCP_RTO_MIN (200 ms): RTO = SRTT + max(4 mdev, 200 ms);
- ``rttvar`` rises at once but falls only once per round trip (when the ACKs pass the
  sequence number that was next to send when the round began), by a quarter of the excess.

So after a spike -- a sample that spans a retransmission wait, which Linux takes when a
duplicate's ACK echoes an old timestamp (tcp_receiver.py) -- Linux's RTO stays high for
several round trips, and so does the model's.
"""

from __future__ import annotations

from .tcp_state import _jiffies

ALPHA, BETA = 1 / 8, 1 / 4  # RFC 6298 2.3 gains for SRTT and RTTVAR
# Floats (/ 8.0, 4.0 *) where the operands are floats: CPython checks the type of an int
# operand and converts it in every such operation; with the delayed-ACK machine's, 0.7 % of
# the instructions per delivery in benchmarks/sim.py's model (callgrind). Same values.
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
        self.rttvar: float | None = None  # RFC: RTTVAR; Linux: rttvar_us (4 mdev, floored)
        self.mdev = 0.0  # Linux: mdev_us / 4
        self._mdev_max = 0.0  # Linux: the largest 4 mdev this round trip (mdev_max_us)
        self._round_ends: int | None = None  # Linux: rtt_seq
        self._base = initial  # RTO before back-off
        self.backoffs = 0
        #: the current timeout, back-off included (2.5: at most ``maximum``); read on every
        #: ACK, so kept up to date rather than computed
        self.rto = min(maximum, initial)

    def sample(self, rtt: float, acked: int | None = None, next_seq: int | None = None) -> None:
        """A valid round-trip time (never one made ambiguous by a retransmission).
        ``acked``/``next_seq``: the sender's snd_una and snd_nxt, which mark Linux's round
        trips (without them every sample is a round of its own). With ``linux_floor``,
        Linux's estimator (``_linux_sample``); else RFC 6298's."""
        if self.linux_floor:
            self._linux_sample(rtt, acked, next_seq)
            return
        if rtt < 0:
            raise ValueError(f"an RTT cannot be negative, got {rtt}")
        srtt = self.srtt
        if srtt is None:  # 2.2: the first measurement
            srtt, rttvar = rtt, rtt / 2
        else:  # 2.3
            rttvar = _KEEP_RTTVAR * self.rttvar + BETA * abs(srtt - rtt)
            srtt = _KEEP_SRTT * srtt + ALPHA * rtt
        self.srtt, self.rttvar = srtt, rttvar
        # 2.4: max(SRTT + max(G, K * RTTVAR), minimum); 2.5: at most ``maximum``
        base = max(srtt + max(self.granularity, self.K * rttvar), self.minimum)
        self._base = self.rto = min(base, self.maximum)
        self.backoffs = 0

    def _linux_sample(self, rtt: float, acked: int | None = None,
                      next_seq: int | None = None) -> None:
        """``sample`` with ``linux_floor``: tcp_rtt_estimator and tcp_set_rto, in seconds
        instead of scaled microseconds."""
        if rtt < 0.0:
            raise ValueError(f"an RTT cannot be negative, got {rtt}")
        minimum = self.minimum
        srtt = self.srtt
        if srtt is None:  # the first sample: mdev = rtt / 2, so that RTO = 3 RTT
            srtt, self.mdev = rtt, rtt / 2
            self.rttvar = self._mdev_max = max(4 * self.mdev, minimum)
            self._round_ends = next_seq
        else:
            error = rtt - srtt
            srtt += error / 8.0
            mdev = self.mdev
            if error < 0.0:
                change = -error - mdev
                if change > 0.0:
                    change /= 8.0  # a shrinking RTT hardly raises the deviation
            else:
                change = error - mdev
            self.mdev = mdev = mdev + change / 4.0
            if 4.0 * mdev > self._mdev_max:
                self._mdev_max = 4.0 * mdev
                if self._mdev_max > self.rttvar:
                    self.rttvar = self._mdev_max
            if acked is None or self._round_ends is None or acked > self._round_ends:
                if self._mdev_max < self.rttvar:  # once per round trip: decay
                    self.rttvar -= (self.rttvar - self._mdev_max) / 4.0
                self._round_ends = next_seq
                self._mdev_max = minimum
        self.srtt = srtt
        base = srtt + self.rttvar
        base = _jiffies(base)  # __tcp_set_rto: usecs_to_jiffies, rounded up to a whole tick
        self._base = self.rto = base if base < self.maximum else self.maximum
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
