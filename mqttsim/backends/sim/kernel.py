"""The simulator's clock: SimPy's environment, used as an exact-time callback scheduler.

Nothing in the simulator is a SimPy process per packet (DESIGN.md, "Speed, by
construction"): a link computes when a segment arrives and the kernel calls one function
then. ``call_at`` pushes the event at the *exact* time asked for rather than at
``now + (t - now)``, whose rounding would move a keepalive expiry due at 90.0 s to
89.99999999999999 s and change what happens first.

The run loop is SimPy's own ``Environment.run``: a hand-written copy of its step loop saved
about 3 % of a run (issue 14), not worth a private-API copy to keep in step with SimPy.
"""

from __future__ import annotations

from heapq import heappush
from typing import Any, Callable

import simpy
from simpy.events import NORMAL

from ...world.clock import Occurrence


class _Call(Occurrence):
    """Runs ``fn(*args)``: the general-purpose entry behind ``call_at``."""

    __slots__ = ("fn",)

    def _run(self, _event: "_Call") -> None:
        self.fn(*self.args)


class Kernel(simpy.Environment):
    """SimPy's environment as a ``mqttsim.world.clock.Clock``.

    Entries go straight into SimPy's queue with SimPy's own ordering key (time, priority,
    event id), so SimPy runs them in SimPy's order.
    """

    def call_at(self, t: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` at scenario time ``t`` (not before ``now``)."""
        call = _Call()
        call.fn, call.args, call.callbacks = fn, args, [call._run]
        now = self._now
        heappush(self._queue, (t if t > now else now, NORMAL, next(self._eid), call))

    def at(self, t: float, callback: Callable[[Occurrence], Any], args: Any = None) -> None:
        """Call ``callback(occurrence)`` at ``t`` (not before ``now``), ``args`` in
        ``occurrence.args``: one Python call less per event than ``call_at``, for frequent
        events (wake-ups, publishes, delayed ACKs)."""
        occurrence = Occurrence()
        occurrence.callbacks, occurrence.args = [callback], args
        now = self._now
        heappush(self._queue, (t if t > now else now, NORMAL, next(self._eid), occurrence))

    def post(self, t: float, occurrence: Occurrence) -> None:
        """Process ``occurrence`` at ``t`` (not before ``now``): SimPy calls its callbacks
        with it directly. For the most frequent events (segment arrivals), whose callbacks
        take the occurrence itself."""
        now = self._now
        heappush(self._queue, (t if t > now else now, NORMAL, next(self._eid), occurrence))
