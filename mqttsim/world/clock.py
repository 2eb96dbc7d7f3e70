"""Time for the world: the small interface every backend's clock offers.

The network, the transport and the hosts schedule callbacks in scenario seconds and read the
time; they never know whether those seconds are simulated (``mqttsim.backends.sim``: SimPy)
or real (``mqttsim.backends.sockets``: an asyncio loop). A backend hands them a ``Clock``.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol


class Occurrence:
    """A scheduled callback: what a clock keeps in its queue until it is due.

    It is shaped as SimPy's step loop reads an event (``callbacks``, then ``_ok``), so the
    SimPy clock queues it without the ``simpy.Event`` machinery (no environment, no value):
    cheaper to make, millions of times per run. ``args`` is for the callback. A clock reads
    ``callbacks`` and replaces it, never changes the list, so occurrences may share one
    (the transport's segment arrivals do).
    """

    __slots__ = ("callbacks", "args")
    _ok = True  # already succeeded: SimPy never raises on it


class Clock(Protocol):
    """What the world asks of a backend's clock. Times are scenario seconds; a callback
    due at the same time as another runs after it if it was scheduled after it."""

    @property
    def now(self) -> float:
        """The current scenario time."""

    def call_at(self, t: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` at ``t`` (not before ``now``)."""

    def post(self, t: float, occurrence: Occurrence) -> None:
        """Call each of ``occurrence.callbacks`` with ``occurrence`` at ``t``."""


class Alarm:
    """One wake-up per owner, kept at the owner's earliest deadline.

    Engines and TCP senders move their deadline on nearly every packet; scheduling a clock
    callback each time would cost one event per packet. An Alarm keeps at most one pending
    wake-up: a later deadline is picked up when the current wake-up fires, an earlier one
    schedules a new wake-up and the old one is ignored when it comes.
    """

    __slots__ = ("clock", "deadline", "fire", "at")

    def __init__(self, clock: Clock, deadline: Callable[[], float | None],
                 fire: Callable[[float], None]):
        self.clock, self.deadline, self.fire = clock, deadline, fire
        self.at: float | None = None  # when the pending wake-up is due

    def arm(self) -> None:
        """Call after anything that may have moved the owner's deadline."""
        due = self.deadline()
        if due is not None and (self.at is None or due < self.at):
            self.wake_at(due)

    def wake_at(self, due: float) -> None:
        """Schedule the wake-up for ``due``, earlier than the pending one (if any)."""
        self.at = due
        self.clock.call_at(due, self._wake, due)

    def cancel(self) -> None:
        self.at = None
        self.deadline = never

    def _wake(self, due: float) -> None:
        if due != self.at:  # ``due``: the time this wake-up was scheduled for
            return  # superseded by an earlier wake-up, or cancelled
        self.at = None
        due = self.deadline()
        if due is None:
            return
        now = self.clock.now
        if due > now:
            self.wake_at(due)
            return
        self.fire(now)
        self.arm()


def never() -> None:
    """A deadline that never comes: an Alarm's owner that is down."""
    return None
