"""Every backend's clock keeps the ``mqttsim.world.clock.Clock`` contract.

The world's processes and transport only work the same on every backend if each clock runs
callbacks at their exact time, in the order they were scheduled when due together (as
SimPy orders events), never before ``now``, and reports ``now`` inside a callback as at least
the time it was due. One story, run on the SimPy clock and on the real-time clock.
"""

from __future__ import annotations

import asyncio

import pytest

from mqttsim.backends.sim.kernel import Kernel
from mqttsim.backends.sockets.realtime import RealTimeClock
from mqttsim.net.clock import ScaledClock
from mqttsim.world.clock import Alarm, Occurrence

SPEED = 10  # the real-time clock plays the story 10 times faster than written (0.6 s): at 50x
# one story second is 20 ms of real time, and a busy machine delays a timer by that much


def _occurrence(note, name: str) -> Occurrence:
    """An occurrence whose callback notes ``name`` (its ``args``), as ``post`` takes it."""
    occurrence = Occurrence()
    occurrence.callbacks, occurrence.args = [lambda o: note(o.args)], name
    return occurrence


def _schedule(clock) -> list:
    """Events before, at and after each other, some scheduled while running, in every
    way a clock offers (call_at, post, in the past)."""
    log: list = []

    def note(name: str) -> None:
        log.append((round(clock.now, 6), name))

    def spawn(name: str) -> None:
        note(name)
        clock.call_at(clock.now, note, f"{name}/same-time")
        clock.call_at(clock.now + 1.0, note, f"{name}/later")
        clock.call_at(clock.now - 1.0, note, f"{name}/in-the-past")  # runs now, not before

    clock.call_at(2.0, spawn, "a")
    clock.post(1.0, _occurrence(note, "b"))
    for name in "uvw":
        clock.call_at(3.0, note, name)  # due together: in the order they were set
    clock.call_at(4.0, spawn, "c")
    return log


EXPECTED = [(1.0, "b"), (2.0, "a"), (2.0, "a/same-time"), (2.0, "a/in-the-past"),
            (3.0, "u"), (3.0, "v"), (3.0, "w"), (3.0, "a/later"), (4.0, "c"),
            (4.0, "c/same-time"), (4.0, "c/in-the-past"), (5.0, "c/later")]


def _simulated() -> list:
    kernel = Kernel()
    log = _schedule(kernel)
    kernel.run(until=6.0)
    return log


def _real_time() -> list:
    async def main() -> list:
        clock = RealTimeClock(ScaledClock(asyncio.get_running_loop(), speed=SPEED))
        log = _schedule(clock)
        await asyncio.sleep(6.0 / SPEED)
        clock.stopped = True
        return log
    return asyncio.run(main())


@pytest.mark.parametrize("run_story", [_simulated, _real_time], ids=["sim", "real-time"])
def test_callbacks_run_at_their_time_in_the_order_they_were_set(run_story) -> None:
    log = run_story()
    names = [name for _, name in log]
    assert names == [name for _, name in EXPECTED]
    if run_story is _simulated:
        assert log == EXPECTED  # simulated time is exact
    else:  # real time: never early, a little late at most
        for (t, name), (due, _) in zip(log, EXPECTED):
            assert due <= t < due + 0.5, name


def test_an_alarm_keeps_one_wake_up_at_its_owners_earliest_deadline() -> None:
    kernel = Kernel()
    deadlines = [5.0]
    fired: list = []

    def fire(now: float) -> None:
        fired.append(now)
        deadlines.pop(0)

    alarm = Alarm(kernel, lambda: deadlines[0] if deadlines else None, fire)
    alarm.arm()
    deadlines.insert(0, 2.0)  # the owner's deadline moved earlier: a new wake-up
    alarm.arm()
    kernel.run(until=10.0)
    assert fired == [2.0, 5.0]


def test_a_stop_time_in_the_past_is_refused_as_simpy_refuses_it() -> None:
    kernel = Kernel()
    kernel.run(until=2.0)
    with pytest.raises(ValueError, match="until"):
        kernel.run(until=1.0)


def _stop_story(run_until) -> tuple:
    """Events before, at and after the stop time, some scheduled while running, run in
    two stretches: the log, the clock and SimPy's event count after each."""
    kernel = Kernel()
    log: list = []

    def note(name: str) -> None:
        log.append((kernel.now, name))

    def spawn(name: str) -> None:
        note(name)
        kernel.call_at(kernel.now, note, f"{name}/same-time")
        kernel.call_at(kernel.now + 1.0, note, f"{name}/later")

    kernel.call_at(2.0, spawn, "a")
    kernel.post(1.0, _occurrence(note, "b"))
    kernel.call_at(5.0, note, "at-the-stop-time")  # after the stop marker: not run
    kernel.call_at(4.0, spawn, "c")
    kernel.call_at(7.0, note, "after")
    run_until(kernel, 5.0)
    first = (list(log), kernel.now, next(kernel._eid))
    run_until(kernel, 8.0)  # a second run picks up where the first stopped
    return first + (list(log), kernel.now, next(kernel._eid))


def test_the_kernels_run_loop_matches_simpys_run_event_for_event() -> None:
    import simpy
    ours = _stop_story(Kernel.run)
    simpys = _stop_story(simpy.Environment.run)
    assert ours == simpys
    assert ours[1] == 5.0 and ours[4] == 8.0
    assert [name for _, name in ours[3]][-3:] == ["at-the-stop-time", "c/later", "after"]


def test_a_timing_test_runs_at_the_raised_priority_and_its_threads_inherit_it():
    """tests/conftest.py raises a ``timing`` test's priority (this module is one) where the
    suite may: as root, the test and a thread it starts run at TIMING_NICE, and so does the
    test session's autogroup."""
    import os
    import threading

    from support.priority import TIMING_NICE, autogroup_nice

    if os.geteuid() != 0:
        pytest.skip("raising a priority needs root (CAP_SYS_NICE)")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))
    thread.start()
    thread.join(5)
    assert os.getpriority(os.PRIO_PROCESS, 0) == TIMING_NICE
    assert seen == [TIMING_NICE]
    assert autogroup_nice() in (None, TIMING_NICE)  # the session's autogroup, if it has one


def test_a_process_in_the_default_autogroup_has_no_autogroup_nice_to_raise(tmp_path):
    """Linux prints nothing in /proc/PID/autogroup for a process that never left init's
    default group (CI runners can start the suite there); the suite then raises nothing
    rather than failing to parse it."""
    from support.priority import autogroup_nice

    group = tmp_path / "autogroup"
    assert autogroup_nice(group) is None  # compiled out: no file
    group.write_text("")
    assert autogroup_nice(group) is None
    group.write_text("/autogroup-2651 nice -10\n")
    assert autogroup_nice(group) == -10
