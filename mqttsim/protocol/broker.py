"""The sans-IO MQTT broker engine: many connections, sessions, routing, retained, will.

Theory of operation: the driver gives each transport connection a hashable id and reports
``connection_made``, every received chunk (``receive``), and ``connection_lost``. The engine
queues output per connection; ``pending()`` names only the connections that have output or
must be closed, and ``take_output(conn)`` hands over (bytes, close). Timers (keepalive at
1.5 x [MQTT-3.1.2-24], CONNECT timeout, will delay, session expiry, 3.1 retries) sit in one
heap behind ``next_deadline()`` / ``on_timer(now)``, so 10,000 idle connections cost nothing
per tick. A protocol violation closes that connection only: the error is caught at the
connection boundary and reported as an event naming the spec statement.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from dataclasses import replace
from typing import Hashable

from . import events as ev
from .auth import NOT_AUTHORIZED, AllowAll
from ._tracing import TracesPackets
from .broker_packets import PacketHandlersMixin
from .broker_state import (NEVER_EXPIRES, BrokerConfig, BrokerStore, Connection, ConnState,
                           RetainedMessage, Session, Timer)
from .decoder import Decoder
from .encoder import encode
from .errors import MQTTError, ProtocolError, UnsupportedProtocolVersion
from .flows import OutgoingFlow
from .packets import (MQTT_3_1, MQTT_3_1_1, MQTT_5, Auth, Connack, Connect, Disconnect,
                      Pingreq, Puback, Pubcomp, Publish, Pubrec, Pubrel, Subscribe, Unsubscribe)
from .properties import NO_PROPERTIES, Properties
from .reason_codes import CONNACK_V3_TO_V5, DISCONNECT_V5, reason_name
from .subscriptions import SubscriptionTree, TopicTrie

_AWAITING, _CONNECTED, _CLOSING = (ConnState.AWAITING_CONNECT, ConnState.CONNECTED,
                                   ConnState.CLOSING)


class BrokerEngine(PacketHandlersMixin, TracesPackets):
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
        self._route_blockers: set[str] = set()  # client id -> (will, conn, due) [MQTT-3.1.3-9]

    # -- driver interface ------------------------------------------------------------------
    def connection_made(self, conn: Hashable, now: float) -> None:
        """A client opened a transport connection; it has ``connect_timeout`` to send CONNECT."""
        if conn in self.connections:
            raise ValueError(f"connection id {conn!r} is already in use")
        cfg = self.config
        self.connections[conn] = Connection(
            conn, Decoder(None, cfg.max_packet_size, cfg.max_user_properties), now, now)
        self._schedule(now + self.config.connect_timeout, Timer.CONNECT, conn)

    def receive(self, conn: Hashable, data: bytes, now: float) -> list:
        """Bytes from a client. Returns the events that happened."""
        c = self.connections.get(conn)
        if c is None or c.state is _CLOSING:
            return self.take_events()  # after a refusal or a close, data is ignored [MQTT-3.1.4-5]
        c.last_received = now
        try:
            packets = c.decoder.feed(data)
        except MQTTError as exc:
            for packet, size in zip(exc.decoded, c.decoder.sizes):
                if not self._dispatch(c, packet, size, now):
                    return self.take_events()
            self._violation(c, exc, now)
            return self.take_events()
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
        events, self._events = self._events, []  # take_events(), without the call
        return events

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

    # -- dispatch --------------------------------------------------------------------------
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

    # -- CONNECT ---------------------------------------------------------------------------
    def _on_connect(self, c: Connection, p: Connect, now: float) -> None:
        cfg = self.config
        version = c.version = c.decoder.version
        client_id = p.client_id
        assigned = None
        props = p.properties
        if not client_id:
            if version == MQTT_3_1 or not cfg.allow_zero_length_clientid or (
                    version == MQTT_3_1_1 and not p.clean_session):
                return self._refuse(c, 0x02, now, "empty client id needs clean session "
                                    "[MQTT-3.1.3-8]" if version == MQTT_3_1_1 else
                                    "empty client id not allowed", "MQTT-3.1.3-8")
            client_id = assigned = self._new_client_id()
        elif version == MQTT_3_1 and len(client_id) > 23:
            return self._refuse(c, 0x02, now, "MQTT 3.1 client ids are 1-23 characters")
        keepalive = p.keepalive
        server_keepalive = None
        if keepalive > cfg.max_keepalive or (keepalive == 0 and cfg.max_keepalive < 65535):
            if version != MQTT_5:
                return self._refuse(c, 0x02, now,
                                    f"keepalive {keepalive} s exceeds max_keepalive")
            keepalive = server_keepalive = cfg.max_keepalive
        if version == MQTT_5 and props.authentication_method is not None:
            return self._refuse(c, 0x8C, now, "extended authentication is not supported",
                                "MQTT-4.12.0-1")
        if p.will is not None and p.will.retain and not cfg.retain_available:
            return self._refuse(c, 0x9A if version == MQTT_5 else 0x05, now,
                                "retained will but retain is not available", "MQTT-3.2.2-13")
        code = self.auth.authenticate(client_id, p.username, p.password)
        if code:
            return self._refuse(c, code, now, reason_name(code, MQTT_3_1_1, "CONNACK"))
        if p.will is not None and not self._may_write(client_id, p.username, p.will.topic):
            # A will is a publish by this client. Refused at CONNECT, where the client can
            # still learn why (3.1/3.1.1 return code 5 "not authorized", MQTT 5 reason 0x87,
            # [MQTT-3.1.4-2]: a failed check closes the connection), rather than accepted and
            # dropped silently when it falls due, as mosquitto 2.0.11 does (its ACL check is
            # in context__send_will only). Checked again when published (_publish_will).
            return self._refuse(c, NOT_AUTHORIZED, now,
                                f"will topic {p.will.topic!r} is not writable for user "
                                f"{p.username!r}")
        c.client_id = client_id
        c.keepalive = keepalive
        c.will = p.will
        if version == MQTT_5:
            c.max_packet_out = props.maximum_packet_size
            if p.will is not None:
                c.will_delay = p.will.properties.will_delay_interval or 0
        # A second connection with the same client id takes over [MQTT-3.1.4-2].
        session = self.sessions.get(client_id)
        # The old session ends here with a clean start, or when another user takes the id.
        ends = session is not None and (p.clean_session or session.username != p.username)
        if session is not None and session.conn is not None:
            old = self.connections.get(session.conn)
            if old is not None and old.state is not _CLOSING:
                if old.version == MQTT_5:
                    self._disconnect(old, 0x8E, now)  # Session taken over [MQTT-3.1.4-3]
                cancel_will = (not ends and old.will_delay > 0)
                self._close(old, now, "takeover", f"client id {client_id!r} connected again",
                            "MQTT-3.1.4-2" if version != MQTT_5 else "MQTT-3.1.4-3",
                            publish_will=not cancel_will)
            session = self.sessions.get(client_id)
        if ends:  # a delayed will goes when its session ends, if not before (MQTT 5 3.1.3.2)
            self._publish_delayed_will(client_id, now)
        else:
            self._cancel_delayed_will(client_id)
        expiry = self._session_expiry(version, p)
        if p.clean_session and session is not None:
            self._discard_session(session, now, "clean_session")  # [MQTT-3.1.2-6]
            session = None
        elif session is not None and session.username != p.username:
            # A session belongs to the identity that made it: another user asking for the
            # same client id gets a fresh one (session present 0), nothing of the first
            # (queue, in-flight messages, subscriptions). Not refused: the client id stays
            # the session's key as MQTT has it, and a 3.1.1 session that never expires
            # must not lock a client id away for good. (mosquitto 2.0.11 resumes it and
            # filters the queue through the new user's ACL, keeping the subscriptions.)
            self._discard_session(session, now, "session_owner_changed")
            session = None
        session_present = session is not None  # [MQTT-3.2.2-1..3]
        if session is None:
            window = cfg.max_inflight
            session = Session(client_id, version, expiry,
                              OutgoingFlow(window, cfg.max_queued_messages, cfg.queue_qos0,
                                           cfg.max_queued_bytes))
            self.sessions[client_id] = session
        session.version, session.expiry, session.expires_at = version, expiry, None
        session.username = p.username
        session.conn = c.conn
        if version == MQTT_5:
            session.flow.window = min(cfg.max_inflight, props.receive_maximum or 65535)
        policy = cfg.retry_policy or ("timer" if version == MQTT_3_1 else "on_reconnect")
        session.retry_timer = policy == "timer"
        c.session = session
        c.move("accept")
        # MQTT 3.1's CONNACK has no Session Present flag: the session resumes all the same.
        self._send(c, Connack(session_present and version != MQTT_3_1, 0,
                              self._connack_properties(c, assigned, server_keepalive)), now)
        self._events.append(ev.Connected(now, client_id, session_present, version, c.conn,
                                         keepalive))
        if keepalive:
            self._schedule(now + 1.5 * keepalive, Timer.KEEPALIVE, c.conn)
        if session_present:
            if self.authz is not None:
                self._recheck_read(session, now)
            for packet in session.flow.resend_all(now):  # [MQTT-4.4.0-1], in order
                self._send(c, packet, now)
        self._fill(session, now)
        self._arm_retry(session)
        self._session_changed(session)

    def _new_client_id(self) -> str:
        """A unique id for a client that sent none [MQTT-3.1.3-6]: never one a stored
        session (perhaps restored from disk) already uses."""
        while True:
            self._assigned += 1
            client_id = f"{self.config.assigned_id_prefix}{self._assigned}"
            if client_id not in self.sessions:
                return client_id

    def _session_expiry(self, version: int, p: Connect) -> int:
        if version == MQTT_5:
            return p.properties.session_expiry_interval or 0
        return 0 if p.clean_session else NEVER_EXPIRES

    def _connack_properties(self, c: Connection, assigned: str | None,
                            server_keepalive: int | None) -> Properties:
        if c.version != MQTT_5:
            return NO_PROPERTIES
        cfg = self.config
        return Properties(
            assigned_client_identifier=assigned,  # [MQTT-3.2.2-16]
            server_keep_alive=server_keepalive,
            receive_maximum=cfg.receive_maximum if cfg.receive_maximum != 65535 else None,
            topic_alias_maximum=cfg.topic_alias_maximum or None,
            retain_available=None if cfg.retain_available else 0,
            maximum_packet_size=cfg.max_packet_size)

    def _refuse(self, c: Connection, code: int, now: float, detail: str,
                rule: str | None = None) -> None:
        """CONNACK with a failure code, then close [MQTT-3.2.2-5]."""
        version = c.version
        wire_code = code
        if version == MQTT_5 and code < 0x80:
            wire_code = CONNACK_V3_TO_V5[code]
        c.client_id = c.client_id or None
        self._send(c, Connack(False, wire_code), now)
        name = reason_name(wire_code, version, "CONNACK")
        self._events.append(ev.ConnectionRefused(now, None, wire_code, name, c.conn))
        self._close(c, now, "refused", f"{name}: {detail}", rule)

    # -- closing ---------------------------------------------------------------------------
    def _close(self, c: Connection, now: float, reason: str, detail: str = "",
               rule: str | None = None, publish_will: bool = False) -> None:
        """The engine ends a connection: flush its output, then the driver closes it."""
        self._pending.add(c.conn)
        if c.state is not _CLOSING:
            c.move("close")
            self._end(c, now, reason, detail, rule, publish_will)

    def _end(self, c: Connection, now: float, reason: str, detail: str = "",
             rule: str | None = None, publish_will: bool = False) -> None:
        """Account once for the end of a connection (will, session), as it leaves
        AWAITING_CONNECT or CONNECTED for CLOSING or CLOSED."""
        self._held_acks.pop(c.conn, None)  # the publisher resends on reconnect, as MQTT says
        session = c.session
        will_published = False
        if session is not None and session.conn == c.conn:
            session.conn = None
            if session.client_id in self._congested:  # offline sessions never hold acks
                self._uncongest(session.client_id, now)
            if c.will is not None and publish_will:
                if c.will_delay and session.expiry:
                    due = now + min(c.will_delay, session.expiry)
                    self._schedule(due, Timer.WILL, session.client_id)
                    self._delayed_wills[session.client_id] = (c.will, c.conn, due,
                                                              session.username)
                else:
                    will_published = self._publish_will(session.client_id, c.will, c.conn,
                                                        now, session.username)
            c.will = None  # [MQTT-3.1.2-10] / [MQTT-3.14.4-3]
            for msg in session.flow.drop_queued_qos0():
                self._drop(session, msg, "qos0_offline", now)
            if session.expiry == 0:
                self._discard_session(session, now, "session_ended")
            else:
                if session.expiry != NEVER_EXPIRES:
                    session.expires_at = now + session.expiry
                    self._schedule(session.expires_at, Timer.EXPIRE, session.client_id)
                self._session_changed(session)
        self._events.append(ev.ConnectionClosed(now, c.client_id, reason, detail, rule, c.conn,
                                                will_published))

    def _cancel_delayed_will(self, client_id: str) -> None:
        self._delayed_wills.pop(client_id, None)  # reconnected in time [MQTT-3.1.3-9]

    def _publish_delayed_will(self, client_id: str, now: float) -> None:
        pending = self._delayed_wills.pop(client_id, None)
        if pending is not None:
            self._publish_will(client_id, pending[0], pending[1], now, pending[3])

    def _publish_will(self, client_id: str, will, conn, now: float,
                      username: str | None) -> bool:
        """Publish a will as its client would have: only if that client's user may write
        the topic now (checked at CONNECT too; the authorizer's answer may have changed)."""
        if not self._may_write(client_id, username, will.topic):
            self._events.append(ev.MessageDropped(now, will.topic, will.qos, "not_authorized",
                                                  None, conn, client_id, will.payload))
            return False
        self._events.append(ev.WillPublished(now, client_id, will.topic, will.qos, will.retain,
                                             conn))
        props = will.properties  # Will Delay Interval is not a PUBLISH property
        if props.will_delay_interval is not None:
            props = replace(props, will_delay_interval=None)
        self.route(will.topic, will.payload, will.qos, will.retain, props, client_id, now)
        return True

    def _may_write(self, client_id: str, username: str | None, topic: str) -> bool:
        authz = self.authz
        return authz is None or authz.authorize(client_id, username, topic, "write")

    def _recheck_read(self, session: Session, now: float) -> None:
        """A resumed session's queued and unacknowledged messages go out only if its user may
        read them now (the ACL may have changed since they were queued, e.g. a restart with
        a new acl_file; mosquitto does the same on reconnect). A QoS 2 message past PUBREC
        is already the receiver's: its PUBREL still goes."""
        authz, client_id, username = self.authz, session.client_id, session.username
        flow = session.flow
        refused = [msg for msg in flow.queue
                   if not authz.authorize(client_id, username, msg.topic, "read")]
        if refused:
            gone = {id(msg) for msg in refused}
            flow.queue = deque(msg for msg in flow.queue if id(msg) not in gone)
            flow.recount()
        for packet_id, msg in list(flow.inflight.items()):
            if not msg.released and not authz.authorize(client_id, username, msg.topic,
                                                        "read"):
                del flow.inflight[packet_id]
                refused.append(msg)
        for msg in refused:
            self._drop(session, msg, "not_authorized", now)

    def _discard_session(self, session: Session, now: float, reason: str) -> None:
        for msg in session.flow.discard():
            self._drop(session, msg, reason, now)
        if self.subscriptions.remove_all(session.client_id):
            self._route_cache.clear()
        if self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]
        if self.store is not None:
            self.store.session_removed(session.client_id)

    # -- timers ----------------------------------------------------------------------------
    def _schedule(self, when: float, kind: Timer, key) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, kind, key))

    def _timer_connect(self, conn, now: float) -> None:
        c = self.connections.get(conn)
        if c is not None and c.state is _AWAITING:
            self._close(c, now, "connect_timeout",
                        f"no CONNECT within {self.config.connect_timeout:g} s")

    def _timer_keepalive(self, conn, now: float) -> None:
        c = self.connections.get(conn)
        if c is None or c.state is not _CONNECTED or not c.keepalive:
            return
        deadline = c.last_received + 1.5 * c.keepalive
        if now < deadline:
            self._schedule(deadline, Timer.KEEPALIVE, conn)  # traffic arrived: look again later
            return
        rule = "MQTT-3.1.2-22" if c.version == MQTT_5 else "MQTT-3.1.2-24"
        if c.version == MQTT_5:
            self._disconnect(c, 0x8D, now)  # Keep Alive timeout
        self._close(c, now, "keepalive",
                    f"nothing received for 1.5 x {c.keepalive} s keepalive", rule,
                    publish_will=True)

    def _timer_will(self, client_id: str, now: float) -> None:
        pending = self._delayed_wills.get(client_id)
        if pending is not None and now >= pending[2]:  # not a timer of an earlier connection
            self._publish_delayed_will(client_id, now)

    def _timer_expire(self, client_id: str, now: float) -> None:
        session = self.sessions.get(client_id)
        if session is None or session.conn is not None or session.expires_at is None:
            return
        if now >= session.expires_at:
            self._timer_will(client_id, now)  # a delayed will goes out when the session ends
            self._discard_session(session, now, "session_expired")

    def _timer_ackhold(self, conn, now: float) -> None:
        """Acks held for hold_acks_max_time go, congested subscriber or not."""
        self._hold_timers.discard(conn)
        held = self._held_acks.get(conn)
        if not held:
            return
        limit = self.config.hold_acks_max_time
        c = self.connections[conn]
        while held and held[0][4] + limit <= now:
            _, cls, packet_id, code, _ = held.popleft()
            self._send_ack(c, cls, packet_id, now, code)
        if held:
            self._hold_timers.add(conn)
            self._schedule(held[0][4] + limit, Timer.ACKHOLD, conn)
        else:
            del self._held_acks[conn]

    def drop_counts(self, reason: str = "queue_full") -> dict[str, int]:
        """Messages dropped for ``reason``, per client id (sum them for the total)."""
        return {client: n for (client, why), n in self.drops.items() if why == reason}

    def _timer_retry(self, client_id: str, now: float) -> None:
        session = self.sessions.get(client_id)
        if session is None:
            return
        session.retry_armed = False
        if session.conn is None:
            return
        c = self.connections[session.conn]
        for packet in session.flow.resend_due(now, self.config.retry_interval):
            self._send(c, packet, now)
        self._arm_retry(session)

    def _arm_retry(self, session: Session) -> None:
        """One pending retry wake-up per session, at the oldest unacknowledged send."""
        if session.retry_armed or not session.retry_timer:
            return
        when = session.flow.next_retry(self.config.retry_interval)
        if when is not None:
            session.retry_armed = True
            self._schedule(when, Timer.RETRY, session.client_id)

    # -- small helpers ---------------------------------------------------------------------
    def _send(self, c: Connection, packet, now: float) -> int:
        data = encode(packet, c.version or MQTT_3_1_1)
        c.out += data
        self._pending.add(c.conn)
        if self.trace_sent:
            self._events.append(ev.PacketSent(now, packet, len(data), c.conn, c.client_id))
        return len(data)

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
}
assert set(_TIMERS) == set(Timer), "every kind of timer has its handler"
