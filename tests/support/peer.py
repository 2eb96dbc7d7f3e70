"""Hand-played client connections to a broker engine, for spec-rule tests.

A ``Peer`` sends exact packets into ``BrokerEngine.receive`` and decodes exactly what the
broker answers on that connection, so a test can state the bytes a statement requires (the
idea of mosquitto's test/broker cases) without any socket or clock.
"""

from __future__ import annotations

import itertools

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol import events as ev
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.packets import (Connack, Connect, Puback, Pubcomp, Publish, Pubrec,
                                      Suback, Subscribe, Subscription)

V = 4  # protocol level of MQTT 3.1.1
_serial = itertools.count(1)


class Peer:
    """One client connection played by hand: send exact packets, read exact replies."""

    def __init__(self, broker: BrokerEngine, name: str | None = None, now: float = 0.0,
                 version: int = V):
        self.broker, self.version = broker, version
        self.conn = name or f"conn#{next(_serial)}"
        self.events: list = []  # what the broker reported while this peer was acting
        self.closed = False  # the broker asked for this connection to be closed
        self.connack: Connack | None = None
        self.after_connack: list = []  # packets that followed the CONNACK in the same turn
        self.after_suback: list = []  # retained messages that followed the SUBACK
        broker.connection_made(self.conn, now)

    def send(self, *packets, now: float = 0.0) -> list:
        return self.send_bytes(b"".join(encode(p, self.version) for p in packets), now)

    def send_bytes(self, data: bytes, now: float = 0.0) -> list:
        self.events += self.broker.receive(self.conn, data, now)
        return self.read()

    def read(self) -> list:
        data, close = self.broker.take_output(self.conn)
        self.closed = self.closed or close
        return Decoder(self.version).feed(data)

    def lose(self, now: float = 0.0) -> None:
        """The transport breaks underneath (no DISCONNECT)."""
        self.events += self.broker.connection_lost(self.conn, now)
        self.closed = True

    def closes(self) -> list[ev.ConnectionClosed]:
        return [e for e in self.events if isinstance(e, ev.ConnectionClosed)]


def online(broker: BrokerEngine, client_id: str, now: float = 0.0, version: int = V,
           **fields) -> Peer:
    """A connection whose CONNECT was accepted; ``after_connack`` holds what followed it."""
    peer = Peer(broker, f"{client_id or 'anon'}#{next(_serial)}", now, version)
    reply = peer.send(Connect(client_id, **fields), now=now)
    assert reply and isinstance(reply[0], Connack) and reply[0].reason_code == 0, reply
    peer.connack, peer.after_connack = reply[0], reply[1:]
    return peer


def subscribed(broker: BrokerEngine, client_id: str, *subs: tuple[str, int], **fields) -> Peer:
    """An accepted connection holding the (filter, qos) subscriptions ``subs``."""
    peer = online(broker, client_id, **fields)
    reply = peer.send(Subscribe(1, tuple(Subscription(f, q) for f, q in subs)))
    assert isinstance(reply[0], Suback), reply
    peer.after_suback = reply[1:]
    return peer


def payloads(packets: list) -> list[bytes]:
    return [p.payload for p in packets if isinstance(p, Publish)]


def publishes(packets: list) -> list[Publish]:
    return [p for p in packets if isinstance(p, Publish)]


def drain(s: Peer, first: list | None = None, now: float = 0.0) -> list[Publish]:
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
