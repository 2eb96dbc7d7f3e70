"""The simulator's clock: SimPy's environment, used as an exact-time callback scheduler.

Nothing in the simulator is a SimPy process per packet (DESIGN.md, "Speed, by
construction"): a link computes when a segment arrives and the kernel calls one function
then. ``call_at`` pushes the event at the *exact* time asked for rather than at
``now + (t - now)``, whose rounding would move a keepalive expiry due at 90.0 s to
89.99999999999999 s and change what happens first.
"""

from __future__ import annotations

from heapq import heappush
from typing import Any, Callable

import simpy
from simpy.events import NORMAL, Event


class _Call(Event):
    """An already-triggered event whose only callback runs ``fn(*args)``."""

    __slots__ = ("fn", "args")

    def __init__(self, env: simpy.Environment, fn: Callable[..., Any], args: tuple):
        self.env = env
        self.callbacks = [self._run]
        self._value = None
        self._ok = True
        self.fn = fn
        self.args = args

    def _run(self, _event: Event) -> None:
        self.fn(*self.args)


class Kernel(simpy.Environment):
    """SimPy's environment with ``call_at``: all the simulator asks of SimPy.

    Hot paths read the clock as ``kernel._now`` (where SimPy keeps it) rather than through
    the ``now`` property: the simulator reads it several times per packet.
    """

    def call_at(self, t: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` at scenario time ``t`` (not before ``now``)."""
        now = self._now
        heappush(self._queue, (t if t > now else now, NORMAL, next(self._eid),
                               _Call(self, fn, args)))

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        self.call_at(self._now + delay, fn, *args)


class Alarm:
    """One wake-up per owner, kept at the owner's earliest deadline.

    Engines and TCP senders move their deadline on nearly every packet; scheduling a SimPy
    event each time would cost one event per packet. An Alarm keeps at most one pending
    wake-up: a later deadline is picked up when the current wake-up fires, an earlier one
    schedules a new wake-up and the old one is ignored when it comes.
    """

    __slots__ = ("kernel", "deadline", "fire", "at")

    def __init__(self, kernel: Kernel, deadline: Callable[[], float | None],
                 fire: Callable[[float], None]):
        self.kernel, self.deadline, self.fire = kernel, deadline, fire
        self.at: float | None = None  # when the pending wake-up is due

    def arm(self) -> None:
        """Call after anything that may have moved the owner's deadline."""
        due = self.deadline()
        if due is not None and (self.at is None or due < self.at):
            self.at = due
            self.kernel.call_at(due, self._wake, due)

    def cancel(self) -> None:
        self.at = None
        self.deadline = _never

    def _wake(self, at: float) -> None:
        if at != self.at:
            return  # superseded by an earlier wake-up, or cancelled
        self.at = None
        due = self.deadline()
        if due is None:
            return
        if due > self.kernel._now:
            self.at = due
            self.kernel.call_at(due, self._wake, due)
            return
        self.fire(self.kernel._now)
        self.arm()


def _never() -> None:
    return None
