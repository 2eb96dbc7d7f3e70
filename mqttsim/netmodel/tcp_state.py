"""What the TCP sender's parts share: its congestion states, its timer kinds, the layout of a
retransmission-queue entry, and Linux's clock granularity."""

from __future__ import annotations

from enum import Enum
from math import ceil


class CaState(Enum):
    """The sender's congestion state: Open, Recovery and Loss of Linux's ``tcp_ca_state``
    (include/net/tcp.h). Linux's Disorder (SACKs seen, nothing marked lost yet) is read
    from the SACK counts where it matters, and its CWR (a reduction without loss) ends at
    once where the model makes one (a tail loss probe that repaired a loss)."""

    OPEN = "open"  # no loss suspected
    RECOVERY = "recovery"  # fast recovery (RFC 6675): losses repaired from SACK and RACK
    LOSS = "loss"  # after an RTO: cwnd 1, everything not SACKed marked lost


OPEN, RECOVERY, LOSS = CaState  # the per-ACK paths compare with ``is``

#: Where each state may go next (tcp_enter_recovery, tcp_enter_loss, and the return to
#: Open when recovery ends or is undone); another RTO in Loss stays in Loss.
CA_TRANSITIONS: dict[CaState, frozenset[CaState]] = {
    OPEN: frozenset({RECOVERY, LOSS}),
    RECOVERY: frozenset({OPEN, LOSS}),
    LOSS: frozenset({OPEN, LOSS}),
}


def ca_advance(current: CaState, new: CaState) -> CaState:
    """``new``, if the sender may move there from ``current`` (else a RuntimeError: a bug)."""
    if new not in CA_TRANSITIONS[current]:
        raise RuntimeError(f"the TCP sender cannot go from {current.value} to {new.value}")
    return new


class TimerKind(Enum):
    """What the sender's one timer is for, as Linux's icsk_pending tells its ICSK_TIME_*."""

    RTO = "rto"  # retransmission timeout (RFC 6298)
    PROBE = "probe"  # tail loss probe (RFC 8985 7)
    REORDER = "reorder"  # RACK's reordering window (RFC 8985 6.3)


RTO, PROBE, REORDER = TimerKind
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
