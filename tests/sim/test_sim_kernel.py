"""The simulator's kernel runs events exactly as SimPy's own ``run`` would.

``Kernel.run`` writes SimPy's step loop out for speed; these stories run the same schedule
through it and through ``simpy.Environment.run`` and require the same log, clock and event
count (the ``events`` statistic of every run is ``next(kernel._eid)``).
"""

from __future__ import annotations

import simpy

from mqttsim.sim.kernel import Kernel


def _story(run_until) -> tuple[list, float, int]:
    """Events before, at and after the stop time, some scheduled while running."""
    kernel = Kernel()
    log: list = []

    def note(name: str) -> None:
        log.append((kernel.now, name))

    def spawn(name: str) -> None:
        note(name)
        kernel.call_at(kernel.now, note, f"{name}/same-time")
        kernel.call_at(kernel.now + 1.0, note, f"{name}/later")

    kernel.call_at(2.0, spawn, "a")
    kernel.at(1.0, lambda o: note(o.args), "b")
    kernel.call_at(5.0, note, "at-the-stop-time")  # after the stop marker: not run
    kernel.call_at(4.0, spawn, "c")
    kernel.call_at(7.0, note, "after")
    run_until(kernel, 5.0)
    first = (list(log), kernel.now, next(kernel._eid))
    run_until(kernel, 8.0)  # a second run picks up where the first stopped
    return first + (list(log), kernel.now, next(kernel._eid))


def test_kernel_run_matches_simpy_run_event_for_event() -> None:
    ours = _story(Kernel.run)
    simpys = _story(simpy.Environment.run)
    assert ours == simpys
    log, now, _ = ours[:3]
    assert now == 5.0
    assert [name for _, name in log] == ["b", "a", "a/same-time", "a/later", "c",
                                         "c/same-time"]
    assert [name for _, name in ours[3]][-3:] == ["at-the-stop-time", "c/later", "after"]


def test_a_stop_time_in_the_past_is_refused_as_simpy_refuses_it() -> None:
    kernel = Kernel()
    kernel.run(until=2.0)
    try:
        kernel.run(until=1.0)
    except ValueError as exc:
        assert "until" in str(exc)
    else:
        raise AssertionError("run(until) before now must raise")
