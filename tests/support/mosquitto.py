"""Run Debian's real mosquitto broker and clients on 127.0.0.1 for interop tests.

Interop is only evidence when the other side is the real thing, so these helpers start
``/usr/sbin/mosquitto`` with a generated config on a free loopback port, and skip (naming
the apt-get command) rather than fail when the binaries are not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL_HINT = "sudo apt-get install -y mosquitto mosquitto-clients"
BROKER_CANDIDATES = ("/usr/sbin/mosquitto", "mosquitto")
# mosquitto_pub/mosquitto_sub spell the protocol versions like this; values are protocol levels.
CLIENT_VERSIONS = {"mqttv31": 3, "mqttv311": 4, "mqttv5": 5}


def find_broker() -> str | None:
    """Path of the mosquitto broker binary, or None."""
    for candidate in BROKER_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def require_mosquitto(*clients: str) -> str:
    """The broker path; skips the test, naming the install command, when anything is missing."""
    broker = find_broker()
    missing = [] if broker else ["mosquitto"]
    missing += [name for name in clients if shutil.which(name) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed; install with: {INSTALL_HINT}")
    assert broker is not None
    return broker


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float,
                   alive: Callable[[], bool] = lambda: True) -> bool:
    """Poll until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def stop_process(proc: subprocess.Popen, timeout: float = 3.0) -> None:
    """Terminate, wait, and kill if it does not go: no process outlives its test."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


@dataclass(frozen=True)
class Broker:
    """A running mosquitto: where it listens and where it logs."""

    host: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """The broker's log so far (useful in assertion messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _config(port: int, extra: str, log_path: Path) -> str:
    # A log file, not stdout: mosquitto writes files line by line but buffers a piped stdout,
    # so tests can wait for a log line while the broker runs. As root, mosquitto would switch
    # to user "mosquitto", who cannot read pytest's private temporary directories.
    as_root = "user root\n" if os.geteuid() == 0 else ""
    return (f"listener {port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            f"log_dest file {log_path}\n"
            "log_type all\n"
            "connection_messages true\n"
            f"{as_root}{extra}")


@contextmanager
def mosquitto_broker(workdir: Path, extra_config: str = "", attempts: int = 5,
                     start_timeout: float = 5.0) -> Iterator[Broker]:
    """Start mosquitto on a free 127.0.0.1 port, yield it once it accepts, stop it afterwards.

    Choosing a free port and binding it are two steps, so another process can take the port
    in between; then mosquitto exits at once and we retry with a new port.
    """
    binary = require_mosquitto()
    workdir.mkdir(parents=True, exist_ok=True)
    failures = []
    for attempt in range(attempts):
        port = free_port()
        conf = workdir / f"mosquitto-{attempt}.conf"
        log_path = workdir / f"mosquitto-{attempt}.log"
        conf.write_text(_config(port, extra_config, log_path))
        with open(workdir / f"mosquitto-{attempt}.out", "wb") as out:  # start-up errors
            proc = subprocess.Popen([binary, "-c", str(conf)], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            if wait_listening(port, start_timeout, alive=lambda: proc.poll() is None):
                broker = Broker("127.0.0.1", port, proc, log_path)
                yield broker
                return
            failures.append(f"port {port}: exit code {proc.poll()}, log:\n"
                            f"{(workdir / f'mosquitto-{attempt}.out').read_text(errors='replace')}")
        finally:
            stop_process(proc)
    raise RuntimeError(f"mosquitto did not start in {attempts} attempts:\n" + "\n".join(failures))
