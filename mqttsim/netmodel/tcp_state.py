"""What the TCP sender's parts share: its congestion states, its timer kinds, the layout of a
retransmission-queue entry, and Linux's clock granularity."""

from __future__ import annotations

from math import ceil

OPEN, RECOVERY, LOSS = "open", "recovery", "loss"
RTO, PROBE, REORDER = "rto", "probe", "reorder"
INITIAL_WINDOW = 10  # RFC 6928, TCP_INIT_CWND
DUPTHRESH = 3  # RFC 5681 3.2, Linux's initial tp->reordering
# Linux's TCP timers count jiffies: usecs_to_jiffies rounds a delay up to the next tick, and
# short timers get TCP_TIMEOUT_MIN = 2 jiffies more (include/net/tcp.h). HZ = 250 is this
# machine's kernel (CONFIG_HZ=250, Debian's default): 4 ms ticks, which is what makes loss
# repair on a 1 ms path take ~10 ms, not ~1 ms.
HZ = 250.0  # a float: float * int costs a type check and a conversion
TCP_TIMEOUT_MIN = 2 / HZ


def _jiffies(delay: float) -> float:
    """usecs_to_jiffies: a delay rounded up to whole ticks (a product a hair above a whole
    tick from float rounding counts as that tick). ``math.ceil`` rather than ``int()`` and
    a comparison: 31 ns instead of 95 (timeit), and a run rounds ~8 timers per message."""
    return ceil(delay * HZ - 1e-9) / HZ
TCP_RTO_MIN = 0.2
INF = float("inf")

# A retransmission-queue entry is a list (made and read on every segment); _ORDER counts
# transmissions, so that RACK can tell which of two sent in the same instant went last
# (Linux's microsecond clock does it there: tcp_rack_sent_after).
_SEG, _SENT, _END, _EVER, _SACKED, _LOST, _RETX, _ORDER = range(8)
