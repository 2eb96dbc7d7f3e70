"""The relay that puts a scenario's network between real sockets.

Each scenario client's real socket connects to this in-process relay, and the relay holds a
real socket to the broker. Between the two, the bytes cross the scenario's network as the
*simulator's own* model carries them: ``mqttsim.world.transport`` (TCP segments, RTO with
back-off, delayed ACKs, give-up and RST; or the datagram contrast) over
``mqttsim.world.network`` and ``mqttsim.netmodel.link`` (bandwidth, latency, jitter,
drop-tail queue, loss, outages), scheduled on a ``RealTimeClock`` instead of SimPy. One
model, two clocks: the backends cannot drift apart.

The relay stands in for the client host's TCP stack. ``connect()`` completes when the
modelled SYN-ACK arrives; a connection the model resets or gives up on is reset on the
real socket, and the client end is told the errno a kernel would report (``tcp_timeout``
is ETIMEDOUT, not a reset), since loopback TCP itself never loses anything.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any

from ...protocol.framing import take_packets
from ...world.hosts import TRANSPORT_REASONS

LOOPBACK = "127.0.0.1"


class TaskSet:
    """Background tasks of a run (connects, dials, broker restarts): kept referenced until
    done, cancelled together at the end, and a failure goes to the loop's exception handler
    at once -- where the run collects it and fails -- not to a log line at garbage collection."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            task.get_loop().call_exception_handler({
                "message": f"mqttsim sockets run: {task.get_coro().__qualname__} failed",
                "exception": task.exception()})

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def reset(transport: asyncio.BaseTransport | None) -> None:
    """Close a real socket with RST (SO_LINGER 0), as a reset or crashed peer does."""
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


def bound_socket() -> socket.socket:
    """A non-blocking TCP socket bound to a free loopback port, not yet connected: its
    port is known before the peer accepts it, so the peer can be told who it is."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((LOOPBACK, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _Facing(asyncio.Protocol):
    """A real socket of the relay: towards a client or towards the broker."""

    def __init__(self, relay: Relay, side: str):
        self.relay, self.side = relay, side
        self.link: RelayedConnection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        port = transport.get_extra_info("peername")[1]
        if self.side == "client":
            self.link = self.relay._expected.pop(port, None)
            if self.link is None:
                transport.abort()  # not one of the scenario's clients
                return
        else:
            self.link = self.relay.broker_link(transport.get_extra_info("sockname")[1])
        self.link.attached(self.side, transport)

    def data_received(self, data: bytes) -> None:
        self.link.from_socket(self.side, data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.link is not None:
            self.link.socket_gone(self.side, exc)


class RelayedConnection:
    """One client connection through the relay: a real socket at each end, the modelled
    connection between them. It is the client-side end's owner (``App``)."""

    def __init__(self, relay: Relay, client: str, socket_end: Any):
        self.relay, self.client, self.socket_end = relay, client, socket_end
        self.sockets: dict[str, asyncio.Transport | None] = {"client": None, "broker": None}
        self.ends: dict[str, Any] = {"client": None, "broker": None}  # modelled ends
        self.verdict: dict[str, str | None] = {"client": None, "broker": None}
        self.waiting: dict[str, bytearray] = {"client": bytearray(), "broker": bytearray()}
        self.datagram = relay.transport.kind == "datagram"
        self.ends["client"] = relay.transport.open(client, self, relay.broker_side)
        self.conn: int = self.ends["client"].conn

    # -- the modelled client end (App) ---------------------------------------------------------
    def on_established(self, end: Any) -> None:
        self._into_model("client")
        self.socket_end.modelled_up()

    def on_data(self, end: Any, data: bytes) -> None:
        self._to_socket("client", data)

    def on_closed(self, end: Any, reason: str) -> None:
        self._model_closed("client", reason)

    def on_packets_arrived(self, end: Any, first: int, stop: int, now: float) -> None:
        """Arrival times come from the engines' own events in this backend."""

    # -- real sockets --------------------------------------------------------------------------
    def attached(self, side: str, transport: asyncio.Transport) -> None:
        self.sockets[side] = transport
        verdict = self.verdict[side]
        if verdict is not None:  # the model ended the connection before the socket came
            self._close_socket(side, verdict)
        elif side == "broker" and self.waiting["broker"]:
            transport.write(bytes(self.waiting["broker"]))
            self.waiting["broker"].clear()

    def from_socket(self, side: str, data: bytes) -> None:
        """Bytes a real peer wrote: into the modelled connection at that side."""
        self.waiting[side] += data
        self._into_model(side)

    def _into_model(self, side: str) -> None:
        end, buffer = self.ends[side], self.waiting[side]
        if end is None or not end.open or not buffer:
            return
        if self.datagram:  # each whole MQTT packet is one datagram
            # Only the run's own client processes reach the relay (others are turned away at
            # connect), so the bytes are well formed; MalformedPacket would fail the run.
            packets = take_packets(buffer)
            if packets:
                end.write(b"".join(packets), [len(p) for p in packets])
        else:
            end.write(bytes(buffer))  # a byte stream: packet boundaries do not matter
            buffer.clear()

    def _to_socket(self, side: str, data: bytes) -> None:
        transport = self.sockets[side]
        if side == "broker" and transport is None:
            self.waiting["broker"] += data  # still dialling the broker
        elif transport is not None and not transport.is_closing():
            transport.write(data)

    def socket_gone(self, side: str, exc: Exception | None) -> None:
        """A real peer closed (FIN) or reset its socket: the modelled end does the same."""
        self.sockets[side] = None
        end = self.ends[side]
        if end is None or self.relay.closing:
            return
        if exc is None:
            end.close()
        else:
            end.abort()

    # -- the model ended a side ----------------------------------------------------------------
    def _model_closed(self, side: str, reason: str) -> None:
        self.verdict[side] = reason
        if side == "broker":
            if self.relay.broker_side_closed is not None:
                self.relay.broker_side_closed(self.conn, TRANSPORT_REASONS[reason])
            if reason == "eof" and self.sockets["broker"] is None:
                self.ends["broker"].close()
        self._close_socket(side, reason)

    def _close_socket(self, side: str, reason: str) -> None:
        transport = self.sockets[side]
        if transport is None:
            return
        if reason == "eof":
            transport.close()  # FIN after what is buffered, as the peer did
        else:
            reset(transport)

    # -- the broker side -------------------------------------------------------------------------
    def broker_established(self, end: Any) -> None:
        self.ends["broker"] = end
        self.relay.dial_broker(self)


class _BrokerSide:
    """The broker host of the model: accepts SYNs while the broker is up, and owns the
    modelled broker ends (forwarding each to its connection)."""

    def __init__(self, relay: Relay):
        self.relay = relay

    def accepting(self) -> bool:
        return self.relay.broker_up()

    def on_established(self, end: Any) -> None:
        self.relay.links[end.conn].broker_established(end)

    def on_data(self, end: Any, data: bytes) -> None:
        self.relay.links[end.conn]._to_socket("broker", data)

    def on_closed(self, end: Any, reason: str) -> None:
        self.relay.links[end.conn]._model_closed("broker", reason)

    def on_packets_arrived(self, end: Any, first: int, stop: int, now: float) -> None:
        """Arrival times come from the engines' own events in this backend."""


class Relay:
    """Listens on a loopback port for the scenario's clients; dials the broker for each."""

    def __init__(self, transport: Any, broker_address: Callable[[], tuple[str, int] | None],
                 broker_up: Callable[[], bool],
                 broker_side_closed: Callable[[int, str], None] | None):
        self.transport = transport  # mqttsim.world.transport.Transport on a RealTimeClock
        self.broker_address, self.broker_up = broker_address, broker_up
        self.broker_side_closed = broker_side_closed
        self.broker_side = _BrokerSide(self)
        self.links: dict[int, RelayedConnection] = {}
        self._expected: dict[int, RelayedConnection] = {}  # client socket port -> connection
        self._by_broker_port: dict[int, RelayedConnection] = {}  # our port towards the broker
        self.address: tuple[str, int] | None = None
        self._server: asyncio.base_events.Server | None = None
        self.tasks = TaskSet()
        self.closing = False  # the run is over: what sockets do now is not recorded

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Facing(self, "client"), LOOPBACK, 0)
        self.address = self._server.sockets[0].getsockname()[:2]
        return self.address

    def open(self, client: str, socket_end: Any, client_port: int) -> RelayedConnection:
        """A client socket bound to ``client_port`` is about to connect: start the modelled
        connection (its SYN leaves now)."""
        link = RelayedConnection(self, client, socket_end)
        self.links[link.conn] = link
        self._expected[client_port] = link
        return link

    def dial_broker(self, link: RelayedConnection) -> None:
        self.tasks.spawn(self._dial(link))

    async def _dial(self, link: RelayedConnection) -> None:
        address = self.broker_address()
        sock = bound_socket()
        port = sock.getsockname()[1]
        self._by_broker_port[port] = link  # before connecting: the broker may ask at once
        loop = asyncio.get_running_loop()
        try:
            if address is None:
                raise ConnectionRefusedError("the broker is down")
            await loop.sock_connect(sock, address)
            await loop.create_connection(lambda: _Facing(self, "broker"), sock=sock)
        except OSError:
            sock.close()
            end = link.ends["broker"]
            if end is not None and link.verdict["broker"] is None:
                end.abort()  # nobody listens: the client's connection is reset

    def conn_of_broker_peer(self, peer: Any) -> int | None:
        """The scenario connection behind a broker-side socket (its peer address)."""
        link = self.broker_link(peer[1]) if isinstance(peer, tuple) and len(peer) >= 2 else None
        return None if link is None else link.conn

    def broker_link(self, port: int) -> RelayedConnection | None:
        """The connection whose relay socket towards the broker has local ``port``."""
        return self._by_broker_port.get(port)

    async def close(self) -> None:
        self.closing = True
        self.tasks.cancel()
        for link in self.links.values():
            for side in ("client", "broker"):
                link.verdict[side] = link.verdict[side] or "reset"
                reset(link.sockets[side])
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
