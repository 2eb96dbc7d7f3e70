"""An MQTT client on real sockets: ``ClientEngine`` driven by asyncio, plus a blocking wrapper.

Theory of operation: the engine holds every protocol rule and all session state; this module
only moves bytes and time. An ``asyncio.Protocol`` hands received chunks to the engine, the
engine's output is written straight after every call into it, and one ``loop.call_at`` handle
wakes the engine at its ``next_deadline()`` (keepalive, PINGRESP wait, CONNACK wait). The
engine's events are turned into resolved futures (CONNACK, SUBACK, PUBACK/PUBCOMP) and into
messages for ``async for message in client.messages``. The engine's clock is ``loop.time()``.

```python
async with Client("127.0.0.1", 1883, client_id="demo") as c:
    granted = await c.subscribe("sensor", qos=1)      # (1,) or (0x80,): the caller decides
    await c.publish("sensor", b"12", qos=1)           # returns once PUBACK arrived
    async for message in c.messages:
        print(message.topic, message.payload)
```

``BlockingClient`` runs the same client on an event loop in a background thread, for notebooks
and scripts that do not use asyncio.

Automatic reconnect (``reconnect=True``; off by default, as in aiomqtt, on in paho's network
loop): after a connection that had reached CONNACK breaks, the client connects again after
``reconnect_delay`` seconds, doubling the wait for every failed attempt up to
``reconnect_max_delay`` (``reconnect_delay()`` in mqttsim.protocol.client_config, the same
schedule the simulated clients keep), and subscribes again to what it had subscribed (as
mosquitto_sub does after every CONNACK). A refused CONNACK ends it, as it ends mosquitto_sub.
Meanwhile ``messages`` goes on and ``publish`` keeps working: the engine holds what is
published in its queue, the offline buffer (``max_queued`` messages, None: no limit; QoS 0
only with ``queue_qos0_offline``), and sends it after the next CONNACK. What the engine drops
(queue full, QoS 0 while offline, in-flight messages a clean session discards) makes that
``publish`` raise ``MessageNotDelivered`` and is counted in ``client.dropped`` by reason;
QoS 1/2 messages in flight are resent with DUP when the session is resumed [MQTT-4.4.0-1].
One difference from the simulated clients: the first ``connect()`` raises when it fails (as
mosquitto_sub exits), where a scenario's client keeps trying from its first attempt.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..protocol import events as ev
from ..protocol.client import ClientConfig, ClientEngine, _as_list, _as_subscription
from ..protocol.client_config import reconnect_delay
from ..protocol.packets import Subscription, Will
from ..protocol.properties import NO_PROPERTIES, Properties

__all__ = ["Client", "BlockingClient", "Message", "ClientError", "ConnectionRefused",
           "ConnectionLost", "MessageNotDelivered"]


class ClientError(Exception):
    """Base class of the errors this client raises."""


class ConnectionRefused(ClientError):
    """The broker answered CONNECT with a non-zero return/reason code."""

    def __init__(self, reason_code: int, reason: str):
        super().__init__(f"connection refused by the broker: {reason} (code {reason_code})")
        self.reason_code = reason_code
        self.reason = reason


class ConnectionLost(ClientError):
    """The connection ended while something was waiting on it."""

    def __init__(self, reason: str, detail: str = "", rule: str | None = None):
        text = f"connection closed ({reason})"
        if detail:
            text += f": {detail}"
        if rule:
            text += f" [{rule}]"
        super().__init__(text)
        self.reason = reason
        self.detail = detail
        self.rule = rule


class MessageNotDelivered(ClientError):
    """The engine gave up on a message it had accepted (queue full, packet too large, ...)."""

    def __init__(self, reason: str):
        super().__init__(f"message dropped by the client: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Message:
    """An application message received from the broker."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    properties: Properties = NO_PROPERTIES
    packet_id: int | None = None  # the PUBLISH's packet id (None at QoS 0), mosquitto's "mid"


_END = object()  # placed in the message queue when the connection is over


class _Transport(asyncio.Protocol):
    """Hands socket events to the client; holds no protocol state of its own."""

    def __init__(self, client: Client):
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.client._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._transport_lost(exc)

    def pause_writing(self) -> None:
        self.client._writable.clear()

    def resume_writing(self) -> None:
        self.client._writable.set()


class _Messages:
    """``async for message in client.messages``: ends after a clean disconnect, raises
    ``ConnectionLost`` when the connection broke."""

    def __init__(self, client: Client):
        self._client = client

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        item = await self._client._queue.get()
        if item is _END:
            self._client._queue.put_nowait(_END)  # every later reader ends too
            error = self._client._closed_error
            if error is not None and not self._client._closing:
                raise error
            raise StopAsyncIteration
        return item


class Client:
    """An asyncio MQTT 3.1/3.1.1/5.0 client over TCP (optionally TLS).

    ``on_event`` receives every engine event (``PacketSent``, ``PacketReceived``, ...) as it
    happens; the command-line tools use it for their ``-d`` packet log.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, *, client_id: str = "",
                 version: int = 4, keepalive: int = 60, clean_session: bool = True,
                 session_expiry: int = 0, username: str | None = None,
                 password: bytes | str | None = None, will: Will | None = None,
                 tls: ssl.SSLContext | None = None, server_hostname: str | None = None,
                 connect_timeout: float = 10.0, max_inflight: int = 20,
                 properties: Properties = NO_PROPERTIES,
                 on_event: Callable[[Any], None] | None = None,
                 transport: str = "tcp", websocket_path: str = "/mqtt",
                 reconnect: bool = False, reconnect_delay: float = 1.0,
                 reconnect_max_delay: float = 30.0, max_queued: int | None = None,
                 queue_qos0_offline: bool = False):
        if isinstance(password, str):
            password = password.encode()
        if transport not in ("tcp", "websockets"):
            raise ValueError(f"transport must be 'tcp' or 'websockets', not {transport!r}")
        self.host, self.port = host, port
        # MQTT over WebSockets (mqttsim.net.websocket) as paho's transport="websockets": the
        # same engine, behind a WebSocket handshake to ``websocket_path``; with ``tls`` it is
        # wss://.
        self.transport, self.websocket_path = transport, websocket_path
        self.tls, self.server_hostname = tls, server_hostname
        self.connect_timeout = connect_timeout
        if reconnect_delay <= 0 or reconnect_max_delay < reconnect_delay:
            raise ValueError("reconnect_delay must be > 0 and reconnect_max_delay at least "
                             "reconnect_delay")
        if max_queued is not None and max_queued < 1:
            raise ValueError("max_queued must be at least 1 (None: no limit)")
        self.reconnect = reconnect
        self.reconnect_delay, self.reconnect_max_delay = reconnect_delay, reconnect_max_delay
        self.engine = ClientEngine(ClientConfig(
            client_id=client_id, version=version, keepalive=keepalive,
            clean_session=clean_session, session_expiry=session_expiry, username=username,
            password=password, will=will, max_inflight=max_inflight,
            max_queued=max_queued, queue_qos0_offline=queue_qos0_offline,
            connect_timeout=connect_timeout, properties=properties,
            emit_packet_events=on_event is not None))
        self.on_event = on_event
        self.messages = _Messages(self)
        self.session_present = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._queue: asyncio.Queue = asyncio.Queue()
        self._connected: asyncio.Future | None = None
        self._closed: asyncio.Future | None = None
        self._subs: dict[int, asyncio.Future] = {}
        self._unsubs: dict[int, asyncio.Future] = {}
        self._published: dict[int, asyncio.Future] = {}
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed_error: ClientError | None = None
        self._closing = False
        # Reconnect state: the connection broke and another one is on its way.
        self.dropped: Counter = Counter()  # messages the engine gave up on, by reason
        self.reconnects = 0  # connections re-established automatically
        self.last_error: ClientError | None = None  # why the last connection ended
        self._over = False  # this connection's end was handled (_connection_over)
        self._reconnect_task: asyncio.Task | None = None
        self._subscriptions: dict[str, tuple[Subscription, Properties]] = {}  # to renew

    @property
    def client_id(self) -> str:
        """The client id in use (MQTT 5: the one the broker assigned, if it did)."""
        return self.engine.client_id

    @property
    def version(self) -> int:
        return self.engine.version

    @property
    def connected(self) -> bool:
        """CONNACK received and the connection still up."""
        return self._transport is not None and self.engine.state == "connected"

    @property
    def queued(self) -> int:
        """Messages waiting in the engine's queue (the offline buffer while disconnected)."""
        return self.engine.queued_count

    # -- connecting and disconnecting ----------------------------------------------------
    async def connect(self) -> ev.Connected:
        """Open the connection and wait for CONNACK; raises ``ConnectionRefused`` on a refusal."""
        if self._transport is not None or self._reconnect_task is not None:
            raise ClientError("already connected")
        self._closed_error = None
        self._closing = False
        self._drop_end_markers()  # a reconnect: messages not yet read stay readable
        return await self._open()

    async def _open(self) -> ev.Connected:
        """One connection: transport (and WebSocket handshake), CONNECT, CONNACK."""
        loop = self._loop = asyncio.get_running_loop()
        self._connected = loop.create_future()
        self._closed = loop.create_future()
        self._over = False
        hostname = self.server_hostname or (self.host if self.tls is not None else None)
        try:
            if self.transport == "websockets":
                from .websocket import open_connection

                transport, _ = await open_connection(
                    lambda: _Transport(self), self.host, self.port, path=self.websocket_path,
                    ssl=self.tls, server_hostname=hostname, timeout=self.connect_timeout,
                    subprotocol="mqttv3.1" if self.engine.version == 3 else "mqtt")
            else:
                transport, _ = await asyncio.wait_for(
                    loop.create_connection(lambda: _Transport(self), self.host, self.port,
                                           ssl=self.tls, server_hostname=hostname),
                    self.connect_timeout)
        except BaseException:  # no connection at all: nothing will ever settle these
            self._connected.cancel()
            self._closed.set_result(None)
            raise
        self._transport = transport
        if transport.is_closing():  # the broker hung up at once
            await self._closed
            raise self._closed_error or ConnectionLost("transport")
        self.engine.connect(loop.time())
        self._after()
        connected = await self._connected
        self.session_present = connected.session_present
        return connected

    async def disconnect(self) -> None:
        """Send DISCONNECT (the broker then discards the will) and close the connection;
        stops reconnecting too."""
        task = self._reconnect_task
        if task is not None and self._transport is None:
            self._closing = True  # between connections: nothing to send DISCONNECT on
            task.cancel()
            self._reconnect_task = None
            self._finish(ConnectionLost("clean", "disconnected while reconnecting"))
            return
        if self._transport is None or self._closed is None:
            return  # never connected, or the connection is already over
        self._closing = True
        if not self._transport.is_closing():
            self._dispatch(self.engine.disconnect(self._loop.time()))
            self._after()
        await asyncio.shield(self._closed)

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.disconnect()

    def abort(self) -> None:
        """Drop the TCP connection without DISCONNECT (the broker publishes the will)."""
        if self._transport is not None:
            self._transport.abort()

    # -- application calls ---------------------------------------------------------------
    async def subscribe(self, topic_filters: str | Subscription | Iterable, qos: int = 0,
                        properties: Properties = NO_PROPERTIES) -> tuple[int, ...]:
        """SUBSCRIBE and wait for SUBACK; returns one code per filter, as the broker sent them.

        Codes 0-2 are the granted QoS; a code of 0x80 or more means that filter was refused
        (3.1.1: 0x80 Failure; MQTT 5: the reason code, e.g. 0x87 Not authorized). They are
        returned rather than raised because a partial grant is a normal answer.
        """
        self._require_open()
        packet_id = self.engine.subscribe(topic_filters, self._now(), qos, properties)
        future = self._subs[packet_id] = self._loop.create_future()
        self._after()
        granted = await future
        subs = [_as_subscription(item, qos) for item in _as_list(topic_filters)]
        for sub, code in zip(subs, granted):
            if code < 0x80:  # renewed after an automatic reconnect
                self._subscriptions[sub.topic_filter] = (sub, properties)
        return granted

    async def unsubscribe(self, topic_filters: str | Iterable[str]) -> tuple[int, ...]:
        """UNSUBSCRIBE and wait for UNSUBACK; returns its reason codes (empty before MQTT 5)."""
        self._require_open()
        packet_id = self.engine.unsubscribe(topic_filters, self._now())
        future = self._unsubs[packet_id] = self._loop.create_future()
        for topic_filter in _as_list(topic_filters):
            self._subscriptions.pop(topic_filter, None)
        self._after()
        return await future

    async def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0,
                      retain: bool = False, properties: Properties = NO_PROPERTIES) -> int:
        """Publish; returns when the QoS flow is complete (PUBACK for 1, PUBCOMP for 2), or at
        once for QoS 0 once the bytes are handed to the transport. Returns the reason code
        of the final acknowledgement (0 for QoS 0; MQTT 5 may say 0x10 "No matching
        subscribers"). A refusal (code >= 0x80) is returned, not raised, like SUBACK's."""
        await self._writable.wait()
        if not self._reconnecting():  # else the engine holds it (the offline buffer)
            self._require_open()
        number = self.engine.publish(topic, payload, qos, retain, self._now(), properties)
        future = self._published[number] = self._loop.create_future()
        self._dispatch(self.engine.take_events())  # a drop (queue full...) is known now
        self._after()
        if not qos:
            self._published.pop(number, None)
            if future.done():
                return future.result()  # raises MessageNotDelivered if it was dropped
            return 0
        return await future

    async def wait_closed(self) -> None:
        """Wait until the connection is over (for whatever reason; with ``reconnect``,
        until the client stopped reconnecting)."""
        while self._closed is not None:
            await asyncio.shield(self._closed)
            task = self._reconnect_task
            if task is None:
                return
            await asyncio.shield(task)

    # -- automatic reconnect ---------------------------------------------------------------
    def _reconnecting(self) -> bool:
        return self._reconnect_task is not None and not self._closing

    def _connection_over(self, error: ClientError) -> None:
        """This connection ended: reconnect later if asked to and it had been up, else
        end everything (``_finish``)."""
        if self._over:
            return
        self._over = True
        self.last_error = error
        if (self.reconnect and not self._closing and self._closed_error is None
                and not isinstance(error, ConnectionRefused)
                and (self._reconnect_task is not None or
                     (self._connected is not None and self._connected.done()
                      and not self._connected.cancelled()
                      and self._connected.exception() is None))):
            # What cannot outlive the connection fails; published messages stay with the
            # engine (sent again, or dropped by the session rules and reported then).
            waiting = [self._connected, *self._subs.values(), *self._unsubs.values()]
            self._subs.clear()
            self._unsubs.clear()
            for future in waiting:
                if future is not None and not future.done():
                    future.set_exception(error)
            if self._reconnect_task is None:
                self._reconnect_task = self._loop.create_task(self._reconnect_loop())
            return
        self._finish(error)

    async def _reconnect_loop(self) -> None:
        """Connect again with back-off until CONNACK, a refusal, or ``disconnect()``."""
        failures = 0
        try:
            while not self._closing:
                await asyncio.sleep(reconnect_delay(self.reconnect_delay,
                                                    self.reconnect_max_delay, failures))
                failures += 1
                if self._transport is not None:  # the broken one is still closing
                    await asyncio.shield(self._closed)
                try:
                    await self._open()
                except ConnectionRefused as exc:
                    self._reconnect_task = None
                    self._finish(exc)  # the broker said no: final, as for mosquitto_sub
                    return
                except (OSError, asyncio.TimeoutError, ClientError) as exc:
                    if not isinstance(exc, ClientError):
                        self.last_error = ConnectionLost("transport", str(exc) or
                                                         type(exc).__name__)
                    if self._transport is not None:
                        self._transport.abort()
                    continue
                self.reconnects += 1
                self._reconnect_task = None
                await self._resubscribe()
                return
        finally:
            if self._reconnect_task is asyncio.current_task():
                self._reconnect_task = None

    async def _resubscribe(self) -> None:
        """Subscribe again to every filter granted before (one SUBSCRIBE per set of
        properties), as mosquitto_sub does after each CONNACK."""
        groups: dict[int, tuple[Properties, list[Subscription]]] = {}
        for sub, properties in self._subscriptions.values():
            groups.setdefault(id(properties), (properties, []))[1].append(sub)
        for properties, subs in groups.values():
            try:
                await self.subscribe(subs, properties=properties)
            except ClientError:
                return  # the new connection broke already: the next reconnect renews

    # -- driver ----------------------------------------------------------------------------
    def _drop_end_markers(self) -> None:
        kept = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not _END:
                kept.append(item)
        for item in kept:
            self._queue.put_nowait(item)

    def _require_open(self) -> None:
        """Nothing may wait on a connection that is over: it would never be answered."""
        if self._transport is None or self.engine.state == "disconnected":
            raise self._closed_error or ConnectionLost("not_connected", "call connect() first")

    def _now(self) -> float:
        if self._loop is None:
            raise ConnectionLost("not_connected", "call connect() first")
        return self._loop.time()

    def _received(self, data: bytes) -> None:
        self._dispatch(self.engine.receive(data, self._loop.time()))
        self._after()

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, None
        self._dispatch(self.engine.on_timer(self._loop.time()))
        self._after()

    def _after(self) -> None:
        """Write what the engine produced, close if it asked to, re-arm the one timer."""
        engine, transport = self.engine, self._transport
        data = engine.data_to_send()
        if data and transport is not None and not transport.is_closing():
            transport.write(data)
        if engine.should_close and transport is not None and not transport.is_closing():
            transport.close()
        deadline = engine.next_deadline()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = None if deadline is None else self._loop.call_at(deadline,
                                                                            self._on_timer)

    def _transport_lost(self, exc: Exception | None) -> None:
        detail = str(exc) if exc else "closed by the broker"
        self._dispatch(self.engine.connection_lost(self._loop.time(), "transport", detail))
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, None
        self._transport = None
        self._writable.set()
        if not self._over:  # the engine did not say why: the socket broke
            self._connection_over(ConnectionLost("transport", detail))
        if not self._closed.done():
            self._closed.set_result(None)

    def _dispatch(self, events: list) -> None:
        for event in events:
            if self.on_event is not None:
                self.on_event(event)
            kind = event.__class__
            if kind is ev.MessageReceived:
                self._queue.put_nowait(Message(event.topic, event.payload, event.qos,
                                               event.retain, event.dup, event.properties,
                                               event.packet_id))
            elif kind is ev.MessageAcknowledged:
                _resolve(self._published.pop(event.message, None), event.reason_code)
            elif kind is ev.Subscribed:
                _resolve(self._subs.pop(event.packet_id, None), tuple(event.granted))
            elif kind is ev.Unsubscribed:
                _resolve(self._unsubs.pop(event.packet_id, None), tuple(event.reason_codes))
            elif kind is ev.MessageDropped:
                self.dropped[event.reason] += 1
                future = self._published.pop(event.message, None)
                if future is not None and not future.done():
                    future.set_exception(MessageNotDelivered(event.reason))
            elif kind is ev.Connected:
                _resolve(self._connected, event)
            elif kind is ev.ConnectionRefused:
                self._connection_over(ConnectionRefused(event.reason_code, event.reason))
            elif kind is ev.ConnectionClosed:
                self._connection_over(ConnectionLost(event.reason, event.detail, event.rule))

    def _finish(self, error: ClientError) -> None:
        """The connection is over: fail everything still waiting and end ``messages``."""
        self._over = True
        if self._closed_error is None:
            self._closed_error = error
        error = self._closed_error
        waiting = [self._connected, *self._subs.values(), *self._unsubs.values(),
                   *self._published.values()]
        self._subs.clear()
        self._unsubs.clear()
        self._published.clear()
        for future in waiting:
            if future is not None and not future.done():
                future.set_exception(error)
        self._queue.put_nowait(_END)


def _resolve(future: asyncio.Future | None, value: Any) -> None:
    if future is not None and not future.done():
        future.set_result(value)


def __getattr__(name: str):
    """``BlockingClient`` lives in mqttsim.net.blocking_client (the thread-and-loop wrapper)
    and is importable from here, where it has always been."""
    if name == "BlockingClient":
        from .blocking_client import BlockingClient

        return BlockingClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
