"""Helpers for the MQTT 5 engine spec-rule tests (test_engine_rules_v5_*.py).

``Peer`` is one hand-driven MQTT 5 connection to a ``BrokerEngine``: the test writes exact
packets and reads the exact packets the broker answered with, so every test can say "after
this packet, the broker sends exactly that". ``Server`` is the mirror image for the client
engine: a script of server packets fed to a ``ClientEngine``. Both play the driver's part
honestly (the close flag ends the connection, timers fire in time order), so a broker or
client bug cannot hide behind the helper.
"""

from __future__ import annotations

from typing import Hashable

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.client import ClientConfig, ClientEngine
from mqttsim.protocol.packets import (Connack, Connect, Disconnect, Publish, Subscribe,
                                      Subscription, Will)
from mqttsim.protocol.properties import NO_PROPERTIES, Properties

V5 = 5


def broker(**config) -> BrokerEngine:
    """A broker engine with the given BrokerConfig fields (and auth/authz if given)."""
    auth = config.pop("auth", None)
    authz = config.pop("authz", None)
    return BrokerEngine(BrokerConfig(**config), auth=auth, authz=authz)


def advance(b: BrokerEngine, until: float) -> list:
    """Fire the broker's timers due up to ``until`` in time order; returns their events."""
    events = []
    for _ in range(10_000):  # a timer that never moves on would be an engine bug
        due = b.next_deadline()
        if due is None or due > until:
            break
        events += b.on_timer(due)
    return events


class Peer:
    """A raw MQTT 5 client connection to a broker engine, driven packet by packet."""

    def __init__(self, b: BrokerEngine, conn: Hashable, now: float = 0.0):
        self.b = b
        self.conn = conn
        self.decoder = Decoder(V5)
        self.closed = False  # the broker asked for the connection to be closed
        self.now = now
        self.events: list = []
        self._unread: list = []  # packets read by connect() after the CONNACK
        self.sizes: list[int] = []  # wire size of every packet read, in order
        b.connection_made(conn, now)

    def send(self, packet, now: float | None = None) -> list:
        return self.send_bytes(encode(packet, V5), now)

    def send_bytes(self, data: bytes, now: float | None = None) -> list:
        if now is not None:
            self.now = now
        events = self.b.receive(self.conn, data, self.now)
        self.events += events
        return events

    def read(self) -> list:
        """Everything the broker wrote to this connection since the last read, decoded.

        A close request is honoured the way a driver would: the connection is closed after
        the bytes are written, and the broker is told.
        """
        packets, self._unread = self._unread, []
        if self.closed:
            return packets
        data, close = self.b.take_output(self.conn)
        if data:
            packets += self.decoder.feed(data)
            self.sizes += self.decoder.sizes
        if close:
            self.closed = True
            self.events += self.b.connection_lost(self.conn, self.now, "closed_by_server")
        return packets

    def drop(self, now: float | None = None) -> list:
        """The client's side of the transport breaks (no DISCONNECT)."""
        if now is not None:
            self.now = now
        self.closed = True
        events = self.b.connection_lost(self.conn, self.now, "transport")
        self.events += events
        return events

    # -- common exchanges ------------------------------------------------------------------
    def connect(self, client_id: str = "", clean_start: bool = True, keepalive: int = 0,
                will: Will | None = None, username: str | None = None,
                password: bytes | None = None, now: float | None = None,
                **props) -> Connack:
        """Send CONNECT (properties as keyword arguments) and return the broker's CONNACK;
        whatever followed it is left for the next ``read``."""
        properties = Properties(**props) if props else NO_PROPERTIES
        self.send(Connect(client_id, clean_start, keepalive, username, password, will,
                          properties), now)
        packets = self.read()
        assert packets and isinstance(packets[0], Connack), packets
        self._unread = packets[1:]
        return packets[0]

    def subscribe(self, *subs: Subscription | tuple, packet_id: int = 1,
                  identifier: int | None = None, now: float | None = None) -> list:
        """SUBSCRIBE; returns every packet read back (SUBACK first, then retained ones)."""
        subscriptions = tuple(s if isinstance(s, Subscription) else Subscription(*s)
                              for s in subs)
        props = (Properties(subscription_identifiers=(identifier,)) if identifier
                 else NO_PROPERTIES)
        self.send(Subscribe(packet_id, subscriptions, props), now)
        return self.read()

    def publish(self, topic: str, payload: bytes = b"", qos: int = 0, retain: bool = False,
                packet_id: int | None = None, now: float | None = None, dup: bool = False,
                **props) -> list:
        """PUBLISH; returns what the broker wrote back to *this* connection."""
        if qos and packet_id is None:
            packet_id = 1
        properties = Properties(**props) if props else NO_PROPERTIES
        self.send(Publish(topic, payload, qos, retain, dup, packet_id, properties), now)
        return self.read()

    def disconnect(self, reason_code: int = 0, now: float | None = None, **props) -> list:
        properties = Properties(**props) if props else NO_PROPERTIES
        self.send(Disconnect(reason_code, properties), now)
        return self.read()


def publishes(packets: list) -> list[Publish]:
    return [p for p in packets if isinstance(p, Publish)]


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


# -- the client engine against a scripted server -------------------------------------------
class Server:
    """A scripted MQTT 5 server in front of a ``ClientEngine``: the test decides every byte."""

    def __init__(self, config: ClientConfig | None = None, **fields):
        if config is None:
            fields.setdefault("client_id", "c")
            fields.setdefault("version", V5)
            config = ClientConfig(**fields)
        self.client = ClientEngine(config)
        self.decoder = Decoder(None)  # server side: learns the version from CONNECT
        self.events: list = []
        self.now = 0.0

    def start(self, now: float = 0.0) -> list:
        """The transport is up: the client sends CONNECT. Returns the packets it wrote."""
        self.now = now
        self.decoder = Decoder(None)
        self.client.connect(now)
        return self.read()

    def read(self) -> list:
        """Packets the client wrote since the last read (its pending events are collected)."""
        self.events += self.client.take_events()
        data = self.client.data_to_send()
        return self.decoder.feed(data) if data else []

    def send(self, *packets, now: float | None = None) -> list:
        """Server packets to the client; returns the client's events."""
        if now is not None:
            self.now = now
        data = b"".join(encode(p, V5) for p in packets)
        events = self.client.receive(data, self.now)
        self.events += events
        return events

    def accept(self, session_present: bool = False, now: float | None = None, **props) -> list:
        """CONNACK 0 with the given properties; returns the packets the client then wrote."""
        properties = Properties(**props) if props else NO_PROPERTIES
        self.send(Connack(session_present, 0, properties), now=now)
        return self.read()

    def lose(self, now: float | None = None) -> list:
        if now is not None:
            self.now = now
        events = self.client.connection_lost(self.now, "transport")
        self.events += events
        return events

    def tick(self, until: float) -> list:
        """Fire the client's timers due up to ``until``; returns the packets it wrote."""
        for _ in range(10_000):  # a timer that never moves on would be an engine bug
            due = self.client.next_deadline()
            if due is None or due > until:
                break
            self.now = due
            self.events += self.client.on_timer(due)
        self.now = max(self.now, until)
        return self.read()


__all__ = ["V5", "broker", "advance", "Peer", "Server", "publishes", "of", "ClientConfig"]
