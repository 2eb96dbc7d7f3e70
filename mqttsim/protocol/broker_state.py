"""The broker engine's state: configuration, sessions, connections, retained messages.

Kept apart from the engine's behaviour (broker.py) so that persistence (SQLite in the
socket server) can save and restore exactly these objects and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Hashable

from .decoder import Decoder
from .flows import IncomingQoS2, OutgoingFlow
from .packets import Subscription, Will
from .properties import NO_PROPERTIES, Properties

NEVER_EXPIRES = 0xFFFFFFFF  # MQTT 5 Session Expiry Interval meaning "never"


@dataclass(frozen=True)
class BrokerConfig:
    """Broker limits and policies. Defaults follow mosquitto 2.0 where it has one."""

    max_inflight: int = 20  # per client, outgoing QoS 1/2 (mosquitto max_inflight_messages)
    # Per client, behind the window and while offline (mosquitto max_queued_messages and
    # max_queued_bytes, payload bytes; None: no limit). A message for a client whose queue is
    # full is dropped for that client only, reported (MessageDropped "queue_full") and
    # counted (BrokerEngine.drops); the publisher and every other subscriber go on.
    max_queued_messages: int | None = 1000
    max_queued_bytes: int | None = None
    # A lab experiment, off by default: while a *connected* subscriber's queue is past half
    # of its limits, the PUBACK/PUBREC to the publishers feeding it wait until it drains to a
    # quarter, so their in-flight windows slow them down instead of the queue overflowing.
    # Bounded, because one subscriber that never reads would otherwise stall every publisher
    # for ever (issue 13): an ack waits at most hold_acks_max_time seconds, and a publisher
    # connection has at most hold_acks_max_count acks waiting; past either it goes anyway.
    # Flow control that cannot be abused is MQTT 5's Receive Maximum, honoured both ways.
    hold_acks_when_congested: bool = False
    hold_acks_max_time: float = 2.0
    hold_acks_max_count: int = 100
    queue_qos0: bool = False  # queue QoS 0 for offline persistent sessions
    retain_available: bool = True
    max_packet_size: int | None = None  # largest packet accepted from clients
    # MQTT 5 User Properties one packet from a client may carry. Each costs the engine about
    # as much as a whole small message, so without a bound one packet of 200,000 of them
    # held up every other client for a second (issue 13). Past it: DISCONNECT 0x83.
    max_user_properties: int | None = 1000
    max_keepalive: int = 65535
    allow_zero_length_clientid: bool = True
    connect_timeout: float = 10.0  # seconds a new connection may take to send CONNECT
    retry_policy: str | None = None  # None: "timer" for MQTT 3.1 clients, else "on_reconnect"
    retry_interval: float = 20.0
    topic_alias_maximum: int = 10  # MQTT 5: aliases a client may use towards the broker
    receive_maximum: int = 65535  # MQTT 5: QoS 2 messages a client may have unreleased
    emit_packet_events: bool = False  # PacketSent/PacketReceived: a trace, like mosquitto -v
    assigned_id_prefix: str = "auto-"
    # Seconds between updates of the $SYS/broker/... tree (mosquitto.conf sys_interval,
    # default 10; 0: no tree). Published only once a driver calls BrokerEngine.begin(now).
    sys_interval: float = 10.0


@dataclass(slots=True)
class SubscriptionEntry:
    """What the subscription tree stores per (client, filter)."""

    options: Subscription
    identifier: int | None = None  # MQTT 5 Subscription Identifier


@dataclass(slots=True)
class RetainedMessage:
    topic: str
    payload: bytes
    qos: int
    properties: Properties = NO_PROPERTIES
    expires_at: float | None = None


@dataclass(slots=True)
class Session:
    """Everything the broker keeps for a client id, across connections [MQTT-4.1.0-1]."""

    client_id: str
    version: int
    expiry: int  # seconds kept after the connection ends; NEVER_EXPIRES for 3.1.1 clean=0
    flow: OutgoingFlow
    incoming: IncomingQoS2 = field(default_factory=IncomingQoS2)
    conn: Hashable = None  # the live connection, if any
    username: str | None = None
    expires_at: float | None = None  # while offline, when it is discarded
    subscriptions: dict[str, SubscriptionEntry] = field(default_factory=dict)
    retry_timer: bool = False  # MQTT 3.1 style: resend unacknowledged messages on a timer
    retry_armed: bool = False


class ConnState(Enum):
    """Where a broker connection is in its life (h11 style: the table below is all of it).

    AWAITING_CONNECT: the transport is up, no CONNECT accepted yet (only CONNECT may come,
      within connect_timeout [MQTT-3.1.0-1]).
    CONNECTED: CONNACK 0 was sent; the connection has a session and packets flow.
    CLOSING: the engine ended it (refusal, DISCONNECT, keepalive, takeover, violation,
      shutdown): the driver writes what is queued, then closes; input is ignored
      [MQTT-3.1.4-5]. The end (will, session) is accounted once, on entering this state.
    CLOSED: the transport is gone (``connection_lost``); the engine forgets the connection.

    Whether the driver's socket can take more bytes (``Connection.writable``) is the
    driver's flow control, not a stage of the connection's life: it may change in any state.
    """

    AWAITING_CONNECT = "awaiting_connect"
    CONNECTED = "connected"
    CLOSING = "closing"
    CLOSED = "closed"


class Timer(Enum):
    """What a wake-up in the engine's one timer heap is for (the key it carries)."""

    CONNECT = "connect"  # connection id: CONNECT must have come by now (connect_timeout)
    KEEPALIVE = "keepalive"  # connection id: 1.5 x keepalive without a packet [MQTT-3.1.2-24]
    WILL = "will"  # client id: a will's delay interval is over [MQTT-3.1.3-9]
    EXPIRE = "expire"  # client id: an offline session's expiry interval is over
    RETRY = "retry"  # client id: MQTT 3.1 resend of unacknowledged messages
    ACKHOLD = "ackhold"  # publisher connection id: held acks reach hold_acks_max_time
    SYS = "sys"  # None: the $SYS tree's next update (sys_interval)


# (state, event) -> next state; any pair not here is a bug in the engine.
CONN_TRANSITIONS: dict[tuple[ConnState, str], ConnState] = {
    (ConnState.AWAITING_CONNECT, "accept"): ConnState.CONNECTED,  # CONNACK 0 sent
    (ConnState.AWAITING_CONNECT, "close"): ConnState.CLOSING,  # refused, timeout, violation
    (ConnState.CONNECTED, "close"): ConnState.CLOSING,  # the engine ends it, for any reason
    (ConnState.AWAITING_CONNECT, "lost"): ConnState.CLOSED,  # the transport went away
    (ConnState.CONNECTED, "lost"): ConnState.CLOSED,
    (ConnState.CLOSING, "lost"): ConnState.CLOSED,  # ... also after the engine's close
}


@dataclass(slots=True)
class Connection:
    """One transport connection, from connection_made to its close."""

    conn: Hashable
    decoder: Decoder
    opened_at: float
    last_received: float
    out: bytearray = field(default_factory=bytearray)
    version: int | None = None
    session: Session | None = None
    client_id: str | None = None
    keepalive: int = 0
    will: Will | None = None
    state: ConnState = ConnState.AWAITING_CONNECT
    writable: bool = True  # False while the driver's socket buffer is full (set_writable)
    max_packet_out: int | None = None  # MQTT 5: the client's Maximum Packet Size
    aliases: dict[int, str] = field(default_factory=dict)
    will_delay: int = 0
    bridge: bool = False  # CONNECT's try_private bit (3.1/3.1.1): see _on_subscribe
    # MQTT 5: the Topic Alias Maximum the client sent in CONNECT (0: it accepts none), and
    # the aliases the broker gave topics on this connection (broker_routing._deliver).
    alias_max_out: int = 0
    aliases_out: dict[str, int] = field(default_factory=dict)

    def move(self, event: str) -> ConnState:
        """Take the transition ``event`` from CONN_TRANSITIONS; an impossible one raises."""
        try:
            self.state = CONN_TRANSITIONS[(self.state, event)]
        except KeyError:
            raise RuntimeError(f"connection {self.conn!r}: no transition from "
                               f"{self.state.name} on {event!r}") from None
        return self.state


class BrokerStore:
    """Where a persistent broker writes state; this base class keeps nothing.

    The engine calls these synchronously as state changes; a durable store (SQLite in the
    socket server) buffers them and commits when the driver calls ``commit()``, which the
    driver does before writing acknowledgements to the network (group commit).
    """

    def retained_changed(self, topic: str, message: RetainedMessage | None) -> None:
        """A retained message was stored (or cleared, when ``message`` is None)."""

    def session_changed(self, session: Session) -> None:
        """A persistent session's subscriptions, queue or in-flight state changed."""

    def session_removed(self, client_id: str) -> None:
        """A session ended (clean session, expiry, takeover with clean start)."""

    def commit(self) -> None:
        """Make everything reported so far durable."""
