"""Packet encoder: ``encode(packet, version) -> bytes``, validating as strictly as the decoder.

Refusing to *send* what a peer must refuse to receive keeps our own bugs from looking like
network faults in an experiment. Each packet is built in one pass and joined once.
"""

from __future__ import annotations

from ._rules import ACK_CODE_RULES, rule
from ._wire import MAX_VARINT, UINT16, encode_binary, encode_string, encode_varint
from .errors import InvalidTopic, MalformedPacket, ProtocolError, UnsupportedProtocolVersion
from .packets import (MQTT_3_1, MQTT_5, PROTOCOL_NAMES, VERSIONS, Auth, Connack, Connect,
                      Disconnect, Pingreq, Pingresp, Puback, Pubcomp, Publish, Pubrec, Pubrel,
                      Suback, Subscribe, Unsuback, Unsubscribe)
from .properties import NO_PROPERTIES, WILL, Properties, encode_properties
from . import reason_codes as rc
from .topics import validate_topic_filter


def encode(packet, version: int) -> bytes:
    """Encode ``packet`` for protocol ``version`` (3 = 3.1, 4 = 3.1.1, 5 = 5.0)."""
    encoder = _ENCODERS.get(packet.__class__)
    if encoder is None:
        raise MalformedPacket(f"cannot encode {packet!r}: not an MQTT control packet")
    if version not in VERSIONS:
        raise UnsupportedProtocolVersion(f"protocol level {version!r} is not 3, 4 or 5",
                                         protocol_level=version if isinstance(version, int) else 0)
    return encoder(packet, version)


def _frame(first_byte: int, body: bytes) -> bytes:
    if len(body) > MAX_VARINT:
        raise MalformedPacket(f"packet body of {len(body)} bytes exceeds the maximum remaining "
                              f"length {MAX_VARINT}")
    return bytes((first_byte,)) + encode_varint(len(body)) + body


def _props(props: Properties, packet_type: int, version: int, what: str) -> bytes:
    """The property block in MQTT 5; nothing before, where properties must be absent."""
    if version == MQTT_5:
        return encode_properties(props, packet_type)
    if props is not NO_PROPERTIES and props != NO_PROPERTIES:
        raise ProtocolError(f"{what} has properties, which exist only in MQTT 5.0")
    return b""


def _packet_id(packet_id, version: int, rule_name: str, what: str) -> bytes:
    if packet_id.__class__ is not int or not 0 < packet_id <= 0xFFFF:
        raise ProtocolError(f"{what} packet identifier must be 1..65535, not {packet_id!r}",
                            rule(rule_name, version))
    return UINT16.pack(packet_id)


def _check_qos(qos, rule_name: str, version: int, what: str) -> None:
    if qos.__class__ is not int or not 0 <= qos <= 2:
        raise MalformedPacket(f"{what} QoS must be 0, 1 or 2, not {qos!r}", rule(rule_name, version))


def _check_topic_name(topic: str, version: int, allow_empty: bool = False) -> None:
    if "+" in topic or "#" in topic:
        raise InvalidTopic(f"topic name {topic!r} contains a wildcard; wildcards are only "
                           "allowed in subscriptions", rule("publish_wildcard", version))
    if not topic and not allow_empty:
        raise InvalidTopic("topic name is empty; it must be at least one character",
                           rule("empty_topic", version))


def _encode_connect(p: Connect, version: int) -> bytes:
    flags = 0x02 if p.clean_session else 0
    will = p.will
    if will is not None:
        _check_qos(will.qos, "will_qos_range", version, "will")
        _check_topic_name(will.topic, version)
        flags |= 0x04 | will.qos << 3 | (0x20 if will.retain else 0)
    if p.username is not None:
        flags |= 0x80
    if p.password is not None:
        if p.username is None and version == 4:
            raise ProtocolError("a password needs a user name in MQTT 3.1.1",
                                rule("password_without_username", version))
        flags |= 0x40
    if p.keepalive.__class__ is not int or not 0 <= p.keepalive <= 0xFFFF:
        raise MalformedPacket(f"keepalive must be 0..65535 seconds, not {p.keepalive!r}")
    parts = [encode_string(PROTOCOL_NAMES[version], version, "protocol name"),
             bytes((version | (0x80 if p.bridge and version != MQTT_5 else 0), flags)),
             UINT16.pack(p.keepalive),
             _props(p.properties, 1, version, "CONNECT"),
             encode_string(p.client_id, version, "client identifier")]
    if will is not None:
        if version == MQTT_5:
            parts.append(encode_properties(will.properties, WILL))
        elif will.properties != NO_PROPERTIES:
            raise ProtocolError("will properties exist only in MQTT 5.0")
        parts.append(encode_string(will.topic, version, "will topic"))
        parts.append(encode_binary(will.payload, "will payload"))
    if p.username is not None:
        parts.append(encode_string(p.username, version, "user name"))
    if p.password is not None:
        parts.append(encode_binary(p.password, "password"))
    return _frame(0x10, b"".join(parts))


def _encode_connack(p: Connack, version: int) -> bytes:
    code = p.reason_code
    if version == MQTT_5:
        if code not in rc.CONNACK_V5:
            raise ProtocolError(f"0x{code:02X} is not a CONNACK reason code",
                                rule("connack_code", version))
    elif code not in rc.CONNACK_V3:
        raise ProtocolError(f"{code!r} is not a CONNACK return code (0-5)",
                            rule("connack_code", version))
    if p.session_present and code != 0:
        raise ProtocolError("a refused connection must have Session Present 0",
                            rule("connack_session_present_on_error", version))
    if p.session_present and version == MQTT_3_1:
        raise ProtocolError("MQTT 3.1 CONNACK has no Session Present flag")
    return _frame(0x20, bytes((1 if p.session_present else 0, code))
                  + _props(p.properties, 2, version, "CONNACK"))


# Valid topic names, already length-prefixed: most traffic goes to a few topics, so the
# validation and UTF-8 encoding run once per topic instead of once per message. It pays:
# without it benchmarks/codec.py encodes 40 % fewer packets/s and benchmarks/engine.py moves
# 15-20 % fewer QoS 0 messages/s (issue 14). It is the memo of a pure function (the same bytes
# for every caller and version), kept here because encode() is a function, not an object;
# engines keep their own record of what they validated (ClientEngine._checked_topics).
_TOPIC_CACHE: dict[str, bytes] = {}
_PACK_U16 = UINT16.pack


def _topic_bytes(topic: str, version: int, props: Properties) -> bytes:
    if not topic:
        _check_topic_name(topic, version,
                          allow_empty=version == MQTT_5 and props.topic_alias is not None)
        return b"\x00\x00"
    _check_topic_name(topic, version)
    data = encode_string(topic, version, "topic name")
    if len(data) > 65537:  # encode_string allows up to 65535; keep the topic rule's id
        raise InvalidTopic(f"topic name is {len(data) - 2} bytes long; the limit is 65535",
                           rule("topic_length", version))
    if len(_TOPIC_CACHE) >= 4096:
        _TOPIC_CACHE.clear()
    _TOPIC_CACHE[topic] = data
    return data


def _encode_publish(p: Publish, version: int) -> bytes:
    return encode_publish(p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id,
                          p.properties, version)


def encode_publish(topic: str, payload: bytes, qos: int, retain: bool, dup: bool,
                   packet_id: int | None, props: Properties, version: int) -> bytes:
    """``encode(Publish(...), version)`` without building the Publish: the engines' hot path."""
    if qos.__class__ is not int or not 0 <= qos <= 2:
        _check_qos(qos, "qos_3", version, "PUBLISH")
    name = _TOPIC_CACHE.get(topic) or _topic_bytes(topic, version, props)
    flags = qos << 1 | (1 if retain else 0)
    if qos:
        if packet_id.__class__ is not int or not 0 < packet_id <= 0xFFFF:
            _packet_id(packet_id, version, "nonzero_packet_id", "PUBLISH")
        rest = _PACK_U16(packet_id)  # the rest of the variable header
        if dup:
            flags |= 0x08
    elif packet_id is not None:
        raise ProtocolError("a QoS 0 PUBLISH has no packet identifier",
                            rule("qos0_no_packet_id", version))
    elif dup:
        raise ProtocolError("DUP must be 0 on a QoS 0 PUBLISH", rule("dup_on_qos0", version))
    else:
        rest = b""
    if version == MQTT_5:
        if props is NO_PROPERTIES:
            rest += b"\x00"  # an empty property block
        else:
            _check_response_topic(props)
            rest += encode_properties(props, 3)
    elif props is not NO_PROPERTIES and props != NO_PROPERTIES:
        raise ProtocolError("PUBLISH has properties, which exist only in MQTT 5.0")
    if payload.__class__ is not bytes:
        if not isinstance(payload, (bytearray, memoryview)):
            raise MalformedPacket(f"PUBLISH payload must be bytes, not {type(payload).__name__}")
        payload = bytes(payload)
    length = len(name) + len(rest) + len(payload)
    if length < 128:
        return b"".join((_SMALL_PUBLISH_HEADERS[flags << 7 | length], name, rest, payload))
    if length > MAX_VARINT:
        raise MalformedPacket(f"PUBLISH of {length} bytes exceeds the maximum remaining length")
    return b"".join((bytes((0x30 | flags,)), encode_varint(length), name, rest, payload))


# The fixed header of every PUBLISH whose remaining length fits in one byte, by
# flags << 7 | length: looked up, not built, for the commonest packet.
_SMALL_PUBLISH_HEADERS = [bytes((0x30 | flags, length))
                          for flags in range(16) for length in range(128)]


def _check_response_topic(props: Properties) -> None:
    topic = props.response_topic
    if topic is not None and ("+" in topic or "#" in topic):
        raise InvalidTopic(f"Response Topic {topic!r} contains a wildcard", "MQTT-3.3.2-14")


#: First two bytes of a plain PUBACK/PUBREC/PUBREL/PUBCOMP, for engines' fast path.
ACK_HEADS = {Puback: b"\x40\x02", Pubrec: b"\x50\x02", Pubrel: b"\x62\x02", Pubcomp: b"\x70\x02"}
#: The same as a 32-bit word: ``(ACK_WORDS[cls] | packet_id).to_bytes(4, "big")`` is the ack.
ACK_WORDS = {cls: int.from_bytes(head, "big") << 16 for cls, head in ACK_HEADS.items()}


def _ack_encoder(packet_type: int, first_byte: int, allowed: frozenset[int], name: str):
    """PUBACK, PUBREC, PUBREL and PUBCOMP share one layout."""

    head = bytes((first_byte, 2))

    def encode_ack(p, version: int) -> bytes:
        code = p.reason_code
        packet_id = p.packet_id
        if not code and p.properties is NO_PROPERTIES and packet_id.__class__ is int \
                and 0 < packet_id <= 0xFFFF:
            return head + _PACK_U16(packet_id)  # the common case: success, no properties
        body = _packet_id(packet_id, version, "pub_ack_packet_id", name)
        if version == MQTT_5:
            if code not in allowed:
                raise ProtocolError(f"0x{code:02X} is not a {name} reason code",
                                    ACK_CODE_RULES[packet_type])
            if p.properties != NO_PROPERTIES:
                body += bytes((code,)) + encode_properties(p.properties, packet_type)
            elif code:
                body += bytes((code,))  # remaining length 3: properties omitted
        else:
            if code:
                raise ProtocolError(f"{name} reason codes exist only in MQTT 5.0")
            _props(p.properties, packet_type, version, name)
        return _frame(first_byte, body)

    return encode_ack


def _encode_subscribe(p: Subscribe, version: int) -> bytes:
    if not p.subscriptions:
        raise ProtocolError("SUBSCRIBE needs at least one topic filter",
                            rule("subscribe_empty", version))
    parts = [_packet_id(p.packet_id, version, "nonzero_packet_id", "SUBSCRIBE"),
             _props(p.properties, 8, version, "SUBSCRIBE")]
    for sub in p.subscriptions:
        validate_topic_filter(sub.topic_filter, version)
        _check_qos(sub.qos, "subscribe_options", version, "requested")
        options = sub.qos
        if version == MQTT_5:
            if sub.retain_handling not in (0, 1, 2):
                raise ProtocolError(f"Retain Handling must be 0, 1 or 2, not "
                                    f"{sub.retain_handling!r}")
            if sub.no_local and sub.topic_filter.startswith("$share/"):
                raise ProtocolError("No Local is not allowed on a shared subscription",
                                    "MQTT-3.8.3-4")
            options |= ((4 if sub.no_local else 0) | (8 if sub.retain_as_published else 0)
                        | sub.retain_handling << 4)
        elif sub.no_local or sub.retain_as_published or sub.retain_handling:
            raise ProtocolError("subscription options other than QoS exist only in MQTT 5.0")
        parts.append(encode_string(sub.topic_filter, version, "topic filter"))
        parts.append(bytes((options,)))
    return _frame(0x82, b"".join(parts))


def _encode_suback(p: Suback, version: int) -> bytes:
    allowed = (rc.SUBACK_V5 if version == MQTT_5
               else {0, 1, 2} if version == MQTT_3_1 else {0, 1, 2, rc.SUBACK_FAILURE_V3})
    if not p.reason_codes:
        raise ProtocolError("SUBACK needs one return code per topic filter")
    for code in p.reason_codes:
        if code not in allowed:
            raise ProtocolError(f"{code!r} is not a SUBACK return code in this version",
                                rule("suback_code", version))
    return _frame(0x90, _packet_id(p.packet_id, version, "sub_ack_packet_id", "SUBACK")
                  + _props(p.properties, 9, version, "SUBACK") + bytes(p.reason_codes))


def _encode_unsubscribe(p: Unsubscribe, version: int) -> bytes:
    if not p.topic_filters:
        raise ProtocolError("UNSUBSCRIBE needs at least one topic filter",
                            rule("unsubscribe_empty", version))
    parts = [_packet_id(p.packet_id, version, "nonzero_packet_id", "UNSUBSCRIBE"),
             _props(p.properties, 10, version, "UNSUBSCRIBE")]
    for topic_filter in p.topic_filters:
        validate_topic_filter(topic_filter, version)
        parts.append(encode_string(topic_filter, version, "topic filter"))
    return _frame(0xA2, b"".join(parts))


def _encode_unsuback(p: Unsuback, version: int) -> bytes:
    body = _packet_id(p.packet_id, version, "sub_ack_packet_id", "UNSUBACK")
    if version == MQTT_5:
        if not p.reason_codes:
            raise ProtocolError("an MQTT 5 UNSUBACK needs one reason code per topic filter")
        for code in p.reason_codes:
            if code not in rc.UNSUBACK_V5:
                raise ProtocolError(f"0x{code:02X} is not an UNSUBACK reason code",
                                    ACK_CODE_RULES[11])
        body += encode_properties(p.properties, 11) + bytes(p.reason_codes)
    elif p.reason_codes or p.properties != NO_PROPERTIES:
        raise ProtocolError("UNSUBACK reason codes and properties exist only in MQTT 5.0")
    return _frame(0xB0, body)


def _encode_pingreq(p: Pingreq, version: int) -> bytes:
    return b"\xc0\x00"


def _encode_pingresp(p: Pingresp, version: int) -> bytes:
    return b"\xd0\x00"


def _encode_disconnect(p: Disconnect, version: int) -> bytes:
    if version != MQTT_5:
        if p.reason_code or p.properties != NO_PROPERTIES:
            raise ProtocolError("DISCONNECT reason codes and properties exist only in MQTT 5.0")
        return b"\xe0\x00"
    return _frame(0xE0, _reason_and_props(p, 14, rc.DISCONNECT_V5, "DISCONNECT"))


def _encode_auth(p: Auth, version: int) -> bytes:
    if version != MQTT_5:
        raise ProtocolError("AUTH exists only in MQTT 5.0")
    return _frame(0xF0, _reason_and_props(p, 15, rc.AUTH_V5, "AUTH"))


def _reason_and_props(p, packet_type: int, allowed: frozenset[int], name: str) -> bytes:
    """DISCONNECT and AUTH: empty body means reason 0 with no properties."""
    if p.reason_code not in allowed:
        raise ProtocolError(f"0x{p.reason_code:02X} is not a {name} reason code",
                            ACK_CODE_RULES[packet_type])
    if p.properties == NO_PROPERTIES:
        return b"" if p.reason_code == 0 else bytes((p.reason_code,))
    return bytes((p.reason_code,)) + encode_properties(p.properties, packet_type)


_ENCODERS = {
    Connect: _encode_connect,
    Connack: _encode_connack,
    Publish: _encode_publish,
    Puback: _ack_encoder(4, 0x40, rc.PUBACK_V5, "PUBACK"),
    Pubrec: _ack_encoder(5, 0x50, rc.PUBREC_V5, "PUBREC"),
    Pubrel: _ack_encoder(6, 0x62, rc.PUBREL_V5, "PUBREL"),
    Pubcomp: _ack_encoder(7, 0x70, rc.PUBCOMP_V5, "PUBCOMP"),
    Subscribe: _encode_subscribe,
    Suback: _encode_suback,
    Unsubscribe: _encode_unsubscribe,
    Unsuback: _encode_unsuback,
    Pingreq: _encode_pingreq,
    Pingresp: _encode_pingresp,
    Disconnect: _encode_disconnect,
    Auth: _encode_auth,
}
