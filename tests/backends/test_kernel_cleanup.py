"""The kernel backend leaves nothing behind: not on an exception, not on Ctrl-C or SIGTERM,
and after a SIGKILL the next run removes what the dead one left (and only that)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from mqttsim import Scenario, run
from mqttsim.backends.kernel import list_namespaces, missing_requirement
from mqttsim.backends.kernel.netns import (
    Namespaces,
    ip,
    read_sysctl,
    remove_stale,
    run_in_namespace,
    set_sysctls,
)
from mqttsim.backends.kernel.network import KernelNetwork

MISSING = missing_requirement()
needs_kernel = pytest.mark.skipif(MISSING is not None, reason=f"kernel backend: {MISSING}")
ROOT = Path(__file__).resolve().parents[2]
WAIT = 20.0  # seconds, at most, for a child to come up or go away

HOLDER = """
import sys, time
from mqttsim import Scenario
from mqttsim.backends.kernel.network import KernelNetwork
sc = Scenario.from_dict({"name": "h", "duration": 30, "clients": [{"name": "a"}, {"name": "b"}]})
with KernelNetwork(sc, 1) as net:
    net.start()
    print("up", net.emulator.pid, flush=True)
    time.sleep(30)
"""


def story() -> Scenario:
    return Scenario.from_dict({"name": "s", "duration": 2.0,
                               "clients": [{"name": "a"}, {"name": "b"}]})


def of_pid(pid: int) -> list[str]:
    return [n for n in list_namespaces() if n.startswith(f"mqs-{pid}-")]


def workdirs_of(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"mqttsim-kernel-{pid}-*"))


def gone(pid: int) -> bool:
    """The process has ended (a zombie nobody reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" in f.read()
    except FileNotFoundError:
        return True


def wait_until(condition, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def start_holder() -> tuple[subprocess.Popen, int]:
    child = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = child.stdout.readline()
        assert line.startswith("up "), line
        assert len(of_pid(child.pid)) == 3
        return child, int(line.split()[1])
    except BaseException:
        child.kill()
        child.wait(WAIT)
        remove_stale()
        raise


@needs_kernel
def test_an_exception_inside_the_block_removes_namespaces_devices_and_the_emulator():
    with pytest.raises(RuntimeError, match="on purpose"):
        with KernelNetwork(story(), 1) as net:
            emulator = net.emulator.pid
            assert len(of_pid(os.getpid())) == 3
            raise RuntimeError("failing on purpose")
    assert of_pid(os.getpid()) == []
    assert wait_until(lambda: gone(emulator))


def test_a_sysctl_this_kernel_lacks_is_skipped_and_named():
    # nothing is written: the name does not exist (here, in the test's own namespace)
    assert set_sysctls({"tcp_no_such_setting": 1}) == ["tcp_no_such_setting"]
    assert read_sysctl("tcp_no_such_setting") is None


@needs_kernel
def test_a_scenario_tcp_setting_the_kernel_cannot_take_is_said_once_per_run():
    with pytest.warns(RuntimeWarning, match=r"has no net\.ipv4\.tcp_no_such_setting \(asked: 3\)"
                      ) as seen:
        with Namespaces(["a", "b"], sysctls={"tcp_no_such_setting": 3}):
            pass
    assert len(seen) == 1
    assert of_pid(os.getpid()) == []
    # what an older kernel does anyway (no linear SYN timeouts) needs no warning
    with Namespaces(["a"], sysctls={"tcp_retries2": 5, "tcp_syn_linear_timeouts": 0}) as ns:
        assert run_in_namespace(ns.hosts["a"].namespace, lambda: read_sysctl("tcp_retries2")) == 5


@needs_kernel
def test_a_broker_command_that_fails_stops_the_run_cleanly_with_its_reason():
    with pytest.raises(RuntimeError, match="exited with status 1"):
        run(story(), backend="kernel", broker_cmd="false")
    assert of_pid(os.getpid()) == []


@needs_kernel
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_of_a_run_removes_everything(signum):
    child, emulator = start_holder()
    try:
        child.send_signal(signum)
        child.wait(WAIT)
        assert child.returncode != 0
        assert of_pid(child.pid) == []
        assert wait_until(lambda: gone(emulator))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(WAIT)
        remove_stale()


@needs_kernel
def test_after_a_sigkill_the_next_run_removes_what_the_dead_one_left():
    child, emulator = start_holder()
    child.kill()
    child.wait(WAIT)
    try:
        left = of_pid(child.pid)
        assert len(left) == 3, "a SIGKILL gives no chance to clean up"
        folders = workdirs_of(child.pid)
        assert len(folders) == 1, "the dead run's work folder (its emulator log) is left too"
        assert wait_until(lambda: gone(emulator)), "the emulator dies with its parent"
        mine = f"mqs-{os.getpid()}-999-0"  # a live run's namespace: never touched
        ip("netns", "add", mine)
        try:
            removed = remove_stale()
            assert sorted(removed) == sorted(left)
            assert mine in list_namespaces()
            assert workdirs_of(child.pid) == [], "and its work folder goes with them"
        finally:
            ip("netns", "del", mine)
    finally:
        remove_stale()
    assert of_pid(child.pid) == []


def test_requirements_say_in_one_line_what_is_missing(monkeypatch):
    from mqttsim.backends.kernel import netns
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    line = netns.missing_requirement()
    assert line is not None and "\n" not in line and "root" in line
    monkeypatch.setattr(netns.sys, "platform", "darwin")
    assert "needs Linux" in netns.missing_requirement()


def test_mqttsim_run_refuses_a_time_scale_for_the_kernel_backend_before_starting():
    done = subprocess.run([sys.executable, "-m", "mqttsim", "run",
                           str(ROOT / "data" / "scenarios" / "seed-sensor.toml"),
                           "--backend", "kernel", "--time-scale", "5"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert "real time only" in done.stderr and "Traceback" not in done.stderr


def test_tcp_congestion_is_checked_when_the_scenario_is_read():
    from mqttsim.scenario import ScenarioError
    base = {"name": "s", "clients": [{"name": "a"}]}
    assert Scenario.from_dict(base).tcp.congestion == "cubic"
    assert Scenario.from_dict({**base, "tcp": {"congestion": "reno"}}).tcp.congestion == "reno"
    with pytest.raises(ScenarioError, match="tcp.congestion = 'vegas': expected one of"):
        Scenario.from_dict({**base, "tcp": {"congestion": "vegas"}})
