"""Hand-played connections for spec-rule tests: ``Peer`` in front of the broker engine,
``Server`` in front of the client engine.

A ``Peer`` is one client connection to a ``BrokerEngine`` played by hand, in any protocol
version: the test writes exact packets and reads the exact packets the broker wrote back,
so it can say "after this packet, the broker sends exactly that" (the idea of mosquitto's
test/broker cases) without a socket or a clock. ``Server`` is the mirror image: a scripted
server in front of a ``ClientEngine``. Both name their moves the same way:

- ``write(*packets)``: put packets on the wire; returns the engine's events for them;
- ``read()``: the packets the engine wrote since the last read, decoded;
- ``send(*packets)``: ``write`` then ``read`` (the usual exchange); returns the packets;
- ``lose()``: the transport breaks underneath (no DISCONNECT); returns the events.

Every event the engine reports while the helper acts is also collected in ``.events``.
Both play the driver's part honestly (a close request ends the connection after its bytes
are read, and the engine is told; timers fire in time order), so an engine bug cannot hide
behind the helper. Time is sticky: ``now`` given to one call stays the connection's time
until a later call moves it.
"""

from __future__ import annotations

import itertools
from typing import Hashable

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol import events as ev
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.client import ClientConfig, ClientEngine
from mqttsim.protocol.packets import (Connack, Connect, Disconnect, Puback, Pubcomp, Publish,
                                      Pubrec, Suback, Subscribe, Subscription, Will)
from mqttsim.protocol.properties import NO_PROPERTIES, Properties

V = 4  # protocol level of MQTT 3.1.1: the default of every helper here
V5 = 5
SESSION_EXPIRY = 1000  # seconds a persistent() session outlives its connection
_serial = itertools.count(1)


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
    """One client connection to a broker engine, driven packet by packet."""

    def __init__(self, broker: BrokerEngine, conn: Hashable | None = None, now: float = 0.0,
                 version: int = V):
        self.broker, self.version, self.now = broker, version, now
        self.conn = conn if conn is not None else f"conn#{next(_serial)}"
        self.decoder = Decoder(version)
        self.events: list = []  # what the broker reported while this peer was acting
        self.closed = False  # the connection is over (closed by the broker, or lost)
        self.sizes: list[int] = []  # wire size of every packet read, in order
        self.connack: Connack | None = None
        self.after_connack: list = []  # what followed the CONNACK (online() only)
        self.after_suback: list = []  # retained messages that followed the SUBACK (online())
        self._unread: list = []  # packets connect() read after the CONNACK
        broker.connection_made(self.conn, now)

    def _at(self, now: float | None) -> float:
        if now is not None:
            self.now = now
        return self.now

    # -- the wire ---------------------------------------------------------------------------
    def write(self, *packets, now: float | None = None) -> list:
        """Packets to the broker; returns the events the broker reported."""
        return self.write_bytes(b"".join(encode(p, self.version) for p in packets), now)

    def write_bytes(self, data: bytes, now: float | None = None) -> list:
        events = self.broker.receive(self.conn, data, self._at(now))
        self.events += events
        return events

    def read(self) -> list:
        """Everything the broker wrote to this connection since the last read, decoded.

        A close request is honoured the way a driver would: the connection is closed after
        its bytes are read, and the broker is told.
        """
        packets, self._unread = self._unread, []
        if self.closed:
            return packets
        data, close = self.broker.take_output(self.conn)
        if data:
            packets += self.decoder.feed(data)
            self.sizes += self.decoder.sizes
        if close:
            self.closed = True
            self.events += self.broker.connection_lost(self.conn, self.now, "closed_by_server")
        return packets

    def send(self, *packets, now: float | None = None) -> list:
        """``write`` then ``read``: returns the packets the broker answered with."""
        self.write(*packets, now=now)
        return self.read()

    def send_bytes(self, data: bytes, now: float | None = None) -> list:
        self.write_bytes(data, now)
        return self.read()

    def lose(self, now: float | None = None) -> list:
        """The transport breaks underneath (no DISCONNECT); returns the broker's events."""
        self.closed = True
        events = self.broker.connection_lost(self.conn, self._at(now), "transport")
        self.events += events
        return events

    def closes(self) -> list[ev.ConnectionClosed]:
        return [e for e in self.events if isinstance(e, ev.ConnectionClosed)]

    # -- common exchanges -------------------------------------------------------------------
    def connect(self, client_id: str = "", clean_start: bool = True, keepalive: int = 0,
                will: Will | None = None, username: str | None = None,
                password: bytes | None = None, now: float | None = None,
                **props) -> Connack:
        """Send CONNECT (MQTT 5 properties as keyword arguments; ``clean_start`` is the Clean
        Session bit in 3.1/3.1.1) and return the broker's CONNACK, refused or not; whatever
        followed it is left for the next ``read``."""
        properties = Properties(**props) if props else NO_PROPERTIES
        packets = self.send(Connect(client_id, clean_start, keepalive, username, password,
                                    will, properties), now=now)
        assert packets and isinstance(packets[0], Connack), packets
        self.connack, self._unread = packets[0], packets[1:]
        return packets[0]

    def subscribe(self, *subs: Subscription | tuple, packet_id: int = 1,
                  identifier: int | None = None, now: float | None = None) -> list:
        """SUBSCRIBE to ``subs`` (Subscriptions or (filter, qos) tuples); returns every packet
        read back (SUBACK first, then retained messages)."""
        subscriptions = tuple(s if isinstance(s, Subscription) else Subscription(*s)
                              for s in subs)
        props = (Properties(subscription_identifiers=(identifier,)) if identifier
                 else NO_PROPERTIES)
        return self.send(Subscribe(packet_id, subscriptions, props), now=now)

    def publish(self, topic: str, payload: bytes = b"", qos: int = 0, retain: bool = False,
                packet_id: int | None = None, now: float | None = None, dup: bool = False,
                **props) -> list:
        """PUBLISH (packet id 1 for QoS > 0 unless given); returns what the broker wrote
        back to *this* connection."""
        if qos and packet_id is None:
            packet_id = 1
        properties = Properties(**props) if props else NO_PROPERTIES
        return self.send(Publish(topic, payload, qos, retain, dup, packet_id, properties),
                         now=now)

    def disconnect(self, reason_code: int = 0, now: float | None = None, **props) -> list:
        properties = Properties(**props) if props else NO_PROPERTIES
        return self.send(Disconnect(reason_code, properties), now=now)


def online(b: BrokerEngine, client_id: str, *subs: Subscription | tuple, now: float = 0.0,
           version: int = V, identifier: int | None = None, **connect) -> Peer:
    """A connection whose CONNECT was accepted (CONNACK 0), subscribed to ``subs`` if any.

    ``connect`` goes to ``Peer.connect`` (keepalive 0 unless given). ``after_connack`` holds
    what followed the CONNACK, ``after_suback`` the retained messages that followed the
    SUBACK."""
    peer = Peer(b, f"{client_id or 'anon'}#{next(_serial)}", now, version)
    connack = peer.connect(client_id, **connect)
    assert connack.reason_code == 0, connack
    peer.after_connack = peer.read()
    if subs:
        reply = peer.subscribe(*subs, identifier=identifier)
        assert isinstance(reply[0], Suback), reply
        peer.after_suback = reply[1:]
    return peer


def persistent(b: BrokerEngine, client_id: str, *subs: Subscription | tuple,
               expiry: int = SESSION_EXPIRY, **connect) -> Peer:
    """``online`` with a session that outlives the connection (Clean Start 0 and, in MQTT 5,
    Session Expiry Interval ``expiry``)."""
    if connect.get("version", V) == V5:
        connect.setdefault("session_expiry_interval", expiry)
    return online(b, client_id, *subs, clean_start=False, **connect)


def resume(b: BrokerEngine, client_id: str, now: float, expiry: int = SESSION_EXPIRY,
           **connect) -> Peer:
    """A new connection taking up ``client_id``'s stored session (Session Present 1
    asserted); what the broker resent is in ``after_connack``."""
    peer = persistent(b, client_id, now=now, expiry=expiry, **connect)
    assert peer.connack.session_present, peer.connack
    return peer


def payloads(packets: list) -> list[bytes]:
    return [p.payload for p in packets if isinstance(p, Publish)]


def publishes(packets: list) -> list[Publish]:
    return [p for p in packets if isinstance(p, Publish)]


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def drain(s: Peer, first: list | None = None, now: float | None = None) -> list[Publish]:
    """Acknowledge everything the broker sends until it stops; returns what arrived."""
    got, todo = [], publishes(s.read() if first is None else first)
    while todo:
        msg = todo.pop(0)
        got.append(msg)
        if msg.qos == 1:
            todo += publishes(s.send(Puback(msg.packet_id), now=now))
        elif msg.qos == 2:
            s.send(Pubrec(msg.packet_id), now=now)
            todo += publishes(s.send(Pubcomp(msg.packet_id), now=now))
    return got


def swap(data: bytes, placeholder: bytes, replacement: bytes) -> bytes:
    """Put bytes the encoder would refuse (ill-formed UTF-8) in place of a same-length
    placeholder, so every length field stays right."""
    assert len(placeholder) == len(replacement) and data.count(placeholder) == 1
    return data.replace(placeholder, replacement)


OVERLONG_SLASH = b"\xc0\xaf"  # '/' in two bytes: not well-formed UTF-8 [MQTT-1.5.4-1]


# -- the client engine against a scripted server -------------------------------------------
class Server:
    """A scripted server in front of a ``ClientEngine``: the test decides every byte.

    Built from a ``ClientConfig`` or its fields (client id "c" and MQTT 5 unless given)."""

    def __init__(self, config: ClientConfig | None = None, **fields):
        if config is None:
            fields.setdefault("client_id", "c")
            fields.setdefault("version", V5)
            config = ClientConfig(**fields)
        self.client = ClientEngine(config)
        self.version = config.version
        self.decoder = Decoder(None)  # server side: learns the version from CONNECT
        self.events: list = []
        self.now = 0.0

    def start(self, now: float = 0.0) -> list:
        """The transport is up: the client sends CONNECT. Returns the packets it wrote."""
        self.now = now
        self.decoder = Decoder(None)
        self.client.connect(now)
        return self.read()

    def write(self, *packets, now: float | None = None) -> list:
        """Server packets to the client; returns the client's events."""
        if now is not None:
            self.now = now
        data = b"".join(encode(p, self.version) for p in packets)
        events = self.client.receive(data, self.now)
        self.events += events
        return events

    def read(self) -> list:
        """Packets the client wrote since the last read (its pending events are collected)."""
        self.events += self.client.take_events()
        data = self.client.data_to_send()
        return self.decoder.feed(data) if data else []

    def send(self, *packets, now: float | None = None) -> list:
        """``write`` then ``read``: returns the packets the client answered with."""
        self.write(*packets, now=now)
        return self.read()

    def accept(self, session_present: bool = False, now: float | None = None, **props) -> list:
        """CONNACK 0 with the given properties; returns the packets the client then wrote."""
        properties = Properties(**props) if props else NO_PROPERTIES
        return self.send(Connack(session_present, 0, properties), now=now)

    def lose(self, now: float | None = None) -> list:
        """The transport breaks underneath; returns the client's events."""
        if now is not None:
            self.now = now
        events = self.client.connection_lost(self.now, "transport")
        self.events += events
        return events

    def resume(self, now: float = 1.0, **props) -> list:
        """Break the connection, let the client reconnect (asserting it asks to keep its
        session), answer Session Present 1; returns what the client then sent."""
        self.lose(now)
        [connect] = self.start(now)
        assert isinstance(connect, Connect) and connect.clean_session is False, connect
        return self.accept(session_present=True, **props)

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


def connected(**config) -> Server:
    """A client engine that has sent CONNECT and got CONNACK 0 (no server properties)."""
    srv = Server(**config)
    srv.start()
    srv.accept()
    return srv


__all__ = ["V", "V5", "SESSION_EXPIRY", "broker", "advance", "Peer", "online", "persistent",
           "resume", "payloads", "publishes", "of", "drain", "swap", "OVERLONG_SLASH", "Server",
           "connected", "ClientConfig"]
