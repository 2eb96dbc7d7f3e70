"""The simulator's clock: SimPy's environment, used as an exact-time callback scheduler.

Nothing in the simulator is a SimPy process per packet (DESIGN.md, "Speed, by
construction"): a link computes when a segment arrives and the kernel calls one function
then. ``call_at`` pushes the event at the *exact* time asked for rather than at
``now + (t - now)``, whose rounding would move a keepalive expiry due at 90.0 s to
89.99999999999999 s and change what happens first.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Any, Callable

import simpy
from simpy.events import NORMAL, URGENT


class Occurrence:
    """What the simulator puts in SimPy's queue: only what ``Environment.step`` reads.

    SimPy's step pops an entry, calls each of ``callbacks`` with the entry and then checks
    ``_ok``; nothing else of ``simpy.Event`` is used, so a slotted object without the
    Event machinery (no environment, no value) is enough and cheaper to make, millions of
    times per run. ``args`` is for the callback (``Kernel.at``); subclasses add more.
    A kernel reads ``callbacks`` and replaces it, never changes the list, so occurrences
    may share one (the transport's segment arrivals do).
    """

    __slots__ = ("callbacks", "args")
    _ok = True  # already succeeded: SimPy never raises on it


class _Call(Occurrence):
    """Runs ``fn(*args)``: the general-purpose entry behind ``call_at``."""

    __slots__ = ("fn",)

    def _run(self, _event: "_Call") -> None:
        self.fn(*self.args)


class Kernel(simpy.Environment):
    """SimPy's environment with ``call_at``: all the simulator asks of SimPy.

    Hot paths read the clock as ``kernel._now`` (where SimPy keeps it) rather than through
    the ``now`` property: the simulator reads it several times per packet.
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
        with it directly, one Python call less per event than ``call_at``. For the most
        frequent events (segment arrivals), whose callbacks take the occurrence itself."""
        now = self._now
        heappush(self._queue, (t if t > now else now, NORMAL, next(self._eid), occurrence))

    def run(self, until: Any = None) -> Any:
        """SimPy's ``run``; up to a time, the loop of SimPy's ``step`` is written out here.

        The order is SimPy's: the stop marker is queued as SimPy queues its ``until`` event
        (same time, URGENT priority, next event id) and queued again when it stops the run
        (as SimPy's ``step`` re-queues an event whose callback stopped it), so the same
        events run and ``next(_eid)`` counts the same. What is saved is a method call and a
        ``try`` per event, a few million times per run."""
        if until is None or isinstance(until, simpy.Event):
            return super().run(until)
        at = until if isinstance(until, int) else float(until)
        if at <= self._now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        stop = Occurrence()
        stop.callbacks, stop.args = [], None
        queue = self._queue
        heappush(queue, (self._now + (at - self._now), URGENT, next(self._eid), stop))
        while True:
            self._now, _, _, event = heappop(queue)
            if event is stop:
                heappush(queue, (self._now, -1, next(self._eid), stop))
                return None
            callbacks, event.callbacks = event.callbacks, None
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                exc = type(event._value)(*event._value.args)  # as SimPy's step raises it
                exc.__cause__ = event._value
                raise exc


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
            self.wake_at(due)

    def wake_at(self, due: float) -> None:
        """Schedule the wake-up for ``due``, earlier than the pending one (if any). Nodes
        call this directly after the test ``arm`` makes, saving a call per packet."""
        self.at = due
        self.kernel.at(due, self._wake, due)

    def cancel(self) -> None:
        self.at = None
        self.deadline = never

    def _wake(self, wake: Occurrence) -> None:
        if wake.args != self.at:  # the time this wake-up was scheduled for
            return  # superseded by an earlier wake-up, or cancelled
        self.at = None
        due = self.deadline()
        if due is None:
            return
        if due > self.kernel._now:
            self.wake_at(due)
            return
        self.fire(self.kernel._now)
        self.arm()


def never() -> None:
    """A deadline that never comes: an Alarm's owner that is down."""
    return None
