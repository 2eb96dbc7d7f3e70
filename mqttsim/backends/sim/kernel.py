"""The simulator's clock: SimPy's environment, used as an exact-time callback scheduler.

Nothing in the simulator is a SimPy process per packet (DESIGN.md, "Speed, by
construction"): a link computes when a segment arrives and the kernel calls one function
then. ``call_at`` pushes the event at the *exact* time asked for rather than at
``now + (t - now)``, whose rounding would move a keepalive expiry due at 90.0 s to
89.99999999999999 s and change what happens first.

A measured trick (issue 14): the world reads the clock about 20 times per delivered
message, and SimPy's ``now`` is a property (a Python call each time), stepped by
``Environment.step`` (another call per event). Here ``now`` is a plain attribute that
``run`` writes as it takes each event off SimPy's queue: 5.2 % fewer instructions per
delivery in ``benchmarks/sim.py``'s model (callgrind, 3,000 deliveries, OPENBLAS_NUM_THREADS=1:
1.213 G -> 1.150 G for the run). That is under the 10 % the project asks of a trick, and kept
only because the restructure into world/backends cost 13 % there and this wins back part.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any, Callable

import simpy
from simpy.events import NORMAL, URGENT

from ...world.clock import Occurrence


class _Call(Occurrence):
    """Runs ``fn(*args)``: the general-purpose entry behind ``call_at``."""

    __slots__ = ("fn",)

    def _run(self, _event: "_Call") -> None:
        self.fn(*self.args)


class Kernel(simpy.Environment):
    """SimPy's environment as a ``mqttsim.world.clock.Clock``.

    Entries go straight into SimPy's queue with SimPy's own ordering key (time, priority,
    event id), so they run in SimPy's order. SimPy's code keeps the time in ``_now``; here
    that is an alias of the plain attribute ``now`` (see the module's docstring).
    """

    now: float = 0.0  # shadows SimPy's property: an instance attribute from here on

    @property
    def _now(self) -> float:
        return self.now

    @_now.setter
    def _now(self, t: float) -> None:
        self.now = t

    def call_at(self, t: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` at scenario time ``t`` (not before ``now``)."""
        call = _Call()
        call.fn, call.args, call.callbacks = fn, args, [call._run]
        now = self.now
        heappush(self._queue, (t if t > now else now, NORMAL, next(self._eid), call))

    def post(self, t: float, occurrence: Occurrence) -> None:
        """Process ``occurrence`` at ``t`` (not before ``now``): SimPy calls its callbacks
        with it directly. For the most frequent events (segment arrivals), whose callbacks
        take the occurrence itself."""
        now = self.now
        heappush(self._queue, (t if t > now else now, NORMAL, next(self._eid), occurrence))

    def run(self, until: Any = None) -> Any:
        """SimPy's ``run``; up to a time, SimPy's ``step`` loop is written out here so that
        it sets ``now`` as a plain attribute and costs no call per event.

        The order is SimPy's: the stop marker is queued as SimPy queues its ``until`` event
        (same time, URGENT priority, next event id) and queued again when it stops the run
        (as SimPy's ``step`` re-queues an event whose callback stopped it), so the same
        events run and ``next(_eid)`` counts the same (tests/world/test_clock.py checks the
        story against SimPy's own ``Environment.run``)."""
        if until is None or isinstance(until, simpy.Event):
            return super().run(until)
        at = until if isinstance(until, int) else float(until)
        if at <= self.now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        stop = Occurrence()
        stop.callbacks, stop.args = [], None
        queue = self._queue
        heappush(queue, (self.now + (at - self.now), URGENT, next(self._eid), stop))
        while True:
            self.now, _, _, event = heappop(queue)
            if event is stop:
                heappush(queue, (self.now, -1, next(self._eid), stop))
                return None
            callbacks, event.callbacks = event.callbacks, None
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                exc = type(event._value)(*event._value.args)  # as SimPy's step raises it
                exc.__cause__ = event._value
                raise exc
