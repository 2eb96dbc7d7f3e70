"""The sockets backend: a scenario on real asyncio sockets, in (scaled) real time.

What runs: ``mqttsim broker``'s server (``BrokerServer``, SQLite persistence) in this
process on a free loopback port -- or an external broker such as Mosquitto -- and one
asyncio client per scenario client, each on its own real TCP socket through the relay
(mqttsim.backends.sockets.relay) that applies the scenario's network. The clients behave as
the simulator's do because they are the same process (``mqttsim.world.hosts.ClientProcess``:
workloads, subscribe after each CONNACK, reconnect back-off, crashes), given real sockets
and a real clock.

Rows come from the engines' own events, as in the simulator; a packet's arrival time is
when the receiving engine reported it (``PacketReceived``), in order per connection.
``time_scale`` runs the scenario that many times faster: every clock the engines, the
relay and the workloads read is the same ``ScaledClock``, so keepalives and timers scale
together.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...net.clock import ScaledClock
from ...net.server import BrokerServer
from ...net.store import SqliteStore
from ...protocol import events as ev
from ...protocol.broker import BrokerEngine
from ...world.end_state import CONNECTING, DEAD, ESTABLISHED, EndState, advance
from ...world.hosts import TRANSPORT_REASONS, ClientProcess, broker_config
from ...world.network import Network
from ...world.recorder import Recorder, Recording
from ...world.transport import Transport
from ..common import path_outages, run_in_fresh_loop
from .realtime import RealTimeClock
from .relay import LOOPBACK, Relay, bound_socket, reset

CHECK_EVERY = 0.1  # real seconds between checks for a failed callback during a run


@dataclass
class SocketRecording(Recording):
    """A sockets run's recording, with how far it fell behind its clock at worst."""

    max_lag: float = 0.0  # scenario seconds


class SocketRecorder(Recorder):
    """The simulator's recorder, plus arrival times from the receiving engine's events
    (no transport model stamps them here) and, with an external broker that reports
    nothing, subscriptions as the subscribers' SUBACKs granted them."""

    def __init__(self, names: dict[str, str], capture: bool, subscriptions_from_clients: bool):
        super().__init__(names, capture)
        self.subscriptions_from_clients = subscriptions_from_clients
        self._unarrived: dict[tuple[Any, str], deque] = defaultdict(deque)

    def _packet_row(self, event: ev.PacketSent, src: str, dst: str, conn: int) -> list:
        row = super()._packet_row(event, src, dst, conn)
        self._unarrived[(conn, dst)].append(row)
        return row

    def _arrived(self, conn: Any, receiver: str, t: float) -> None:
        waiting = self._unarrived.get((conn, receiver))
        if waiting:
            self.stamp_arrival(waiting.popleft(), t)  # TCP keeps order: the oldest not yet in

    def client_events(self, name: str, events: list, conn: int | None, broker: str) -> None:
        super().client_events(name, events, conn, broker)
        for e in events:
            cls = e.__class__
            if cls is ev.PacketReceived and conn is not None:
                self._arrived(conn, name, e.t)
            elif cls is ev.Subscribed and self.subscriptions_from_clients:
                self._order += 1
                for topic_filter, granted in zip(e.topic_filters, e.granted):
                    self.subscriptions.append((name, topic_filter, granted, e.t, self._order))

    def broker_events_in(self, events: list, broker: str) -> None:
        super().broker_events_in(events, broker)
        for e in events:
            if e.__class__ is ev.PacketReceived:
                self._arrived(e.conn, broker, e.t)
        # The server writes what the engine sends at once: nothing waits to be written.
        for e in events:
            if e.__class__ is ev.PacketSent:
                self.discard_unwritten(e.conn, "broker")


class RealSocketEnd(asyncio.Protocol):
    """A client process's real socket, as ``ClientProcess`` drives any end: ``write``,
    ``close``, ``abort``, and ``on_established``/``on_data``/``on_closed`` back (arrival
    times come from the engines' events on real sockets). Subclasses connect it."""

    def __init__(self, backend: Any, app: Any):
        self.backend, self.app = backend, app
        self.state: EndState = CONNECTING
        self.transport: asyncio.Transport | None = None

    @property
    def open(self) -> bool:
        return self.state is ESTABLISHED

    def data_received(self, data: bytes) -> None:
        if self.state is ESTABLISHED and not self.backend.over:
            self.app.on_data(self, data)

    def _established(self) -> None:
        self.state = advance(self.state, ESTABLISHED)
        if not self.backend.over:
            self.app.on_established(self)

    def _report(self, reason: str) -> None:
        if self.state is DEAD or self.backend.over:  # closed, aborted, or already told
            return
        self._dead()
        self.app.on_closed(self, reason)

    def write(self, data: bytes, sizes: Any = ()) -> None:
        if self.state is ESTABLISHED:
            self.transport.write(data)

    def close(self) -> None:
        """Orderly close (FIN after what is written)."""
        self._dead()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """The process died: the peer sees a reset."""
        self._dead()
        reset(self.transport)

    def _dead(self) -> None:
        """No more callbacks to the app (it closed, aborted, or has been told)."""
        if self.state is not DEAD:
            self.state = advance(self.state, DEAD)


class SocketEnd(RealSocketEnd):
    """A client process's real socket, to the relay: up when the modelled SYN-ACK arrives."""

    def __init__(self, backend: SocketTransport, client: str, app: Any):
        super().__init__(backend, app)
        self._modelled_up = False
        sock = bound_socket()
        self.link = backend.relay.open(client, self, sock.getsockname()[1])
        self.conn = self.link.conn
        backend.relay.tasks.spawn(self._connect(sock))

    async def _connect(self, sock: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_connect(sock, self.backend.relay.address)
            await loop.create_connection(lambda: self, sock=sock)
        except OSError:
            sock.close()
            self._report("refused")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.state is DEAD:  # the app gave up before the socket came up
            reset(self.transport)
        self._maybe_up()

    def modelled_up(self) -> None:
        """The relay: the modelled SYN-ACK arrived, so ``connect()`` would return now."""
        self._modelled_up = True
        self._maybe_up()

    def _maybe_up(self) -> None:
        if self.transport is not None and self._modelled_up and self.state is CONNECTING:
            self._established()

    def connection_lost(self, exc: Exception | None) -> None:
        # The errno the modelled TCP would give (a give-up is ETIMEDOUT, not a reset).
        self._report(self.link.verdict["client"] or ("eof" if exc is None else "reset"))


class SocketTransport:
    """What ``ClientProcess`` opens connections with: real sockets through the relay."""

    def __init__(self, relay: Relay):
        self.relay = relay
        self.over = False  # the run is over: sockets report nothing more
        self.ends: list[SocketEnd] = []

    def open(self, client: str, app: Any, broker: Any) -> SocketEnd:
        end = SocketEnd(self, client, app)
        self.ends.append(end)
        return end

    def close(self) -> None:
        self.over = True
        self.relay.tasks.cancel()
        for end in self.ends:
            reset(end.transport)


class InProcessBroker:
    """``mqttsim broker``'s server, on a free loopback port, with SQLite persistence when
    the scenario keeps state across restarts; a restart is a crash (every socket reset)
    and a new server restoring what SQLite committed."""

    def __init__(self, spec: Any, scaled: ScaledClock, clock: RealTimeClock,
                 recorder: SocketRecorder, workdir: Path):
        self.spec, self.scaled, self.clock, self.recorder = spec, scaled, clock, recorder
        self.name = spec.name
        self.store = (SqliteStore(workdir / "broker.db", broker_config(spec), clock=scaled.time,
                                  synchronous="NORMAL") if spec.persistence else None)
        self.server: BrokerServer | None = None
        self.up = False
        self.relay: Relay | None = None
        self._socket_ends: dict[Any, str] = {}  # conn -> how its real socket ended

    def address(self) -> tuple[str, int] | None:
        return self.server.address if self.up and self.server is not None else None

    def is_up(self) -> bool:
        return self.up

    async def start(self) -> None:
        config = broker_config(self.spec)
        engine = BrokerEngine(config, store=self.store)
        engine.trace_received = True  # arrival times, and the -v log
        if self.store is not None:
            engine.restore(*self.store.load(config))
        self.server = BrokerServer(engine=engine, host=LOOPBACK, port=0, on_events=self._events,
                                   clock=self.scaled,
                                   connection_id=self.relay.conn_of_broker_peer,
                                   on_socket_end=self._socket_ends.__setitem__)
        await self.server.start()
        self.up = True

    def schedule_restarts(self) -> None:
        for restart in self.spec.restarts:
            self.clock.call_at(restart.at, self.crash, restart.down)

    def _events(self, events: list) -> None:
        for e in events:
            # The socket closed under the engine: name why as the model decided it (the
            # relay closed this socket because the modelled connection ended so), or, with
            # no model between (the kernel backend), as the kernel told the socket.
            if e.__class__ is ev.ConnectionClosed and e.reason == "transport":
                link = self.relay.links.get(e.conn)
                verdict = None if link is None else link.verdict["broker"]
                ended = self._socket_ends.pop(e.conn, None)
                if verdict is not None or ended is not None:
                    self.recorder.closed(e.conn, "broker", e.t,
                                         TRANSPORT_REASONS[verdict or ended])
        self.recorder.broker_events_in(events, self.name)

    def crash(self, down: float) -> None:
        now = self.clock.now
        self.up = False
        for conn in self.server.connection_ids():
            self.recorder.closed(conn, "broker", now, "broker_restart")
        self.recorder.broker_events_in(self.server.crash(), self.name)
        self.clock.call_at(now + down, self._restart)

    def _restart(self) -> None:
        self.relay.tasks.spawn(self.start())

    async def stop(self) -> None:
        if self.server is not None:
            self.server.on_events = None
            if self.up:
                self.server.crash()
        if self.store is not None:
            self.store.close()


class ExternalBroker:
    """A broker this process does not run (``--broker HOST:PORT``): it reports no events,
    keeps real time, and is taken to be up."""

    def __init__(self, address: tuple[str, int], name: str):
        self._address = address
        self.name = name

    def address(self) -> tuple[str, int]:
        return self._address

    def is_up(self) -> bool:
        return True


def parse_broker(address: str | tuple[str, int]) -> tuple[str, int]:
    """``"HOST:PORT"`` (or a tuple) as (host, port), with a clear error otherwise."""
    if isinstance(address, tuple):
        return address
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"broker must be HOST:PORT (e.g. 127.0.0.1:1883), not {address!r}")
    return host, int(port)


def check_sockets_run(scenario: Any, time_scale: float, broker: Any) -> None:
    """Refuse, before anything starts, what the sockets backend cannot do faithfully."""
    if not time_scale > 0:
        raise ValueError(f"time_scale must be a positive number (scenario seconds per real "
                         f"second), not {time_scale!r}")
    if broker is not None:
        if time_scale != 1:
            raise ValueError("an external broker keeps real time (its keepalive timers cannot "
                             "be scaled): run it with time_scale=1")
        if scenario.broker.restarts:
            raise ValueError("broker restarts need the in-process broker: this scenario has "
                             f"{len(scenario.broker.restarts)} (broker.restarts); leave out "
                             "--broker to run them")


def record_on_sockets(scenario: Any, seed: int = 0, capture: bool = True,
                      time_scale: float = 1.0, broker: Any = None) -> SocketRecording:
    """Run ``scenario`` on real sockets; returns what was recorded, as ``simulate`` does.

    Runs in a fresh event loop (in a thread when this thread already runs one, as a
    Jupyter kernel does) and takes ``scenario.duration / time_scale`` real seconds."""
    external = None if broker is None else parse_broker(broker)
    check_sockets_run(scenario, time_scale, external)
    # A full collection of a large heap (a notebook's, a test session's) can stop the event
    # loop for a quarter of a second: a stall that real timers would feel. As in the
    # simulator, the cycle collector waits until the run is over.
    return run_in_fresh_loop(lambda: _run(scenario, seed, capture, time_scale, external),
                             "mqttsim-sockets")


async def _run(scenario: Any, seed: int, capture: bool, time_scale: float,
               external: tuple[str, int] | None) -> SocketRecording:
    loop = asyncio.get_running_loop()
    failures: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: failures.append(context))
    scaled = ScaledClock(loop, time_scale)
    clock = RealTimeClock(scaled)
    network = Network(scenario, clock, seed)
    recorder = SocketRecorder({c.client_id: c.name for c in scenario.clients}, capture,
                              subscriptions_from_clients=external is not None)
    transport = Transport(scenario.transport, clock, network, scenario.tcp, recorder)
    with tempfile.TemporaryDirectory(prefix="mqttsim-sockets-") as workdir:
        broker: Any = (ExternalBroker(external, scenario.broker.name) if external is not None else
                       InProcessBroker(scenario.broker, scaled, clock, recorder, Path(workdir)))
        # An external broker tells nothing: the broker side's end is recorded when the model
        # ends it; the in-process broker's engine reports it in order (InProcessBroker).
        relay = Relay(transport, broker.address, broker.is_up,
                      (lambda conn, why: recorder.closed(conn, "broker", clock.now, why))
                      if external is not None else None)
        broker.relay = relay
        sockets = SocketTransport(relay)
        try:
            await relay.start()
            if external is None:
                await broker.start()
            scaled.origin = loop.time()  # scenario time 0: everything is listening
            if external is None:
                broker.schedule_restarts()
            for spec in scenario.clients:
                ClientProcess(spec, clock, recorder, sockets, broker,
                              random.Random(f"{seed}:client:{spec.name}"), scenario.duration,
                              trace_received=True)
            end = scaled.loop_time(scenario.duration)
            while loop.time() < end and not failures:
                await asyncio.sleep(min(CHECK_EVERY, end - loop.time()))
        finally:
            clock.stopped = True
            sockets.close()
            await relay.close()
            if external is None:
                await broker.stop()
            await asyncio.sleep(0)
    if failures:
        context = failures[0]
        error = context.get("exception")
        raise RuntimeError(f"the sockets run failed: {context.get('message')}") from error
    return SocketRecording(scenario, seed, recorder, network.link_rows(scenario.duration),
                           path_outages(scenario, network), clock.events_processed,
                           clock.max_lag)
