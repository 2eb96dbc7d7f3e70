"""The processes on the world's hosts: a broker and clients, each driving one sans-IO engine.

A process moves bytes between its engine and its transport ends, wakes the engine at
``next_deadline()`` (one Alarm per process) on the backend's clock and decides nothing about
MQTT itself: whether a message is resent, queued or dropped is the engine's call, as
DESIGN.md requires. What a process adds is what a real one adds: it reconnects after a
broken connection with exponential back-off, it runs the workload, and it can crash and
restart. Every backend runs these same processes (the sockets backend gives the clients
real sockets for ends); only the clock and the ends differ.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from ..netmodel.workload import make_payload, publish_times
from ..protocol import events as ev
from ..protocol.broker import BrokerEngine
from ..protocol.broker_state import BrokerConfig, BrokerStore, RetainedMessage, Session
from ..protocol.client import ClientConfig, ClientEngine
from ..protocol.client_config import reconnect_delay
from ..protocol.packets import Subscription, Will
from ..protocol.properties import NO_PROPERTIES, Properties
from .clock import Alarm, Clock, never
from .end_state import ESTABLISHED
from .recorder import Recorder

# What the transport says, as a connection-end reason in the tables, and in words.
TRANSPORT_REASONS = {"eof": "closed_by_peer", "reset": "reset", "tcp_timeout": "tcp_timeout",
                     "syn_timeout": "syn_timeout", "refused": "refused"}
TRANSPORT_DETAILS = {"eof": "client closed the connection", "reset": "connection reset",
                     "tcp_timeout": "TCP gave up retransmitting"}


class MemoryStore(BrokerStore):
    """Persistence for a simulated broker: the state survives a restart exactly as our
    SQLite server's does, since that commits before it acknowledges (group commit)."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.retained: dict[str, RetainedMessage] = {}

    def retained_changed(self, topic: str, message: RetainedMessage | None) -> None:
        if message is None:
            self.retained.pop(topic, None)
        else:
            self.retained[topic] = message

    def session_changed(self, session: Session) -> None:
        self.sessions[session.client_id] = session

    def session_removed(self, client_id: str) -> None:
        self.sessions.pop(client_id, None)


def broker_config(spec: Any) -> BrokerConfig:
    """The engine configuration a scenario's broker section asks for (both backends)."""
    return BrokerConfig(max_inflight=spec.max_inflight, max_queued_messages=spec.max_queued,
                        max_queued_bytes=spec.max_queued_bytes, queue_qos0=spec.queue_qos0,
                        hold_acks_when_congested=spec.hold_acks_when_congested,
                        retry_policy=spec.retry_policy, retry_interval=spec.retry_interval,
                        sys_interval=spec.sys_interval, emit_packet_events=True)


def connect_properties(spec: Any) -> Properties:
    """The MQTT 5 CONNECT properties a scenario client asks for (Receive Maximum, Topic
    Alias Maximum; the Session Expiry Interval is ClientConfig's own)."""
    if spec.version != 5 or (spec.receive_maximum is None and spec.topic_alias_maximum is None):
        return NO_PROPERTIES
    return Properties(receive_maximum=spec.receive_maximum,
                      topic_alias_maximum=spec.topic_alias_maximum)


def publish_properties(plan: Any) -> Properties:
    """The MQTT 5 PUBLISH properties of a workload's messages (expiry, topic alias); the
    engine leaves an alias out when the broker allows none [MQTT-3.3.2-9]."""
    if plan.message_expiry is None and plan.topic_alias is None:
        return NO_PROPERTIES
    return Properties(message_expiry_interval=plan.message_expiry, topic_alias=plan.topic_alias)


class BrokerProcess:
    """The broker process: accepts connections while it is up."""

    def __init__(self, spec: Any, clock: Clock, recorder: Recorder):
        self.spec, self.clock, self.recorder = spec, clock, recorder
        self.name = spec.name
        self.store = MemoryStore() if spec.persistence else None
        self.ends: dict[int, Any] = {}
        # App.on_packets_arrived: the recorder stamps the rows of what arrived.
        self.on_packets_arrived = recorder.broker_packets_arrived
        self.up = True
        self.engine = self._new_engine()
        # The alarm reads the engine's deadline directly (no wrapper call per packet);
        # crash() and restart() point it at ``never`` and at the new engine.
        self.alarm = Alarm(clock, self.engine.next_deadline, self._on_timer)
        self._handle(self.engine.begin(clock.now))  # $SYS uptime from here (sys_interval)
        for restart in spec.restarts:
            clock.call_at(restart.at, self.crash, restart.down)

    def _new_engine(self) -> BrokerEngine:
        engine = BrokerEngine(broker_config(self.spec), store=self.store)
        # The packets table needs PacketSent; PacketReceived only feeds the -v log.
        engine.trace_received = self.recorder.capture
        if self.store is not None:
            engine.restore(list(self.store.sessions.values()), list(self.store.retained.values()))
        return engine

    # -- transport callbacks ---------------------------------------------------------------
    def accepting(self) -> bool:
        return self.up

    def on_established(self, end: Any) -> None:
        self.ends[end.conn] = end
        self.engine.connection_made(end.conn, self.clock.now)
        self.alarm.arm()

    def on_data(self, end: Any, data: bytes) -> None:
        self._handle(self.engine.receive(end.conn, data, self.clock.now))

    def on_closed(self, end: Any, reason: str) -> None:
        if self.ends.pop(end.conn, None) is None:
            return
        if reason == "eof":
            end.close()
        now = self.clock.now
        self.recorder.closed(end.conn, "broker", now, TRANSPORT_REASONS[reason])
        self._handle(self.engine.connection_lost(end.conn, now, "transport",
                                                 TRANSPORT_DETAILS[reason]))

    def _on_timer(self, now: float) -> None:
        self._handle(self.engine.on_timer(now))

    # -- engine output ---------------------------------------------------------------------
    def _handle(self, events: list) -> None:
        recorder = self.recorder
        if events:
            recorder.broker_events_in(events, self.name)
        engine = self.engine
        for conn in engine.pending():
            data, close = engine.take_output(conn)
            end = self.ends.get(conn)
            if end is None:
                recorder.discard_unwritten(conn, "broker")
                continue
            if data:
                end.write(data, recorder.take_written(conn, "broker", self.clock.now))
            if close:
                del self.ends[conn]
                end.close()
                recorder.broker_events_in(engine.connection_lost(conn, self.clock.now),
                                          self.name)
        self.alarm.arm()

    # -- restarts --------------------------------------------------------------------------
    def crash(self, down: float) -> None:
        """The broker process dies: connections reset, state only in the store survives."""
        now = self.clock.now
        self.up = False
        self.alarm.deadline = never
        for conn, end in self.ends.items():
            end.abort()
            self.recorder.closed(conn, "broker", now, "broker_restart")
            self.recorder.discard_unwritten(conn, "broker")
        self.ends.clear()
        self.recorder.broker_events_in(self.engine.abandon(now, "broker_restart"), self.name)
        self.clock.call_at(now + down, self.restart)

    def restart(self) -> None:
        self.engine = self._new_engine()
        self.up = True
        self.alarm.deadline = self.engine.next_deadline
        self._handle(self.engine.begin(self.clock.now))
        self.alarm.arm()


class ClientProcess:
    """One client process: connects, subscribes after each CONNACK (as mosquitto_sub does),
    publishes its workload, reconnects after a broken connection.

    ``trace_received``: the engine also reports every packet it receives, for a backend
    whose transport does not tell when packets arrive (real sockets)."""

    def __init__(self, spec: Any, clock: Clock, recorder: Recorder, transport: Any,
                 broker: Any, rng: random.Random, end_time: float,
                 trace_received: bool = False):
        self.spec, self.clock, self.recorder = spec, clock, recorder
        self.transport, self.broker, self.rng = transport, broker, rng
        self.name = spec.name
        self.trace_received = trace_received
        self.subscriptions = [Subscription(s.topic, s.qos, s.no_local, s.retain_as_published)
                              for s in spec.subscribe]  # asked again after every CONNACK
        # App.on_packets_arrived: the recorder stamps the rows of what arrived.
        self.on_packets_arrived = recorder.client_packets_arrived
        self.engine = self._new_engine()
        # Reads the engine's deadline directly; crash() and restart() repoint it.
        self.alarm = Alarm(clock, self.engine.next_deadline, self._on_timer)
        self.end: Any = None
        self.alive = True  # the process is running (not crashed)
        self.finished = False  # it sent DISCONNECT at disconnect_at and does not come back
        self.failures = 0  # connection attempts in a row that did not reach CONNACK
        self.seq = 0
        # CONNECT went out and no CONNACK came back yet: only then can the engine's events
        # hold a Connected (``_handle`` looks for it only then).
        self._connack_due = False
        clock.call_at(spec.connect_at, self.connect)
        for plan in spec.publish:
            times = publish_times(plan, end_time, rng)
            first = next(times, None)
            if first is not None:
                clock.call_at(first, self._publish, plan, times, publish_properties(plan))
        if spec.disconnect_at is not None:
            clock.call_at(spec.disconnect_at, self.disconnect)
        for crash in spec.crashes:
            clock.call_at(crash.at, self.crash, crash.down)

    def _new_engine(self) -> ClientEngine:
        s = self.spec
        will = None
        if s.will is not None:
            will = Will(s.will.topic, s.will.message.encode(), s.will.qos, s.will.retain)
        engine = ClientEngine(ClientConfig(
            client_id=s.client_id, version=s.version, keepalive=s.keepalive,
            clean_session=s.clean, session_expiry=s.session_expiry, will=will,
            max_inflight=s.max_inflight, max_queued=s.max_queued,
            queue_qos0_offline=s.queue_qos0_offline, retry_policy=s.retry_policy,
            retry_interval=s.retry_interval, ping_timeout=s.ping_timeout,
            properties=connect_properties(s), emit_packet_events=True))
        # The packets table is built from PacketSent alone, unless arrivals come from it.
        engine.trace_received = self.trace_received
        return engine

    def _on_timer(self, now: float) -> None:
        self._handle(self.engine.on_timer(now))

    # -- connection life -------------------------------------------------------------------
    def connect(self) -> None:
        if not self.alive or self.finished or self.end is not None:
            return
        now = self.clock.now
        self.end = self.transport.open(self.name, self, self.broker)
        self.recorder.opened(self.end.conn, self.name, self.spec.client_id, now)
        self._connack_due = True
        # CONNECT is written as soon as the transport is up; until CONNACK the engine keeps
        # what is published (even QoS 0), as a client library does while it connects.
        self.engine.connect(now)

    def on_established(self, end: Any) -> None:
        if end is self.end:
            self._handle(self.engine.take_events())

    def on_data(self, end: Any, data: bytes) -> None:
        if end is self.end:
            stuck = self.spec.stop_reading_at
            if stuck is not None and self.clock.now >= stuck:
                return  # the application stopped reading: its MQTT side never sees this
            self._handle(self.engine.receive(data, self.clock.now))

    def on_closed(self, end: Any, reason: str) -> None:
        if end is not self.end:
            return
        now = self.clock.now
        if reason == "eof":
            end.close()
        why = TRANSPORT_REASONS[reason]
        self.recorder.closed(end.conn, "client", now, why)
        self.end = None
        self._handle(self.engine.connection_lost(now, why))
        self._reconnect_later()

    def _reconnect_later(self) -> None:
        s = self.spec
        if self.finished or not self.alive or not s.reconnect:
            return
        delay = reconnect_delay(s.reconnect_delay, s.reconnect_max_delay, self.failures)
        self.failures += 1
        self.clock.call_at(self.clock.now + delay, self.connect)

    def disconnect(self) -> None:
        if self.alive:
            self.finished = True
            self._handle(self.engine.disconnect(self.clock.now))

    def crash(self, down: float) -> None:
        """The process dies: its connection is reset and everything it held is gone."""
        if not self.alive:
            return
        now = self.clock.now
        if self.end is not None:
            self.end.abort()
            self.recorder.closed(self.end.conn, "client", now, "client_crash")
            self.end = None
        self.recorder.client_events(self.name, self.engine.abandon(now, "client_crash"), None,
                                    self.broker.name)
        self.alive = False
        self.alarm.deadline = never
        self.clock.call_at(now + down, self.restart)

    def restart(self) -> None:
        self.alive, self.failures = True, 0
        self.engine = self._new_engine()
        self.alarm.deadline = self.engine.next_deadline
        self.connect()

    # -- workload --------------------------------------------------------------------------
    def _publish(self, plan: Any, times: Iterator[float], properties: Properties) -> None:
        """The next message of a publish plan (``times``: the iterator of its publish times;
        ``properties``: the plan's PUBLISH properties, made once)."""
        if self.alive and not self.finished:
            self.seq += 1
            payload = make_payload(plan, self.name, self.seq, self.rng)
            now = self.clock.now
            self.recorder.publish(self.name, self.seq, plan.topic, payload, plan.qos,
                                  plan.retain, now)
            self.engine.publish(plan.topic, payload, plan.qos, plan.retain, now, properties)
            self._handle(self.engine.take_events())
        following = next(times, None)
        if following is not None:
            self.clock.call_at(following, self._publish, plan, times, properties)

    # -- engine output ---------------------------------------------------------------------
    def _handle(self, events: list) -> None:
        recorder, engine = self.recorder, self.engine
        if self._connack_due:
            more = []
            for e in events:
                if e.__class__ is ev.ConnectionRefused:
                    self.finished = True  # the broker said no: no reconnect (mosquitto_sub)
                elif e.__class__ is ev.Connected:
                    self._connack_due = False
                    self.failures = 0
                    recorder.up(self.end.conn, e.t, e.session_present)
                    if self.subscriptions:
                        engine.subscribe(self.subscriptions, e.t)
                        more = engine.take_events()
            if more:
                events = events + more
        end = self.end
        recorder.client_events(self.name, events, None if end is None else end.conn,
                               self.broker.name)
        if end is None:
            self.alarm.arm()
            return
        if end.state is not ESTABLISHED:
            self.alarm.arm()  # output waits in the engine until the transport is up
            return
        data = engine.data_to_send()
        if data:
            # On the wire now, even if encoded while connecting.
            end.write(data, recorder.take_written(end.conn, "client", self.clock.now))
        if engine.should_close:
            end.close()
            self.end = None
            self._reconnect_later()
        self.alarm.arm()
