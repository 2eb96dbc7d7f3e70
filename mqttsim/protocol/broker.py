"""The sans-IO MQTT broker engine: many connections, sessions, routing, retained, will.

Theory of operation: the driver gives each transport connection a hashable id and reports
``connection_made``, every received chunk (``receive``), and ``connection_lost``. The engine
queues output per connection; ``pending()`` names only the connections that have output or
must be closed, and ``take_output(conn)`` hands over (bytes, close). Timers (keepalive at
1.5 x [MQTT-3.1.2-24], CONNECT timeout, will delay, session expiry, 3.1 retries, held acks)
sit in one heap behind ``next_deadline()`` / ``on_timer(now)``, so 10,000 idle connections
cost nothing per tick. A protocol violation closes that connection only: the error is caught
at the connection boundary and reported as an event naming the spec statement.

Each connection's life is ``broker_state.ConnState`` and its transition table. The engine is
one class written in four files by job: this one (the driver interface, dispatch, shared
output), broker_sessions.py (CONNECT, sessions, wills, the end of a connection),
broker_routing.py (who receives a message, queues, delivery, held acks) and
broker_packets.py (the packets a connected client sends).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from typing import Callable, Hashable

from . import events as ev
from ._tracing import TracesPackets
from .auth import AllowAll
from .broker_packets import PacketHandlersMixin
from .broker_routing import RoutingMixin
from .broker_sessions import SessionsMixin
from .broker_sys import SysCounters, SysTreeMixin
from .broker_state import (BrokerConfig, BrokerStore, Connection, ConnState, RetainedMessage,
                           Session, Timer)
from .decoder import Decoder
from .encoder import ACK_WORDS, encode
from .errors import MQTTError, ProtocolError, UnsupportedProtocolVersion
from .packets import (MQTT_3_1_1, MQTT_5, Auth, Connack, Connect, Disconnect, Pingreq, Puback,
                      Pubcomp, Publish, Pubrec, Pubrel, Subscribe, Unsubscribe)
from .reason_codes import DISCONNECT_V5
from .subscriptions import SubscriptionTree, TopicTrie

_AWAITING, _CONNECTED, _CLOSING = (ConnState.AWAITING_CONNECT, ConnState.CONNECTED,
                                   ConnState.CLOSING)


class BrokerEngine(SessionsMixin, RoutingMixin, PacketHandlersMixin, SysTreeMixin,
                   TracesPackets):
    """All protocol state of one broker."""

    def __init__(self, config: BrokerConfig | None = None, auth=None, authz=None,
                 store: BrokerStore | None = None):
        self.config = config or BrokerConfig()
        self.auth = auth or AllowAll()
        self.authz = authz  # None: everything allowed, and no per-message cost
        self.store = store
        self.trace_sent = self.trace_received = self.config.emit_packet_events
        self.connections: dict[Hashable, Connection] = {}
        self.sessions: dict[str, Session] = {}
        self.subscriptions: SubscriptionTree = SubscriptionTree()
        self.retained: TopicTrie = TopicTrie()
        self._pending: set[Hashable] = set()
        self._events: list = []
        self._timers: list = []  # heap of (when, seq, kind, key)
        self._timer_seq = 0
        self._assigned = 0
        self._share_turn: dict[str, int] = {}
        self._route_cache: dict[str, tuple] = {}  # topic -> matches; cleared on any change
        # client id -> (will, conn, due, username): wills waiting for their delay [MQTT-3.1.3-9]
        self._delayed_wills: dict[str, tuple] = {}
        # Messages dropped, per (client id, reason): "queue_full" is the one to watch.
        self.drops: Counter = Counter()
        # Flow control (BrokerConfig.hold_acks_when_congested): congested sessions, and per
        # publisher connection the acks waiting for them, in order, with when they began to.
        cfg = self.config
        self._high_water = self._low_water = None  # queued messages; None: no holding
        self._high_bytes = self._low_bytes = math.inf
        if cfg.hold_acks_when_congested and (cfg.max_queued_messages or cfg.max_queued_bytes):
            count, size = cfg.max_queued_messages, cfg.max_queued_bytes
            self._high_water = max(1, count // 2) if count else math.inf
            self._low_water = self._high_water // 2
            if size:
                self._high_bytes = max(1, size // 2)
                self._low_bytes = self._high_bytes // 2
        self._congested: set[str] = set()
        self._held_acks: dict[Hashable, deque] = {}
        self._hold_timers: set[Hashable] = set()  # publisher connections with a timer armed
        self._route_blockers: set[str] = set()  # congested sessions the last PUBLISH went to
        self.sys = SysCounters()  # $SYS/broker/... (broker_sys.py)
        # What follows auto_id_prefix in an assigned client id (None: a counter); drivers
        # may set it (the socket server gives mosquitto's UUIDs).
        self.client_id_source: Callable[[], str] | None = None

    # -- driver interface ------------------------------------------------------------------
    def connection_made(self, conn: Hashable, now: float) -> None:
        """A client opened a transport connection; it has ``connect_timeout`` to send CONNECT."""
        if conn in self.connections:
            raise ValueError(f"connection id {conn!r} is already in use")
        cfg = self.config
        self.connections[conn] = Connection(
            conn, Decoder(None, cfg.max_packet_size, cfg.max_user_properties), now, now)
        self.sys.sockets += 1
        if self.trace_sent:
            self._events.append(ev.ConnectionOpened(now, conn))
        self._schedule(now + self.config.connect_timeout, Timer.CONNECT, conn)

    def receive(self, conn: Hashable, data: bytes, now: float) -> list:
        """Bytes from a client. Returns the events that happened."""
        c = self.connections.get(conn)
        if c is None or c.state is _CLOSING:
            return self.take_events()  # after a refusal or a close, data is ignored [MQTT-3.1.4-5]
        c.last_received = now
        self.sys.bytes_received += len(data)
        try:
            packets = c.decoder.feed(data)
        except MQTTError as exc:
            self.sys.packets_received += len(exc.decoded)
            for packet, size in zip(exc.decoded, c.decoder.sizes):
                if not self._dispatch(c, packet, size, now):
                    return self.take_events()
            self._violation(c, exc, now)
            return self.take_events()
        self.sys.packets_received += len(packets)
        if self.trace_received or c.state is _AWAITING:
            for packet, size in zip(packets, c.decoder.sizes):
                if not self._dispatch(c, packet, size, now):
                    break
            return self.take_events()
        handlers = _HANDLERS
        for packet in packets:  # an established session: the common case, without detours
            handler = handlers.get(packet.__class__)
            if handler is None:
                self._dispatch(c, packet, 0, now)  # reports what is wrong with it
                break
            try:
                handler(self, c, packet, now)
            except Exception as exc:  # noqa: BLE001 - sorted out by _failed
                self._failed(c, exc, now)
            if c.state is _CLOSING:
                break
        return self.take_events()

    def pending(self) -> list[Hashable]:
        """Connections with output to write or a close to perform."""
        return list(self._pending)

    def take_output(self, conn: Hashable) -> tuple[bytes, bool]:
        """(bytes to write, close the connection after writing them?)."""
        self._pending.discard(conn)
        c = self.connections.get(conn)
        if c is None:
            return b"", True
        data = bytes(c.out)
        c.out.clear()
        self.sys.bytes_sent += len(data)
        return data, c.state is _CLOSING

    def connection_lost(self, conn: Hashable, now: float, reason: str = "transport",
                        detail: str = "") -> list:
        """The transport is gone (closed by the peer, reset, or closed by the driver)."""
        c = self.connections.pop(conn, None)
        self._pending.discard(conn)
        if c is not None:
            ended = c.state is _CLOSING  # the engine closed it and accounted for its end
            c.move("lost")
            if not ended:
                self._end(c, now, reason, detail, publish_will=True)
        return self.take_events()

    def take_events(self) -> list:
        events, self._events = self._events, []
        return events

    def set_writable(self, conn: Hashable, writable: bool, now: float) -> list:
        """The driver's socket buffer for ``conn`` filled up (False) or drained (True).

        While a connection is not writable its messages wait in its session's queue (bounded
        by max_queued_messages, drops reported) instead of piling up in the socket buffer.
        """
        c = self.connections.get(conn)
        if c is not None:
            c.writable = writable
            if writable and c.session is not None and c.session.conn == conn:
                self._fill(c.session, now)
        return self.take_events()

    def abandon(self, now: float, reason: str) -> list:
        """The broker process is gone (a crash): the messages of every session that no store
        keeps will never arrive. Reported as MessageDropped; the engine is not used again
        (a new one restores what the store kept)."""
        for session in self.sessions.values():
            if self.store is None or not session.expiry:
                for msg in session.flow.discard():
                    self._drop(session, msg, reason, now)
        return self.take_events()

    def next_deadline(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def on_timer(self, now: float) -> list:
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, kind, key = heapq.heappop(timers)
            _TIMERS[kind](self, key, now)
        return self.take_events()

    def shutdown(self, now: float) -> list:
        """Close every connection (the server is stopping); persistent sessions stay."""
        for c in list(self.connections.values()):
            if c.state is not _CLOSING:
                if c.version == MQTT_5 and c.state is _CONNECTED:
                    self._disconnect(c, 0x8B, now)  # Server shutting down
                self._close(c, now, "shutdown", "server shutting down", publish_will=True)
        return self.take_events()

    def restore(self, sessions: list[Session], retained: list[RetainedMessage]) -> None:
        """Load persisted state before any connection (socket server start-up)."""
        for message in retained:
            self.retained.set(message.topic, message)
        for session in sessions:
            session.conn = None
            flow = session.flow  # the store built it: apply this configuration's limits
            flow.max_queued_bytes = self.config.max_queued_bytes
            flow.recount()
            self.sessions[session.client_id] = session
            if session.expires_at is not None:  # it keeps expiring while offline
                self._schedule(session.expires_at, Timer.EXPIRE, session.client_id)
            for topic_filter, entry in session.subscriptions.items():
                self.subscriptions.add(topic_filter, session.client_id, entry,
                                       version=session.version)
        self._route_cache.clear()

    def drop_counts(self, reason: str = "queue_full") -> dict[str, int]:
        """Messages dropped for ``reason``, per client id (sum them for the total)."""
        return {client: n for (client, why), n in self.drops.items() if why == reason}

    # -- dispatch: every packet, every failure, one connection at a time -------------------
    def _dispatch(self, c: Connection, packet, size: int, now: float) -> bool:
        """Handle one packet; False once the connection is closing."""
        if self.trace_received:
            self._events.append(ev.PacketReceived(now, packet, size, c.conn, c.client_id))
        try:
            if c.state is _AWAITING:
                if packet.__class__ is not Connect:
                    raise ProtocolError(f"{packet.type.name} before CONNECT", "MQTT-3.1.0-1")
                self._on_connect(c, packet, now)
            else:
                handler = _HANDLERS.get(packet.__class__)
                if handler is None:
                    raise ProtocolError(f"a client never sends {packet.type.name}",
                                        "MQTT-3.1.0-2" if packet.__class__ is Connect else None)
                handler(self, c, packet, now)
        except Exception as exc:  # noqa: BLE001 - sorted out by _failed
            self._failed(c, exc, now)
        return c.state is not _CLOSING

    def _failed(self, c: Connection, exc: Exception, now: float) -> None:
        """A packet could not be handled: a protocol violation, a transient failure of an
        authenticator or store [MQTT-4.8.0-2], or a bug (re-raised, never hidden). Only this
        connection is closed."""
        if isinstance(exc, MQTTError):
            self._violation(c, exc, now)
            return
        if isinstance(exc, (NameError, AttributeError, TypeError, AssertionError)):
            raise exc
        if c.version == MQTT_5 and c.state is _CONNECTED:
            self._disconnect(c, 0x80, now)  # Unspecified error
        self._close(c, now, "transient_error", f"{type(exc).__name__}: {exc}",
                    "MQTT-4.8.0-2" if c.version != MQTT_5 else None, publish_will=True)

    def _violation(self, c: Connection, exc: MQTTError, now: float) -> None:
        """Any protocol violation closes this connection and only this one [MQTT-4.8.0-1]."""
        if isinstance(exc, UnsupportedProtocolVersion) and c.state is _AWAITING:
            # [MQTT-3.1.2-2]: answer in a CONNACK the client can read, then close.
            version = MQTT_5 if exc.protocol_level == MQTT_5 else MQTT_3_1_1
            c.version = version
            self._send(c, Connack(False, 0x84 if version == MQTT_5 else 0x01), now)
            self._close(c, now, "refused", str(exc), exc.rule)
            return
        if c.version == MQTT_5 and c.state is _CONNECTED:
            self._disconnect(c, exc.reason_code, now)  # only after CONNACK [MQTT-3.14.0-1]
        self._close(c, now, "protocol_error", exc.message, exc.rule, publish_will=True)

    # -- output and bookkeeping shared by every part ---------------------------------------
    def _schedule(self, when: float, kind: Timer, key) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, kind, key))

    def _send(self, c: Connection, packet, now: float) -> int:
        data = encode(packet, c.version or MQTT_3_1_1)
        c.out += data
        self.sys.packets_sent += 1
        if packet.__class__ is Publish:
            self.sys.publish_resent += 1
        self._pending.add(c.conn)
        if self.trace_sent:
            self._events.append(ev.PacketSent(now, packet, len(data), c.conn, c.client_id))
        return len(data)

    def _send_ack(self, c: Connection, cls, packet_id: int, now: float, code: int = 0) -> None:
        """PUBACK, PUBREC, PUBREL or PUBCOMP without properties. The commonest packet of
        all, success without a reason code, is written directly."""
        if code:
            self._send(c, cls(packet_id, code), now)
            return
        c.out += (ACK_WORDS[cls] | packet_id).to_bytes(4, "big")
        self.sys.packets_sent += 1
        self._pending.add(c.conn)
        if self.trace_sent:
            self._events.append(ev.PacketSent(now, cls(packet_id), 4, c.conn, c.client_id))

    def _disconnect(self, c: Connection, code: int, now: float) -> None:
        """The broker's MQTT 5 DISCONNECT, the only place that builds one. A reason code that
        DISCONNECT does not allow (e.g. 0x84 Unsupported Protocol Version, a CONNACK code,
        from a second CONNECT) becomes 0x82 Protocol Error: whatever the packet said, the
        client broke the protocol after CONNACK [MQTT-3.1.0-2] (spec table 3-10 lists the
        codes DISCONNECT may carry)."""
        if code not in DISCONNECT_V5:
            code = 0x82
        self._send(c, Disconnect(code), now)

    def _session_changed(self, session: Session) -> None:
        if self.store is not None and session.expiry:
            self.store.session_changed(session)

    def _drop(self, session: Session, msg, reason: str, now: float) -> None:
        self.drops[(session.client_id, reason)] += 1
        self._events.append(ev.MessageDropped(now, msg.topic, msg.qos, reason, None,
                                              session.conn, session.client_id, msg.payload))


# The packets a connected client may send, and who handles them (anything else is refused).
_HANDLERS = {
    Publish: BrokerEngine._on_publish,
    Puback: BrokerEngine._on_puback,
    Pubrec: BrokerEngine._on_pubrec,
    Pubrel: BrokerEngine._on_pubrel,
    Pubcomp: BrokerEngine._on_pubcomp,
    Subscribe: BrokerEngine._on_subscribe,
    Unsubscribe: BrokerEngine._on_unsubscribe,
    Pingreq: BrokerEngine._on_pingreq,
    Disconnect: BrokerEngine._on_disconnect,
    Auth: BrokerEngine._on_auth,
}

# What each kind of timer wakes up (an explicit table rather than names built at run time).
_TIMERS = {
    Timer.CONNECT: BrokerEngine._timer_connect,
    Timer.KEEPALIVE: BrokerEngine._timer_keepalive,
    Timer.WILL: BrokerEngine._timer_will,
    Timer.EXPIRE: BrokerEngine._timer_expire,
    Timer.RETRY: BrokerEngine._timer_retry,
    Timer.ACKHOLD: BrokerEngine._timer_ackhold,
    Timer.SYS: BrokerEngine._timer_sys,
}
assert set(_TIMERS) == set(Timer), "every kind of timer has its handler"
