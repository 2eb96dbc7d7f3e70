"""The kernel backend: a scenario over Linux's own TCP, across the emulated links, in real time.

Hosts are network namespaces joined only through the link emulator (``network.py``).
The broker is ``mqttsim broker``'s server in this process, its listening socket made in
the broker's namespace -- or any broker command (``broker_cmd``, e.g. ``mosquitto -c
{conf}``) started inside that namespace. The clients are the same driver as on the other
backends (``ClientProcess``: workloads, subscribe after CONNACK, reconnect back-off,
crashes); each connection is a real socket made in its client's namespace and connected
straight to the broker's address. No relay, no model of TCP: handshakes, timers,
retransmissions, congestion control and give-ups are the kernels'.

Rows: packets from the engines' events (arrival = when the receiving engine reported it,
as on the sockets backend), connections with the reasons the engines and sockets gave,
segments from the emulator's log of the kernels' real packets, links from the emulator's
``LinkDirection`` counters, and ``tcp_info`` samples of every client connection.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...net.clock import ScaledClock
from ...net.server import BrokerServer, socket_end
from ...protocol.broker import BrokerEngine
from ...world.end_state import DEAD, ESTABLISHED
from ...world.hosts import ClientProcess, broker_config
from ...world.network import Network
from ..common import path_outages, run_in_fresh_loop
from ..sockets.realtime import RealTimeClock
from ..sockets.relay import TaskSet, reset
from ..sockets.runner import InProcessBroker, RealSocketEnd, SocketRecorder, SocketRecording
from .netns import CLONE_NEWNET, NETNS_DIR, _setns, socket_in
from .network import BROKER_PORT, KernelNetwork
from .packets import TCP_INFO_COLUMNS, record_segments, tcp_info

CHECK_EVERY = 0.1  # real seconds between checks for a failed callback during a run
TCP_INFO_EVERY = 0.5  # seconds between TCP_INFO samples of every open connection
BROKER_READY_TIMEOUT = 10.0  # seconds for an external broker to accept connections
BROKER_STOP_TIMEOUT = 5.0
BROKER_CONF = "listener {port} {address}\nallow_anonymous true\n"


@dataclass
class KernelRecording(SocketRecording):
    """A kernel run's recording: the emulator's log and statistics, TCP_INFO samples,
    the congestion control used, the raw packets (for a real pcap)."""

    tcp_info: list[tuple] = field(default_factory=list)
    emulator: dict = field(default_factory=dict)
    congestion: str = ""
    raw_packets: list[tuple[float, bytes]] = field(default_factory=list)
    addresses: dict[str, str] = field(default_factory=dict)


def check_kernel_run(scenario: Any, time_scale: float = 1.0) -> None:
    """Refuse, before anything starts, what the kernel backend cannot do."""
    if time_scale != 1.0:
        raise ValueError("the kernel backend runs in real time only: kernel TCP timers "
                         "(RTO, delayed ACK, keepalive give-up) cannot be scaled; leave out "
                         "time_scale / --time-scale")
    if scenario.transport != "tcp":
        raise ValueError(f"the kernel backend runs TCP only (the kernel's); transport = "
                         f"{scenario.transport!r} is the simulator's teaching model")


class entered_namespace:
    """This thread inside namespace ``name`` for the block (``setns(2)`` and back)."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> None:
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        target = os.open(f"{NETNS_DIR}/{self.name}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)

    def __exit__(self, *exc_info: Any) -> None:
        try:
            _setns(self._home)
        finally:
            os.close(self._home)


assert CLONE_NEWNET  # setns(2) with it: the network namespace only


class KernelEnd(RealSocketEnd):
    """A client's real socket in its own namespace, connected to the broker's address
    across the emulator. ``ClientProcess`` drives it as it drives any end."""

    def __init__(self, backend: KernelTransport, client: str, app: Any):
        super().__init__(backend, app)
        self.client = client
        self.conn = next(backend.ids)
        host = backend.net.hosts[client]
        sock = socket_in(host.namespace)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host.address, 0))
        self.sock = sock
        backend.conn_of[(host.address, sock.getsockname()[1])] = self.conn
        backend.tasks.spawn(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_connect(self.sock, self.backend.broker_address)
            await loop.create_connection(lambda: self, sock=self.sock)
        except ConnectionRefusedError:
            self._give_up("refused")
        except TimeoutError:
            self._give_up("syn_timeout")  # the kernel's SYN retries ran out
        except OSError:
            self._give_up("reset")

    def _give_up(self, reason: str) -> None:
        self.sock.close()
        self._report(reason)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.state is DEAD:  # the app gave up before the socket came up
            reset(self.transport)
            return
        self._established()

    def connection_lost(self, exc: Exception | None) -> None:
        self._report(socket_end(exc))  # as errno tells it

    def abort(self) -> None:
        if self.transport is None:
            self.sock.close()
        super().abort()


class KernelTransport:
    """What ``ClientProcess`` opens connections with: sockets in the clients' namespaces."""

    def __init__(self, net: KernelNetwork, clock: ScaledClock):
        self.net, self.clock = net, clock
        self.broker_address = (net.broker.address, BROKER_PORT)
        self.ids = itertools.count(1)
        self.conn_of: dict[tuple[str, int], int] = {}
        self.ends: list[KernelEnd] = []
        self.tasks = TaskSet()
        self.over = False
        self.samples: list[tuple] = []
        self.broker_sockets: Any = None  # () -> [(conn, socket)] of the broker's side

    def open(self, client: str, app: Any, broker: Any) -> KernelEnd:
        end = KernelEnd(self, client, app)
        self.ends.append(end)
        return end

    def conn_of_peer(self, peer: Any) -> int | None:
        return None if peer is None else self.conn_of.get((peer[0], peer[1]))

    def sample(self) -> None:
        """TCP_INFO of every open connection, both ends when the broker is ours."""
        t = self.clock.time()
        for end in self.ends:
            if end.state is ESTABLISHED and end.transport is not None:
                self._sample_one(t, end.conn, end.client, "client", end.sock)
        if self.broker_sockets is not None:
            for conn, sock in self.broker_sockets():
                self._sample_one(t, conn, None, "broker", sock)

    def _sample_one(self, t: float, conn: Any, client: Any, side: str, sock: Any) -> None:
        info = tcp_info(sock)
        if info is not None:
            self.samples.append((t, conn, client, side) + tuple(
                info[c] for c in TCP_INFO_COLUMNS[4:]))

    def close(self) -> None:
        self.over = True
        self.tasks.cancel()
        for end in self.ends:
            if end.transport is None:
                end.sock.close()
            reset(end.transport)


class NamespaceBroker(InProcessBroker):
    """``mqttsim broker``'s server, listening on the broker's address in its namespace."""

    namespace = ""
    host = ""

    async def start(self) -> None:
        config = broker_config(self.spec)
        engine = BrokerEngine(config, store=self.store)
        engine.trace_received = True
        if self.store is not None:
            engine.restore(*self.store.load(config))
        self.server = BrokerServer(engine=engine, host=self.host, port=BROKER_PORT,
                                   on_events=self._events, clock=self.scaled,
                                   connection_id=self.relay.conn_of_peer,
                                   on_socket_end=self._socket_ends.__setitem__)
        # The listening socket is made by this thread: inside the broker's namespace for
        # as long as start() takes (every other socket of the run is made on purpose
        # elsewhere, by socket_in).
        with entered_namespace(self.namespace):
            await self.server.start()
        self.up = True

    def sockets(self) -> list[tuple[Any, socket.socket]]:
        if not self.up or self.server is None:
            return []
        found = []
        for conn, protocol in list(self.server._protocols.items()):
            transport = getattr(protocol, "transport", None)
            sock = None if transport is None else transport.get_extra_info("socket")
            if sock is not None:
                found.append((conn, sock))
        return found


class _Hub:
    """What ``InProcessBroker`` expects of the sockets backend's relay: connection ids of
    broker-side peers, no modelled verdicts, a task set."""

    def __init__(self, transport: KernelTransport):
        self.conn_of_peer = transport.conn_of_peer
        self.conn_of_broker_peer = transport.conn_of_peer
        self.links: dict = {}
        self.tasks = transport.tasks


class BrokerCommand:
    """Any broker (``mosquitto -c {conf}``) run inside the broker's namespace; ``{conf}``
    is a mosquitto.conf listening on the broker's address, ``{address}``/``{port}`` too."""

    def __init__(self, command: str, net: KernelNetwork, name: str):
        self.command, self.net, self.name = command, net, name
        self.process: subprocess.Popen | None = None

    def address(self) -> tuple[str, int]:
        return (self.net.broker.address, BROKER_PORT)

    def is_up(self) -> bool:
        return True

    def start(self) -> None:
        broker = self.net.broker
        conf = self.net.workdir / "broker.conf"
        conf.write_text(BROKER_CONF.format(port=BROKER_PORT, address=broker.address))
        words = [w.format(conf=conf, address=broker.address, port=BROKER_PORT)
                 for w in shlex.split(self.command)]
        self.log = open(self.net.workdir / "broker.log", "wb")
        self.process = subprocess.Popen(["ip", "netns", "exec", broker.namespace] + words,
                                        stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + BROKER_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the broker command {self.command!r} exited with status "
                                   f"{self.process.returncode}: {self.output()}")
            probe = socket_in(broker.namespace)
            probe.settimeout(0.5)
            try:
                probe.connect(self.address())
                return
            except OSError:
                time.sleep(0.05)
            finally:
                probe.close()
        raise RuntimeError(f"the broker command {self.command!r} did not listen on "
                           f"{broker.address}:{BROKER_PORT} within {BROKER_READY_TIMEOUT} s")

    def output(self) -> str:
        try:
            return (self.net.workdir / "broker.log").read_text(errors="replace").strip()[-500:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, 15)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(BROKER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(BROKER_STOP_TIMEOUT)
        self.log.close()


def record_on_kernel(scenario: Any, seed: int = 0, capture: bool = True,
                     broker_cmd: str | None = None) -> KernelRecording:
    """Run ``scenario`` over kernel TCP in namespaces; returns what was recorded. Takes
    ``scenario.duration`` real seconds (plus setup). Runs in a fresh event loop (in a thread
    when this thread already runs one, as a Jupyter kernel does)."""
    check_kernel_run(scenario)
    with KernelNetwork(scenario, seed, capture) as net:
        return run_in_fresh_loop(lambda: _run(scenario, seed, capture, broker_cmd, net),
                                 "mqttsim-kernel")


async def _run(scenario: Any, seed: int, capture: bool, broker_cmd: str | None,
               net: KernelNetwork) -> KernelRecording:
    loop = asyncio.get_running_loop()
    failures: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: failures.append(context))
    scaled = ScaledClock(loop, 1.0)
    clock = RealTimeClock(scaled)
    recorder = SocketRecorder({c.client_id: c.name for c in scenario.clients}, capture,
                              subscriptions_from_clients=broker_cmd is not None)
    transport = KernelTransport(net, scaled)
    external = broker_cmd is not None
    workdir = Path(net.workdir)
    broker: Any
    if external:
        broker = BrokerCommand(broker_cmd, net, scenario.broker.name)
    else:
        broker = NamespaceBroker(scenario.broker, scaled, clock, recorder, workdir)
        broker.namespace, broker.host = net.broker.namespace, net.broker.address
        broker.relay = _Hub(transport)
        transport.broker_sockets = broker.sockets
    sampler: asyncio.TimerHandle | None = None

    def sample() -> None:
        nonlocal sampler
        transport.sample()
        sampler = loop.call_later(TCP_INFO_EVERY, sample)

    try:
        if external:
            await loop.run_in_executor(None, broker.start)
        else:
            await broker.start()
        scaled.origin = loop.time()  # scenario time 0: the broker listens
        net.start(scaled.origin)  # loop.time() is CLOCK_MONOTONIC: the emulator's clock
        if not external:
            broker.schedule_restarts()
        for spec in scenario.clients:
            ClientProcess(spec, clock, recorder, transport, broker,
                          random.Random(f"{seed}:client:{spec.name}"), scenario.duration,
                          trace_received=True)
        sampler = loop.call_later(TCP_INFO_EVERY, sample)
        end = scaled.loop_time(scenario.duration)
        while loop.time() < end and not failures:
            await asyncio.sleep(min(CHECK_EVERY, end - loop.time()))
        transport.sample()
    finally:
        if sampler is not None:
            sampler.cancel()
        clock.stopped = True
        transport.close()
        if external:
            broker.stop()
        else:
            await broker.stop()
        await asyncio.sleep(0)
    if failures:
        context = failures[0]
        raise RuntimeError(f"the kernel run failed: {context.get('message')}") \
            from context.get("exception")
    log = net.stop()
    names = log.stats["hosts"]
    addresses = {h.address: h.name for h in net.hosts.values()}
    by_bytes = {bytes(map(int, a.split("."))): a for a in addresses}
    record_segments(log.packets, names, by_bytes,
                    lambda address, port: transport.conn_of.get((address, port)), recorder)
    outages = path_outages(scenario, Network(scenario, None, seed))
    recording = KernelRecording(
        scenario, seed, recorder, log.links, outages, clock.events_processed, clock.max_lag,
        tcp_info=transport.samples, emulator=log.stats, congestion=net.congestion,
        raw_packets=[(row[0], row[7]) for row in log.packets] if capture else [],
        addresses={h.name: h.address for h in net.hosts.values()})
    return recording
