"""Suite-wide settings: which tests wait on real time.

Most of the suite is pure (codec, engines, simulator: no clock, no IO) and runs in well under
a minute. The rest waits on real clocks, sockets, subprocesses, notebook kernels or a
browser; those tests carry the ``realtime`` marker, so ``pytest -m "not realtime"`` is the
quick loop while working, and ``make test`` runs everything, in parallel (pytest-xdist).

Some of those judge real timers against a model: the sockets backend's time-scaled runs, the
kernel backend's emulated delays, keepalive bounds over real sockets. They carry the
``timing`` marker too, and run at a raised CPU priority where the suite may raise it (root, as
``make test`` runs in CI): ``make test`` runs more workers than cores because a third of the
suite sleeps on real clocks, and CPU-bound tests (notebook kernels, subprocesses) on the other
workers would otherwise stretch those timers past the races they judge. Measured on this
2-core machine with three busy loops beside tests/backends' agreement, kernel and sockets
modules: at normal priority 2 of 34 failed (118 s); at nice -10 all passed (69 s).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.priority import AUTOGROUP, TIMING_NICE, autogroup_nice

HERE = Path(__file__).resolve().parent
# Folders whose every test uses real sockets, processes or kernels, and single modules
# elsewhere that do.
REALTIME_FOLDERS = ("net", "backends", "notebooks")
REALTIME_MODULES = ("protocol/test_interop_mosquitto.py", "lab/test_sweep.py",
                    "sim/test_pcap.py", "test_cli.py", "test_packaging.py",
                    "world/test_clock.py")

# Modules whose tests judge real timers against a model (see the docstring).
TIMING_FOLDERS = ("backends",)
TIMING_MODULES = ("world/test_clock.py", "sim/test_stuck_subscriber_scenario.py",
                  "net/test_server.py", "net/test_client_api.py", "net/test_reconnect.py",
                  "net/test_v5_completeness.py", "test_packaging.py")


def _listed(path: Path, folders: tuple[str, ...], modules: tuple[str, ...]) -> bool:
    relative = path.resolve().relative_to(HERE).as_posix()
    return relative.split("/")[0] in folders or relative in modules


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if _listed(path, REALTIME_FOLDERS, REALTIME_MODULES):
            item.add_marker(pytest.mark.realtime)
        if _listed(path, TIMING_FOLDERS, TIMING_MODULES):
            item.add_marker(pytest.mark.timing)


_AUTOGROUP_BEFORE = pytest.StashKey[int]()  # the session group's nice before the run


def pytest_configure(config: pytest.Config) -> None:
    """Linux's autogroup scheduling shares the CPU between sessions first and by nice only
    within one: notebook kernels, JupyterLab and brokers that tests start in sessions of their
    own would each weigh as much as the whole test session, and a raised nice would not reach
    them. So the test session's group is raised too where allowed (root), by the main pytest
    process only, and put back when it ends; its workers share it, the ``timing`` tests first
    (the hook below). Measured here with a callgrind run and a pytest run of another session
    beside tests/backends, tests/world and test_packaging.py at 2 workers: 3 failed at nice 0,
    none with the group raised."""
    if hasattr(config, "workerinput"):  # an xdist worker: the main process does it
        return
    before = autogroup_nice()
    if before is None:  # no autogroup to raise (support/priority.py says when)
        return
    try:
        AUTOGROUP.write_text(str(TIMING_NICE))
    except OSError:  # not root
        return
    config.stash[_AUTOGROUP_BEFORE] = before


def pytest_unconfigure(config: pytest.Config) -> None:
    before = config.stash.get(_AUTOGROUP_BEFORE, None)
    if before is not None:
        AUTOGROUP.write_text(str(before))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A ``timing`` test (its set-up, call and tear-down, and the threads and processes they
    start, which inherit it) runs at TIMING_NICE; then the worker's own priority again.
    Raising needs CAP_SYS_NICE: without it the test runs as it is (a developer's machine,
    where nothing else need be running)."""
    before = os.getpriority(os.PRIO_PROCESS, 0)  # this thread's (Linux: a task's) nice
    raised = False
    if item.get_closest_marker("timing") is not None and before > TIMING_NICE:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, TIMING_NICE)
            raised = True
        except PermissionError:
            pass
    try:
        yield
    finally:
        if raised:
            os.setpriority(os.PRIO_PROCESS, 0, before)
