"""The MQTT broker on real TCP sockets: one ``BrokerEngine`` driven by an asyncio event loop.

Theory of operation: this module moves bytes and time, nothing else. Each accepted TCP
connection gets an integer id; its bytes go to ``engine.receive``; the engine's output is
pulled with ``pending()`` / ``take_output()`` once per turn of the event loop (one flush
callback per turn, however many sockets were readable), which is also where a durable store
is committed *before* any acknowledgement produced in that turn reaches the network (group
commit: a PUBACK is only sent for a message already on disk). All engine timers (CONNECT
timeout, keepalive, will delay, session expiry, 3.1 retries) sit behind one
``loop.call_at`` handle at ``engine.next_deadline()``, never one timer per connection.

The engine's clock is ``loop.time()`` (monotonic), so wall-clock jumps do not expire
keepalives; a ``ScaledClock`` (mqttsim.net.clock) runs it faster or slower for scenarios. asyncio ``Protocol`` callbacks are used rather than streams because streams cost
a task and several awaits per message; uvloop is used when it is installed.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import socket
import ssl as _ssl
import threading
import uuid
from collections.abc import Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from ..protocol.broker import BrokerEngine
from ..protocol.broker_state import BrokerConfig
from .clock import ScaledClock

# Per-connection outbound buffer above which we stop reading from that client: a client that
# does not read its own socket must not make the broker's memory grow without bound.
WRITE_HIGH_WATER = 256 * 1024
WRITE_LOW_WATER = 64 * 1024
LISTEN_BACKLOG = 2048  # 1,000 clients connecting at once must not be refused
# Input handled since the last flush after which we flush at once instead of at the end of
# the loop turn: uvloop (libuv) reads a busy socket up to 32 times per turn, and without this
# a client could make the broker queue megabytes of output before backpressure sees any.
FLUSH_AFTER_BYTES = 256 * 1024


@dataclass(frozen=True)
class Listener:
    """One listening socket: address, port (0 = any free one), optional TLS context, and
    ``protocol``: ``"mqtt"`` (MQTT on TCP) or ``"websockets"`` (MQTT over WebSockets,
    mqttsim.net.websocket), as mosquitto.conf's per-listener ``protocol`` option."""

    host: str = "127.0.0.1"
    port: int = 1883
    ssl: _ssl.SSLContext | None = None
    protocol: str = "mqtt"


def uvloop_available() -> bool:
    """Whether uvloop can be imported (it is optional: everything works without it)."""
    try:
        import uvloop  # noqa: F401  (only whether it imports)
    except ImportError:
        return False
    return True


def new_event_loop(use_uvloop: bool | None = None) -> asyncio.AbstractEventLoop:
    """A fresh event loop: uvloop's when installed (or asked for), else asyncio's own."""
    if use_uvloop is None:
        use_uvloop = uvloop_available()
    if use_uvloop:
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, Any], use_uvloop: bool | None = None) -> Any:
    """``asyncio.run`` on the loop ``new_event_loop`` picks (works on Python 3.10 too)."""
    loop = new_event_loop(use_uvloop)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


class _Connection(asyncio.Protocol):
    """One client's TCP connection: forwards everything to the server; holds no MQTT state."""

    __slots__ = ("server", "conn", "transport", "peer", "closing")

    def __init__(self, server: BrokerServer):
        self.server = server
        self.conn = 0
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = f"{peer[0]}:{peer[1]}"
        transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)  # type: ignore
        self.server._opened(self)

    def data_received(self, data: bytes) -> None:
        self.server._received(self, data)

    def eof_received(self) -> bool:
        return False  # a half-closed client is a closed client: let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._lost(self, exc)

    def pause_writing(self) -> None:
        # The client is not reading what we send: stop reading what it sends until it does,
        # and let its messages wait in its (bounded) session queue instead of this buffer.
        if not self.closing:
            self.transport.pause_reading()
            self.server._writable(self, False)

    def resume_writing(self) -> None:
        if not self.closing and not self.transport.is_closing():
            self.transport.resume_reading()
            self.server._writable(self, True)


def socket_end(exc: BaseException | None) -> str:
    """How a real TCP socket ended, in the words the simulated transport uses
    (``mqttsim.world.hosts.TRANSPORT_REASONS``), read from what the kernel said: end of file
    is the peer's FIN; ETIMEDOUT is the kernel giving up retransmitting (tcp_retries2, or the
    SYN retries while connecting); ECONNRESET/EPIPE is a RST; ECONNREFUSED a RST to the SYN."""
    if exc is None:
        return "eof"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "tcp_timeout"
    return "reset"


class BrokerServer:
    """An MQTT broker listening on TCP: ``host, port = await server.start()``, then
    ``await server.stop()``.

    ``on_events`` (if given) is called with every non-empty list of engine events, in order;
    the ``-v`` log (mqttsim.net.log) is one such consumer. ``peer(conn)`` gives the
    ``host:port`` of a connection id found in those events. ``on_socket_end(conn, how)`` (if
    given) hears how a client's socket ended (``socket_end``) just before the engine does:
    the engine and its log call all of these "transport", as mosquitto's log does.
    """

    def __init__(self, config: BrokerConfig | None = None, *, host: str = "127.0.0.1",
                 port: int = 1883, listeners: Sequence[Listener] | None = None,
                 auth=None, authz=None, store=None, engine: BrokerEngine | None = None,
                 on_events: Callable[[list], None] | None = None,
                 clock: ScaledClock | None = None,
                 connection_id: Callable[[Any], Hashable | None] | None = None,
                 on_socket_end: Callable[[Hashable, str], None] | None = None):
        if engine is None:
            engine = BrokerEngine(config or BrokerConfig(emit_packet_events=False),
                                  auth=auth, authz=authz, store=store)
        self.engine = engine
        if engine.client_id_source is None:
            engine.client_id_source = mosquitto_style_id
        self.listeners: tuple[Listener, ...] = tuple(listeners or (Listener(host, port),))
        self.on_events = on_events
        self.clock = clock  # None: the loop's own clock (set in start)
        # Names a new connection from its peer address (None: the next number). The scenario
        # runner uses it so that the broker's events carry the scenario's connection ids.
        self.connection_id = connection_id
        self.on_socket_end = on_socket_end
        self.addresses: list[tuple[str, int]] = []
        self.bound: list[tuple[Listener, tuple[str, int]]] = []  # each address's listener
        self.loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._protocols: dict[int, _Connection] = {}
        self._ids = itertools.count(1)
        self._flush_scheduled = False
        self._unflushed = 0  # bytes received since the last flush
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._all_closed: asyncio.Event | None = None
        self._stopped = False

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:
        """Open every listener; returns the first one's bound (host, port)."""
        self.loop = asyncio.get_running_loop()
        if self.clock is None:
            self.clock = ScaledClock(self.loop, 1.0, origin=0.0)
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        try:
            for listener in self.listeners:
                server = await self.loop.create_server(
                    self._protocol_factory(listener), listener.host, listener.port,
                    ssl=listener.ssl, backlog=LISTEN_BACKLOG, reuse_address=True)
                self._servers.append(server)
                for sock in server.sockets:
                    sockname = sock.getsockname()
                    self.addresses.append((sockname[0], sockname[1]))
                    self.bound.append((listener, (sockname[0], sockname[1])))
        except BaseException:
            for server in self._servers:
                server.close()
            self._servers.clear()
            raise
        from .. import __version__

        # $SYS/broker/version, and uptime counts from here (BrokerEngine.begin). Its events
        # (the first tree, which no one can have subscribed to yet) are not passed on: a
        # caller's on_events may not be ready before start() returns.
        self.engine.begin(self.clock.time(), f"mqttsim version {__version__}")
        self._flush()
        return self.addresses[0]

    def _protocol_factory(self, listener: Listener) -> Callable[[], asyncio.Protocol]:
        """MQTT straight on the socket, or behind a WebSocket handshake (the same
        ``_Connection`` underneath, so the TCP path pays nothing for WebSockets)."""
        if listener.protocol == "websockets":
            from .websocket import server_protocol_factory

            return server_protocol_factory(lambda: _Connection(self))
        if listener.protocol != "mqtt":
            raise ValueError(f"listener protocol must be 'mqtt' or 'websockets', "
                             f"not {listener.protocol!r}")
        return lambda: _Connection(self)

    def address_of(self, protocol: str) -> tuple[str, int]:
        """The first bound address of a listener speaking ``protocol``."""
        for listener, address in self.bound:
            if listener.protocol == protocol:
                return address
        raise LookupError(f"no {protocol} listener")

    @property
    def address(self) -> tuple[str, int]:
        return self.addresses[0]

    @property
    def connection_count(self) -> int:
        return len(self._protocols)

    def connection_ids(self) -> list:
        """The ids of the connections open now."""
        return list(self._protocols)

    def peer(self, conn) -> str:
        """The ``host:port`` of a connection id (``"?"`` once it is gone)."""
        protocol = self._protocols.get(conn)
        return protocol.peer if protocol is not None else "?"

    def local_port(self, conn) -> int | str:
        """The listening port a connection came in on (``"?"`` once it is gone)."""
        protocol = self._protocols.get(conn)
        if protocol is None or protocol.transport is None:
            return "?"
        sockname = protocol.transport.get_extra_info("sockname")
        return sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else "?"

    async def stop(self, timeout: float = 3.0) -> None:
        """Stop listening, tell the engine (which closes every client, publishing wills and
        keeping persistent sessions), write what it queued, commit the store, wait for the
        sockets to close (aborting the ones that do not within ``timeout``)."""
        if self._stopped or self.loop is None:
            return
        self._stopped = True
        for server in self._servers:
            server.close()
        self._emit(self.engine.shutdown(self.clock.time()))
        self._flush()
        if self._protocols:
            try:
                await asyncio.wait_for(self._all_closed.wait(), timeout)
            except asyncio.TimeoutError:
                for protocol in list(self._protocols.values()):
                    protocol.transport.abort()
                await asyncio.sleep(0)
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), timeout)
            except asyncio.TimeoutError:
                pass
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        store = self.engine.store
        if store is not None:
            store.commit()

    def crash(self) -> list:
        """The broker process dies (a scenario's broker restart): stop listening and reset
        every connection, with no DISCONNECT and no will. Returns the engine's last events
        (``abandon``: what no store keeps is lost); only what the store committed survives,
        for a new server to restore."""
        self._stopped = True
        for server in self._servers:
            server.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        events = self.engine.abandon(self.clock.time(), "broker_restart")
        protocols = list(self._protocols.values())
        self._protocols.clear()  # so _lost tells the dead engine nothing more
        for protocol in protocols:
            protocol.closing = True
            protocol.transport.abort()
        self._all_closed.set()
        return events

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then stop cleanly (used by ``mqttsim broker``)."""
        await stop.wait()
        await self.stop()

    # -- connection callbacks (called by _Connection) --------------------------------------
    def _opened(self, protocol: _Connection) -> None:
        if self._stopped:
            protocol.closing = True
            protocol.transport.abort()
            return
        conn = None
        if self.connection_id is not None:
            conn = self.connection_id(protocol.transport.get_extra_info("peername"))
        conn = protocol.conn = next(self._ids) if conn is None else conn
        self._protocols[conn] = protocol
        self._all_closed.clear()
        self.engine.connection_made(conn, self.clock.time())
        self._emit(self.engine.take_events())  # the -v log's "New connection from"
        self._schedule_flush()

    def _received(self, protocol: _Connection, data: bytes) -> None:
        try:
            events = self.engine.receive(protocol.conn, data, self.clock.time())
        except Exception as exc:  # noqa: BLE001 - an engine bug must cost one connection only
            self._internal_error(protocol, exc)
            return
        if events and self.on_events is not None:
            self.on_events(events)
        self._unflushed += len(data)
        if self._unflushed >= FLUSH_AFTER_BYTES:
            self._flush()  # write (and let pause_writing stop this reader) right now
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _lost(self, protocol: _Connection, exc: Exception | None) -> None:
        conn = protocol.conn
        if self._protocols.get(conn) is not protocol:
            return
        if exc is None:
            detail = "closed by the broker" if protocol.closing else "client closed the connection"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        if self.on_socket_end is not None and not protocol.closing:
            self.on_socket_end(conn, socket_end(exc))
        try:
            self._emit(self.engine.connection_lost(conn, self.clock.time(), "transport", detail))
        except Exception as error:  # noqa: BLE001 - the socket is gone whatever the engine says
            self.loop.call_exception_handler({
                "message": f"mqttsim broker engine failed closing connection {conn}",
                "exception": error})
        del self._protocols[conn]
        if not self._protocols:
            self._all_closed.set()
        self._schedule_flush()  # a will or a takeover may have produced output

    def _writable(self, protocol: _Connection, writable: bool) -> None:
        self._emit(self.engine.set_writable(protocol.conn, writable, self.clock.time()))
        if writable:
            self._schedule_flush()

    def _internal_error(self, protocol: _Connection, exc: Exception) -> None:
        self.loop.call_exception_handler({
            "message": f"mqttsim broker engine failed on connection {protocol.conn}",
            "exception": exc, "protocol": protocol})
        protocol.closing = True
        protocol.transport.abort()

    # -- output and timers -----------------------------------------------------------------
    def _emit(self, events: list) -> None:
        if events and self.on_events is not None:
            self.on_events(events)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self.loop is not None:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Commit, then write every connection's output; close those the engine ended."""
        self._flush_scheduled = False
        self._unflushed = 0
        engine = self.engine
        store = engine.store
        if store is not None:
            store.commit()  # durable before acknowledged (DESIGN.md: group commit)
        pending = engine.pending()
        if pending:
            protocols = self._protocols
            take = engine.take_output
            for conn in pending:
                data, close = take(conn)
                protocol = protocols.get(conn)
                if protocol is None or protocol.closing:
                    continue  # gone, or already closed at the engine's request
                transport = protocol.transport
                if data:
                    transport.write(data)
                if close and not protocol.closing:
                    protocol.closing = True
                    transport.close()  # after the buffered bytes are written
        self._arm_timer()

    def _arm_timer(self) -> None:
        deadline = None if self._stopped else self.engine.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = None if deadline is None else self.clock.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None  # re-armed by _flush even if the engine's deadline is unchanged
        try:
            self._emit(self.engine.on_timer(self.clock.time()))
        except Exception as exc:  # noqa: BLE001 - keep serving; the timer is re-armed below
            self.loop.call_exception_handler({"message": "mqttsim broker engine timer failed",
                                              "exception": exc})
        finally:
            self._flush()


class ServerThread:
    """A ``BrokerServer`` on its own event loop in a background thread, for tests, scripts
    and notebooks (which already run an event loop of their own)::

        with ServerThread() as (host, port):
            ...  # connect clients to host:port
    """

    def __init__(self, config: BrokerConfig | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, use_uvloop: bool | None = None, start_timeout: float = 10.0,
                 **kwargs):
        self._kwargs = dict(kwargs, config=config, host=host, port=port)
        self._use_uvloop = use_uvloop
        self._start_timeout = start_timeout
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self.server: BrokerServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def start(self) -> tuple[str, int]:
        self._thread = threading.Thread(target=self._main, name="mqttsim-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise TimeoutError("the broker thread did not start")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self.server.address

    def call(self, function: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run ``function()`` on the broker's loop (engine state is not thread-safe)."""
        future: Any = asyncio.run_coroutine_threadsafe(_call(function), self.loop)
        return future.result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        if self.loop is not None and self._stop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the broker thread did not stop")
        self._thread = None

    def __enter__(self) -> tuple[str, int]:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _main(self) -> None:
        run(self._serve(), self._use_uvloop)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.server = BrokerServer(**self._kwargs)
            await self.server.start()
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self.server.serve_until(self._stop)


async def _call(function: Callable[[], Any]) -> Any:
    return function()


def mosquitto_style_id() -> str:
    """What mosquitto 2.0 puts after ``auto-`` in a client id it assigns: a random UUID in
    capitals (``auto-F343913F-5D77-0AF3-7148-566622E12886``; src/handle_connect.c)."""
    return str(uuid.uuid4()).upper()


def address_in_use(exc: OSError) -> bool:
    """Whether ``exc`` (from ``start()``) means another program holds the port."""
    return exc.errno == errno.EADDRINUSE
