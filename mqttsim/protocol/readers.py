"""Per-packet readers: the bytes after one packet's fixed header -> the packet, every field
checked against the spec of the connection's version.

The ``Decoder`` (decoder.py) finds where each packet ends (framing.py) and calls these. Each
reader gets the first byte or the version, the buffer and the packet's span in it; every
check raises one of the codec's own errors (``errors.MQTTError``) naming the statement.
"""

from __future__ import annotations

from . import reason_codes as rc
from ._rules import ACK_CODE_RULES, rule
from ._wire import decode_binary, decode_string
from .errors import InvalidTopic, MalformedPacket, ProtocolError, UnsupportedProtocolVersion
from .framing import PACKET_NAMES
from .packets import (MQTT_3_1, MQTT_3_1_1, MQTT_5, Auth, Connack, Connect, Disconnect,
                      Pingreq, Pingresp, Puback, Pubcomp, Publish, Pubrec, Pubrel, Suback,
                      Subscribe, Subscription, Unsuback, Unsubscribe, Will)
from .properties import NO_PROPERTIES, WILL, decode_properties
from .topics import validate_topic_filter

__all__ = ["PLAIN_ACKS", "READERS", "check_flags", "read_connect", "read_publish"]

# Required low nibble of the first byte, per packet type (PUBLISH carries DUP/QoS/RETAIN).
_REQUIRED_FLAGS = {1: 0, 2: 0, 4: 0, 5: 0, 6: 2, 7: 0, 8: 2, 9: 0, 10: 2, 11: 0, 12: 0, 13: 0,
                   14: 0, 15: 0}
_FLAG_RULES = {6: "pubrel_flags", 8: "subscribe_flags", 10: "unsubscribe_flags",
               14: "disconnect_flags", 15: "auth_flags"}


def check_flags(first: int, version: int | None) -> None:
    """The fixed-header flags of any packet but PUBLISH are fixed by its type."""
    ptype, flags = first >> 4, first & 0x0F
    required = _REQUIRED_FLAGS[ptype]
    if flags != required and not (version == MQTT_3_1 and flags == required | 0x08
                                  and ptype in (6, 8, 10)):
        # MQTT 3.1 let PUBREL/SUBSCRIBE/UNSUBSCRIBE carry DUP on a resend.
        name = _FLAG_RULES.get(ptype, "reserved_flags")
        raise MalformedPacket(f"{PACKET_NAMES[ptype]} fixed-header flags must be "
                              f"{required:04b}, not {flags:04b}", rule(name, version))


# PUBACK/PUBREC/PUBREL/PUBCOMP with nothing but a packet id (every 3.1.1 ack, most 5.0
# ones), by first byte: the decoder builds them without a reader call.
PLAIN_ACKS = {0x40: Puback, 0x50: Pubrec, 0x62: Pubrel, 0x70: Pubcomp}


def _u16(buf, pos: int, end: int, what: str) -> int:
    if pos + 2 > end:
        raise MalformedPacket(f"{what} runs past the end of the packet")
    return (buf[pos] << 8) | buf[pos + 1]


def _packet_id(buf, pos: int, end: int, version: int, rule_name: str, what: str) -> int:
    packet_id = _u16(buf, pos, end, f"{what} packet identifier")
    if packet_id == 0:
        raise ProtocolError(f"{what} packet identifier 0 is not allowed", rule(rule_name, version))
    return packet_id


def _expect_end(pos: int, end: int, what: str) -> None:
    if pos != end:
        raise MalformedPacket(f"{what} has {end - pos} unexpected bytes after its last field "
                              "(remaining length disagrees with its content)")


def read_publish(first: int, buf, pos: int, end: int, version: int,
                 known_topics: dict[bytes, str], limit: int | None = None) -> Publish:
    """A PUBLISH whose remaining bytes are ``buf[pos:end]``. ``known_topics`` (the caller's,
    one per decoder) maps topic names already checked, by their bytes with the length prefix,
    to the name: a stream repeats a few topics."""
    qos = (first >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH QoS bits are both set (QoS 3 does not exist)",
                              rule("qos_3", version))
    if pos + 2 > end:
        raise MalformedPacket("PUBLISH topic length runs past the end of the packet")
    stop = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
    if stop > end:
        raise MalformedPacket("PUBLISH topic runs past the end of the packet")
    topic = known_topics.get(buf[pos:stop])  # keyed with the length prefix: one slice less
    if topic is None:
        topic = _new_topic(buf, pos, stop, end, version, known_topics)
    if qos:
        if stop + 2 > end:
            raise MalformedPacket("PUBLISH packet identifier runs past the end of the packet")
        packet_id = (buf[stop] << 8) | buf[stop + 1]
        if not packet_id:
            raise ProtocolError("PUBLISH packet identifier 0 is not allowed",
                                rule("nonzero_packet_id", version))
        stop += 2
    elif first & 0x08:
        raise ProtocolError("DUP is set on a QoS 0 PUBLISH", rule("dup_on_qos0", version))
    else:
        packet_id = None
    if version != MQTT_5:
        if not topic:
            raise InvalidTopic("PUBLISH topic name is empty", rule("empty_topic", version))
        return Publish(topic, buf[stop:end], qos, (first & 0x01) != 0,
                       (first & 0x08) != 0, packet_id, NO_PROPERTIES)
    props, stop = decode_properties(buf, stop, end, 3, limit)
    if props is not NO_PROPERTIES:
        _check_publish_properties(props)
    if not topic and props.topic_alias is None:
        raise ProtocolError("PUBLISH has an empty topic name and no Topic Alias")
    return Publish(topic, buf[stop:end], qos, (first & 0x01) != 0, (first & 0x08) != 0,
                   packet_id, props)


KNOWN_TOPICS_LIMIT = 1024  # per decoder (connection); more distinct topics: start again


def _new_topic(buf, pos: int, stop: int, end: int, version: int,
               known_topics: dict[bytes, str]) -> str:
    try:
        topic = buf[pos + 2:stop].decode()
    except UnicodeDecodeError:
        topic, _ = decode_string(buf, pos, end, version, "topic name")  # raises with the rule
    if "+" in topic or "#" in topic:
        raise InvalidTopic(f"PUBLISH topic name {topic!r} contains a wildcard",
                           rule("publish_wildcard", version))
    if "\x00" in topic:
        decode_string(buf, pos, end, version, "topic name")  # raises with the rule
    if topic:  # an empty name is legal only with an MQTT 5 alias: checked by the caller
        if len(known_topics) >= KNOWN_TOPICS_LIMIT:
            known_topics.clear()
        known_topics[buf[pos:stop]] = topic
    return topic


def _check_publish_properties(props) -> None:
    topic = props.response_topic
    if topic is not None and ("+" in topic or "#" in topic):
        raise InvalidTopic(f"Response Topic {topic!r} contains a wildcard", "MQTT-3.3.2-14")


def read_connect(buf, pos: int, end: int, expected: int | None,
                 limit: int | None = None) -> tuple[Connect, int]:
    name, pos = decode_string(buf, pos, end, expected or MQTT_3_1_1, "protocol name")
    if pos + 4 > end:
        raise MalformedPacket("CONNECT variable header runs past the end of the packet")
    level, flags = buf[pos], buf[pos + 1]
    # Mosquitto's try_private: a 3.1/3.1.1 bridge sets the level's top bit (0x83, 0x84).
    bridge = level & 0x80 and (level & 0x7F) in (3, 4)
    if bridge:
        level &= 0x7F
    keepalive = (buf[pos + 2] << 8) | buf[pos + 3]
    pos += 4
    if name not in ("MQTT", "MQIsdp"):
        raise ProtocolError(f"protocol name {name!r} is neither 'MQTT' nor 'MQIsdp'",
                            rule("protocol_name", expected))
    if (name, level) not in (("MQIsdp", 3), ("MQTT", 4), ("MQTT", 5)):
        raise UnsupportedProtocolVersion(
            f"protocol {name!r} level {level} is not supported (MQIsdp 3, MQTT 4 or MQTT 5)",
            rule("protocol_level", expected), protocol_name=name, protocol_level=level)
    if expected is not None and level != expected:
        raise UnsupportedProtocolVersion(
            f"CONNECT asks for protocol level {level} on a level {expected} connection",
            rule("protocol_level", expected), protocol_name=name, protocol_level=level)
    version = level
    if flags & 0x01:
        raise MalformedPacket("CONNECT reserved flag (bit 0) must be 0",
                              rule("connect_reserved_flag", version))
    will_flag = flags & 0x04
    will_qos = (flags >> 3) & 0x03
    will_retain = bool(flags & 0x20)
    if not will_flag:
        if will_qos:
            raise MalformedPacket("Will QoS is set but the Will Flag is 0",
                                  rule("will_qos_without_will", version))
        if will_retain:
            raise MalformedPacket("Will Retain is set but the Will Flag is 0",
                                  rule("will_retain_without_will", version))
    elif will_qos == 3:
        raise MalformedPacket("Will QoS 3 does not exist", rule("will_qos_range", version))
    has_username, has_password = flags & 0x80, flags & 0x40
    if has_password and not has_username and version == MQTT_3_1_1:
        raise MalformedPacket("Password Flag is set without the User Name Flag",
                              rule("password_without_username", version))
    props = NO_PROPERTIES
    if version == MQTT_5:
        props, pos = decode_properties(buf, pos, end, 1, limit)
    _field_present(pos, end, "client identifier", "client_id_present", version)
    client_id, pos = decode_string(buf, pos, end, version, "client identifier")
    will = None
    if will_flag:
        _field_present(pos, end, "will topic and message", "will_fields_present", version)
        will_props = NO_PROPERTIES
        if version == MQTT_5:
            will_props, pos = decode_properties(buf, pos, end, WILL, limit)
        will_topic, pos = decode_string(buf, pos, end, version, "will topic")
        if not will_topic or "+" in will_topic or "#" in will_topic:
            raise InvalidTopic(f"will topic {will_topic!r} is not a valid topic name",
                               rule("publish_wildcard" if will_topic else "empty_topic", version))
        _field_present(pos, end, "will message", "will_fields_present", version)
        will_payload, pos = decode_binary(buf, pos, end, "will payload")
        will = Will(will_topic, will_payload, will_qos, will_retain, will_props)
    username = password = None
    if has_username:
        _field_present(pos, end, "user name", "username_present", version)
        username, pos = decode_string(buf, pos, end, version, "user name")
    if has_password:
        _field_present(pos, end, "password", "password_present", version)
        password, pos = decode_binary(buf, pos, end, "password")
    if pos != end:
        # Bytes after the last field the flags announce: most likely a field whose flag is 0.
        absent = "username_absent" if not has_username else (
            "password_absent" if not has_password else None)
        raise MalformedPacket(f"CONNECT has {end - pos} bytes after its last announced field "
                              "(a user name or password without its flag?)",
                              rule(absent, version) if absent else None)
    return Connect(client_id, bool(flags & 0x02), keepalive, username, password, will,
                   props, bool(bridge)), version


def _field_present(pos: int, end: int, what: str, rule_name: str, version: int) -> None:
    if pos + 2 > end:
        raise MalformedPacket(f"CONNECT ends where its {what} should be", rule(rule_name, version))


def _read_connack(buf, pos: int, end: int, version: int,
                  limit: int | None = None) -> Connack:
    if pos + 2 > end:
        raise MalformedPacket("CONNACK is shorter than its 2-byte variable header")
    ack_flags, code = buf[pos], buf[pos + 1]
    pos += 2
    if version == MQTT_3_1:
        session_present = False  # 3.1: the first byte is unused
    elif ack_flags & 0xFE:
        raise MalformedPacket(f"CONNACK acknowledge flags bits 7-1 must be 0, got "
                              f"0x{ack_flags:02X}", rule("connack_flags", version))
    else:
        session_present = bool(ack_flags)
    props = NO_PROPERTIES
    if version == MQTT_5:
        if code not in rc.CONNACK_V5:
            raise ProtocolError(f"0x{code:02X} is not a CONNACK reason code",
                                rule("connack_code", version))
        props, pos = decode_properties(buf, pos, end, 2, limit)
    elif code not in rc.CONNACK_V3:
        raise ProtocolError(f"CONNACK return code {code} is reserved (0-5 are defined)",
                            rule("connack_code", version))
    if session_present and code:
        raise ProtocolError("CONNACK refuses the connection but sets Session Present",
                            rule("connack_session_present_on_error", version))
    _expect_end(pos, end, "CONNACK")
    return Connack(session_present, code, props)


def _ack_decoder(cls, packet_type: int, allowed: frozenset[int]):
    name = PACKET_NAMES[packet_type]

    def decode_ack(buf, pos: int, end: int, version: int,
                   limit: int | None = None):
        packet_id = _packet_id(buf, pos, end, version, "pub_ack_packet_id", name)
        pos += 2
        if version != MQTT_5 or pos == end:
            _expect_end(pos, end, name)
            return cls(packet_id)
        code = buf[pos]
        if code not in allowed:
            raise ProtocolError(f"0x{code:02X} is not a {name} reason code",
                                ACK_CODE_RULES[packet_type])
        props = NO_PROPERTIES
        if pos + 1 < end:
            props, pos = decode_properties(buf, pos + 1, end, packet_type, limit)
        else:
            pos += 1
        _expect_end(pos, end, name)
        return cls(packet_id, code, props)

    return decode_ack


def _read_subscribe(buf, pos: int, end: int, version: int,
                    limit: int | None = None) -> Subscribe:
    packet_id = _packet_id(buf, pos, end, version, "nonzero_packet_id", "SUBSCRIBE")
    pos += 2
    props = NO_PROPERTIES
    if version == MQTT_5:
        props, pos = decode_properties(buf, pos, end, 8, limit)
        if len(props.subscription_identifiers) > 1:
            raise ProtocolError("SUBSCRIBE carries more than one Subscription Identifier")
    subscriptions = []
    while pos < end:
        topic_filter, pos = decode_string(buf, pos, end, version, "topic filter")
        if pos >= end:
            raise MalformedPacket(f"topic filter {topic_filter!r} has no options byte")
        options = buf[pos]
        pos += 1
        validate_topic_filter(topic_filter, version)
        subscriptions.append(_subscription(topic_filter, options, version))
    if not subscriptions:
        raise ProtocolError("SUBSCRIBE carries no topic filter", rule("subscribe_empty", version))
    return Subscribe(packet_id, tuple(subscriptions), props)


def _subscription(topic_filter: str, options: int, version: int) -> Subscription:
    qos = options & 0x03
    reserved = 0xC0 if version == MQTT_5 else 0xFC
    if options & reserved:
        raise MalformedPacket(f"subscription options 0x{options:02X} set reserved bits",
                              rule("subscribe_options", version))
    if qos == 3:
        if version == MQTT_5:  # 5.0 section 3.8.3.1 calls it a Protocol Error
            raise ProtocolError(f"requested QoS 3 for {topic_filter!r} does not exist")
        raise MalformedPacket(f"requested QoS 3 for {topic_filter!r} does not exist",
                              rule("subscribe_options", version))
    if version != MQTT_5:
        return Subscription(topic_filter, qos)
    no_local = bool(options & 0x04)
    retain_handling = (options >> 4) & 0x03
    if retain_handling == 3:
        raise ProtocolError(f"Retain Handling 3 for {topic_filter!r} does not exist")
    if no_local and topic_filter.startswith("$share/"):
        raise ProtocolError(f"No Local on shared subscription {topic_filter!r}", "MQTT-3.8.3-4")
    return Subscription(topic_filter, qos, no_local, bool(options & 0x08), retain_handling)


def _read_suback(buf, pos: int, end: int, version: int,
                 limit: int | None = None) -> Suback:
    packet_id = _packet_id(buf, pos, end, version, "sub_ack_packet_id", "SUBACK")
    pos += 2
    props = NO_PROPERTIES
    if version == MQTT_5:
        props, pos = decode_properties(buf, pos, end, 9, limit)
        allowed = rc.SUBACK_V5
    else:
        allowed = (0, 1, 2) if version == MQTT_3_1 else (0, 1, 2, rc.SUBACK_FAILURE_V3)
    codes = tuple(buf[pos:end])
    if not codes:
        raise MalformedPacket("SUBACK carries no return codes")
    for code in codes:
        if code not in allowed:
            raise ProtocolError(f"0x{code:02X} is not a SUBACK return code in this version",
                                rule("suback_code", version))
    return Suback(packet_id, codes, props)


def _read_unsubscribe(buf, pos: int, end: int, version: int,
                      limit: int | None = None) -> Unsubscribe:
    packet_id = _packet_id(buf, pos, end, version, "nonzero_packet_id", "UNSUBSCRIBE")
    pos += 2
    props = NO_PROPERTIES
    if version == MQTT_5:
        props, pos = decode_properties(buf, pos, end, 10, limit)
    filters = []
    while pos < end:
        topic_filter, pos = decode_string(buf, pos, end, version, "topic filter")
        validate_topic_filter(topic_filter, version)
        filters.append(topic_filter)
    if not filters:
        raise ProtocolError("UNSUBSCRIBE carries no topic filter",
                            rule("unsubscribe_empty", version))
    return Unsubscribe(packet_id, tuple(filters), props)


def _read_unsuback(buf, pos: int, end: int, version: int,
                   limit: int | None = None) -> Unsuback:
    packet_id = _packet_id(buf, pos, end, version, "sub_ack_packet_id", "UNSUBACK")
    pos += 2
    if version != MQTT_5:
        _expect_end(pos, end, "UNSUBACK")
        return Unsuback(packet_id)
    props, pos = decode_properties(buf, pos, end, 11, limit)
    codes = tuple(buf[pos:end])
    if not codes:
        raise MalformedPacket("MQTT 5 UNSUBACK carries no reason codes")
    for code in codes:
        if code not in rc.UNSUBACK_V5:
            raise ProtocolError(f"0x{code:02X} is not an UNSUBACK reason code",
                                ACK_CODE_RULES[11])
    return Unsuback(packet_id, codes, props)


def _empty_decoder(cls, name: str):
    def decode_empty(buf, pos: int, end: int, version: int,
                     limit: int | None = None):
        _expect_end(pos, end, name)
        return cls()

    return decode_empty


def _reason_decoder(cls, packet_type: int, allowed: frozenset[int]):
    """DISCONNECT and AUTH: an empty body means reason 0 and no properties (MQTT 5)."""
    name = PACKET_NAMES[packet_type]

    def decode_reason(buf, pos: int, end: int, version: int,
                      limit: int | None = None):
        if version != MQTT_5 or pos == end:
            _expect_end(pos, end, name)
            return cls()
        code = buf[pos]
        if code not in allowed:
            raise ProtocolError(f"0x{code:02X} is not a {name} reason code",
                                ACK_CODE_RULES[packet_type])
        props = NO_PROPERTIES
        pos += 1
        if pos < end:
            props, pos = decode_properties(buf, pos, end, packet_type, limit)
        _expect_end(pos, end, name)
        return cls(code, props)

    return decode_reason


# The reader of every other packet type; CONNECT and PUBLISH have their own above.
READERS = {
    2: _read_connack,
    4: _ack_decoder(Puback, 4, rc.PUBACK_V5),
    5: _ack_decoder(Pubrec, 5, rc.PUBREC_V5),
    6: _ack_decoder(Pubrel, 6, rc.PUBREL_V5),
    7: _ack_decoder(Pubcomp, 7, rc.PUBCOMP_V5),
    8: _read_subscribe,
    9: _read_suback,
    10: _read_unsubscribe,
    11: _read_unsuback,
    12: _empty_decoder(Pingreq, "PINGREQ"),
    13: _empty_decoder(Pingresp, "PINGRESP"),
    14: _reason_decoder(Disconnect, 14, rc.DISCONNECT_V5),
    15: _reason_decoder(Auth, 15, rc.AUTH_V5),
}
