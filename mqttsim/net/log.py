"""The broker's ``-v`` log and the clients' ``-d`` log, in mosquitto's words.

It is built only from the engine's events (mqttsim.protocol.events), so the log shows what
the engine decided, not what a driver guessed; the same events feed the simulator's tables.
The lines imitate ``mosquitto -v`` (2.0.11) so the seed tutorial reads the same with either
broker, in mosquitto's order too: the connection, then (for its CONNECT, which mosquitto does
not log as such) the client, its will, the CONNACK; a SUBSCRIBE's grants before its SUBACK::

    1700000000: New connection from 127.0.0.1:53412 on port 1883.
    1700000000: New client connected from 127.0.0.1:53412 as sub (p2, c1, k60).
    1700000000: No will message specified.
    1700000000: Sending CONNACK to sub (0, 0)
    1700000000: Received PUBLISH from pub (d0, q0, r0, m0, 'sensor', ... (2 bytes))
    1700000000: Sending PINGRESP to sub
    1700000000: Client sub disconnected: keepalive expired [MQTT-3.1.2-24]

Packet lines need ``BrokerConfig(emit_packet_events=True)``, which costs time on every
packet: ``mqttsim broker`` turns it on only with ``-v``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..protocol import events as ev
from ..protocol.packets import (MQTT_3_1, MQTT_3_1_1, MQTT_5, Connack, Connect, Disconnect,
                                Puback, Pubcomp, Publish, Pubrec, Pubrel, Subscribe,
                                Unsubscribe)

# mosquitto's numbering of protocol versions in "(p2, c1, k60)".
PROTOCOL_NUMBERS = {MQTT_3_1: 1, MQTT_3_1_1: 2, MQTT_5: 5}

# What a ConnectionClosed reason means, in words.
CLOSE_REASONS = {
    "keepalive": "keepalive expired",
    "protocol_error": "protocol error",
    "takeover": "taken over",
    "refused": "connection refused",
    "connect_timeout": "no CONNECT in time",
    "server_disconnect": "disconnected by the server",
    "shutdown": "broker shutting down",
    "transient_error": "broker error",
}


def publish_summary(packet: Publish, mid: int | None = None) -> str:
    """``(d0, q1, r0, m7, 'sensor', ... (2 bytes))``, as mosquitto and its tools show a
    PUBLISH; ``mid`` replaces the packet id (the tools number QoS 0 messages too)."""
    mid = packet.packet_id or 0 if mid is None else mid
    return (f"(d{int(packet.dup)}, q{packet.qos}, r{int(packet.retain)}, "
            f"m{mid}, '{packet.topic}', ... ({len(packet.payload)} bytes))")


def connect_flags(version: int | None, clean: bool, keepalive: int,
                  username: str | None = None) -> str:
    """``(p2, c1, k60)`` or ``(p2, c1, k60, u'alice')``."""
    user = f", u'{username}'" if username is not None else ""
    return f"(p{PROTOCOL_NUMBERS.get(version, 0)}, c{int(clean)}, k{keepalive}{user})"


class BrokerLog:
    """Turns lists of engine events into log lines; call it with each list of events.

    ``peer(conn)`` names a connection's remote address and ``port(conn)`` the local port it
    came in on (the driver knows them, the engine does not); ``clock()`` gives the wall-clock
    seconds printed at the start of each line.
    """

    def __init__(self, stream: TextIO | None = None, peer: Callable[[object], str] = str,
                 clock: Callable[[], float] = time.time,
                 port: Callable[[object], object] = lambda conn: "?"):
        self.stream = stream
        self.peer = peer
        self.port = port
        self.clock = clock
        self._connects: dict[object, Connect] = {}  # conn -> its CONNECT, until Connected
        # The lines mosquitto writes after the one of a later event: a CONNACK after the
        # "New client connected" line (the Connected event follows the CONNACK's), a SUBACK
        # after the grants (the Subscribed event follows the SUBACK's).
        self._held: dict[tuple[str, object], str] = {}
        self._subscribes: dict[object, Subscribe] = {}  # conn -> SUBSCRIBE, until Subscribed
        self._queue_drops: dict[str, int] = {}  # client id -> queue_full drops this episode

    def __call__(self, events: list) -> None:
        lines = []
        for event in events:
            lines.extend(self.lines(event))
        if lines:
            stream = self.stream or sys.stderr
            stamp = f"{int(self.clock())}: "
            stream.write("".join(f"{stamp}{line}\n" for line in lines))
            stream.flush()

    def write(self, line: str) -> None:
        """A line that is not about an event (start-up, listening sockets)."""
        stream = self.stream or sys.stderr
        stream.write(f"{int(self.clock())}: {line}\n")
        stream.flush()

    # -- one event -> lines ----------------------------------------------------------------
    def lines(self, event) -> list[str]:
        kind = type(event)
        if kind is ev.PacketReceived:
            return self._received(event)
        if kind is ev.PacketSent:
            return self._sent(event)
        if kind is ev.Connected:
            return self._connected(event)
        if kind is ev.ConnectionOpened:
            return [f"New connection from {self.peer(event.conn)} on port "
                    f"{self.port(event.conn)}."]
        if kind is ev.ConnectionClosed:
            lines = [self._closed(event)]
            dropped = self._queue_drops.pop(event.client_id, 0)
            if dropped:
                lines.append(f"{dropped} outgoing messages were dropped for client "
                             f"{event.client_id} (queue full).")
            return lines
        if kind is ev.ConnectionRefused:
            return []  # the CONNACK line says it, as in mosquitto's log
        if kind is ev.Subscribed:  # each filter with its grant, then the SUBACK (mosquitto)
            packet = self._subscribes.pop(event.conn, None)
            qos = ([s.qos for s in packet.subscriptions] if packet is not None
                   else [None] * len(event.topic_filters))
            lines = []
            for topic_filter, granted, asked in zip(event.topic_filters, event.granted, qos):
                if asked is not None:
                    lines.append(f"\t{topic_filter} (QoS {asked})")
                lines.append(f"{event.client_id} {granted} {topic_filter}")
            held = self._held.pop(("SUBACK", event.conn), None)
            return lines + ([held] if held is not None else [])
        if kind is ev.MessageDropped:
            who = event.client_id or "<unknown>"
            if event.reason == "queue_full":
                return self._queue_full(who)
            return [f"Dropped message for {who} on '{event.topic}' (q{event.qos}): "
                    f"{event.reason}."]
        if kind is ev.WillPublished:
            return [f"Publishing will of {event.client_id} to '{event.topic}' "
                    f"(q{event.qos}, r{int(event.retain)})."]
        return []  # MessageReceived / MessageAcknowledged: the packet lines already say it

    def _who(self, event) -> str:
        return event.client_id if event.client_id is not None else "<unknown>"

    def _received(self, event: ev.PacketReceived) -> list[str]:
        packet = event.packet
        name = packet.type.name
        if isinstance(packet, Connect):  # logged with its outcome (_connected, _sent)
            self._connects[event.conn] = packet
            return []
        who = self._who(event)
        if isinstance(packet, Publish):
            return [f"Received PUBLISH from {who} {publish_summary(packet)}"]
        if isinstance(packet, Subscribe):  # its filters come with their grants (Subscribed)
            self._subscribes[event.conn] = packet
            return [f"Received SUBSCRIBE from {who}"]
        if isinstance(packet, Unsubscribe):
            return [f"Received UNSUBSCRIBE from {who}"] + [
                f"\t{topic_filter}" for topic_filter in packet.topic_filters]
        if isinstance(packet, (Pubrec, Pubrel)):
            return [f"Received {name} from {who} (Mid: {packet.packet_id})"]
        if hasattr(packet, "packet_id"):
            code = getattr(packet, "reason_code", 0)
            return [f"Received {name} from {who} (Mid: {packet.packet_id}, RC:{code})"]
        return [f"Received {name} from {who}"]

    def _sent(self, event: ev.PacketSent) -> list[str]:
        packet = event.packet
        name = packet.type.name
        who = self._who(event)
        if isinstance(packet, Publish):
            return [f"Sending PUBLISH to {who} {publish_summary(packet)}"]
        if name == "CONNACK":
            if packet.reason_code:  # refused: mosquitto names the host, the id is unknown
                self._connects.pop(event.conn, None)
                who = event.client_id or self.peer(event.conn).rpartition(":")[0]
                return [f"Sending CONNACK to {who} (0, {packet.reason_code})"]
            self._held[("CONNACK", event.conn)] = (
                f"Sending CONNACK to {who} ({int(packet.session_present)}, 0)")
            return []
        if name == "SUBACK":
            self._held[("SUBACK", event.conn)] = f"Sending SUBACK to {who}"
            return []
        if name == "DISCONNECT":
            return [f"Sending DISCONNECT to {who} (0x{packet.reason_code:02X})"]
        if isinstance(packet, (Pubrel, Pubcomp)):
            return [f"Sending {name} to {who} (m{packet.packet_id})"]
        if hasattr(packet, "packet_id") and name not in ("SUBACK", "UNSUBACK"):
            code = getattr(packet, "reason_code", 0)
            return [f"Sending {name} to {who} (m{packet.packet_id}, rc{code})"]
        return [f"Sending {name} to {who}"]

    def _queue_full(self, who: str) -> list[str]:
        """mosquitto's line, once per client until it connects again (a stuck subscriber
        would otherwise write a line per message); the count comes when it goes."""
        count = self._queue_drops.get(who, 0)
        self._queue_drops[who] = count + 1
        if count:
            return []
        return [f"Outgoing messages are being dropped for client {who}."]

    def _connected(self, event: ev.Connected) -> list[str]:
        self._queue_drops.pop(event.client_id, None)
        connect = self._connects.pop(event.conn, None)
        clean = connect.clean_session if connect is not None else True
        username = connect.username if connect is not None else None
        flags = connect_flags(event.version, clean, event.keepalive, username)
        # A bridge that announced itself (try_private's protocol-level bit) is logged as one,
        # as mosquitto 2.0 does: "New bridge connected from ...".
        kind = "bridge" if connect is not None and connect.bridge else "client"
        lines = [f"New {kind} connected from {self.peer(event.conn)} as {event.client_id} "
                 f"{flags}."]
        will = connect.will if connect is not None else None
        if will is None:
            lines.append("No will message specified.")
        else:
            lines.append(f"Will message specified ({len(will.payload)} bytes) "
                         f"(r{int(will.retain)}, q{will.qos}).")
            lines.append(f"\t{will.topic}")
        held = self._held.pop(("CONNACK", event.conn), None)
        return lines + ([held] if held is not None else [])

    def _closed(self, event: ev.ConnectionClosed) -> str:
        self._connects.pop(event.conn, None)
        self._held.pop(("CONNACK", event.conn), None)
        self._held.pop(("SUBACK", event.conn), None)
        self._subscribes.pop(event.conn, None)
        who = event.client_id if event.client_id is not None else (
            f"<unknown> from {self.peer(event.conn)}")
        rule = f" [{event.rule}]" if event.rule else ""
        if event.reason == "clean":
            return f"Client {who} disconnected.{rule}"
        if event.reason == "transport":
            if event.detail in ("", "client closed the connection"):
                if event.client_id is None:  # mosquitto's words for a socket without CONNECT
                    return "Client <unknown> closed its connection."
                return f"Client {who} closed its connection."
            return f"Socket error on client {who}, disconnecting: {event.detail}"
        words = CLOSE_REASONS.get(event.reason, event.reason)
        detail = f" ({event.detail})" if event.detail and event.reason != "keepalive" else ""
        return f"Client {who} disconnected: {words}{detail}{rule}"


# -- the clients' -d log (mosquitto_pub / mosquitto_sub) -----------------------------------

def client_debug_lines(event, version: int, qos0_mid: int = 0) -> list[str]:
    """What mosquitto_pub/sub's -d prints for a packet event (empty for other events).

    libmosquitto numbers every outgoing message, QoS 0 included, from the same counter as
    packet ids; ``qos0_mid`` is the number to show for an outgoing QoS 0 PUBLISH.
    """
    kind = event.__class__
    if kind is not ev.PacketSent and kind is not ev.PacketReceived:
        return []
    packet = event.packet
    who = f"Client {event.client_id or '(null)'}"
    name = packet.type.name
    if kind is ev.PacketSent:
        head = f"{who} sending {name}"
        if isinstance(packet, Publish):
            return [f"{head} {publish_summary(packet, None if packet.qos else qos0_mid)}"]
        if isinstance(packet, (Puback, Pubrec)):
            return [f"{head} (m{packet.packet_id}, rc{packet.reason_code})"]
        if isinstance(packet, (Pubrel, Pubcomp)):
            return [f"{head} (m{packet.packet_id})"]
        if isinstance(packet, Subscribe):
            return [f"{head} (Mid: {packet.packet_id}, Topic: {s.topic_filter}, QoS: {s.qos}, "
                    f"Options: 0x{_options(s):02x})" for s in packet.subscriptions]
        if isinstance(packet, Unsubscribe):
            return [f"{head} (Mid: {packet.packet_id}, Topic: {t})" for t in packet.topic_filters]
        return [head]
    head = f"{who} received {name}"
    if isinstance(packet, Connack):
        return [f"{head} ({packet.reason_code})"]
    if isinstance(packet, Publish):
        return [f"{head} {publish_summary(packet)}"]
    if isinstance(packet, (Puback, Pubcomp)):
        return [f"{head} (Mid: {packet.packet_id}, RC:{packet.reason_code})"]
    if isinstance(packet, (Pubrec, Pubrel)):
        return [f"{head} (Mid: {packet.packet_id})"]
    if isinstance(packet, Disconnect) and version == MQTT_5:
        return [f"{head} ({packet.reason_code})"]
    return [head]


def _options(sub) -> int:
    """The MQTT 5 subscription options byte without its QoS bits, as mosquitto shows it."""
    return (sub.no_local << 2) | (sub.retain_as_published << 3) | (sub.retain_handling << 4)
