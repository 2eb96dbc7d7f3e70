"""Client and broker engines wired together in memory, with a hand on the cable.

No sockets and no clock: the test says what time it is and when bytes move. ``step`` moves
one chunk, ``run`` moves everything until the wires are quiet, ``cut`` breaks a client's
connection with whatever was in flight lost (as a TCP reset would), ``advance`` fires the
engines' timers up to a time. Every event is recorded with who reported it, so tests can
assert on the story.
"""

from __future__ import annotations

from collections import deque

from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.client import ClientConfig, ClientEngine


class Pipe:
    def __init__(self, broker: BrokerEngine | None = None, trace: bool = True):
        self.broker = broker or BrokerEngine()
        self.trace = trace  # the pipe records every packet unless told not to
        self.broker.trace_packets = trace
        self.clients: dict[str, ClientEngine] = {}
        self.conn_of: dict[str, str | None] = {}  # client name -> live connection id
        self.name_of: dict[str, str] = {}  # connection id -> client name
        self.to_broker: dict[str, deque] = {}  # connection id -> chunks in flight
        self.to_client: dict[str, deque] = {}
        self.events: list[tuple[str, object]] = []
        self._serial = 0
        self.now = 0.0

    # -- set-up ----------------------------------------------------------------------------
    def add_client(self, name: str, config: ClientConfig | None = None, now: float | None = None,
                   connect: bool = True) -> ClientEngine:
        client = ClientEngine(config or ClientConfig(client_id=name))
        client.trace_packets = self.trace
        self.clients[name] = client
        self.conn_of[name] = None
        if connect:
            self.connect(name, now)
        return client

    def connect(self, name: str, now: float | None = None) -> str:
        """Open a new transport connection for ``name`` and send CONNECT."""
        now = self._at(now)
        if self.conn_of.get(name):
            raise RuntimeError(f"{name} is still connected")
        self._serial += 1
        conn = f"{name}#{self._serial}"
        self.conn_of[name] = conn
        self.name_of[conn] = name
        self.to_broker[conn] = deque()
        self.to_client[conn] = deque()
        self._record("broker", [])
        self.broker.connection_made(conn, now)
        self.clients[name].connect(now)
        self._collect(now)
        return conn

    # -- moving bytes ----------------------------------------------------------------------
    def _collect(self, now: float) -> None:
        """Take what the engines want to send and put it on the wires."""
        for name, client in self.clients.items():
            conn = self.conn_of[name]
            data = client.data_to_send()
            if conn is not None and data:
                self.to_broker[conn].append(data)
            if conn is not None and client.should_close and not self.to_broker[conn]:
                self._close(conn, now, by="client")
            self._record(name, client.take_events())
        for conn in self.broker.pending():
            data, close = self.broker.take_output(conn)
            if conn in self.to_client and data:
                self.to_client[conn].append(data)
            if close and conn in self.to_client:
                self.to_client[conn].append(None)  # close after the data
        self._record("broker", self.broker.take_events())

    def step(self, now: float | None = None) -> bool:
        """Move one chunk (broker-bound first). False when nothing is in flight."""
        now = self._at(now)
        self._collect(now)
        for conn, queue in list(self.to_broker.items()):
            if queue:
                self._record("broker", self.broker.receive(conn, queue.popleft(), now))
                self._collect(now)
                return True
        for conn, queue in list(self.to_client.items()):
            if queue:
                chunk = queue.popleft()
                name = self.name_of[conn]
                if chunk is None:
                    self._close(conn, now, by="broker")
                else:
                    self._record(name, self.clients[name].receive(chunk, now))
                self._collect(now)
                return True
        return False

    def run(self, now: float | None = None, max_steps: int = 100_000) -> int:
        """Move chunks until the wires are quiet; returns how many moved."""
        moved = 0
        while moved < max_steps and self.step(now):
            moved += 1
        return moved

    def advance(self, until: float) -> None:
        """Fire every engine timer due up to ``until``, in time order, pumping after each."""
        while True:
            due = [(t, who) for who, t in self._deadlines() if t is not None and t <= until]
            if not due:
                break
            when, who = min(due)
            self.now = max(self.now, when)
            engine = self.broker if who == "broker" else self.clients[who]
            self._record(who, engine.on_timer(self.now))
            self.run(self.now)
        self.now = max(self.now, until)
        self.run(self.now)

    def _deadlines(self):
        yield "broker", self.broker.next_deadline()
        for name, client in self.clients.items():
            yield name, client.next_deadline()

    # -- breaking things -------------------------------------------------------------------
    def cut(self, name: str, now: float | None = None, reason: str = "transport") -> None:
        """Break ``name``'s connection: bytes in flight are lost, both ends notice."""
        now = self._at(now)
        conn = self.conn_of.get(name)
        if conn is None:
            return
        self.to_broker[conn].clear()
        self.to_client[conn].clear()
        self._close(conn, now, by="cable", reason=reason)

    def half_cut(self, name: str) -> None:
        """The cable dies silently: nothing moves any more, and nobody is told (an outage)."""
        conn = self.conn_of.get(name)
        if conn is not None:
            self.to_broker[conn].clear()
            self.to_client[conn].clear()
            self.to_broker.pop(conn)
            self.to_client.pop(conn)
            self.to_broker[conn] = _BlackHole()
            self.to_client[conn] = _BlackHole()

    def _close(self, conn: str, now: float, by: str, reason: str = "transport") -> None:
        name = self.name_of[conn]
        if self.conn_of.get(name) != conn:
            return
        self.conn_of[name] = None
        self.to_broker.pop(conn, None)
        self.to_client.pop(conn, None)
        self._record("broker", self.broker.connection_lost(conn, now, reason))
        self._record(name, self.clients[name].connection_lost(now, reason))

    # -- events ----------------------------------------------------------------------------
    def _record(self, who: str, events) -> None:
        self.events.extend((who, event) for event in events)

    def of(self, kind, who: str | None = None) -> list:
        """Recorded events of a type, optionally only those reported by ``who``."""
        return [e for w, e in self.events if isinstance(e, kind) and (who is None or w == who)]

    def _at(self, now: float | None) -> float:
        if now is not None:
            self.now = max(self.now, now)
        return self.now


class _BlackHole(deque):
    """A wire that swallows everything (used for silent outages)."""

    def append(self, item) -> None:
        pass
