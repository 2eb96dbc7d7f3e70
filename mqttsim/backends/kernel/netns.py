"""Network namespaces and TUN devices for the kernel backend: made, used, and always removed.

Every host of a scenario (the broker, each client) gets its own Linux network namespace,
named ``mqs-<pid>-<run>-<index>`` so that a later run can tell its own from a crashed run's
(the pid is gone) and remove those. Inside each namespace: loopback, one TUN device
``mqs0`` with the host's address (10.77.0.0/16, private, and only ever inside these
namespaces) and one route to every other host through the TUN, carrying the congestion
control the scenario asks for (``ip route ... congctl``: the per-namespace sysctl is
refused here, the route attribute is not). The TUN file descriptors go to the emulator,
which is the only way packets move between namespaces.

Python 3.11 has no ``os.setns``: ``setns(2)`` is called through ctypes, on a short-lived
thread (a thread's network namespace is its own; the rest of the process stays put).
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import itertools
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

PREFIX = "mqs-"
TUN_NAME = "mqs0"
SUBNET = "10.77.0.0/16"
CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
IP_TIMEOUT = 10.0  # seconds for one `ip` command
NETNS_DIR = "/run/netns"
_NAME = re.compile(rf"^{PREFIX}(\d+)-(\d+)-(\d+)$")
# A run's work folder (the emulator's log) in the temporary directory, named after its
# process like the namespaces, so that a killed run's folder is found and removed too.
WORKDIR_PREFIX = "mqttsim-kernel-"
_WORKDIR = re.compile(rf"^{WORKDIR_PREFIX}(\d+)-")
_runs = itertools.count(1)
T = TypeVar("T")


class KernelBackendUnavailable(RuntimeError):
    """What this machine lacks for the kernel backend, and how to get it (one line)."""


def missing_requirement() -> str | None:
    """None when the kernel backend can run here; otherwise one line: what is missing and
    how to get it. Nothing is created by asking."""
    if not sys.platform.startswith("linux"):
        return (f"the kernel backend needs Linux (network namespaces and TUN devices); this is "
                f"{sys.platform}: use backend='sim' or 'sockets', or run in a Linux VM/container")
    if not os.path.exists("/dev/net/tun"):
        return ("the kernel backend needs /dev/net/tun: load the tun module (modprobe tun) or "
                "start the container with --device /dev/net/tun")
    if shutil.which("ip") is None:
        return "the kernel backend needs the ip command: apt-get install -y iproute2"
    if os.geteuid() != 0:
        unprivileged = _unprivileged_namespaces_work()
        how = ("unprivileged user namespaces work here: run it as `unshare -rmn sh -c 'mount -t "
               "tmpfs none /run && exec mqttsim ...'`" if unprivileged else
               "unprivileged user namespaces are off too (sysctl kernel.unprivileged_userns_clone"
               "=1 or user.max_user_namespaces > 0)")
        return f"the kernel backend needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to make network " \
               f"namespaces; {how}"
    try:
        os.close(os.open("/dev/net/tun", os.O_RDWR))
    except OSError as exc:
        return f"the kernel backend cannot open /dev/net/tun ({exc.strerror}): give the " \
               f"container --device /dev/net/tun and --cap-add NET_ADMIN"
    refused = _namespaces_refused()
    if refused:
        return f"the kernel backend cannot make network namespaces here ({refused}): give " \
               f"the container --cap-add SYS_ADMIN --cap-add NET_ADMIN (or --privileged)"
    return None


def _namespaces_refused() -> str | None:
    """Why a throwaway mount + network namespace cannot be made (``unshare -mn true``: it
    vanishes when ``true`` exits), or None."""
    if shutil.which("unshare") is None:
        return None  # cannot ask; `ip netns add` will say
    try:
        done = subprocess.run(["unshare", "-mn", "true"], capture_output=True, text=True,
                              timeout=IP_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else (done.stderr.strip() or "unshare -mn failed")


def require() -> None:
    """Raise ``KernelBackendUnavailable`` (one line) unless the backend can run here."""
    missing = missing_requirement()
    if missing is not None:
        raise KernelBackendUnavailable(missing)


def _unprivileged_namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True,
                              timeout=IP_TIMEOUT).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def available_congestion_controls() -> list[str]:
    try:
        with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
            return f.read().split()
    except OSError:
        return []


# -- setns on a thread ----------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def run_in_namespace(name: str, function: Callable[[], T]) -> T:
    """``function()`` on a thread that entered namespace ``name`` (sockets and TUN devices
    it creates belong there, and stay there when used from any thread)."""
    result: dict[str, Any] = {}

    def body() -> None:
        try:
            fd = os.open(f"{NETNS_DIR}/{name}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            result["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            result["error"] = exc

    worker = threading.Thread(target=body, name=f"setns-{name}", daemon=True)
    worker.start()
    worker.join(IP_TIMEOUT)
    if worker.is_alive():
        raise TimeoutError(f"entering namespace {name} took over {IP_TIMEOUT} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


def socket_in(name: str, family: int = socket.AF_INET,
              kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A new socket in namespace ``name``."""
    return run_in_namespace(name, lambda: socket.socket(family, kind))


def open_tun(name: str) -> int:
    """Create TUN device ``mqs0`` in namespace ``name``; returns its (non-blocking) fd. The
    device is not persistent: it vanishes when the last copy of the fd is closed."""
    def create() -> int:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", TUN_NAME.encode(),
                                                   IFF_TUN | IFF_NO_PI))
        except BaseException:
            os.close(fd)
            raise
        return fd
    return run_in_namespace(name, create)


# -- commands ---------------------------------------------------------------------------------

def ip(*args: str, namespace: str | None = None, stdin: str | None = None) -> str:
    """Run ``ip ARGS`` (inside ``namespace``); a failure raises with ip's own message."""
    command = ["ip"] + (["-n", namespace] if namespace else []) + list(args)
    done = subprocess.run(command, input=stdin, capture_output=True, text=True,
                          timeout=IP_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def list_namespaces() -> list[str]:
    """Every namespace of this machine whose name starts with ``mqs-``."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(PREFIX))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Delete ``mqs-`` namespaces whose owner process is gone (a crashed or killed run), and
    that run's work folder; returns the namespaces' names. Live runs are left alone."""
    removed = []
    for name in list_namespaces():
        match = _NAME.match(name)
        if match and not _pid_alive(int(match.group(1))):
            _delete(name)
            removed.append(name)
    for folder in stale_workdirs():
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def workdir_prefix() -> str:
    """The start of this process's work folders' names (``tempfile``'s ``prefix``)."""
    return f"{WORKDIR_PREFIX}{os.getpid()}-"


def stale_workdirs() -> list[str]:
    """Work folders of kernel runs whose process is gone."""
    root = tempfile.gettempdir()
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return sorted(os.path.join(root, n) for n in names
                  if (match := _WORKDIR.match(n)) and not _pid_alive(int(match.group(1))))


def _delete(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=IP_TIMEOUT)


def set_sysctls(values: dict[str, int]) -> list[str]:
    """Write net.ipv4 sysctls of the calling thread's network namespace (they are per
    namespace); returns the names this kernel does not have, which are skipped
    (tcp_syn_linear_timeouts came with Linux 6.5: an older kernel behaves as if it were 0)."""
    missing = []
    for name, value in values.items():
        try:
            with open(f"/proc/sys/net/ipv4/{name}", "w") as f:
                f.write(str(int(value)))
        except FileNotFoundError:
            missing.append(name)
    return missing


# What an older kernel does instead of a sysctl it does not have (so asking for that is fine)
SYSCTL_ABSENT_MEANS = {"tcp_syn_linear_timeouts": 0}


def read_sysctl(name: str) -> int | None:
    """A net.ipv4 sysctl of the calling thread's namespace (None: this kernel has none)."""
    try:
        with open(f"/proc/sys/net/ipv4/{name}") as f:
            return int(f.read())
    except FileNotFoundError:
        return None


def address_of(index: int) -> str:
    """Host ``index``'s address: 0 (the broker) is 10.77.1.1, then 10.77.1.2, ..."""
    if not 0 <= index < 254 * 250:
        raise ValueError(f"at most {254 * 250} hosts fit in {SUBNET}, not {index + 1}")
    return f"10.77.{1 + index // 254}.{1 + index % 254}"


@dataclass
class Host:
    """One namespace: its scenario name, namespace name, address and TUN fd."""

    name: str
    namespace: str
    address: str
    tun: int = -1


@dataclass
class Namespaces:
    """The namespaces of one run: ``with Namespaces(["broker", "c1"], "cubic") as net:``.

    Leaving the block (normally, by an exception, by Ctrl-C or SIGTERM while it is open)
    closes the TUN fds and deletes every namespace it made; ``atexit`` does it too if the
    interpreter ends some other way. A SIGKILL leaves them for ``remove_stale``.
    """

    names: list[str]
    congestion: str = "cubic"
    hosts: dict[str, Host] = field(default_factory=dict)
    # net.ipv4 settings for every namespace (each starts with the kernel's defaults), e.g.
    # {"tcp_syn_retries": 6}: the scenario's tcp keys that Linux has as sysctls
    sysctls: dict[str, int] = field(default_factory=dict)
    run_id: str = ""

    def __post_init__(self) -> None:
        self.run_id = f"{os.getpid()}-{next(_runs)}"
        self._made: list[str] = []
        self._closed = False

    def __enter__(self) -> Namespaces:
        require()
        choices = available_congestion_controls()
        if choices and self.congestion not in choices:
            raise ValueError(f"tcp.congestion {self.congestion!r} is not available in this "
                             f"kernel; it has: {', '.join(choices)}")
        remove_stale()
        atexit.register(self.close)
        try:
            for index, name in enumerate(self.names):
                self._make(index, name)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _make(self, index: int, name: str) -> None:
        namespace = f"{PREFIX}{self.run_id}-{index}"
        ip("netns", "add", namespace)
        self._made.append(namespace)
        host = Host(name, namespace, address_of(index))
        host.tun = open_tun(namespace)
        self.hosts[name] = host
        ip("-batch", "-", namespace=namespace, stdin="\n".join([
            "link set lo up",
            f"addr add {host.address}/32 dev {TUN_NAME}",
            f"link set {TUN_NAME} up",
            f"route add {SUBNET} dev {TUN_NAME} congctl {self.congestion}",
        ]) + "\n")
        if self.sysctls:
            missing = run_in_namespace(namespace, lambda: set_sysctls(self.sysctls))
            if index == 0:  # every namespace runs the same kernel
                self._warn_missing(missing)

    def _warn_missing(self, missing: list[str]) -> None:
        """Say which of the scenario's tcp settings this kernel cannot take (once per run):
        its TCP then differs from the simulator's, which reads them all."""
        differ = [name for name in missing
                  if SYSCTL_ABSENT_MEANS.get(name) != self.sysctls[name]]
        if differ:
            settings = ", ".join(f"net.ipv4.{name} (asked: {self.sysctls[name]})"
                                 for name in differ)
            warnings.warn(f"this kernel ({os.uname().release}) has no {settings}: its TCP "
                          "keeps its own behaviour there, so it may differ from the simulator's "
                          "(tcp_syn_linear_timeouts came with Linux 6.5; set "
                          "tcp.syn_linear_timeouts = 0 to compare on an older kernel)",
                          RuntimeWarning, stacklevel=2)

    def tun_fds(self) -> dict[str, int]:
        return {name: host.tun for name, host in self.hosts.items()}

    def release_tuns(self) -> None:
        """Close this process's copies of the TUN fds (the emulator holds its own)."""
        for host in self.hosts.values():
            if host.tun >= 0:
                os.close(host.tun)
                host.tun = -1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.release_tuns()
        for namespace in reversed(self._made):
            _delete(namespace)
        atexit.unregister(self.close)
