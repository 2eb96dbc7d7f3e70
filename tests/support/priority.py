"""The CPU priority of the suite's ``timing`` tests (tests/conftest.py says why)."""

from __future__ import annotations

from pathlib import Path

TIMING_NICE = -10  # CFS weight 9548 against 1024 at nice 0: ~90 % of a contended core
AUTOGROUP = Path("/proc/self/autogroup")


def autogroup_nice(path: Path = AUTOGROUP) -> int | None:
    """The nice of this process's autogroup, or None where it has none to raise.

    Linux prints ``/autogroup-N nice K`` for a process whose session started an autogroup
    (setsid), and nothing for one still in the default group, the root task group that
    init's descendants share until a setsid (kernel/sched/autogroup.c,
    proc_sched_autogroup_show_task); the file is absent where autogroups are compiled out.
    A CI runner can start the suite in that default group, so nothing is there to raise."""
    try:
        text = path.read_text()
    except OSError:
        return None
    _, found, nice = text.partition(" nice ")
    return int(nice) if found else None
