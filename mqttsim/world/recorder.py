"""What a simulated run leaves behind: plain rows, appended as things happen.

Rows are lists (cheap to append, and stamped in place when a packet goes on the wire and
when it arrives); ``mqttsim.scenario.results`` turns them into pandas tables once the run is
over. Every row comes from an engine event or a transport fact, never from a driver's guess.
A packet row is *queued* from the engine's ``PacketSent`` until its process writes it
(``take_written``), then *written* until the transport reports it arrived (``arrived``).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..protocol import events as ev
from ..protocol.packets import Puback, Pubcomp, Publish, Pubrec, Pubrel

PACKET_COLUMNS = ("t", "src", "dst", "conn", "type", "bytes", "qos", "dup", "packet_id",
                  "t_recv")
_T, _BYTES, _T_RECV = (PACKET_COLUMNS.index(c) for c in ("t", "bytes", "t_recv"))
SEGMENT_COLUMNS = ("t", "conn", "src", "dst", "kind", "seq", "ack", "payload_bytes",
                   "retransmission", "bytes")  # then t_arrival, dropped, hop (kept apart)
PUBLISH_COLUMNS = ("publisher", "seq", "topic", "payload", "qos", "retain", "t_pub")
RECEIPT_COLUMNS = ("subscriber", "topic", "payload", "qos", "dup", "retain", "t")
# ``order`` counts broker events, so that a subscription and a message in the same instant
# are still known to have happened one before the other.
ACCEPT_COLUMNS = ("publisher", "topic", "payload", "qos", "dup", "t", "order")
DROP_COLUMNS = ("side", "client", "topic", "payload", "qos", "reason", "t")
SUBSCRIPTION_COLUMNS = ("client", "filter", "granted", "t", "order")
CONNECTION_COLUMNS = ("conn", "client", "client_id", "t_open", "t_up", "t_down", "reason",
                      "side", "detail", "rule", "broker_reason", "client_reason",
                      "session_present", "t_broker_down", "t_client_down")

_TYPE_NAMES: dict[type, str] = {}
# The acknowledgements: no QoS, no DUP flag, a packet id (the rows of most packets after
# PUBLISH, made without asking the packet what it has).
_ACK_NAMES: dict[type, str] = {Puback: "PUBACK", Pubrec: "PUBREC", Pubrel: "PUBREL",
                               Pubcomp: "PUBCOMP"}
NAN = float("nan")


def packet_type(packet: Any) -> str:
    """``PUBLISH``, ``PUBACK``...: the packet class's name in capitals."""
    cls = packet.__class__
    name = _TYPE_NAMES.get(cls)
    if name is None:
        name = _TYPE_NAMES[cls] = cls.__name__.upper()
    return name


class Recorder:
    """Collects the rows of one run. ``capture`` keeps segment payloads and the broker's
    events (for ``to_pcap`` and the ``-v`` log); large runs may leave it off."""

    def __init__(self, names: Mapping[str, str], capture: bool = True):
        self.names = dict(names)  # client id -> scenario client name
        self.capture = capture
        self.packets: list[list] = []
        # Segments are the most numerous rows: an immutable tuple each, their arrival times
        # in a compact array (NaN until they arrive), drops in a dict (they are few).
        self.segments: list[tuple] = []
        self.arrivals = array("d")
        self.losses: dict[int, tuple[str, str]] = {}
        self.payloads: list[bytes] = []
        self.publishes: list[tuple] = []
        self.receipts: list[tuple] = []
        self.accepts: list[tuple] = []
        self.drops: list[tuple] = []
        self.subscriptions: list[tuple] = []
        self.connections: dict[int, dict] = {}
        self.broker_events: list = []
        self.sys_updates: list[tuple] = []  # (t, broker, {topic: payload}): the $SYS tree
        self._order = 0
        # Packet rows per side that sends them ("client" or "broker"), per connection.
        self._queued: dict[str, dict[Any, list[list]]] = {"client": {}, "broker": {}}
        self._written: dict[str, dict[Any, list[list]]] = {"client": {}, "broker": {}}

    # -- packets on the wire -----------------------------------------------------------------
    def take_written(self, conn: Any, side: str, now: float) -> list[int]:
        """The packets ``side`` queued on ``conn`` go on the wire now (even those encoded
        while the connection was still opening): stamp their send time, number them in
        write order, and return their sizes for the transport."""
        rows = self._queued[side].pop(conn, None)
        if not rows:
            return []
        sizes = []
        for row in rows:
            row[_T] = now  # encoded earlier (while connecting): on the wire only now
            sizes.append(row[_BYTES])
        written = self._written[side]
        if conn in written:
            written[conn] += rows
        else:
            written[conn] = rows
        return sizes

    def client_packets_arrived(self, end: Any, first: int, stop: int, t: float) -> None:
        """``App.on_packets_arrived`` for a client process: packets ``first`` to ``stop - 1``
        it wrote on ``end`` reached the broker's engine at ``t``. The transport calls this
        directly (one call less on every packet), hence one method per side."""
        for row in self._written["client"][end.conn][first:stop]:
            row[_T_RECV] = t

    def broker_packets_arrived(self, end: Any, first: int, stop: int, t: float) -> None:
        """``App.on_packets_arrived`` for the broker process."""
        for row in self._written["broker"][end.conn][first:stop]:
            row[_T_RECV] = t

    @staticmethod
    def stamp_arrival(row: list, t: float) -> None:
        """A packet's row: its last byte reached the peer's engine at ``t``."""
        row[_T_RECV] = t

    def discard_unwritten(self, conn: Any, side: str) -> None:
        """The connection ended before these packets were written: they stay in the
        packets table (the engine sent them) without ever going on the wire."""
        self._queued[side].pop(conn, None)

    # -- transport ---------------------------------------------------------------------------
    def segment(self, t: float, conn: int, src: str, dst: str, kind: str, seq: int,
                ack: int | None, payload: bytes, retransmission: bool, size: int) -> int:
        """Record a segment put on the wire; returns its index for its fate."""
        self.segments.append((t, conn, src, dst, kind, seq, ack, len(payload), retransmission,
                              size))
        self.arrivals.append(NAN)
        if self.capture:
            self.payloads.append(payload)
        return len(self.arrivals) - 1

    def segment_arrived(self, index: int, t: float) -> None:
        self.arrivals[index] = t

    def segment_lost(self, item: tuple, reason: str, hop: str) -> None:
        """A link dropped a segment; ``item`` is what was carried, its index last."""
        self.losses[item[-1]] = (reason, hop)

    # -- engines -----------------------------------------------------------------------------
    def _packet_row(self, event: ev.PacketSent, src: str, dst: str, conn: int) -> list:
        p = event.packet
        cls = p.__class__
        if cls is Publish:  # 2 of every 4 packets of a QoS 1 message, and 2 are acks
            row = [event.t, src, dst, conn, "PUBLISH", event.size, p.qos, p.dup, p.packet_id,
                   None]
        elif cls in _ACK_NAMES:
            row = [event.t, src, dst, conn, _ACK_NAMES[cls], event.size, None, False,
                   p.packet_id, None]
        else:
            row = [event.t, src, dst, conn, _TYPE_NAMES.get(cls) or packet_type(p), event.size,
                   getattr(p, "qos", None), getattr(p, "dup", False),
                   getattr(p, "packet_id", None), None]
        self.packets.append(row)
        return row

    def client_events(self, name: str, events: Iterable, conn: int | None,
                      broker: str) -> None:
        """Record a client's events; the packets it sent on ``conn`` are queued."""
        for e in events:
            cls = e.__class__
            if cls is ev.PacketSent:
                if conn is not None:
                    queued = self._queued["client"]
                    if conn in queued:
                        queued[conn].append(self._packet_row(e, name, broker, conn))
                    else:
                        queued[conn] = [self._packet_row(e, name, broker, conn)]
            elif cls is ev.PacketReceived:
                continue  # frequent, and nothing to record
            elif cls is ev.MessageReceived:
                p = e.packet
                self.receipts.append((name, e.topic, p.payload, p.qos, p.dup, p.retain, e.t))
            elif cls is ev.MessageDropped:
                self.drops.append(("client", name, e.topic, e.payload, e.qos, e.reason, e.t))
            elif cls is ev.ConnectionClosed and conn is not None:
                self.closed(conn, "client", e.t, e.reason, e.detail, e.rule)

    def _who(self, event: Any) -> str:
        """The scenario client behind a broker event: by its connection when it has one
        (two clients may share a client id), else by client id."""
        row = self.connections.get(event.conn) if event.conn is not None else None
        return row["client"] if row else self.names.get(event.client_id, event.client_id)

    def broker_events_in(self, events: list, broker: str) -> None:
        """Record the broker's events; the packets it sent are queued per connection."""
        if self.capture:
            self.broker_events.extend(events)
        order, who = self._order, self._who
        queued = self._queued["broker"]
        for e in events:
            cls = e.__class__
            order += 1
            if cls is ev.PacketSent:
                conn = e.conn
                peer = who(e)
                if conn in queued:
                    queued[conn].append(self._packet_row(e, broker, peer, conn))
                else:
                    queued[conn] = [self._packet_row(e, broker, peer, conn)]
            elif cls is ev.PacketReceived:
                continue  # the most frequent event after PacketSent; nothing to record
            elif cls is ev.MessageReceived:
                self.accepts.append((who(e), e.topic, e.packet.payload, e.packet.qos,
                                     e.packet.dup, e.t, order))
            elif cls is ev.MessageDropped:
                self.drops.append(("broker", who(e), e.topic, e.payload, e.qos, e.reason, e.t))
            elif cls is ev.Subscribed:
                subscriber = who(e)
                for topic_filter, granted in zip(e.topic_filters, e.granted):
                    self.subscriptions.append((subscriber, topic_filter, granted, e.t, order))
            elif cls is ev.ConnectionClosed:
                self.closed(e.conn, "broker", e.t, e.reason, e.detail, e.rule)
            elif cls is ev.SysTreeUpdated:
                self.sys_updates.append((e.t, broker, e.as_dict()))
        self._order = order

    def publish(self, publisher: str, seq: int, topic: str, payload: bytes, qos: int,
                retain: bool, t: float) -> None:
        self.publishes.append((publisher, seq, topic, payload, qos, retain, t))

    # -- connections -------------------------------------------------------------------------
    def opened(self, conn: int, client: str, client_id: str, t: float) -> None:
        self.connections[conn] = {
            "conn": conn, "client": client, "client_id": client_id, "t_open": t,
            "t_up": None, "t_down": None, "reason": None, "side": None, "detail": "",
            "rule": None, "broker_reason": None, "client_reason": None,
            "session_present": None, "t_broker_down": None, "t_client_down": None}

    def up(self, conn: int, t: float, session_present: bool) -> None:
        row = self.connections[conn]
        row["t_up"], row["session_present"] = t, session_present

    def closed(self, conn: int, side: str, t: float, reason: str, detail: str = "",
               rule: str | None = None) -> None:
        """A side learned that ``conn`` is over; the first to know names the reason. Each
        side's own time is kept too: over a half-open connection one side can learn it
        minutes after the other (or never)."""
        row = self.connections.get(conn)
        if row is None:
            return
        if row[f"{side}_reason"] is None:
            row[f"{side}_reason"] = reason
            row[f"t_{side}_down"] = t
        if row["t_down"] is None:
            row.update(t_down=t, reason=reason, side=side, detail=detail, rule=rule)


@dataclass
class Recording:
    """The raw rows of one run, from any backend (``mqttsim.scenario.Results`` reads them)."""

    scenario: Any
    seed: int
    recorder: Recorder
    links: list[dict]
    outages: dict[str, list]  # client -> the Outages of every link on its path, both ways
    events_processed: int
