"""MQTT 5.0 codec-level normative statements, one test per statement id.

Same scheme as the 3.1.1 file: bytes that break one statement, the error type the spec
names ("is a Malformed Packet" -> MalformedPacket, "is a Protocol Error" -> ProtocolError;
MQTTError where the spec names neither) and ``err.rule``. Where two statements cover the
same byte, either id is accepted. Statement ids differ from 3.1.1 (e.g. UTF-8 is 1.5.4).
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.errors import (
    InvalidTopic, MalformedPacket, MQTTError, ProtocolError, UnsupportedProtocolVersion,
)
from mqttsim.protocol.packets import (
    Auth, Connack, Connect, Disconnect, Puback, Pubcomp, Publish, Pubrec, Pubrel, Suback,
    Subscribe, Subscription, Unsuback, Unsubscribe, Will,
)
from mqttsim.protocol.properties import Properties

import vectors
from vectors import check, connect_bytes, frame, h, props, utf8

V = 5
NO_PROPS = b"\x00"


def decode_error(data: bytes, version: int | None = V) -> MQTTError:
    return vectors.decode_error(data, version)


def encode_error(packet, version: int = V) -> MQTTError:
    return vectors.encode_error(packet, version)


def connect5(flags: int = 0x02, payload: bytes = utf8("c1"), properties: bytes = NO_PROPS,
             **kw) -> bytes:
    return connect_bytes(flags, payload, version=V, properties=properties, **kw)


def publish5(topic: bytes, payload: bytes = b"", properties: bytes = NO_PROPS,
             first: int = 0x30, packet_id: bytes = b"") -> bytes:
    return frame(first, utf8(topic) + packet_id + properties + payload)


def subscribe5(*pairs: tuple[bytes, int], properties: bytes = NO_PROPS, packet_id: int = 1,
               first: int = 0x82) -> bytes:
    body = b"".join(utf8(f) + bytes((o,)) for f, o in pairs)
    return frame(first, packet_id.to_bytes(2, "big") + properties + body)


def unsubscribe5(*filters: bytes, properties: bytes = NO_PROPS, first: int = 0xA2) -> bytes:
    return frame(first, b"\x00\x01" + properties + b"".join(utf8(f) for f in filters))


def ack5(first: int, code: int, properties: bytes = b"") -> bytes:
    """PUBACK-shaped packet with packet id 1."""
    return frame(first, b"\x00\x01" + bytes((code,)) + properties)


def subscribe_with(topic_filter: str, **options) -> Subscribe:
    return Subscribe(packet_id=1, subscriptions=(Subscription(topic_filter, **options),))


# Property bytes used below (id, then value).
def session_expiry(n: int) -> bytes:
    return b"\x11" + n.to_bytes(4, "big")


def user_property(key: bytes, value: bytes) -> bytes:
    return b"\x26" + utf8(key) + utf8(value)


# --------------------------------------------------------------------------------------
# 1.5 data representation
# --------------------------------------------------------------------------------------

BAD_UTF8 = {
    "surrogate_ed_a0_80": bytes.fromhex("ed a0 80"),
    "overlong_c0_af": bytes.fromhex("c0 af"),
    "invalid_byte_ff": bytes.fromhex("ff"),
    "truncated_sequence": bytes.fromhex("61 e2 82"),
    "above_u10ffff": bytes.fromhex("f4 90 80 80"),
}


@pytest.mark.parametrize("bad", BAD_UTF8.values(), ids=BAD_UTF8.keys())
def test_v5_MQTT_1_5_4_1_ill_formed_utf8_in_topic(bad):
    check(decode_error(publish5(bad, b"x")), MalformedPacket, "MQTT-1.5.4-1")


@pytest.mark.parametrize("bad", BAD_UTF8.values(), ids=BAD_UTF8.keys())
def test_v5_MQTT_1_5_4_1_ill_formed_utf8_in_string_property(bad):
    data = publish5(b"a", b"x", props(b"\x03" + utf8(bad)))  # Content Type
    check(decode_error(data), MalformedPacket, "MQTT-1.5.4-1")


def test_v5_MQTT_1_5_4_1_surrogate_refused_on_encode():
    check(encode_error(Publish(topic="a\ud800")), MQTTError, "MQTT-1.5.4-1")
    packet = Publish(topic="a", properties=Properties(content_type="\udc00"))
    check(encode_error(packet), MQTTError, "MQTT-1.5.4-1")


def test_v5_MQTT_1_5_4_2_null_character():
    check(decode_error(connect5(0x02, utf8(b"a\x00"))), MalformedPacket, "MQTT-1.5.4-2")
    data = ack5(0x40, 0x80, props(b"\x1f" + utf8(b"why\x00")))  # Reason String
    check(decode_error(data), MalformedPacket, "MQTT-1.5.4-2")
    check(encode_error(Connect(client_id="a\x00")), MQTTError, "MQTT-1.5.4-2")


def test_v5_MQTT_1_5_4_3_bom_is_kept_as_u_feff():
    data = publish5(bytes.fromhex("ef bb bf 61"), b"p")
    assert Decoder(V).feed(data) == [Publish(topic="\ufeffa", payload=b"p")]
    assert encode(Publish(topic="\ufeffa", payload=b"p"), V) == data


@pytest.mark.parametrize("data", [
    h("c0 80 00   # PINGREQ, remaining length 0 written in two bytes"),
    h("30 81 00 00 01 74 00   # PUBLISH, remaining length 1... in two bytes (then junk)"),
    h("40 05 00 01 80 80 00   # PUBACK whose property length 0 takes two bytes"),
    h("30 07 00 01 74 03 0b 81 00   # Subscription Identifier 1 in two bytes"),
], ids=["remaining-length", "remaining-length-nonzero", "property-length", "sub-id"])
def test_v5_MQTT_1_5_5_1_variable_byte_integer_not_minimal(data):
    check(decode_error(data), MalformedPacket, "MQTT-1.5.5-1")


@pytest.mark.parametrize("pair", [(b"\xff", b"v"), (b"k", b"\xc0\xaf"), (b"k", b"\xed\xa0\x80")],
                         ids=["bad-name", "bad-value-overlong", "bad-value-surrogate"])
def test_v5_MQTT_1_5_7_1_user_property_halves_are_utf8_strings(pair):
    data = ack5(0x40, 0x00, props(user_property(*pair)))
    check(decode_error(data), MalformedPacket, "MQTT-1.5.7-1", "MQTT-1.5.4-1")


def test_v5_MQTT_1_5_7_1_user_property_null_character():
    data = ack5(0x40, 0x00, props(user_property(b"k", b"a\x00")))
    check(decode_error(data), MalformedPacket, "MQTT-1.5.7-1", "MQTT-1.5.4-2")
    packet = Puback(packet_id=1, properties=Properties(user_properties=(("a\x00", "b"),)))
    check(encode_error(packet), MQTTError, "MQTT-1.5.7-1", "MQTT-1.5.4-2")


# --------------------------------------------------------------------------------------
# 2.1.3 flags, 2.2.1 packet identifier, 2.2.2 properties
# --------------------------------------------------------------------------------------

RESERVED_FLAG_VIOLATIONS = {
    "connect_0x12": b"\x12" + connect5()[1:],
    "connack_0x21": h("21 03 00 00 00"),
    "puback_0x42": h("42 02 00 01"),
    "pubrec_0x51": h("51 02 00 01"),
    "pubcomp_0x78": h("78 02 00 01"),
    "suback_0x92": h("92 04 00 01 00 00"),
    "unsuback_0xb1": h("b1 04 00 01 00 00"),
    "pingreq_0xc1": h("c1 00"),
    "pingresp_0xd8": h("d8 00"),
}


@pytest.mark.parametrize("data", RESERVED_FLAG_VIOLATIONS.values(),
                         ids=RESERVED_FLAG_VIOLATIONS.keys())
def test_v5_MQTT_2_1_3_1_reserved_fixed_header_flags(data):
    check(decode_error(data), MalformedPacket, "MQTT-2.1.3-1")


def test_v5_MQTT_2_2_1_2_qos0_publish_has_no_packet_id():
    check(encode_error(Publish(topic="a", qos=0, packet_id=5)), MQTTError, "MQTT-2.2.1-2")


def test_v5_MQTT_2_2_1_3_packet_id_zero_refused():
    cases = [
        subscribe5((b"a", 0), packet_id=0),
        frame(0xA2, b"\x00\x00" + NO_PROPS + utf8("a")),
        publish5(b"a", b"x", first=0x32, packet_id=b"\x00\x00"),
    ]
    for data in cases:
        check(decode_error(data), MQTTError, "MQTT-2.2.1-3", "MQTT-2.2.1-4")
    check(encode_error(Publish(topic="a", qos=1, packet_id=0)), MQTTError,
          "MQTT-2.2.1-3", "MQTT-2.2.1-4")


def test_v5_MQTT_2_2_2_1_no_properties_is_a_zero_property_length():
    assert encode(Connack(), V) == h("20 03 00 00 00   # flags, reason, property length 0")
    assert encode(Suback(packet_id=1, reason_codes=(0,)), V) == h("90 04 00 01 00 00")
    assert encode(Unsuback(packet_id=1, reason_codes=(0,)), V) == h("b0 04 00 01 00 00")
    assert encode(Unsubscribe(packet_id=1, topic_filters=("a",)), V) == \
        h("a2 06 00 01 00 00 01 61")
    assert encode(Publish(topic="a"), V) == h("30 04 00 01 61 00")
    assert encode(Connect(client_id="", will=Will(topic="w")), V) == h("""
        10 13 00 04 4d 51 54 54 05   # CONNECT, remaining length 19, "MQTT", level 5
        06 00 3c                     # will | clean start, keep alive 60
        00                           # property length 0
        00 00                        # client id ""
        00                           # will property length 0
        00 01 77  00 00              # will topic "w", empty will payload
    """)


@pytest.mark.parametrize("data", [h("20 02 00 00"), h("90 03 00 01 00")],
                         ids=["connack", "suback"])
def test_v5_MQTT_2_2_2_1_missing_property_length_is_refused(data):
    """A 3.1.1-shaped CONNACK/SUBACK is not a 5.0 packet: its property length is missing."""
    with pytest.raises(MQTTError):
        Decoder(V).feed(data)


# --------------------------------------------------------------------------------------
# 2.2.2.2 property rules without statement ids of their own
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    connect5(properties=props(session_expiry(10), session_expiry(10))),
    ack5(0x40, 0x80, props(b"\x1f" + utf8("a"), b"\x1f" + utf8("b"))),
    publish5(b"a", b"", props(b"\x23\x00\x01", b"\x23\x00\x02")),
    publish5(b"a", b"", props(b"\x01\x01", b"\x01\x01")),
    subscribe5((b"a", 0), properties=props(b"\x0b\x01", b"\x0b\x02")),
], ids=["session-expiry", "reason-string", "topic-alias", "payload-format", "sub-id"])
def test_v5_duplicated_property_is_protocol_error(data):
    with pytest.raises(ProtocolError):
        Decoder(V).feed(data)


def test_v5_user_property_may_repeat_and_keeps_order():
    data = ack5(0x40, 0x00, props(user_property(b"k", b"2"), user_property(b"k", b"1")))
    assert Decoder(V).feed(data) == [Puback(packet_id=1, properties=Properties(
        user_properties=(("k", "2"), ("k", "1"))))]


@pytest.mark.parametrize("data", [
    connect5(properties=props(b"\x23\x00\x01")),          # Topic Alias in CONNECT
    connect5(properties=props(b"\x18\x00\x00\x00\x01")),  # Will Delay outside the will
    publish5(b"a", b"", props(session_expiry(1))),         # Session Expiry in PUBLISH
    ack5(0x40, 0x00, props(b"\x15" + utf8("m"))),          # Authentication Method in PUBACK
    subscribe5((b"a", 0), properties=props(b"\x1f" + utf8("r"))),  # Reason String
], ids=["alias-in-connect", "will-delay-in-connect", "session-expiry-in-publish",
        "auth-method-in-puback", "reason-string-in-subscribe"])
def test_v5_property_not_allowed_in_packet_is_malformed(data):
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(data)


def test_v5_property_not_allowed_in_packet_refused_on_encode():
    with pytest.raises(MQTTError):
        encode(Connect(client_id="c", properties=Properties(topic_alias=1)), V)
    with pytest.raises(MQTTError):
        encode(Puback(packet_id=1, properties=Properties(session_expiry_interval=1)), V)


def test_v5_unknown_property_identifier_is_malformed():
    for ident in (b"\x00", b"\x04", b"\x7f", b"\x80\x01"):
        with pytest.raises(MalformedPacket):
            Decoder(V).feed(ack5(0x40, 0x00, props(ident + b"\x00")))


@pytest.mark.parametrize("data", [
    h("40 04 00 01 00 05   # property length 5, nothing follows"),
    h("40 06 00 01 00 02 1f 00   # Reason String cut off inside its length"),
    h("40 08 00 01 00 04 1f 00 05 61   # Reason String of 5 bytes, only 1 present"),
    h("40 07 00 01 00 03 02 00 00   # Message Expiry (4 bytes) with 2"),
], ids=["length-past-end", "string-length-cut", "string-cut", "integer-cut"])
def test_v5_property_block_past_its_end_is_malformed(data):
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(data)


@pytest.mark.parametrize("data", [
    connect5(properties=props(b"\x21\x00\x00")),                    # Receive Maximum 0
    connect5(properties=props(b"\x27\x00\x00\x00\x00")),            # Maximum Packet Size 0
    subscribe5((b"a", 0), properties=props(b"\x0b\x00")),           # Subscription Id 0
    publish5(b"a", b"", props(b"\x0b\x00")),                         # Subscription Id 0
    publish5(b"a", b"", props(b"\x01\x02")),                         # Payload Format 2
    connect5(properties=props(b"\x17\x02")),                        # Request Problem Info 2
    connect5(properties=props(b"\x19\x05")),                        # Request Response Info 5
    frame(0x20, b"\x00\x00" + props(b"\x24\x02")),                   # Maximum QoS 2
    frame(0x20, b"\x00\x00" + props(b"\x25\x02")),                   # Retain Available 2
    frame(0x20, b"\x00\x00" + props(b"\x28\x02")),                   # Wildcard Sub Avail. 2
], ids=["receive-max-0", "max-packet-size-0", "sub-id-0-subscribe", "sub-id-0-publish",
        "payload-format-2", "request-problem-2", "request-response-5", "max-qos-2",
        "retain-available-2", "wildcard-available-2"])
def test_v5_property_value_out_of_range_is_protocol_error(data):
    with pytest.raises(ProtocolError):
        Decoder(V).feed(data)


def test_v5_property_value_out_of_range_refused_on_encode():
    for p in (Properties(receive_maximum=0), Properties(maximum_packet_size=0)):
        with pytest.raises(ProtocolError):
            encode(Connect(client_id="c", properties=p), V)
    with pytest.raises(ProtocolError):
        encode(Subscribe(packet_id=1, subscriptions=(Subscription("a"),),
                         properties=Properties(subscription_identifiers=(0,))), V)


def test_v5_authentication_data_without_method_is_protocol_error():
    """3.1.2.11.10: Authentication Data without an Authentication Method."""
    with pytest.raises(ProtocolError):
        Decoder(V).feed(connect5(properties=props(b"\x16" + utf8(b"xy"))))


def test_v5_subscription_identifier_at_most_once_in_subscribe_on_encode():
    packet = Subscribe(packet_id=1, subscriptions=(Subscription("a"),),
                       properties=Properties(subscription_identifiers=(1, 2)))
    with pytest.raises(ProtocolError):
        encode(packet, V)


# --------------------------------------------------------------------------------------
# 3.1 CONNECT
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_1_0_1_server_side_first_packet_must_be_connect():
    for data in (h("c0 00"), h("f0 00"), h("30 05 00 01 74 00 00")):
        check(decode_error(data, None), ProtocolError, "MQTT-3.1.0-1")


@pytest.mark.parametrize("name", [b"MQTX", b"mqtt", b""])
def test_v5_MQTT_3_1_2_1_protocol_name_must_be_MQTT(name):
    for version in (V, None):
        check(decode_error(connect5(name=name), version), ProtocolError, "MQTT-3.1.2-1")


def test_v5_MQTT_3_1_2_1_3_1_name_with_level_5():
    """'MQIsdp' is a name this server knows (3.1), so refusing it as an unsupported
    protocol version (CONNACK 0x84 / 0x01) is as right as calling the name wrong."""
    for version in (V, None):
        check(decode_error(connect5(name=b"MQIsdp"), version), ProtocolError,
              "MQTT-3.1.2-1", "MQTT-3.1.2-2")


@pytest.mark.parametrize("level", [0, 1, 2, 6, 255])
def test_v5_MQTT_3_1_2_2_unsupported_protocol_version(level):
    err = decode_error(connect5(level=level), None)
    check(err, UnsupportedProtocolVersion, "MQTT-3.1.2-2")
    assert err.protocol_level == level
    assert err.reason_code == 0x84


def test_v5_MQTT_3_1_2_3_connect_reserved_flag():
    for version in (V, None):
        check(decode_error(connect5(0x03), version), MalformedPacket, "MQTT-3.1.2-3")


def test_v5_MQTT_3_1_2_9_will_flag_needs_will_properties_topic_and_payload():
    check(decode_error(connect5(0x06, utf8("c1"))), MalformedPacket, "MQTT-3.1.2-9")
    check(decode_error(connect5(0x06, utf8("c1") + NO_PROPS + utf8("w"))), MalformedPacket,
          "MQTT-3.1.2-9")


def test_v5_MQTT_3_1_2_11_will_qos_without_will_flag():
    for flags in (0x0A, 0x12):
        check(decode_error(connect5(flags)), MQTTError, "MQTT-3.1.2-11")


def test_v5_MQTT_3_1_2_12_will_qos_3():
    data = connect5(0x1E, utf8("c1") + NO_PROPS + utf8("w") + utf8("m"))
    check(decode_error(data), MalformedPacket, "MQTT-3.1.2-12")
    check(encode_error(Connect(client_id="c", will=Will(topic="w", qos=3))), MQTTError,
          "MQTT-3.1.2-12")


def test_v5_MQTT_3_1_2_13_will_retain_without_will_flag():
    check(decode_error(connect5(0x22)), MQTTError, "MQTT-3.1.2-13")


def test_v5_MQTT_3_1_2_16_no_user_name_without_flag():
    check(decode_error(connect5(0x02, utf8("c1") + utf8("u"))), MalformedPacket,
          "MQTT-3.1.2-16", "MQTT-3.1.2-18")


def test_v5_MQTT_3_1_2_17_user_name_flag_needs_user_name():
    check(decode_error(connect5(0x82, utf8("c1"))), MalformedPacket, "MQTT-3.1.2-17")


def test_v5_MQTT_3_1_2_18_no_password_without_flag():
    check(decode_error(connect5(0x82, utf8("c1") + utf8("u") + utf8("p"))), MalformedPacket,
          "MQTT-3.1.2-18")


def test_v5_MQTT_3_1_2_19_password_flag_needs_password():
    check(decode_error(connect5(0xC2, utf8("c1") + utf8("u"))), MalformedPacket,
          "MQTT-3.1.2-19")


def test_v5_MQTT_3_1_3_3_client_id_must_be_present():
    check(decode_error(connect5(0x02, b"")), MalformedPacket, "MQTT-3.1.3-3")


def test_v5_MQTT_3_1_3_4_client_id_is_utf8():
    check(decode_error(connect5(0x02, utf8(b"\xed\xa0\x80"))), MalformedPacket,
          "MQTT-3.1.3-4", "MQTT-1.5.4-1")


def test_v5_connect_with_bytes_after_the_last_field_is_malformed():
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(connect5(0x02, utf8("c1") + b"\x00"))


# --------------------------------------------------------------------------------------
# 3.2 CONNACK
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [0x02, 0x80, 0xFF])
def test_v5_MQTT_3_2_2_1_connack_flag_bits_7_to_1_are_zero(flags):
    check(decode_error(bytes((0x20, 0x03, flags, 0x00, 0x00))), MQTTError, "MQTT-3.2.2-1")


def test_v5_MQTT_3_2_2_6_session_present_with_failure():
    check(decode_error(h("20 03 01 87 00")), MQTTError, "MQTT-3.2.2-6")
    check(encode_error(Connack(session_present=True, reason_code=0x87)), MQTTError,
          "MQTT-3.2.2-6")


@pytest.mark.parametrize("code", [0x01, 0x04, 0x10, 0x8B, 0x8E, 0xA0, 0xFF])
def test_v5_MQTT_3_2_2_8_connack_reason_code_must_be_defined(code):
    check(decode_error(bytes((0x20, 0x03, 0x00, code, 0x00))), MQTTError, "MQTT-3.2.2-8")
    check(encode_error(Connack(reason_code=code)), MQTTError, "MQTT-3.2.2-8")


# --------------------------------------------------------------------------------------
# 3.3 PUBLISH
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_3_1_2_dup_must_be_0_for_qos0():
    check(decode_error(publish5(b"a", b"x", first=0x38)), ProtocolError, "MQTT-3.3.1-2")
    check(encode_error(Publish(topic="a", dup=True)), MQTTError, "MQTT-3.3.1-2")


def test_v5_MQTT_3_3_1_4_qos_3_is_malformed():
    check(decode_error(publish5(b"a", b"x", first=0x36, packet_id=b"\x00\x01")),
          MalformedPacket, "MQTT-3.3.1-4")
    check(encode_error(Publish(topic="a", qos=3, packet_id=1)), MQTTError, "MQTT-3.3.1-4")


@pytest.mark.parametrize("topic", ["a/+", "#", "a/#", "+/b"])
def test_v5_MQTT_3_3_2_2_no_wildcards_in_publish_topic(topic):
    check(decode_error(publish5(topic.encode(), b"x")), InvalidTopic,
          "MQTT-3.3.2-2", "MQTT-4.7.0-1")
    check(encode_error(Publish(topic=topic)), InvalidTopic, "MQTT-3.3.2-2", "MQTT-4.7.0-1")


def test_v5_MQTT_3_3_2_8_topic_alias_zero():
    check(decode_error(publish5(b"a", b"x", props(b"\x23\x00\x00"))), ProtocolError,
          "MQTT-3.3.2-8")
    check(encode_error(Publish(topic="a", properties=Properties(topic_alias=0))), MQTTError,
          "MQTT-3.3.2-8")


@pytest.mark.parametrize("topic", ["r/+", "r/#", "#"])
def test_v5_MQTT_3_3_2_14_response_topic_without_wildcards(topic):
    data = publish5(b"a", b"x", props(b"\x08" + utf8(topic)))
    check(decode_error(data), ProtocolError, "MQTT-3.3.2-14")
    packet = Publish(topic="a", properties=Properties(response_topic=topic))
    check(encode_error(packet), MQTTError, "MQTT-3.3.2-14")


def test_v5_empty_topic_without_topic_alias_is_protocol_error():
    """3.3.2.1: a zero-length Topic Name is only allowed with a Topic Alias."""
    with pytest.raises(ProtocolError):
        Decoder(V).feed(publish5(b"", b"x"))
    with pytest.raises(ProtocolError):
        encode(Publish(topic=""), V)


# --------------------------------------------------------------------------------------
# 3.4-3.7 acknowledgements, reason codes
# --------------------------------------------------------------------------------------

def check_ack_codes(rule: str, first: int, cls: type, codes: list[int]) -> None:
    for code in codes:
        check(decode_error(ack5(first, code)), MQTTError, rule)
        check(decode_error(ack5(first, code, NO_PROPS)), MQTTError, rule)
        check(encode_error(cls(packet_id=1, reason_code=code)), MQTTError, rule)


def test_v5_MQTT_3_4_2_1_puback_reason_code_must_be_defined():
    check_ack_codes("MQTT-3.4.2-1", 0x40, Puback, [0x01, 0x04, 0x11, 0x92, 0x81])


def test_v5_MQTT_3_5_2_1_pubrec_reason_code_must_be_defined():
    check_ack_codes("MQTT-3.5.2-1", 0x50, Pubrec, [0x01, 0x92, 0x04])


def test_v5_MQTT_3_6_1_1_pubrel_flags_must_be_0010():
    for first in (0x60, 0x63):
        check(decode_error(frame(first, h("00 01"))), MalformedPacket, "MQTT-3.6.1-1")


def test_v5_MQTT_3_6_2_1_pubrel_reason_code_must_be_defined():
    check_ack_codes("MQTT-3.6.2-1", 0x62, Pubrel, [0x10, 0x80, 0x91])


def test_v5_MQTT_3_7_2_1_pubcomp_reason_code_must_be_defined():
    check_ack_codes("MQTT-3.7.2-1", 0x70, Pubcomp, [0x10, 0x80, 0x01])


def test_v5_ack_with_bytes_after_properties_is_malformed():
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(h("40 05 00 01 00 00 ff   # PUBACK, empty properties, then a byte"))


# --------------------------------------------------------------------------------------
# 3.8-3.11 SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_8_1_1_subscribe_flags_must_be_0010():
    for first in (0x80, 0x83):
        check(decode_error(subscribe5((b"a", 0), first=first)), MalformedPacket,
              "MQTT-3.8.1-1")


def test_v5_MQTT_3_8_3_1_subscribe_filters_are_utf8():
    check(decode_error(subscribe5((b"\xc0\xaf", 0))), MalformedPacket,
          "MQTT-3.8.3-1", "MQTT-1.5.4-1")


def test_v5_MQTT_3_8_3_2_subscribe_needs_a_filter():
    check(decode_error(h("82 03 00 01 00")), ProtocolError, "MQTT-3.8.3-2")
    check(encode_error(Subscribe(packet_id=1, subscriptions=())), MQTTError, "MQTT-3.8.3-2")


def test_v5_MQTT_3_8_3_4_no_local_on_shared_subscription():
    check(decode_error(subscribe5((b"$share/g/a", 0x04))), ProtocolError, "MQTT-3.8.3-4")
    check(encode_error(subscribe_with("$share/g/a", no_local=True)), ProtocolError,
          "MQTT-3.8.3-4")


@pytest.mark.parametrize("options", [0x40, 0x80, 0xC0, 0x41])
def test_v5_MQTT_3_8_3_5_reserved_subscription_option_bits(options):
    check(decode_error(subscribe5((b"a", 0), (b"b", options))), MalformedPacket,
          "MQTT-3.8.3-5")


def test_v5_retain_handling_3_is_protocol_error():
    """3.8.3.1: 'It is a Protocol Error to send a Retain Handling value of 3.'"""
    with pytest.raises(ProtocolError):
        Decoder(V).feed(subscribe5((b"a", 0x30)))
    with pytest.raises(MQTTError):
        encode(subscribe_with("a", retain_handling=3), V)


def test_v5_subscription_maximum_qos_3_is_protocol_error():
    """3.8.3.1: 'It is a Protocol Error if the Maximum QoS field has the value 3.'"""
    with pytest.raises(ProtocolError):
        Decoder(V).feed(subscribe5((b"a", 0x03)))
    with pytest.raises(MQTTError):
        encode(subscribe_with("a", qos=3), V)


@pytest.mark.parametrize("code", [0x03, 0x10, 0x81, 0x84, 0x8E])
def test_v5_MQTT_3_9_3_2_suback_reason_codes_must_be_defined(code):
    check(decode_error(bytes((0x90, 0x05, 0x00, 0x01, 0x00, 0x00, code))), MQTTError,
          "MQTT-3.9.3-2")
    check(encode_error(Suback(packet_id=1, reason_codes=(0, code))), MQTTError,
          "MQTT-3.9.3-2")


def test_v5_MQTT_3_10_1_1_unsubscribe_flags_must_be_0010():
    for first in (0xA0, 0xAA):
        check(decode_error(unsubscribe5(b"a", first=first)), MalformedPacket, "MQTT-3.10.1-1")


def test_v5_MQTT_3_10_3_1_unsubscribe_filters_are_utf8():
    check(decode_error(unsubscribe5(b"a\xff")), MalformedPacket,
          "MQTT-3.10.3-1", "MQTT-1.5.4-1")


def test_v5_MQTT_3_10_3_2_unsubscribe_needs_a_filter():
    check(decode_error(h("a2 03 00 01 00")), ProtocolError, "MQTT-3.10.3-2")
    check(encode_error(Unsubscribe(packet_id=1, topic_filters=())), MQTTError,
          "MQTT-3.10.3-2")


@pytest.mark.parametrize("code", [0x01, 0x10, 0x8E, 0x97])
def test_v5_MQTT_3_11_3_2_unsuback_reason_codes_must_be_defined(code):
    check(decode_error(bytes((0xB0, 0x04, 0x00, 0x01, 0x00, code))), MQTTError,
          "MQTT-3.11.3-2")
    check(encode_error(Unsuback(packet_id=1, reason_codes=(code,))), MQTTError,
          "MQTT-3.11.3-2")


# --------------------------------------------------------------------------------------
# 3.14 DISCONNECT, 3.15 AUTH
# --------------------------------------------------------------------------------------

def test_v5_MQTT_3_14_1_1_disconnect_reserved_bits():
    for first in (0xE1, 0xE4):
        check(decode_error(bytes((first, 0x00))), MalformedPacket, "MQTT-3.14.1-1")


@pytest.mark.parametrize("code", [0x01, 0x84, 0x88, 0x91, 0xFF])
def test_v5_MQTT_3_14_2_1_disconnect_reason_codes_must_be_defined(code):
    check(decode_error(bytes((0xE0, 0x01, code))), MQTTError, "MQTT-3.14.2-1")
    check(encode_error(Disconnect(reason_code=code)), MQTTError, "MQTT-3.14.2-1")


def test_v5_MQTT_3_15_1_1_auth_reserved_bits():
    for first in (0xF1, 0xF2, 0xF8):
        check(decode_error(bytes((first, 0x00))), MalformedPacket, "MQTT-3.15.1-1")


@pytest.mark.parametrize("code", [0x01, 0x80, 0x87, 0x1A])
def test_v5_MQTT_3_15_2_1_auth_reason_codes_must_be_defined(code):
    data = frame(0xF0, bytes((code,)) + props(b"\x15" + utf8("m")))
    check(decode_error(data), MQTTError, "MQTT-3.15.2-1")
    check(encode_error(Auth(reason_code=code, properties=Properties(
        authentication_method="m"))), MQTTError, "MQTT-3.15.2-1")


# --------------------------------------------------------------------------------------
# 4.7 topics, 4.8.2 shared subscriptions
# --------------------------------------------------------------------------------------

def test_v5_MQTT_4_7_0_1_wildcards_only_in_filters():
    check(decode_error(publish5(b"a/#")), InvalidTopic, "MQTT-4.7.0-1", "MQTT-3.3.2-2")


@pytest.mark.parametrize("bad", ["a/#/b", "a#", "#/a", "##"])
def test_v5_MQTT_4_7_1_1_multi_level_wildcard_last_and_alone(bad):
    check(decode_error(subscribe5((bad.encode(), 0))), InvalidTopic, "MQTT-4.7.1-1")
    check(decode_error(unsubscribe5(bad.encode())), InvalidTopic, "MQTT-4.7.1-1")
    check(encode_error(subscribe_with(bad)), InvalidTopic, "MQTT-4.7.1-1")


@pytest.mark.parametrize("bad", ["a+", "+a", "a/b+/c", "++"])
def test_v5_MQTT_4_7_1_2_single_level_wildcard_fills_a_level(bad):
    check(decode_error(subscribe5((bad.encode(), 0))), InvalidTopic, "MQTT-4.7.1-2")
    check(decode_error(unsubscribe5(bad.encode())), InvalidTopic, "MQTT-4.7.1-2")
    check(encode_error(subscribe_with(bad)), InvalidTopic, "MQTT-4.7.1-2")


def test_v5_MQTT_4_7_3_1_filters_are_at_least_one_character():
    check(decode_error(subscribe5((b"", 0))), InvalidTopic, "MQTT-4.7.3-1")
    check(decode_error(unsubscribe5(b"")), InvalidTopic, "MQTT-4.7.3-1")
    check(encode_error(subscribe_with("")), InvalidTopic, "MQTT-4.7.3-1")


def test_v5_MQTT_4_7_3_2_no_null_character_in_topics():
    check(decode_error(publish5(b"a\x00")), MQTTError, "MQTT-4.7.3-2", "MQTT-1.5.4-2")
    check(decode_error(subscribe5((b"\x00", 0))), MQTTError, "MQTT-4.7.3-2", "MQTT-1.5.4-2")


def test_v5_MQTT_4_7_3_3_topic_longer_than_65535_bytes_cannot_be_encoded():
    check(encode_error(Publish(topic="a" * 65536)), MQTTError, "MQTT-4.7.3-3")
    check(encode_error(subscribe_with("b" * 65536)), MQTTError, "MQTT-4.7.3-3")


@pytest.mark.parametrize("bad", ["$share//a", "$share/", "$share//"])
def test_v5_MQTT_4_8_2_1_share_name_at_least_one_character(bad):
    check(decode_error(subscribe5((bad.encode(), 0))), ProtocolError, "MQTT-4.8.2-1")
    check(encode_error(subscribe_with(bad)), ProtocolError, "MQTT-4.8.2-1")


@pytest.mark.parametrize("bad", ["$share/a+b/c", "$share/a#/c", "$share/grp",
                                 "$share/+/c", "$share/#"])
def test_v5_MQTT_4_8_2_2_share_name_characters_then_slash_and_filter(bad):
    check(decode_error(subscribe5((bad.encode(), 0))), ProtocolError, "MQTT-4.8.2-2")
    check(encode_error(subscribe_with(bad)), ProtocolError, "MQTT-4.8.2-2")


def test_v5_MQTT_4_8_2_2_share_name_followed_by_empty_filter():
    check(decode_error(subscribe5((b"$share/grp/", 0))), ProtocolError,
          "MQTT-4.8.2-2", "MQTT-4.7.3-1")


def test_v5_shared_filter_part_follows_the_filter_rules():
    check(decode_error(subscribe5((b"$share/g/a#", 0))), InvalidTopic, "MQTT-4.7.1-1")


@pytest.mark.parametrize("good", ["$share/g/#", "$share/g/+/x", "$share/g//", "$sharex/a",
                                  "$share1/#"])
def test_v5_valid_shared_and_share_like_filters_are_accepted(good):
    packet = subscribe_with(good, qos=1)
    assert Decoder(V).feed(encode(packet, V)) == [packet]


# --------------------------------------------------------------------------------------
# Remaining length and packet types (no statement ids)
# --------------------------------------------------------------------------------------

def test_v5_remaining_length_of_five_bytes_is_malformed():
    for data in (h("30 80 80 80 80 01"), h("30 ff ff ff ff")):
        with pytest.raises(MalformedPacket):
            Decoder(V).feed(data)


@pytest.mark.parametrize("data", [h("40 01 00"), h("20 01 00"), h("b0 03 00 01 00"),
                                  h("30 01 00")],
                         ids=["puback-1", "connack-1", "unsuback-no-codes", "publish-1"])
def test_v5_remaining_length_too_short_for_the_fields(data):
    with pytest.raises(MQTTError):
        Decoder(V).feed(data)


@pytest.mark.parametrize("data", [h("c0 01 00"), h("d0 01 00"), h("20 04 00 00 00 ff")],
                         ids=["pingreq", "pingresp", "connack"])
def test_v5_remaining_length_with_extra_bytes_is_malformed(data):
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(data)


def test_v5_packet_type_0_is_malformed():
    for version in (V, None):
        with pytest.raises(MalformedPacket):
            Decoder(version).feed(h("00 00"))
