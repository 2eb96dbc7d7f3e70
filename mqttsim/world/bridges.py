"""A bridge process: ``mqttsim.protocol.bridge.Bridge`` between two brokers of the world.

The bridge lives inside its local broker, as Mosquitto's does. Its local leg is a connection
that never crosses the network (``LocalConnection``: two ends handing bytes over at the same
instant, through the clock so no engine is re-entered while it writes); its remote leg is an
ordinary transport connection from the local broker's node to the remote broker, over the
scenario's links. This module moves bytes and time and records what the engines report:
which topics go where, loop prevention and the restart back-off are the Bridge's.

Restarts: the remote leg connects again ``Bridge.restart_delay()`` after it broke
(``restart_timeout``); the local leg, one second after its broker closed it. The bridge dies
and starts again with its broker (``[broker] restarts``), as a bridge of a restarted
Mosquitto does, holding nothing it had not handed on.
"""

from __future__ import annotations

import random
from typing import Any, Callable

from ..protocol import events as ev
from ..protocol.bridge import Bridge, BridgeConfig
from .clock import Alarm, Clock, never
from .end_state import DEAD, ESTABLISHED, EndState, advance
from .hosts import TRANSPORT_REASONS
from .recorder import Recorder

LOCAL_RECONNECT_DELAY = 1.0


def bridge_config(spec: Any) -> BridgeConfig:
    """The engine configuration a scenario's ``[[bridges]]`` entry asks for."""
    return BridgeConfig(
        spec.name, spec.client_id, spec.topics, version=spec.version,
        clean_session=spec.clean, keepalive=spec.keepalive, try_private=spec.try_private,
        restart_base=spec.restart_base, restart_cap=spec.restart_cap,
        max_inflight=spec.max_inflight, max_queued=spec.max_queued)


class _LoopEnd:
    """One end of a ``LocalConnection``, used as a transport end is (``write``, ``close``,
    ``abort``, ``state``, ``conn``)."""

    def __init__(self, link: "LocalConnection", app: Any):
        self.link, self.app, self.conn = link, app, link.conn
        self.state: EndState = ESTABLISHED  # inside one broker: no handshake
        self.peer: _LoopEnd | None = None
        self.packets_written = 0

    def write(self, data: bytes, sizes=()) -> None:
        if self.state is not ESTABLISHED:
            return
        first = self.packets_written
        self.packets_written += len(sizes)
        self.link.clock.call_at(self.link.clock.now, self.peer._arrive, data, first,
                                self.packets_written, self)

    def _arrive(self, data: bytes, first: int, stop: int, sender: "_LoopEnd") -> None:
        if self.state is not ESTABLISHED:
            return
        if stop > first:
            sender.app.on_packets_arrived(sender, first, stop, self.link.clock.now)
        self.app.on_data(self, data)

    def close(self) -> None:
        if self.state is ESTABLISHED:
            self.state = advance(self.state, DEAD)
            self.link.clock.call_at(self.link.clock.now, self.peer._peer_closed)

    abort = close

    def _peer_closed(self) -> None:
        if self.state is ESTABLISHED:
            self.state = advance(self.state, DEAD)
            self.app.on_closed(self, "eof")


class LocalConnection:
    """The bridge's connection to its own broker: ``client`` (the bridge's end) and
    ``broker`` (the broker process's end)."""

    def __init__(self, conn: int, clock: Clock, bridge_app: Any, broker_app: Any):
        self.conn, self.clock = conn, clock
        self.client, self.broker = _LoopEnd(self, bridge_app), _LoopEnd(self, broker_app)
        self.client.peer, self.broker.peer = self.broker, self.client


class _LocalSide:
    """The App of the bridge's local end (the bridge process answers for its remote end)."""

    def __init__(self, process: "BridgeProcess"):
        self.process = process
        self.on_packets_arrived = process.recorder.client_packets_arrived

    def on_data(self, end: _LoopEnd, data: bytes) -> None:
        if end is self.process.local_end:
            self.process.bridge.receive_local(data, self.process.clock.now)
            self.process._handle()

    def on_closed(self, end: _LoopEnd, reason: str) -> None:
        self.process._local_closed(end)


class BridgeProcess:
    """A scenario bridge: from broker process ``local`` to ``remote`` over ``transport``."""

    def __init__(self, spec: Any, clock: Clock, recorder: Recorder, transport: Any,
                 local: Any, remote: Any, rng: random.Random,
                 new_conn_id: Callable[[], int]):
        self.spec, self.clock, self.recorder, self.transport = spec, clock, recorder, transport
        self.local_broker, self.remote_broker, self.rng = local, remote, rng
        self.new_conn_id = new_conn_id
        self.name, self.local_name = spec.name, spec.local_name
        self.config = bridge_config(spec)
        self.on_packets_arrived = recorder.client_packets_arrived  # App of the remote end
        self._local_side = _LocalSide(self)
        self.bridge = Bridge(self.config, rng, trace=True)
        self.alarm = Alarm(clock, self.bridge.next_deadline, self._on_timer)
        self.alive = True
        self.remote_end: Any = None
        self.local_end: _LoopEnd | None = None
        self._remote_pending = False  # a reconnection of the remote leg is scheduled
        clock.call_at(0.0, self.start)
        for restart in local.spec.restarts:
            clock.call_at(restart.at, self.crash, restart.down)

    # -- life ------------------------------------------------------------------------------
    def start(self) -> None:
        self.open_local()
        self.connect_remote()

    def crash(self, down: float) -> None:
        """The local broker died: so did its bridge, and what its engines held."""
        now = self.clock.now
        self.alive = False
        self.alarm.deadline = never
        if self.remote_end is not None:
            self.remote_end.abort()
            self.recorder.closed(self.remote_end.conn, "client", now, "broker_restart")
            self.remote_end = None
        if self.local_end is not None:
            self.local_end.state = advance(self.local_end.state, DEAD)
            self.recorder.closed(self.local_end.conn, "client", now, "broker_restart")
            self.local_end = None
        self.recorder.client_events(self.local_name,
                                    self.bridge.local.abandon(now, "broker_restart"), None,
                                    self.local_broker.name)
        self.recorder.client_events(self.name, self.bridge.remote.abandon(now, "broker_restart"),
                                    None, self.remote_broker.name)
        self.clock.call_at(now + down, self.restart)

    def restart(self) -> None:
        self.alive = True
        self.bridge = Bridge(self.config, self.rng, trace=True)
        self.alarm.deadline = self.bridge.next_deadline
        self._remote_pending = False
        self.start()

    # -- local leg -------------------------------------------------------------------------
    def open_local(self) -> None:
        if not self.alive or self.local_end is not None or not self.local_broker.accepting():
            if self.alive and self.local_end is None:
                self.clock.call_at(self.clock.now + LOCAL_RECONNECT_DELAY, self.open_local)
            return
        now = self.clock.now
        link = LocalConnection(self.new_conn_id(), self.clock, self._local_side,
                               self.local_broker)
        self.local_end = link.client
        self.recorder.opened(link.conn, self.local_name, self.config.local_id, now)
        self.local_broker.on_established(link.broker)
        self.bridge.connect_local(now)
        self._handle()

    def _local_closed(self, end: _LoopEnd) -> None:
        if end is not self.local_end:
            return
        now = self.clock.now
        self.recorder.closed(end.conn, "client", now, "closed_by_peer")
        self.local_end = None
        self.bridge.local_lost(now)
        self._handle()
        self.clock.call_at(now + LOCAL_RECONNECT_DELAY, self.open_local)

    # -- remote leg ------------------------------------------------------------------------
    def connect_remote(self) -> None:
        self._remote_pending = False
        if not self.alive or self.remote_end is not None:
            return
        now = self.clock.now
        self.remote_end = self.transport.open(self.local_broker.name, self, self.remote_broker,
                                              self.remote_broker.name)
        self.recorder.opened(self.remote_end.conn, self.name, self.config.remote_client_id, now)
        self.bridge.connect_remote(now)
        self._handle()

    def _restart_later(self) -> None:
        if self.alive and not self._remote_pending:
            self._remote_pending = True
            self.clock.call_at(self.clock.now + self.bridge.restart_delay(), self.connect_remote)

    def on_established(self, end: Any) -> None:
        if end is self.remote_end:
            self._handle()

    def on_data(self, end: Any, data: bytes) -> None:
        if end is self.remote_end:
            self.bridge.receive_remote(data, self.clock.now)
            self._handle()

    def on_closed(self, end: Any, reason: str) -> None:
        if end is not self.remote_end:
            return
        now = self.clock.now
        if reason == "eof":
            end.close()
        why = TRANSPORT_REASONS[reason]
        self.recorder.closed(end.conn, "client", now, why)
        self.remote_end = None
        self.bridge.remote_lost(now, why)
        self._handle()
        self._restart_later()

    # -- engines ---------------------------------------------------------------------------
    def _on_timer(self, now: float) -> None:
        self.bridge.on_timer(now)
        self._handle()

    def _handle(self) -> None:
        recorder, bridge, now = self.recorder, self.bridge, self.clock.now
        events = bridge.take_events()
        local, remote = self.local_end, self.remote_end
        for e in events.local:
            if e.__class__ is ev.Connected and local is not None:
                recorder.up(local.conn, e.t, e.session_present)
        for e in events.remote:
            if e.__class__ is ev.Connected and remote is not None:
                recorder.up(remote.conn, e.t, e.session_present)
        recorder.client_events(self.local_name, events.local,
                               None if local is None else local.conn, self.local_broker.name)
        recorder.client_events(self.name, events.remote,
                               None if remote is None else remote.conn, self.remote_broker.name)
        if local is not None:
            data = bridge.data_for_local()
            if data:
                local.write(data, recorder.take_written(local.conn, "client", now))
            if bridge.local.should_close:
                local.close()
                self.local_end = None
                self.clock.call_at(now + LOCAL_RECONNECT_DELAY, self.open_local)
        if remote is not None and remote.state is ESTABLISHED:
            data = bridge.data_for_remote()
            if data:
                remote.write(data, recorder.take_written(remote.conn, "client", now))
        if remote is not None and bridge.remote.should_close:
            remote.close()
            self.remote_end = None
            self._restart_later()
        self.alarm.arm()
