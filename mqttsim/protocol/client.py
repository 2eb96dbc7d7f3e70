"""The sans-IO MQTT client engine.

Theory of operation: the driver (simulator or asyncio) owns the transport and the clock.
It calls ``connect(now)`` when a transport connection is up, hands every received chunk to
``receive(data, now)``, writes whatever ``data_to_send()`` returns, closes the transport
when ``should_close`` turns true, reports a broken transport with ``connection_lost``, and
wakes the engine at ``next_deadline()`` with ``on_timer(now)``. The engine never blocks,
never reads a clock and never touches a socket, so the same code runs in simulated and in
wall-clock time. Session state (unacknowledged messages, QoS 2 ids) lives in the engine,
not in the connection, so it survives reconnects exactly as the spec says it should.
"""

from __future__ import annotations

import dataclasses
from enum import Enum

from . import events as ev
from .client_config import ON_RECONNECT, TIMER, ClientConfig  # also imported from here
from ._tracing import TracesPackets
from .decoder import Decoder
from .encoder import ACK_WORDS, encode, encode_publish
from .errors import MQTTError, ProtocolError
from .flows import IncomingQoS2, OutgoingFlow, OutMessage
from .packets import (MQTT_5, Connack, Connect, Disconnect, Pingreq, Pingresp, Puback, Pubcomp,
                      Publish, Pubrec, Pubrel, Suback, Subscribe, Subscription, Unsuback,
                      Unsubscribe)
from .properties import NO_PROPERTIES, Properties
from .reason_codes import reason_name
from .topics import resolve_topic_alias, validate_topic_filter, validate_topic_name


class ClientState(str, Enum):
    """Where one client's connection stands. (A ``str``: ``engine.state == "connected"``.)"""

    DISCONNECTED = "disconnected"  # no transport, or one the driver must close (should_close)
    CONNECTING = "connecting"  # CONNECT sent, waiting for CONNACK
    CONNECTED = "connected"  # CONNACK accepted the connection

    def __str__(self) -> str:
        return self.value


DISCONNECTED, CONNECTING, CONNECTED = ClientState

# Every change of state: (state, what happened) -> new state. Anything else is a bug.
TRANSITIONS: dict[tuple[ClientState, str], ClientState] = {
    # connect(): the driver has a new transport. From CONNECTING or CONNECTED too: a driver
    # may replace the transport before it reported the old one lost; the session carries on.
    (DISCONNECTED, "connect"): CONNECTING,
    (CONNECTING, "connect"): CONNECTING,
    (CONNECTED, "connect"): CONNECTING,
    (CONNECTING, "connack_accepted"): CONNECTED,
    # closed: CONNACK refused or late, PINGRESP late, DISCONNECT either way, a protocol
    # error, or the transport lost (connection_lost).
    (CONNECTING, "closed"): DISCONNECTED,
    (CONNECTED, "closed"): DISCONNECTED,
}

_CHECKED_TOPICS_LIMIT = 1024  # topic names an engine remembers as valid; more: start again


class ClientEngine(TracesPackets):
    """One MQTT client's protocol state across any number of transport connections."""

    def __init__(self, config: ClientConfig):
        if config.retry_policy not in (None, ON_RECONNECT, TIMER):
            raise ValueError(f"retry_policy must be 'on_reconnect' or 'timer', "
                             f"not {config.retry_policy!r}")
        if not config.client_id and not config.clean_session and config.version != MQTT_5:
            raise ValueError("[MQTT-3.1.3-7] an empty client id needs clean_session=True "
                             "(only MQTT 5 lets the server keep a session for it)")
        self.config = config
        self._retry_on_timer = config.effective_retry_policy == TIMER  # read per deadline
        self.trace_sent = self.trace_received = config.emit_packet_events
        self.version = config.version
        self.client_id = config.client_id
        self.state = DISCONNECTED
        self.should_close = False  # the engine ended the connection: the driver must close it
        self.session_present = False
        self.keepalive = config.keepalive
        self.flow = OutgoingFlow(config.max_inflight, config.max_queued, config.queue_qos0_offline)
        self.incoming = IncomingQoS2()
        self.server_properties = NO_PROPERTIES
        self._decoder = Decoder(config.version)
        self._out = bytearray()
        self._events: list = []
        self._numbers = 0
        self._pending_subs: dict[int, tuple[str, ...]] = {}
        self._pending_unsubs: dict[int, tuple[str, ...]] = {}
        self._last_sent = 0.0
        self._ping_sent_at: float | None = None
        self._connect_sent_at = 0.0
        self._inbound_aliases: dict[int, str] = {}
        self._server_max_packet: int | None = None
        # What the server accepts, from its CONNACK (MQTT 5; defaults mean "no limit").
        self._server_max_qos = 2
        self._server_retain = True
        self._server_alias_max = 0
        self._outbound_aliases: dict[int, str] = {}  # alias -> topic, this connection only
        self._checked_topics: set[str] = set()  # names that passed validate_topic_name

    def _enter(self, happened: str) -> None:
        """Move along TRANSITIONS (one place changes ``state``)."""
        new = TRANSITIONS.get((self.state, happened))
        if new is None:
            raise RuntimeError(f"client engine bug: {happened!r} in state {self.state.value}")
        self.state = new

    # -- driver interface --------------------------------------------------------------
    def connect(self, now: float) -> None:
        """A transport connection is up: send CONNECT (and apply clean-session rules)."""
        cfg = self.config
        self._decoder = Decoder(cfg.version, self._local_max_packet())
        self._out.clear()
        self.should_close = False
        self._ping_sent_at = None
        self._inbound_aliases.clear()
        self._outbound_aliases.clear()  # aliases never outlive a connection [MQTT-3.3.2-7]
        self._server_max_qos, self._server_retain, self._server_alias_max = 2, True, 0
        self.keepalive = cfg.keepalive
        if cfg.clean_session:
            self._discard_session(now, "clean_session")
        props = cfg.properties
        if cfg.version == MQTT_5 and cfg.session_expiry:
            props = _replace(props, session_expiry_interval=cfg.session_expiry)
        self._send(Connect(cfg.client_id, cfg.clean_session, cfg.keepalive, cfg.username,
                           cfg.password, cfg.will, props, cfg.bridge), now)
        self._enter("connect")
        self._connect_sent_at = now

    def receive(self, data: bytes, now: float) -> list:
        """Feed bytes from the transport; returns the events that happened."""
        if self.state is DISCONNECTED or self.should_close:
            return self.take_events()
        try:
            packets = self._decoder.feed(data)
        except MQTTError as exc:
            for packet, size in zip(exc.decoded, self._decoder.sizes):
                self._handle(packet, now, size)
                if self.should_close:
                    return self.take_events()
            self._protocol_error(exc, now)
            return self.take_events()
        # One loop for every state and trace setting: a second, check-free loop for
        # "connected, not tracing" measured no faster in benchmarks/engine.py or sim.py.
        for packet, size in zip(packets, self._decoder.sizes):
            try:
                self._handle(packet, now, size)
            except MQTTError as exc:
                self._protocol_error(exc, now)
            if self.should_close:
                break
        return self.take_events()

    def data_to_send(self) -> bytes:
        """Bytes the driver must write to the transport now."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def take_events(self) -> list:
        """Events produced since the last call (``receive`` and ``on_timer`` call this)."""
        events, self._events = self._events, []
        return events

    def connection_lost(self, now: float, reason: str = "transport", detail: str = "") -> list:
        """The transport broke (or the driver closed it). Session state is kept for a
        persistent session; QoS 0 messages queued for this connection are gone."""
        if self.state is not DISCONNECTED:
            self._closed(now, reason, detail)
        return self.take_events()

    def abandon(self, now: float, reason: str) -> list:
        """The process holding this engine is gone (a crash): every message it still held
        will never arrive. Reported as MessageDropped; the engine is not used again."""
        for msg in self.flow.discard():
            self._dropped(msg, reason, now)
        return self.take_events()

    def next_deadline(self) -> float | None:
        """When ``on_timer`` must next run (keepalive, PINGRESP wait, retry, CONNACK wait)."""
        state = self.state
        if state is not CONNECTED or self.should_close:
            if state is CONNECTING:
                return self._connect_sent_at + self.config.connect_timeout
            return None
        keepalive = self.keepalive
        if not self._retry_on_timer:  # the drivers ask after every packet: no list, no min()
            if not keepalive:
                return None
            if self._ping_sent_at is not None:
                return self._ping_sent_at + self._ping_timeout()
            return self._last_sent + keepalive
        times = []
        if keepalive:
            if self._ping_sent_at is not None:
                times.append(self._ping_sent_at + self._ping_timeout())
            else:
                times.append(self._last_sent + keepalive)
        retry = self.flow.next_retry(self.config.retry_interval)
        if retry is not None:
            times.append(retry)
        return min(times) if times else None

    def on_timer(self, now: float) -> list:
        """Do whatever is due at ``now``."""
        if self.state is CONNECTING:
            if now >= self._connect_sent_at + self.config.connect_timeout:
                self._close(now, "connect_timeout",
                            f"no CONNACK within {self.config.connect_timeout:g} s")
            return self.take_events()
        if self.state is not CONNECTED or self.should_close:
            return self.take_events()
        if self.keepalive:
            if self._ping_sent_at is not None:
                if now >= self._ping_sent_at + self._ping_timeout():
                    self._close(now, "pingresp_timeout",
                                f"no PINGRESP within {self._ping_timeout():g} s")
                    return self.take_events()
            elif now >= self._last_sent + self.keepalive:
                self._send(Pingreq(), now)  # idle for a keepalive period [MQTT-3.1.2-23]
                self._ping_sent_at = now
        if self._retry_on_timer:
            for packet in self.flow.resend_due(now, self.config.retry_interval):
                self._resend(packet, now)
        return self.take_events()

    # -- application interface -------------------------------------------------------------
    def publish(self, topic: str, payload: bytes = b"", qos: int = 0, retain: bool = False,
                now: float = 0.0, properties: Properties = NO_PROPERTIES) -> int:
        """Queue an application message; returns its number (used in later events)."""
        if self.version == MQTT_5:
            topic = self._check_server_limits(topic, qos, retain, properties)
        if topic not in self._checked_topics:
            validate_topic_name(topic, self.version)
            if len(self._checked_topics) >= _CHECKED_TOPICS_LIMIT:
                self._checked_topics.clear()
            self._checked_topics.add(topic)
        if qos not in (0, 1, 2):
            raise ProtocolError(f"QoS must be 0, 1 or 2, not {qos!r}", "MQTT-3.3.1-4")
        if properties is not NO_PROPERTIES and properties.subscription_identifiers:
            raise ProtocolError("a client PUBLISH never carries a Subscription Identifier",
                                "MQTT-3.3.4-6")
        if payload.__class__ is not bytes:
            payload = payload.encode() if isinstance(payload, str) else bytes(payload)
        self._numbers += 1
        msg = OutMessage(topic, payload, qos, retain, properties, self._numbers)
        flow = self.flow
        if self.state is CONNECTED and not flow.queue and (
                qos == 0 or len(flow.inflight) < flow.window):
            if qos:
                flow.admit(msg, now)
            self._send_message(msg, now)
            return msg.number
        # A connection being set up keeps even QoS 0: it goes out after CONNACK.
        drop = flow.hold(msg, self.state is not DISCONNECTED)
        if drop:
            self._dropped(msg, drop, now)
        return msg.number

    def subscribe(self, subscriptions, now: float = 0.0, qos: int = 0,
                  properties: Properties = NO_PROPERTIES) -> int:
        """SUBSCRIBE to a filter, a Subscription, or a list of them (or of (filter, qos))."""
        self._require_connection("SUBSCRIBE")
        subs = tuple(_as_subscription(s, qos) for s in _as_list(subscriptions))
        for sub in subs:
            validate_topic_filter(sub.topic_filter, self.version)
        packet_id = self.flow.reserve_id()
        self._pending_subs[packet_id] = tuple(s.topic_filter for s in subs)
        self._send(Subscribe(packet_id, subs, properties), now)
        return packet_id

    def unsubscribe(self, topic_filters, now: float = 0.0) -> int:
        self._require_connection("UNSUBSCRIBE")
        filters = tuple(_as_list(topic_filters))
        for topic_filter in filters:
            validate_topic_filter(topic_filter, self.version)
        packet_id = self.flow.reserve_id()
        self._pending_unsubs[packet_id] = filters
        self._send(Unsubscribe(packet_id, filters), now)
        return packet_id

    def disconnect(self, now: float, reason_code: int = 0) -> list:
        """Graceful end: DISCONNECT (the broker then discards the will [MQTT-3.14.4-3])."""
        if self.state is not DISCONNECTED:
            self._send(Disconnect(reason_code) if self.version == MQTT_5 else Disconnect(), now)
            self._close(now, "clean", "client sent DISCONNECT")
        return self.take_events()

    @property
    def inflight_count(self) -> int:
        return len(self.flow.inflight)

    @property
    def queued_count(self) -> int:
        return len(self.flow.queue)

    # -- packet handling -------------------------------------------------------------------
    def _handle(self, packet, now: float, size: int) -> None:
        if self.trace_received:
            self._events.append(ev.PacketReceived(now, packet, size, client_id=self.client_id))
        handler = _HANDLERS.get(packet.__class__)
        if handler is None:
            raise ProtocolError(f"a server never sends {packet.type.name} to a client")
        if self.state is CONNECTING and packet.__class__ is not Connack:
            raise ProtocolError(f"{packet.type.name} before CONNACK; the server's first packet "
                                "must be CONNACK", "MQTT-3.2.0-1")
        handler(self, packet, now)

    def _on_connack(self, packet: Connack, now: float) -> None:
        if self.state is not CONNECTING:
            raise ProtocolError("a second CONNACK on one connection", "MQTT-3.2.0-2")
        if packet.reason_code:
            name = reason_name(packet.reason_code, self.version, "CONNACK")
            self._events.append(ev.ConnectionRefused(now, self.client_id, packet.reason_code,
                                                     name))
            self._close(now, "refused", name)
            return
        if packet.session_present and self.config.clean_session and self.version == MQTT_5:
            raise ProtocolError("Session Present 1 although the client asked for a clean "
                                "start and has no session", "MQTT-3.2.2-4")
        props = self.server_properties = packet.properties
        if self.version == MQTT_5:
            if props.assigned_client_identifier:
                self.client_id = props.assigned_client_identifier
            if props.server_keep_alive is not None:
                self.keepalive = props.server_keep_alive  # [MQTT-3.2.2-21]
            window = min(self.config.max_inflight, props.receive_maximum or 65535)
            self.flow.window = window
            self._server_max_packet = props.maximum_packet_size
            if props.maximum_qos is not None:
                self._server_max_qos = props.maximum_qos
            self._server_retain = props.retain_available != 0
            self._server_alias_max = props.topic_alias_maximum or 0
        self._enter("connack_accepted")
        self.session_present = packet.session_present
        self._events.append(ev.Connected(now, self.client_id, packet.session_present,
                                         self.version, keepalive=self.keepalive))
        if not self.config.clean_session:
            if self.version == MQTT_5 and not packet.session_present:
                self._discard_session(now, "session_lost")  # [MQTT-3.2.2-5]
            else:
                for resend in self.flow.resend_all(now):  # [MQTT-4.4.0-1]
                    self._resend(resend, now)
        self._fill(now)

    def _on_publish(self, packet: Publish, now: float) -> None:
        topic = packet.topic
        if self.version == MQTT_5 and packet.properties.topic_alias is not None:
            topic = resolve_topic_alias(self._inbound_aliases, topic,
                                        packet.properties.topic_alias,
                                        self.config.properties.topic_alias_maximum or 0,
                                        "MQTT-3.3.2-10", "MQTT-3.3.2-7")
        qos = packet.qos
        deliver = True
        if qos == 1:
            self._send_ack(Puback, packet.packet_id, now)  # [MQTT-4.3.2-2]
        elif qos == 2:
            deliver = self.incoming.on_publish(packet.packet_id)  # [MQTT-4.3.3-2]
            self._send_ack(Pubrec, packet.packet_id, now)
        if deliver:
            self._events.append(ev.MessageReceived(now, topic, packet, None, self.client_id))

    def _on_puback(self, packet: Puback, now: float) -> None:
        flow = self.flow
        msg = flow.on_puback(packet.packet_id)
        if msg is not None:
            self._events.append(ev.MessageAcknowledged(now, msg.number, msg.packet_id, 1,
                                                  packet.reason_code, None, self.client_id))
        if flow.queue or flow.waiting:
            self._fill(now)

    def _on_pubrec(self, packet: Pubrec, now: float) -> None:
        failed = packet.reason_code >= 0x80
        msg, release = self.flow.on_pubrec(packet.packet_id, failed, now)
        if release:
            self._send_ack(Pubrel, packet.packet_id, now,
                           0 if msg is not None or self.version != MQTT_5 else 0x92)
        if msg is not None and failed:
            self._acknowledged(msg, packet.reason_code, now)
            self._fill(now)

    def _on_pubrel(self, packet: Pubrel, now: float) -> None:
        known = self.incoming.on_pubrel(packet.packet_id)
        code = 0x92 if not known and self.version == MQTT_5 else 0
        self._send_ack(Pubcomp, packet.packet_id, now, code)

    def _on_pubcomp(self, packet: Pubcomp, now: float) -> None:
        flow = self.flow
        msg = flow.on_pubcomp(packet.packet_id)
        if msg is not None:
            self._acknowledged(msg, packet.reason_code, now)
        if flow.queue or flow.waiting:  # else _fill has nothing to do
            self._fill(now)

    def _on_suback(self, packet: Suback, now: float) -> None:
        filters = self._pending_subs.pop(packet.packet_id, None)
        if filters is None:
            return
        self.flow.release_id(packet.packet_id)
        self._events.append(ev.Subscribed(now, packet.packet_id, filters, packet.reason_codes,
                                          client_id=self.client_id))

    def _on_unsuback(self, packet: Unsuback, now: float) -> None:
        filters = self._pending_unsubs.pop(packet.packet_id, None)
        if filters is None:
            return
        self.flow.release_id(packet.packet_id)
        self._events.append(ev.Unsubscribed(now, packet.packet_id, filters, packet.reason_codes,
                                            client_id=self.client_id))

    def _on_pingresp(self, packet: Pingresp, now: float) -> None:
        self._ping_sent_at = None

    def _on_disconnect(self, packet: Disconnect, now: float) -> None:
        self._close(now, "server_disconnect",
                    reason_name(packet.reason_code, self.version, "DISCONNECT"))

    # -- helpers ---------------------------------------------------------------------------
    def _send(self, packet, now: float) -> None:
        data = encode(packet, self.version)
        self._out += data
        self._last_sent = now
        if self.trace_sent:
            self._events.append(ev.PacketSent(now, packet, len(data), client_id=self.client_id))

    def _send_ack(self, cls, packet_id: int, now: float, code: int = 0) -> None:
        """PUBACK, PUBREC, PUBREL or PUBCOMP without properties. The commonest packet of
        all, success without a reason code, is written directly."""
        if code:
            self._send(cls(packet_id, code), now)
            return
        self._out += (ACK_WORDS[cls] | packet_id).to_bytes(4, "big")
        self._last_sent = now
        if self.trace_sent:
            self._events.append(ev.PacketSent(now, cls(packet_id), 4, None, self.client_id))

    def _check_server_limits(self, topic: str, qos: int, retain: bool,
                             props: Properties) -> str:
        """MQTT 5: refuse what the server's CONNACK said it does not accept
        [MQTT-3.2.2-11][MQTT-3.2.2-14][MQTT-3.2.2-17/18]; returns the topic an alias stands for."""
        if self.state is CONNECTED:
            if qos > self._server_max_qos:
                raise ProtocolError(f"the server accepts QoS up to {self._server_max_qos}, "
                                    f"not {qos}", "MQTT-3.2.2-11", reason_code=0x9B)
            if retain and not self._server_retain:
                raise ProtocolError("the server does not support retained messages",
                                    "MQTT-3.2.2-14", reason_code=0x9A)
        alias = props.topic_alias
        if alias is None:
            return topic
        limit = self._server_alias_max
        if self.state is CONNECTED and not 1 <= alias <= limit:
            raise ProtocolError(f"topic alias {alias} is outside the server's 1..{limit}",
                                "MQTT-3.3.2-9" if limit else "MQTT-3.2.2-18", reason_code=0x94)
        if not topic:
            topic = self._outbound_aliases.get(alias, "")
            if not topic:
                raise ProtocolError(f"topic alias {alias} stands for no topic yet on this "
                                    "connection: publish with the topic and the alias first",
                                    "MQTT-3.3.2-9", reason_code=0x94)
        return topic

    def _wire_topic(self, msg: OutMessage) -> tuple[str, Properties]:
        """The topic and properties to put on the wire: an alias the server already knows
        replaces the topic; one it cannot know (a new connection's smaller maximum) is
        dropped and the full topic sent."""
        props = msg.properties
        alias = props.topic_alias
        if alias is None:
            return msg.topic, props
        if alias > self._server_alias_max:
            return msg.topic, _replace(props, topic_alias=None)
        if self._outbound_aliases.get(alias) == msg.topic:
            return "", props
        self._outbound_aliases[alias] = msg.topic
        return msg.topic, props

    def _resend(self, packet, now: float) -> None:
        """A PUBLISH (DUP) or PUBREL resent on a later connection or by the retry timer:
        sent with its full topic, since aliases do not outlive a connection."""
        if packet.__class__ is Publish and packet.properties.topic_alias is not None:
            packet = _replace_packet(packet, _replace(packet.properties, topic_alias=None))
        self._send(packet, now)

    def _send_message(self, msg: OutMessage, now: float) -> None:
        """A message's first PUBLISH (it is already in flight if QoS > 0)."""
        if self.version == MQTT_5 and (msg.qos > self._server_max_qos
                                       or (msg.retain and not self._server_retain)):
            # Queued before the CONNACK said what the server accepts.
            if msg.qos:
                self.flow.inflight.pop(msg.packet_id, None)
            self._dropped(msg, "qos_not_supported" if msg.qos > self._server_max_qos
                          else "retain_not_supported", now)
            return
        topic, props = msg.topic, msg.properties
        if props is not NO_PROPERTIES:
            topic, props = self._wire_topic(msg)
        data = encode_publish(topic, msg.payload, msg.qos, msg.retain, False, msg.packet_id,
                              props, self.version)
        limit = self._server_max_packet
        if limit is not None and len(data) > limit:
            # Never send more than the server accepts [MQTT-3.2.2-15]; the message is dropped.
            if msg.qos:
                self.flow.inflight.pop(msg.packet_id, None)
            self._dropped(msg, "packet_too_large", now)
            return
        self._out += data
        self._last_sent = now
        if self.trace_sent:
            self._events.append(ev.PacketSent(
                now, Publish(topic, msg.payload, msg.qos, msg.retain, False, msg.packet_id,
                                  props),
                len(data), None, self.client_id))

    def _require_connection(self, what: str) -> None:
        """Unlike PUBLISH, (UN)SUBSCRIBE cannot wait in the queue: without a connection it
        would be written after a DISCONNECT [MQTT-3.14.4-2] or thrown away by connect()."""
        if self.state is DISCONNECTED:
            raise ProtocolError(f"{what} needs a connection: call connect() first",
                                "MQTT-3.14.4-2" if self.should_close else None)
        if self.state is CONNECTING and self.version == MQTT_5 \
                and self.config.properties.authentication_method is not None:
            raise ProtocolError(f"{what} before CONNACK: a client that sent an Authentication "
                                "Method sends only AUTH or DISCONNECT until then",
                                "MQTT-3.1.2-30")

    def _fill(self, now: float) -> None:
        flow = self.flow
        if flow.waiting:
            for packet in flow.resend_waiting(now):
                self._resend(packet, now)
        while (msg := flow.next_to_send()) is not None:
            if msg.qos:
                flow.admit(msg, now)
            self._send_message(msg, now)

    def _acknowledged(self, msg: OutMessage, code: int, now: float) -> None:
        self._events.append(ev.MessageAcknowledged(now, msg.number, msg.packet_id, msg.qos, code,
                                              None, self.client_id))

    def _dropped(self, msg: OutMessage, reason: str, now: float) -> None:
        self._events.append(ev.MessageDropped(now, msg.topic, msg.qos, reason, msg.number,
                                              client_id=self.client_id, payload=msg.payload))

    def _discard_session(self, now: float, reason: str) -> None:
        """Forget unacknowledged messages and QoS 2 ids; messages never sent stay queued."""
        for msg in self.flow.inflight.values():
            if not msg.released:  # after PUBREC the server owns the message: it is not lost
                self._dropped(msg, reason, now)
        self.flow.inflight.clear()
        self.flow.waiting.clear()
        self.incoming.pending.clear()

    def _ping_timeout(self) -> float:
        return self.config.ping_timeout if self.config.ping_timeout is not None \
            else float(self.keepalive)

    def _local_max_packet(self) -> int | None:
        return self.config.properties.maximum_packet_size if self.version == MQTT_5 else None

    def _protocol_error(self, exc: MQTTError, now: float) -> None:
        if self.version == MQTT_5 and self.state is CONNECTED:
            self._send(Disconnect(exc.reason_code), now)
        self._close(now, "protocol_error", exc.message, exc.rule)

    def _close(self, now: float, reason: str, detail: str = "", rule: str | None = None) -> None:
        """The engine decided the connection is over: the driver must close the transport."""
        self.should_close = True
        self._closed(now, reason, detail, rule)

    def _closed(self, now: float, reason: str, detail: str = "", rule: str | None = None) -> None:
        self._enter("closed")
        self._ping_sent_at = None
        self._pending_subs.clear()
        self._pending_unsubs.clear()
        self.flow._reserved.clear()
        for msg in self.flow.drop_queued_qos0():
            self._dropped(msg, "qos0_offline", now)
        self._events.append(ev.ConnectionClosed(now, self.client_id, reason, detail, rule))


_HANDLERS = {
    Connack: ClientEngine._on_connack,
    Publish: ClientEngine._on_publish,
    Puback: ClientEngine._on_puback,
    Pubrec: ClientEngine._on_pubrec,
    Pubrel: ClientEngine._on_pubrel,
    Pubcomp: ClientEngine._on_pubcomp,
    Suback: ClientEngine._on_suback,
    Unsuback: ClientEngine._on_unsuback,
    Pingresp: ClientEngine._on_pingresp,
    Disconnect: ClientEngine._on_disconnect,
}


def _replace(props: Properties, **changes) -> Properties:
    return dataclasses.replace(props, **changes)


def _replace_packet(packet: Publish, props: Properties) -> Publish:
    return dataclasses.replace(packet, properties=props)


def _as_list(value) -> list:
    if isinstance(value, (str, Subscription, tuple)):
        return [value]
    return list(value)


def _as_subscription(value, qos: int) -> Subscription:
    if isinstance(value, Subscription):
        return value
    if isinstance(value, tuple):
        return Subscription(value[0], value[1])
    return Subscription(value, qos)
