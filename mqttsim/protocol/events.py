"""What the engines report: small events (values: never changed once made), each stamped
with the time it happened.

The simulator's tables, the broker's ``-v`` log and the tests are all built from these, so
there is one account of what happened, not one per consumer. Events from the broker engine
carry the connection (``conn``, whatever hashable id the driver chose) and the client id;
events from a client engine leave ``conn`` as None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable

from .packets import Publish
from .properties import Properties


# Events are values like packets. The ones made for every message or packet are plain slotted
# dataclasses rather than frozen=True, for the cost measured in packets.py (the note above
# Will); nothing in mqttsim assigns to them, and code reading them must not either.


@dataclass(slots=True, unsafe_hash=True)  # per message: see above
class PacketSent:
    """An encoded packet was queued for the transport (``size`` bytes on the wire)."""

    t: float
    packet: Any
    size: int
    conn: Hashable = None
    client_id: str | None = None


@dataclass(slots=True, unsafe_hash=True)  # per message: see above
class PacketReceived:
    """A whole packet was decoded from the transport."""

    t: float
    packet: Any
    size: int
    conn: Hashable = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionOpened:
    """The broker's driver reported a new transport connection (only while packets are
    traced, ``BrokerConfig.emit_packet_events``: the -v log's "New connection from")."""

    t: float
    conn: Hashable = None
    client_id: str | None = None  # never known yet; here as on every broker event


@dataclass(frozen=True, slots=True)
class Connected:
    """A connection was accepted (CONNACK 0): seen by the client, or granted by the broker."""

    t: float
    client_id: str
    session_present: bool
    version: int
    conn: Hashable = None
    keepalive: int = 0


@dataclass(frozen=True, slots=True)
class ConnectionRefused:
    """CONNACK with a non-zero return/reason code; ``reason`` is its readable name."""

    t: float
    client_id: str | None
    reason_code: int
    reason: str
    conn: Hashable = None


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """A connection ended. ``reason`` is one of: clean (DISCONNECT), keepalive (broker saw
    nothing for 1.5 x keepalive), pingresp_timeout (client saw no PINGRESP), protocol_error,
    takeover (same client id connected again), refused, connect_timeout, server_disconnect,
    transport (socket or transport closed underneath), shutdown. ``rule`` names the spec
    statement for protocol errors and keepalive."""

    t: float
    client_id: str | None
    reason: str
    detail: str = ""
    rule: str | None = None
    conn: Hashable = None
    will_published: bool = False


@dataclass(frozen=True, slots=True)
class Subscribed:
    """SUBACK: one granted QoS (or failure code >= 0x80) per requested filter."""

    t: float
    packet_id: int
    topic_filters: tuple[str, ...]
    granted: tuple[int, ...]
    conn: Hashable = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    """UNSUBACK for the given filters."""

    t: float
    packet_id: int
    topic_filters: tuple[str, ...]
    reason_codes: tuple[int, ...] = ()
    conn: Hashable = None
    client_id: str | None = None


@dataclass(slots=True, unsafe_hash=True)  # per message: see above
class MessageReceived:
    """An application message arrived for the application (client side), or was accepted
    from a publisher (broker side).

    ``packet`` is the PUBLISH that carried it (``dup``, ``qos``... read from it); ``topic`` is
    the message's topic, which differs from ``packet.topic`` only when an MQTT 5 topic alias
    stood in for it."""

    t: float
    topic: str
    packet: Publish
    conn: Hashable = None
    client_id: str | None = None

    @property
    def payload(self) -> bytes:
        return self.packet.payload

    @property
    def qos(self) -> int:
        return self.packet.qos

    @property
    def retain(self) -> bool:
        return self.packet.retain

    @property
    def dup(self) -> bool:
        return self.packet.dup

    @property
    def packet_id(self) -> int | None:
        return self.packet.packet_id

    @property
    def properties(self) -> Properties:
        return self.packet.properties


@dataclass(slots=True, unsafe_hash=True)  # per message: see above
class MessageAcknowledged:
    """The sender's part of a QoS 1/2 flow finished (PUBACK or PUBCOMP received).

    ``message`` is the number ``publish()`` returned; a reason code >= 0x80 (MQTT 5) means the
    receiver refused it."""

    t: float
    message: int
    packet_id: int
    qos: int
    reason_code: int = 0
    conn: Hashable = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class MessageDropped:
    """A message will never be delivered by this engine, and why: queue_full,
    clean_session (a new clean session discarded the old one), session_ended (a clean
    session ended with its connection), session_lost (MQTT 5: the server had no session to
    resume), session_owner_changed (another user took the client id: nothing of the first
    user's session goes to it), session_expired, not_authorized (also a will its user may no
    longer publish, or a queued message its user may no longer read), expired (Message
    Expiry), packet_too_large,
    qos_not_supported, retain_not_supported, qos0_offline (QoS 0 with no connection)."""

    t: float
    topic: str
    qos: int
    reason: str
    message: int | None = None
    conn: Hashable = None
    client_id: str | None = None
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class WillPublished:
    """The broker published a client's will message."""

    t: float
    client_id: str
    topic: str
    qos: int
    retain: bool
    conn: Hashable = None


@dataclass(frozen=True, slots=True)
class SysTreeUpdated:
    """The broker's ``$SYS/broker/...`` tree at one update, every topic with its payload
    text (published or not: only changed values go out), for tables and plots."""

    t: float
    values: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, str]:
        return dict(self.values)


Event = (PacketSent | PacketReceived | Connected | ConnectionRefused | ConnectionClosed
         | Subscribed | Unsubscribed | MessageReceived | MessageAcknowledged | MessageDropped
         | WillPublished | SysTreeUpdated | ConnectionOpened)
