"""A scenario's network made real: namespaces per host, joined by the emulator process.

``KernelNetwork`` is the one place that starts and stops things, so it is the one place
that cleans up: leaving its ``with`` block -- normally, by an exception, by Ctrl-C, or by
SIGTERM (turned into ``SystemExit`` for the block's duration) -- stops the emulator
(bounded wait, then kill) and deletes every namespace; the TUN devices vanish with the
last fd. A SIGKILL leaves namespaces named after a dead pid, which the next run removes.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .emulator import EmulatorConfig, EmulatorLog
from .netns import Host, Namespaces, workdir_prefix

START_TIMEOUT = 20.0  # seconds for the emulator to import and say ready
STOP_TIMEOUT = 20.0  # seconds for it to write its log after being told to stop
BROKER_PORT = 1883


class KernelNetwork:
    """``with KernelNetwork(scenario, seed) as net: origin = net.start(); ...; log =
    net.stop()``. ``net.hosts[name]`` has each host's namespace and address."""

    def __init__(self, scenario: Any, seed: int = 0, capture: bool = True):
        self.scenario, self.seed, self.capture = scenario, seed, capture
        names = [scenario.broker.name] + [c.name for c in scenario.clients]
        tcp = scenario.tcp
        # Linux's own give-up rules, set from the scenario as the simulator reads them
        # (netmodel.rto.give_up_after, netmodel.tcp.syn_schedule), so both backends use one.
        self.namespaces = Namespaces(names, tcp.congestion, sysctls={
            "tcp_retries2": tcp.max_retransmits, "tcp_syn_retries": tcp.syn_retries,
            "tcp_syn_linear_timeouts": tcp.syn_linear_timeouts})
        self.emulator: subprocess.Popen | None = None
        self.origin: float | None = None
        self.log: EmulatorLog | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None
        self._old_sigterm: Any = None

    @property
    def hosts(self) -> dict[str, Host]:
        return self.namespaces.hosts

    @property
    def broker(self) -> Host:
        return self.hosts[self.scenario.broker.name]

    @property
    def congestion(self) -> str:
        return self.namespaces.congestion

    def __enter__(self) -> KernelNetwork:
        self._catch_sigterm()
        try:
            self._workdir = tempfile.TemporaryDirectory(prefix=workdir_prefix())
            self.namespaces.__enter__()
            self._spawn()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def workdir(self) -> Path:
        return Path(self._workdir.name)

    def _spawn(self) -> None:
        hosts = [(h.name, h.address, h.tun) for h in self.hosts.values()]
        config = EmulatorConfig(hosts, self.scenario, self.seed,
                                str(self.workdir / "emulator.log"), self.capture)
        blob = pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
        self.emulator = subprocess.Popen(
            [sys.executable, "-c", "import sys; from mqttsim.backends.kernel.emulator import main; "
                                  "sys.exit(main())"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=[h[2] for h in hosts],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                p for p in [str(Path(__file__).resolve().parents[3]),
                            os.environ.get("PYTHONPATH", "")] if p)})
        self.emulator.stdin.write(struct.pack("<Q", len(blob)) + blob)
        self.emulator.stdin.flush()
        self.namespaces.release_tuns()  # the emulator's copies keep the devices alive
        line = _readline(self.emulator.stdout, START_TIMEOUT)
        if line != b"ready\n":
            raise RuntimeError(f"the link emulator did not start (said {line!r}, exit status "
                               f"{self.emulator.poll()})")

    def start(self, origin: float | None = None) -> float:
        """Scenario time 0 is ``origin`` (CLOCK_MONOTONIC seconds; default now)."""
        self.origin = time.monotonic() if origin is None else origin
        self.emulator.stdin.write(struct.pack("<d", self.origin))
        self.emulator.stdin.flush()
        return self.origin

    def now(self) -> float:
        return time.monotonic() - self.origin

    def stop(self) -> EmulatorLog:
        """Stop the emulator and return its log (packets, links, statistics)."""
        if self.log is not None:
            return self.log
        if self.emulator is None or self.origin is None:
            raise RuntimeError("the emulator was not started")
        self.emulator.stdin.close()  # EOF: stop forwarding, write the log
        try:
            self.emulator.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.emulator.kill()
            self.emulator.wait(STOP_TIMEOUT)
            raise RuntimeError(f"the link emulator did not stop within {STOP_TIMEOUT} s")
        with open(self.workdir / "emulator.log", "rb") as f:
            self.log = pickle.load(f)
        return self.log

    def close(self) -> None:
        try:
            if self.emulator is not None and self.emulator.poll() is None:
                try:
                    self.emulator.stdin.close()  # EOF stops it, even before the run began
                except OSError:
                    pass
                self.emulator.terminate()
                try:
                    self.emulator.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.emulator.kill()
                    self.emulator.wait(STOP_TIMEOUT)
            if self.emulator is not None:
                for pipe in (self.emulator.stdin, self.emulator.stdout):
                    if pipe is not None and not pipe.closed:
                        try:
                            pipe.close()
                        except OSError:
                            pass
        finally:
            self.namespaces.close()
            if self._workdir is not None:
                self._workdir.cleanup()
                self._workdir = None
            self._restore_sigterm()

    def _catch_sigterm(self) -> None:
        """SIGTERM ends the block with SystemExit (so cleanup runs), main thread only."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._old_sigterm = signal.getsignal(signal.SIGTERM)
        if self._old_sigterm in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _sigterm_exits)
        else:
            self._old_sigterm = None  # someone handles it already: leave theirs

    def _restore_sigterm(self) -> None:
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None


def _sigterm_exits(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _readline(stream: Any, timeout: float) -> bytes:
    """One line from a pipe, or b'' after ``timeout`` seconds."""
    import select
    if not select.select([stream], [], [], timeout)[0]:
        return b""
    return stream.readline()
