"""One direction of a link: what happens to a packet (or TCP segment) put on it.

The model is the textbook one, in the order a packet meets it: the link must be up (an
outage drops what is sent into it or still on the wire when it starts); the packet joins a
drop-tail queue of bounded length behind packets still being serialized; it is serialized at
the link's bandwidth; it may be lost (Bernoulli, or Gilbert-Elliott for bursts); it arrives
after the propagation latency plus jitter. Jitter never reorders packets of one direction:
a TCP stream over one path arrives in order, so a packet never overtakes the one before.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bernoulli:
    """Each packet is lost independently with probability ``p``."""

    p: float = 0.0

    def __post_init__(self) -> None:
        _check_probability("loss", self.p)


@dataclass(frozen=True)
class GilbertElliott:
    """Bursty loss: a two-state Markov chain (good/bad) stepped once per packet.

    ``p_good_to_bad`` and ``p_bad_to_good`` are the per-packet transition probabilities;
    ``loss_good`` and ``loss_bad`` the loss probability in each state. The mean burst length
    is 1 / p_bad_to_good packets.
    """

    p_good_to_bad: float
    p_bad_to_good: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    def __post_init__(self) -> None:
        for name in ("p_good_to_bad", "p_bad_to_good", "loss_good", "loss_bad"):
            _check_probability(name, getattr(self, name))
        if self.p_bad_to_good == 0 and self.p_good_to_bad > 0:
            raise ValueError("p_bad_to_good is 0: once bad, the link would never recover")

    @property
    def mean_loss(self) -> float:
        """Long-run loss rate (stationary distribution of the chain)."""
        total = self.p_good_to_bad + self.p_bad_to_good
        bad_share = self.p_good_to_bad / total if total else 0.0
        return (1 - bad_share) * self.loss_good + bad_share * self.loss_bad


@dataclass(frozen=True)
class Outage:
    """The link is down from ``start`` to ``end`` (seconds of scenario time)."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"outage must satisfy 0 <= start < end, got {self.start}..{self.end}")

    def overlaps(self, begin: float, finish: float) -> bool:
        return self.start <= finish and begin < self.end


@dataclass(frozen=True)
class LinkParams:
    """What a scenario says about one direction of a link."""

    bandwidth: float | None = None  # bits per second; None: no serialization delay
    latency: float = 0.0  # one-way propagation delay, seconds
    jitter: float = 0.0  # extra delay drawn uniformly from [0, jitter] seconds
    queue: int | None = None  # packets waiting or being serialized; None: unbounded
    loss: Bernoulli | GilbertElliott = field(default_factory=Bernoulli)
    outages: tuple[Outage, ...] = ()

    def __post_init__(self) -> None:
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be positive (bits/s), got {self.bandwidth}")
        if self.latency < 0 or self.jitter < 0:
            raise ValueError(f"latency and jitter must be >= 0, got {self.latency}, {self.jitter}")
        if self.queue is not None and self.queue < 1:
            raise ValueError(f"queue must hold at least one packet, got {self.queue}")

    def down_at(self, t: float) -> bool:
        return any(o.start <= t < o.end for o in self.outages)


@dataclass(frozen=True, slots=True)
class Transmission:
    """The fate of one packet: when it arrives, or why it never will."""

    sent: float
    size: int
    arrival: float | None  # None when dropped
    dropped: str | None = None  # "outage" | "queue_full" | "loss"
    queued: float = 0.0  # seconds spent waiting behind other packets


class LinkDirection:
    """The state of one direction of a link: its queue, its loss chain, its last arrival."""

    def __init__(self, params: LinkParams, rng: random.Random):
        self.params = params
        self.rng = rng
        self._busy_until = 0.0  # when the transmitter finishes what it already has
        self._in_queue: deque[float] = deque()  # finish times of packets not yet serialized
        self._last_arrival = 0.0
        self._bad = False  # Gilbert-Elliott state
        self.sent = self.delivered = self.bytes_sent = 0
        self.dropped: dict[str, int] = {"outage": 0, "queue_full": 0, "loss": 0}
        self.last_dropped: str | None = None
        self.last_queued = 0.0
        # Read for every packet, so copied out of the (frozen) params once.
        self._bandwidth, self._latency = params.bandwidth, params.latency
        self._jitter = params.jitter
        self._limit, self._outages = params.queue, params.outages
        # One arrival() for every link: two copies without the queue/outage (and
        # serialization/jitter) checks saved 3 % in benchmarks/sim.py, under the 10 % that
        # would pay for keeping three copies in step (issue 14).

    def send(self, now: float, size: int) -> Transmission:
        """Put ``size`` bytes on the link at ``now``; returns what becomes of them."""
        arrival = self.arrival(now, size)
        return Transmission(now, size, arrival, self.last_dropped, self.last_queued)

    def arrival(self, now: float, size: int) -> float | None:
        """``send`` without the Transmission object (the simulator's hot path): the arrival
        time, or None with the reason in ``last_dropped``; the wait in ``last_queued``.

        Kept because it pays (issue 14 item 5): the transport calling ``send`` and reading
        the Transmission instead costs 8.2 % more instructions per delivery in
        ``benchmarks/sim.py``'s model (489.5k -> 529.8k, callgrind, 3,000 minus 100
        deliveries as benchmarks/README.md says; +8.9 calls, +281 bytecodes), still 2.5 %
        (501.6k) with a Transmission that is not frozen."""
        self.sent += 1
        self.last_dropped, self.last_queued = None, 0.0
        limit = self._limit
        if limit is not None:  # only a bounded queue needs to know who is still in it
            queue = self._in_queue
            while queue and queue[0] <= now:
                queue.popleft()
        outages = self._outages
        if outages and self.params.down_at(now):
            return self._drop("outage")
        if limit is not None and len(queue) >= limit:
            return self._drop("queue_full")
        busy = self._busy_until
        start = now if now > busy else busy
        bandwidth = self._bandwidth
        finish = start + size * 8 / bandwidth if bandwidth else start
        self._busy_until = finish
        if limit is not None:
            queue.append(finish)
        self.bytes_sent += size
        self.last_queued = start - now
        if self._lost():
            return self._drop("loss")
        jitter = self._jitter
        arrival = finish + self._latency + (self.rng.uniform(0.0, jitter) if jitter else 0.0)
        if outages and any(o.overlaps(now, arrival) for o in outages):
            return self._drop("outage")  # the link died under it
        last = self._last_arrival
        if arrival < last:
            arrival = last  # no overtaking within one direction
        self._last_arrival = arrival
        self.delivered += 1
        return arrival

    def _lost(self) -> bool:
        loss = self.params.loss
        if isinstance(loss, Bernoulli):  # no draw on a lossless link: its stream stays put
            return loss.p > 0 and self.rng.random() < loss.p
        # Gilbert-Elliott: step the chain, then draw in the new state.
        if self._bad:
            if self.rng.random() < loss.p_bad_to_good:
                self._bad = False
        elif self.rng.random() < loss.p_good_to_bad:
            self._bad = True
        rate = loss.loss_bad if self._bad else loss.loss_good
        return rate > 0 and self.rng.random() < rate

    def _drop(self, reason: str) -> None:
        self.dropped[reason] += 1
        self.last_dropped = reason


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in 0..1, got {value}")
