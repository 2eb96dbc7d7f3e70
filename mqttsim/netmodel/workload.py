"""Workloads shared by both backends: when a publisher publishes, and what its payloads are.

Generated payloads start with a tag naming the publisher and the message's sequence number
(``msg pub-3#17 ....``), padded to the drawn size. The tag is what lets a subscriber's copy
be traced to the message it came from on either backend, even through a real broker that
knows nothing of mqttsim: MQTT itself gives a message no identity across hops (packet ids
are per connection and reused).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Protocol


class PublishPlan(Protocol):
    """The fields of ``mqttsim.scenario.model.PublishSpec`` this module reads."""

    pattern: str
    interval: float
    burst: int
    start: float
    stop: float | None
    count: int | None
    message: str | None
    size: object


def publish_times(plan: PublishPlan, end: float, rng: random.Random) -> Iterator[float]:
    """The scenario times at which ``plan`` publishes, in order, before ``stop``/``end``."""
    stop = end if plan.stop is None else min(plan.stop, end)
    limit = plan.count
    sent = 0
    t = plan.start
    while t < stop and (limit is None or sent < limit):
        if plan.pattern == "once":
            yield t
            return
        if plan.pattern == "burst":
            for _ in range(plan.burst):
                if limit is not None and sent >= limit:
                    return
                yield t
                sent += 1
            t += plan.interval
            continue
        yield t
        sent += 1
        t += rng.expovariate(1 / plan.interval) if plan.pattern == "poisson" else plan.interval


def payload_size(size, rng: random.Random) -> int:
    """Draw one payload size (bytes) from a ``SizeSpec``."""
    if size.dist == "uniform":
        return rng.randint(size.low, size.high)
    if size.dist == "exponential":
        return max(size.low, round(rng.expovariate(1 / size.mean)))
    return int(size.mean)


def make_payload(plan: PublishPlan, publisher: str, seq: int, rng: random.Random) -> bytes:
    """The fixed ``message``, or a tagged payload of the drawn size (never shorter than
    its tag: a message must stay traceable)."""
    if plan.message is not None:
        return plan.message.encode()
    tag = b"msg %s#%d" % (publisher.encode(), seq)
    size = payload_size(plan.size, rng)
    return tag if size <= len(tag) else tag + b" " + b"." * (size - len(tag) - 1)


def read_tag(payload: bytes) -> tuple[str, int] | None:
    """(publisher, sequence number) from a generated payload; None for any other payload."""
    if payload[:4] != b"msg ":
        return None
    end = payload.find(b" ", 4)
    name, sep, seq = (payload[4:] if end < 0 else payload[4:end]).rpartition(b"#")
    if not sep or not name or not seq.isdigit() or not seq.isascii():
        return None
    return name.decode(), int(seq)
