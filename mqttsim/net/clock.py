"""Scenario time on a real event loop, at any speed.

The engines take ``now`` in seconds and say when they next need waking; they do not care
whether a second is a real one. A ``ScaledClock`` lets the socket drivers run a scenario
``speed`` times faster (or slower) than written: every engine timer -- keepalive, PINGRESP
wait, retry interval -- is scaled with it, because all of them are read from this clock.
The default (speed 1, origin 0) is the event loop's own clock, unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class ScaledClock:
    """``time()`` in scenario seconds; ``call_at(t, fn)`` runs ``fn`` at scenario time ``t``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, speed: float = 1.0,
                 origin: float | None = None):
        if not speed > 0:
            raise ValueError(f"speed must be a positive number of scenario seconds per real "
                             f"second, not {speed!r}")
        self.loop, self.speed = loop, float(speed)
        self.origin = loop.time() if origin is None else origin  # loop time of scenario 0

    def time(self) -> float:
        return (self.loop.time() - self.origin) * self.speed

    def loop_time(self, t: float) -> float:
        """The event loop's time at which scenario time ``t`` comes."""
        return self.origin + t / self.speed

    def call_at(self, t: float, fn: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        return self.loop.call_at(self.loop_time(t), fn, *args)

    def seconds(self, scenario_seconds: float) -> float:
        """How long ``scenario_seconds`` last in real seconds."""
        return scenario_seconds / self.speed
