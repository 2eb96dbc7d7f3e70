"""The QoS machinery both engines share: packet identifiers, in-flight window, queue, dedupe.

A client publishing to a broker and a broker forwarding to a subscriber run the same sender
protocol (section 4.3), so it lives here once. ``OutgoingFlow`` is the sender side of one
session: it assigns packet identifiers that are unused [MQTT-2.3.1-2], keeps at most
``window`` QoS 1/2 messages unacknowledged (mosquitto's max_inflight_messages, MQTT 5's
Receive Maximum [MQTT-3.3.4-7]) with a queue behind them, and knows what to resend, in the
original order [MQTT-4.6.0-1], when a session resumes [MQTT-4.4.0-1] or a retry timer fires
(MQTT 3.1). ``IncomingQoS2`` is the receiver side of QoS 2: it remembers packet ids between
PUBLISH and PUBREL so a resent PUBLISH is not delivered twice [MQTT-4.3.3-2].
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .packets import Publish, Pubrel
from .properties import NO_PROPERTIES, Properties


@dataclass(slots=True)
class OutMessage:
    """An application message on its way out of one session, with its QoS progress."""

    topic: str
    payload: bytes
    qos: int
    retain: bool = False
    properties: Properties = NO_PROPERTIES
    number: int = 0  # the sender's handle, reported in events
    packet_id: int | None = None
    released: bool = False  # QoS 2: PUBREC seen and PUBREL sent; PUBLISH never resent again
    sent_at: float = 0.0
    expires_at: float | None = None  # MQTT 5 Message Expiry, broker side

    def publish_packet(self, dup: bool = False) -> Publish:
        return Publish(self.topic, self.payload, self.qos, self.retain, dup and self.qos > 0,
                       self.packet_id, self.properties)


class OutgoingFlow:
    """Sender side of QoS 0/1/2 for one session."""

    __slots__ = ("window", "max_queued", "max_queued_bytes", "queue_qos0", "inflight", "queue",
                 "queued_bytes", "waiting", "_next_id", "_reserved")

    def __init__(self, window: int = 20, max_queued: int | None = None, queue_qos0: bool = False,
                 max_queued_bytes: int | None = None):
        self.window = window
        self.max_queued = max_queued
        # Payload bytes the queue may hold (mosquitto's max_queued_bytes; None: no limit).
        self.max_queued_bytes = max_queued_bytes
        self.queue_qos0 = queue_qos0
        self.inflight: dict[int, OutMessage] = {}  # in send order (dicts keep insertion order)
        self.queue: deque[OutMessage] = deque()
        # Payload bytes in ``queue``, counted only when there is a byte limit (0 otherwise:
        # the count costs a few per cent of a message's time in the engines).
        self.queued_bytes = 0
        # Packet ids in flight from an earlier connection that this connection has not resent
        # yet because its window is smaller [MQTT-3.3.4-7/9]; they go before anything new.
        self.waiting: deque[int] = deque()
        self._next_id = 1
        self._reserved: set[int] = set()  # ids held by SUBSCRIBE/UNSUBSCRIBE in flight

    # -- packet identifiers --------------------------------------------------------------
    def allocate_id(self) -> int:
        """The next packet id not currently in use [MQTT-2.3.1-2]."""
        busy = self.inflight
        reserved = self._reserved
        packet_id = self._next_id
        if packet_id in busy or packet_id in reserved:  # rare: the counter wrapped around
            if len(busy) + len(reserved) >= 65535:
                raise RuntimeError("all 65535 packet identifiers are in use")
            while packet_id in busy or packet_id in reserved:
                packet_id = packet_id % 65535 + 1
        self._next_id = packet_id % 65535 + 1
        return packet_id

    def reserve_id(self) -> int:
        packet_id = self.allocate_id()
        self._reserved.add(packet_id)
        return packet_id

    def release_id(self, packet_id: int) -> bool:
        if packet_id in self._reserved:
            self._reserved.discard(packet_id)
            return True
        return False

    # -- sending -------------------------------------------------------------------------
    def hold(self, msg: OutMessage, online: bool) -> str | None:
        """Queue a message that cannot go out now (window full, socket full, connection
        being set up, or none at all); returns why it is dropped instead, or None.

        The engines send a message themselves when it can go out at once; this is the rest.
        Without a connection, QoS 0 is kept only if ``queue_qos0`` says so.
        """
        if msg.qos == 0 and not online and not self.queue_qos0:
            return "qos0_offline"
        if self.max_queued is not None and len(self.queue) >= self.max_queued:
            return "queue_full"
        limit = self.max_queued_bytes
        if limit is not None:
            if self.queued_bytes >= limit:
                # As mosquitto (db__ready_for_queue): a message joins while the queue holds
                # fewer bytes than the limit, so it may pass the limit by one message.
                return "queue_full"
            self.queued_bytes += len(msg.payload)
        self.queue.append(msg)
        return None

    def next_to_send(self) -> OutMessage | None:
        """The oldest queued message, out of the queue, if it may go out now: QoS 0 always,
        QoS 1 and 2 while the window has room [MQTT-3.3.4-7/9]; None when nothing may. The
        engines' ``_fill`` loops call it once per message (and once more to stop)."""
        queue = self.queue
        if not queue or (queue[0].qos and len(self.inflight) >= self.window):
            return None
        msg = queue.popleft()
        if self.max_queued_bytes is not None:
            self.queued_bytes -= len(msg.payload)
        return msg

    def recount(self) -> None:
        """Recompute ``queued_bytes`` after the queue was filled or filtered directly (a
        store restoring a session)."""
        self.queued_bytes = (0 if self.max_queued_bytes is None
                             else sum(len(msg.payload) for msg in self.queue))

    def admit(self, msg: OutMessage, now: float) -> None:
        """Put a message in flight now (the caller checked the window): give it a packet id."""
        inflight = self.inflight
        packet_id = self._next_id
        if packet_id in inflight or packet_id in self._reserved:
            packet_id = self.allocate_id()
        else:
            self._next_id = packet_id % 65535 + 1
        msg.packet_id = packet_id
        msg.sent_at = now
        inflight[packet_id] = msg

    # -- acknowledgements ------------------------------------------------------------------
    def on_puback(self, packet_id: int) -> OutMessage | None:
        """PUBACK: QoS 1 done. None if the id was not a QoS 1 message in flight."""
        inflight = self.inflight
        msg = inflight.get(packet_id)
        if msg is None or msg.qos != 1:
            return None
        del inflight[packet_id]
        if self.waiting:
            self._not_waiting(packet_id)
        return msg

    def _not_waiting(self, packet_id: int) -> None:
        try:
            self.waiting.remove(packet_id)
        except ValueError:
            pass

    def on_pubrec(self, packet_id: int, failed: bool, now: float) -> tuple[OutMessage | None, bool]:
        """PUBREC: returns (message, send PUBREL?). A failed PUBREC (MQTT 5, code >= 0x80)
        ends the flow without PUBREL [MQTT-4.4.0-2]."""
        msg = self.inflight.get(packet_id)
        if msg is None or msg.qos != 2:
            return None, not failed  # unknown id: still release it so the peer can forget it
        if self.waiting:
            self._not_waiting(packet_id)
        if failed:
            del self.inflight[packet_id]
            return msg, False
        msg.released = True
        msg.sent_at = now
        return msg, True

    def on_pubcomp(self, packet_id: int) -> OutMessage | None:
        msg = self.inflight.get(packet_id)
        if msg is None or msg.qos != 2 or not msg.released:
            return None
        del self.inflight[packet_id]
        if self.waiting:
            self._not_waiting(packet_id)
        return msg

    # -- retransmission --------------------------------------------------------------------
    def resend_all(self, now: float) -> list:
        """On session resume: every unacknowledged PUBLISH (DUP=1) or PUBREL, in the original
        order and with the original packet ids [MQTT-4.4.0-1][MQTT-4.6.0-1] — as many as the
        (possibly smaller) new window allows; the rest wait for acknowledgements."""
        self.waiting = deque(self.inflight)
        return self.resend_waiting(now)

    def resend_waiting(self, now: float) -> list:
        """Resend waiting messages while the window has room."""
        out = []
        waiting, inflight = self.waiting, self.inflight
        while waiting and len(inflight) - len(waiting) < self.window:
            msg = inflight.get(waiting.popleft())
            if msg is not None:
                msg.sent_at = now
                out.append(Pubrel(msg.packet_id) if msg.released
                           else msg.publish_packet(dup=True))
        return out

    def resend_due(self, now: float, interval: float) -> list:
        """MQTT 3.1 style: resend what has waited ``interval`` seconds for its ack."""
        out = []
        waiting = self.waiting
        for msg in self.inflight.values():
            if msg.sent_at + interval <= now and not (waiting and msg.packet_id in waiting):
                msg.sent_at = now
                out.append(Pubrel(msg.packet_id) if msg.released
                           else msg.publish_packet(dup=True))
        return out

    def next_retry(self, interval: float) -> float | None:
        if not self.inflight:
            return None
        return min(msg.sent_at for msg in self.inflight.values()) + interval

    def discard(self) -> list[OutMessage]:
        """Forget everything (clean session): returns the messages that will never arrive
        (a QoS 2 message past PUBREC is already the receiver's, so it is not among them)."""
        lost = [msg for msg in self.inflight.values() if not msg.released] + list(self.queue)
        self.inflight.clear()
        self.queue.clear()
        self.queued_bytes = 0
        self.waiting.clear()
        self._reserved.clear()
        return lost

    def drop_queued_qos0(self) -> list[OutMessage]:
        """QoS 0 messages waiting in the queue when a connection breaks are gone."""
        if self.queue_qos0 or not self.queue:
            return []
        kept = deque(m for m in self.queue if m.qos)
        lost = [m for m in self.queue if not m.qos]
        self.queue = kept
        self.recount()
        return lost


class IncomingQoS2:
    """Receiver side of QoS 2: packet ids between PUBREC and PUBREL [MQTT-4.3.3-2]."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: set[int] = set()

    def on_publish(self, packet_id: int) -> bool:
        """True if this is a new message to deliver; False for a resend of one we hold."""
        if packet_id in self.pending:
            return False
        self.pending.add(packet_id)
        return True

    def on_pubrel(self, packet_id: int) -> bool:
        """Release the id; False if it was not held (the PUBCOMP is still sent)."""
        if packet_id in self.pending:
            self.pending.discard(packet_id)
            return True
        return False
