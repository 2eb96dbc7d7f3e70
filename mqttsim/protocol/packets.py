"""MQTT control packets as small values (treat them as immutable: engines share them).

One class per control packet type, shared by MQTT 3.1 (protocol level 3), 3.1.1 (level 4)
and 5.0 (level 5). Fields that only exist in MQTT 5 (properties, reason codes on acks)
have defaults that encode to nothing in the older versions, so the same value can be
encoded for any version where it makes sense. Packets do no validation on construction:
``encode`` validates (and refuses what the chosen version cannot express) and ``Decoder``
validates what arrives, so a test can still build a deliberately wrong packet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Union

from .properties import NO_PROPERTIES, Properties

MQTT_3_1 = 3
MQTT_3_1_1 = 4
MQTT_5 = 5
VERSIONS = (MQTT_3_1, MQTT_3_1_1, MQTT_5)
VERSION_NAMES = {MQTT_3_1: "3.1", MQTT_3_1_1: "3.1.1", MQTT_5: "5.0"}
PROTOCOL_NAMES = {MQTT_3_1: "MQIsdp", MQTT_3_1_1: "MQTT", MQTT_5: "MQTT"}


class PacketType(IntEnum):
    """The 4-bit control packet type in the first byte of every packet."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15  # MQTT 5 only


# Packets are values: built, compared, hashed, never changed. The ones built for every message
# (PUBLISH and its four acks) are not frozen=True, because a frozen dataclass's __init__ goes
# around its own __setattr__ once per field: measured with frozen=True, benchmarks/engine.py
# fell from 146k to 90k QoS 1 messages/s and benchmarks/codec.py's stream decode from 1.50M
# to 0.60M packets/s (issue 14). They are plain slotted dataclasses, hashable like the rest
# (unsafe_hash); nothing in mqttsim assigns to them, and code using them must not either.


@dataclass(frozen=True, slots=True)
class Will:
    """The message a broker publishes for a client whose connection ends without DISCONNECT."""

    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Connect:
    """CONNECT. ``clean_session`` is "Clean Start" in MQTT 5."""

    type: ClassVar[PacketType] = PacketType.CONNECT
    client_id: str = ""
    clean_session: bool = True
    keepalive: int = 60
    username: str | None = None
    password: bytes | None = None
    will: Will | None = None
    properties: Properties = NO_PROPERTIES
    # A bridge announcing itself (MQTT 3.1/3.1.1 only): the protocol level byte with its top
    # bit set (0x83, 0x84), a non-standard signal Mosquitto's ``try_private`` sends and
    # accepts (src/handle_connect.c, lib/send_connect.c); MQTT 5 bridges use No Local instead.
    bridge: bool = False


@dataclass(frozen=True, slots=True)
class Connack:
    """CONNACK. ``reason_code`` is the 3.1/3.1.1 return code (0-5) or an MQTT 5 reason code."""

    type: ClassVar[PacketType] = PacketType.CONNACK
    session_present: bool = False
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


@dataclass(slots=True, unsafe_hash=True)  # built per message: see the note above Will
class Publish:
    """PUBLISH. ``packet_id`` is None exactly when ``qos`` is 0 [MQTT-2.3.1-5]."""

    type: ClassVar[PacketType] = PacketType.PUBLISH
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int | None = None
    properties: Properties = NO_PROPERTIES


@dataclass(slots=True, unsafe_hash=True)  # built per message: see the note above Will
class Puback:
    """PUBACK: the QoS 1 acknowledgement."""

    type: ClassVar[PacketType] = PacketType.PUBACK
    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


@dataclass(slots=True, unsafe_hash=True)  # built per message: see the note above Will
class Pubrec:
    """PUBREC: QoS 2 step 1, "publish received"."""

    type: ClassVar[PacketType] = PacketType.PUBREC
    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


@dataclass(slots=True, unsafe_hash=True)  # built per message: see the note above Will
class Pubrel:
    """PUBREL: QoS 2 step 2, "publish release"."""

    type: ClassVar[PacketType] = PacketType.PUBREL
    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


@dataclass(slots=True, unsafe_hash=True)  # built per message: see the note above Will
class Pubcomp:
    """PUBCOMP: QoS 2 step 3, "publish complete"."""

    type: ClassVar[PacketType] = PacketType.PUBCOMP
    packet_id: int
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Subscription:
    """One topic filter of a SUBSCRIBE with its options (the options other than QoS are MQTT 5)."""

    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(frozen=True, slots=True)
class Subscribe:
    """SUBSCRIBE: one or more filters [MQTT-3.8.3-3]."""

    type: ClassVar[PacketType] = PacketType.SUBSCRIBE
    packet_id: int
    subscriptions: tuple[Subscription, ...]
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Suback:
    """SUBACK: one granted QoS or failure code per filter, in order [MQTT-3.9.3-1]."""

    type: ClassVar[PacketType] = PacketType.SUBACK
    packet_id: int
    reason_codes: tuple[int, ...]
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """UNSUBSCRIBE: one or more filters [MQTT-3.10.3-2]."""

    type: ClassVar[PacketType] = PacketType.UNSUBSCRIBE
    packet_id: int
    topic_filters: tuple[str, ...]
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Unsuback:
    """UNSUBACK. ``reason_codes`` (one per filter) exist only in MQTT 5; empty before."""

    type: ClassVar[PacketType] = PacketType.UNSUBACK
    packet_id: int
    reason_codes: tuple[int, ...] = ()
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Pingreq:
    """PINGREQ: keepalive probe from the client."""

    type: ClassVar[PacketType] = PacketType.PINGREQ


@dataclass(frozen=True, slots=True)
class Pingresp:
    """PINGRESP: the broker's answer to PINGREQ [MQTT-3.12.4-1]."""

    type: ClassVar[PacketType] = PacketType.PINGRESP


@dataclass(frozen=True, slots=True)
class Disconnect:
    """DISCONNECT. Reason code and properties are MQTT 5; in 3.1.1 it is two bytes."""

    type: ClassVar[PacketType] = PacketType.DISCONNECT
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


@dataclass(frozen=True, slots=True)
class Auth:
    """AUTH (MQTT 5 only): extended authentication exchange."""

    type: ClassVar[PacketType] = PacketType.AUTH
    reason_code: int = 0
    properties: Properties = NO_PROPERTIES


Packet = Union[Connect, Connack, Publish, Puback, Pubrec, Pubrel, Pubcomp, Subscribe, Suback,
               Unsubscribe, Unsuback, Pingreq, Pingresp, Disconnect, Auth]

PACKET_CLASSES: dict[PacketType, type] = {
    cls.type: cls
    for cls in (Connect, Connack, Publish, Puback, Pubrec, Pubrel, Pubcomp, Subscribe, Suback,
                Unsubscribe, Unsuback, Pingreq, Pingresp, Disconnect, Auth)
}

__all__ = [
    "MQTT_3_1", "MQTT_3_1_1", "MQTT_5", "VERSIONS", "VERSION_NAMES", "PROTOCOL_NAMES",
    "PacketType", "Packet", "PACKET_CLASSES", "Will", "Connect", "Connack", "Publish", "Puback",
    "Pubrec", "Pubrel", "Pubcomp", "Subscription", "Subscribe", "Suback", "Unsubscribe",
    "Unsuback", "Pingreq", "Pingresp", "Disconnect", "Auth",
]
