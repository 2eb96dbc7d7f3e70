"""Scenario time on a real asyncio loop, as the world's ``Clock``."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any

from ...net.clock import ScaledClock
from ...world.clock import Occurrence


class RealTimeClock:
    """A ``mqttsim.world.clock.Clock`` on a real event loop, in scenario time.

    Entries wait in its own queue, ordered by (time, order of scheduling) as
    SimPy orders them -- asyncio does not promise to run two timers due at the same moment
    in the order they were set, and a publish due with its client's connect must still
    come after it. One loop timer is kept at the earliest entry. Inside a callback, ``now``
    is at least the time it was due (asyncio may wake a hair early).
    """

    def __init__(self, scaled: ScaledClock):
        self.scaled = scaled
        self._floor = 0.0
        self._queue: list[tuple[float, int, Callable[..., Any], tuple]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.stopped = False  # after the run: scheduled callbacks no longer run
        self.events_processed = 0
        self.max_lag = 0.0  # how late (scenario s) a callback ran, at worst: a busy machine

    @property
    def now(self) -> float:
        t = self.scaled.time()
        return t if t > self._floor else self._floor

    def call_at(self, t: float, fn: Callable[..., Any], *args: Any) -> None:
        # Not before now, as the SimPy clock queues it: a callback asked for in the past
        # runs after those already due now, in the order they were set.
        now = self.now
        if t < now:
            t = now
        heapq.heappush(self._queue, (t, next(self._order), fn, args))
        if self._timer_at is None or t < self._timer_at:
            self._arm(t)

    def post(self, t: float, occurrence: Occurrence) -> None:
        self.call_at(t, self._fire, occurrence)

    @staticmethod
    def _fire(occurrence: Occurrence) -> None:
        for callback in occurrence.callbacks:
            callback(occurrence)

    def _arm(self, t: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = t
        self._timer = self.scaled.call_at(t, self._run_due)

    def _run_due(self) -> None:
        self._timer, self._timer_at = None, None
        queue = self._queue
        while queue and not self.stopped:
            t = queue[0][0]
            if t > self.scaled.time() and t > self._floor:
                break
            _, _, fn, args = heapq.heappop(queue)
            late = self.scaled.time() - t
            if late > self.max_lag:
                self.max_lag = late
            self._floor = max(self._floor, t)
            self.events_processed += 1
            fn(*args)
        if queue and not self.stopped:
            self._arm(queue[0][0])
