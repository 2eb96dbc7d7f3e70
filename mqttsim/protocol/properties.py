"""MQTT 5 properties (section 2.2.2.2): the typed value, the id table and the codec.

``Properties`` is one frozen value with a field per property (None when absent), so code
reads ``props.session_expiry_interval`` rather than looking up numeric ids. The table below
is the single source of truth for each property's id, wire type and the packets that may
carry it; both directions of the codec are driven from it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, NamedTuple

from . import _wire
from .errors import MalformedPacket, ProtocolError

# Pseudo packet type for the will properties inside CONNECT's payload.
WILL = 0
_CONNECT, _CONNACK, _PUBLISH, _PUBACK, _PUBREC, _PUBREL, _PUBCOMP = 1, 2, 3, 4, 5, 6, 7
_SUBSCRIBE, _SUBACK, _UNSUBSCRIBE, _UNSUBACK, _DISCONNECT, _AUTH = 8, 9, 10, 11, 14, 15
_ACKS = frozenset({_PUBACK, _PUBREC, _PUBREL, _PUBCOMP})


@dataclass(frozen=True, slots=True, repr=False)
class Properties:
    """The MQTT 5 properties of one packet (or of a will). Absent properties are None."""

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifiers: tuple[int, ...] = ()
    session_expiry_interval: int | None = None
    assigned_client_identifier: str | None = None
    server_keep_alive: int | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    request_problem_information: int | None = None
    will_delay_interval: int | None = None
    request_response_information: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    reason_string: str | None = None
    receive_maximum: int | None = None
    topic_alias_maximum: int | None = None
    topic_alias: int | None = None
    maximum_qos: int | None = None
    retain_available: int | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    maximum_packet_size: int | None = None
    wildcard_subscription_available: int | None = None
    subscription_identifier_available: int | None = None
    shared_subscription_available: int | None = None

    def __bool__(self) -> bool:
        return self != NO_PROPERTIES

    def __repr__(self) -> str:
        # Only the properties that are present: a packet usually carries two or three of 27.
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                          if getattr(self, f.name) not in (None, ()))
        return f"Properties({shown})"


NO_PROPERTIES = Properties()


class PropertySpec(NamedTuple):
    ident: int
    name: str  # field of Properties
    label: str  # the spec's name, for error messages
    kind: str  # byte | u16 | u32 | varint | utf8 | binary | pair
    allowed: frozenset[int]  # packet types (and WILL) that may carry it
    check: Callable[[int], bool] | None = None  # value rule, for integers
    rule: str | None = None  # the statement the value rule enforces, if it has an id


def _flag(value: int) -> bool:
    return value in (0, 1)


def _nonzero(value: int) -> bool:
    return value != 0


def _subscription_identifier(value: int) -> bool:
    return 1 <= value <= _wire.MAX_VARINT


SPECS: tuple[PropertySpec, ...] = (
    PropertySpec(0x01, "payload_format_indicator", "Payload Format Indicator", "byte",
                 frozenset({_PUBLISH, WILL}), _flag),
    PropertySpec(0x02, "message_expiry_interval", "Message Expiry Interval", "u32",
                 frozenset({_PUBLISH, WILL})),
    PropertySpec(0x03, "content_type", "Content Type", "utf8", frozenset({_PUBLISH, WILL})),
    PropertySpec(0x08, "response_topic", "Response Topic", "utf8", frozenset({_PUBLISH, WILL})),
    PropertySpec(0x09, "correlation_data", "Correlation Data", "binary",
                 frozenset({_PUBLISH, WILL})),
    PropertySpec(0x0B, "subscription_identifiers", "Subscription Identifier", "varint",
                 frozenset({_PUBLISH, _SUBSCRIBE}), _subscription_identifier),
    PropertySpec(0x11, "session_expiry_interval", "Session Expiry Interval", "u32",
                 frozenset({_CONNECT, _CONNACK, _DISCONNECT})),
    PropertySpec(0x12, "assigned_client_identifier", "Assigned Client Identifier", "utf8",
                 frozenset({_CONNACK})),
    PropertySpec(0x13, "server_keep_alive", "Server Keep Alive", "u16", frozenset({_CONNACK})),
    PropertySpec(0x15, "authentication_method", "Authentication Method", "utf8",
                 frozenset({_CONNECT, _CONNACK, _AUTH})),
    PropertySpec(0x16, "authentication_data", "Authentication Data", "binary",
                 frozenset({_CONNECT, _CONNACK, _AUTH})),
    PropertySpec(0x17, "request_problem_information", "Request Problem Information", "byte",
                 frozenset({_CONNECT}), _flag),
    PropertySpec(0x18, "will_delay_interval", "Will Delay Interval", "u32", frozenset({WILL})),
    PropertySpec(0x19, "request_response_information", "Request Response Information", "byte",
                 frozenset({_CONNECT}), _flag),
    PropertySpec(0x1A, "response_information", "Response Information", "utf8",
                 frozenset({_CONNACK})),
    PropertySpec(0x1C, "server_reference", "Server Reference", "utf8",
                 frozenset({_CONNACK, _DISCONNECT})),
    PropertySpec(0x1F, "reason_string", "Reason String", "utf8",
                 frozenset({_CONNACK, _SUBACK, _UNSUBACK, _DISCONNECT, _AUTH}) | _ACKS),
    PropertySpec(0x21, "receive_maximum", "Receive Maximum", "u16",
                 frozenset({_CONNECT, _CONNACK}), _nonzero),
    PropertySpec(0x22, "topic_alias_maximum", "Topic Alias Maximum", "u16",
                 frozenset({_CONNECT, _CONNACK})),
    PropertySpec(0x23, "topic_alias", "Topic Alias", "u16", frozenset({_PUBLISH}), _nonzero,
                 "MQTT-3.3.2-8"),
    PropertySpec(0x24, "maximum_qos", "Maximum QoS", "byte", frozenset({_CONNACK}), _flag),
    PropertySpec(0x25, "retain_available", "Retain Available", "byte", frozenset({_CONNACK}),
                 _flag),
    PropertySpec(0x26, "user_properties", "User Property", "pair",
                 frozenset({_CONNECT, _CONNACK, _PUBLISH, WILL, _SUBSCRIBE, _SUBACK,
                            _UNSUBSCRIBE, _UNSUBACK, _DISCONNECT, _AUTH}) | _ACKS),
    PropertySpec(0x27, "maximum_packet_size", "Maximum Packet Size", "u32",
                 frozenset({_CONNECT, _CONNACK}), _nonzero),
    PropertySpec(0x28, "wildcard_subscription_available", "Wildcard Subscription Available",
                 "byte", frozenset({_CONNACK}), _flag),
    PropertySpec(0x29, "subscription_identifier_available", "Subscription Identifier Available",
                 "byte", frozenset({_CONNACK}), _flag),
    PropertySpec(0x2A, "shared_subscription_available", "Shared Subscription Available", "byte",
                 frozenset({_CONNACK}), _flag),
)
BY_ID = {spec.ident: spec for spec in SPECS}
BY_NAME = {spec.name: spec for spec in SPECS}
assert set(BY_NAME) == {f.name for f in fields(Properties)}, "table and dataclass disagree"

_PACKET_NAMES = {WILL: "will properties", 1: "CONNECT", 2: "CONNACK", 3: "PUBLISH",
                 4: "PUBACK", 5: "PUBREC", 6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE",
                 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK", 14: "DISCONNECT", 15: "AUTH"}
_INT_LIMITS = {"byte": 0xFF, "u16": 0xFFFF, "u32": 0xFFFFFFFF, "varint": _wire.MAX_VARINT}


def _encode_value(spec: PropertySpec, value) -> bytes:
    kind = spec.kind
    if kind in _INT_LIMITS:
        if not isinstance(value, int) or isinstance(value, bool) and kind != "byte":
            raise MalformedPacket(f"property {spec.label} must be an integer, not {value!r}")
        if not 0 <= value <= _INT_LIMITS[kind]:
            raise MalformedPacket(f"property {spec.label} value {value} does not fit a {kind}")
        if spec.check is not None and not spec.check(value):
            raise ProtocolError(f"property {spec.label} may not be {value}", spec.rule)
        if kind == "byte":
            return bytes((value,))
        if kind == "u16":
            return _wire.UINT16.pack(value)
        if kind == "u32":
            return _wire.UINT32.pack(value)
        return _wire.encode_varint(value)
    if kind == "utf8":
        return _wire.encode_string(value, 5, f"property {spec.label}")
    if kind == "binary":
        return _wire.encode_binary(value, f"property {spec.label}")
    key, val = value  # pair
    return (_wire.encode_string(key, 5, f"property {spec.label} name")
            + _wire.encode_string(val, 5, f"property {spec.label} value"))


def encode_properties(props: Properties, packet_type: int) -> bytes:
    """Encode a property block (length prefix included) for ``packet_type`` (or WILL)."""
    if props is NO_PROPERTIES:
        return b"\x00"  # [MQTT-2.2.2-1] no properties: a Property Length of zero
    parts = []
    for spec in SPECS:
        value = getattr(props, spec.name)
        if value is None or value == ():
            continue
        if packet_type not in spec.allowed:
            raise ProtocolError(f"property {spec.label} is not allowed in "
                                f"{_PACKET_NAMES.get(packet_type, packet_type)}")
        ident = bytes((spec.ident,))
        if spec.name in ("user_properties", "subscription_identifiers"):
            if spec.name == "subscription_identifiers" and packet_type == _SUBSCRIBE \
                    and len(value) > 1:
                raise ProtocolError("SUBSCRIBE carries at most one Subscription Identifier")
            parts.extend(ident + _encode_value(spec, item) for item in value)
        else:
            parts.append(ident + _encode_value(spec, value))
    body = b"".join(parts)
    return _wire.encode_varint(len(body)) + body


def decode_properties(buf, pos: int, end: int, packet_type: int,
                      max_user_properties: int | None = None) -> tuple[Properties, int]:
    """Decode a property block at ``pos``; return (Properties, position after the block).

    ``max_user_properties`` bounds the User Properties (and, in PUBLISH, the Subscription
    Identifiers: the other repeatable property) accepted (None: any number): past it
    decoding stops with an error (MQTT 5 reason 0x83, implementation specific), so the
    work one packet costs is bounded by the limit rather than by the packet's size.
    """
    length, pos = _wire.decode_varint(buf, pos, end, 5)
    stop = pos + length
    if stop > end:
        raise MalformedPacket(f"property length {length} runs past the end of the "
                              f"{_PACKET_NAMES.get(packet_type, packet_type)} packet")
    if length == 0:
        return NO_PROPERTIES, stop
    values: dict[str, object] = {}
    where = _PACKET_NAMES.get(packet_type, str(packet_type))
    while pos < stop:
        ident, pos = _wire.decode_varint(buf, pos, stop, 5)
        spec = BY_ID.get(ident)
        if spec is None:
            raise MalformedPacket(f"unknown property identifier 0x{ident:02X} in {where}")
        if packet_type not in spec.allowed:
            raise MalformedPacket(f"property {spec.label} is not allowed in {where}")
        value, pos = _decode_value(spec, buf, pos, stop)
        if spec.name == "user_properties" or (spec.name == "subscription_identifiers"
                                              and packet_type == _PUBLISH):
            items = values.setdefault(spec.name, [])
            items.append(value)
            if max_user_properties is not None and len(items) > max_user_properties:
                raise ProtocolError(f"{where} carries more than {max_user_properties} "
                                    f"{spec.label} properties (this receiver's limit)",
                                    reason_code=0x83)
        elif spec.name in values:
            raise ProtocolError(f"property {spec.label} appears more than once in {where}")
        else:
            values[spec.name] = [value] if spec.name == "subscription_identifiers" else value
    for name in ("user_properties", "subscription_identifiers"):
        if name in values:
            values[name] = tuple(values[name])
    if "authentication_data" in values and "authentication_method" not in values:
        raise ProtocolError(f"Authentication Data without an Authentication Method in {where}")
    return Properties(**values), stop


def _decode_value(spec: PropertySpec, buf, pos: int, end: int):
    kind = spec.kind
    if kind == "utf8":
        return _wire.decode_string(buf, pos, end, 5, f"property {spec.label}")
    if kind == "binary":
        return _wire.decode_binary(buf, pos, end, f"property {spec.label}")
    if kind == "pair":
        key, pos = _wire.decode_string(buf, pos, end, 5, f"property {spec.label} name")
        val, pos = _wire.decode_string(buf, pos, end, 5, f"property {spec.label} value")
        return (key, val), pos
    if kind == "varint":
        value, pos = _wire.decode_varint(buf, pos, end, 5)
    else:
        size = {"byte": 1, "u16": 2, "u32": 4}[kind]
        if pos + size > end:
            raise MalformedPacket(f"property {spec.label} runs past the end of the properties")
        value = int.from_bytes(buf[pos:pos + size], "big")
        pos += size
    if spec.check is not None and not spec.check(value):
        raise ProtocolError(f"property {spec.label} may not be {value}", spec.rule)
    return value, pos
