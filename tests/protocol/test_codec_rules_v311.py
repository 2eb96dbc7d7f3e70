"""MQTT 3.1.1 codec-level normative statements, one test per statement id.

Each test feeds bytes that break exactly one statement and checks the error type and that
``err.rule`` names the statement. Where the encoder can be handed the bad value, it must
refuse it too. Where two statements say the same thing about the same byte (e.g. "a
topic name has no wildcards", stated in 3.3.2 and again in 4.7.1), either id is accepted.
Statements without an id of their own (e.g. a 5-byte remaining length) get descriptive
test names and are checked for the error type only.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.errors import (
    InvalidTopic, MalformedPacket, MQTTError, ProtocolError, UnsupportedProtocolVersion,
)
from mqttsim.protocol.packets import (
    Connack, Connect, Publish, Suback, Subscribe, Subscription, Unsubscribe, Will,
)

import vectors
from vectors import check, connect_bytes, frame, h, utf8

V = 4  # protocol level of MQTT 3.1.1


def decode_error(data: bytes, version: int | None = V) -> MQTTError:
    return vectors.decode_error(data, version)


def encode_error(packet, version: int = V) -> MQTTError:
    return vectors.encode_error(packet, version)


def publish_bytes(topic: bytes, payload: bytes = b"", first: int = 0x30,
                  packet_id: bytes = b"") -> bytes:
    return frame(first, utf8(topic) + packet_id + payload)


def subscribe_bytes(*pairs: tuple[bytes, int], packet_id: int = 1, first: int = 0x82) -> bytes:
    body = packet_id.to_bytes(2, "big") + b"".join(utf8(f) + bytes((q,)) for f, q in pairs)
    return frame(first, body)


def unsubscribe_bytes(*filters: bytes, packet_id: int = 1, first: int = 0xA2) -> bytes:
    return frame(first, packet_id.to_bytes(2, "big") + b"".join(utf8(f) for f in filters))


# --------------------------------------------------------------------------------------
# 1.5.3 UTF-8 encoded strings
# --------------------------------------------------------------------------------------

BAD_UTF8 = {
    "surrogate_ed_a0_80": bytes.fromhex("ed a0 80"),  # U+D800 encoded as if a character
    "overlong_c0_af": bytes.fromhex("c0 af"),          # '/' in two bytes
    "invalid_byte_ff": bytes.fromhex("ff"),
    "truncated_sequence": bytes.fromhex("61 e2 82"),
    "lone_continuation": bytes.fromhex("80"),
}


@pytest.mark.parametrize("bad", BAD_UTF8.values(), ids=BAD_UTF8.keys())
def test_v311_MQTT_1_5_3_1_ill_formed_utf8_in_topic(bad):
    check(decode_error(publish_bytes(bad, b"x")), MalformedPacket, "MQTT-1.5.3-1")


@pytest.mark.parametrize("bad", BAD_UTF8.values(), ids=BAD_UTF8.keys())
def test_v311_MQTT_1_5_3_1_ill_formed_utf8_in_user_name(bad):
    data = connect_bytes(0x82, utf8("c1") + utf8(bad))
    check(decode_error(data), MalformedPacket, "MQTT-1.5.3-1")


def test_v311_MQTT_1_5_3_1_surrogate_refused_on_encode():
    check(encode_error(Publish(topic="a\ud800")), MQTTError, "MQTT-1.5.3-1")
    check(encode_error(Connect(client_id="\udfff")), MQTTError, "MQTT-1.5.3-1")


def test_v311_MQTT_1_5_3_2_null_character_in_client_id():
    data = connect_bytes(0x02, utf8(b"a\x00b"))
    check(decode_error(data), MalformedPacket, "MQTT-1.5.3-2")


def test_v311_MQTT_1_5_3_2_null_character_refused_on_encode():
    check(encode_error(Connect(client_id="a\x00b")), MQTTError, "MQTT-1.5.3-2")
    check(encode_error(Connect(client_id="c", username="\x00")), MQTTError, "MQTT-1.5.3-2")


def test_v311_MQTT_1_5_3_3_bom_is_kept_as_u_feff():
    data = publish_bytes(bytes.fromhex("ef bb bf 61"), b"p")  # BOM + "a"
    assert Decoder(V).feed(data) == [Publish(topic="\ufeffa", payload=b"p")]
    assert encode(Publish(topic="\ufeffa", payload=b"p"), V) == data
    connect = connect_bytes(0x02, utf8(bytes.fromhex("ef bb bf")))
    assert Decoder(V).feed(connect) == [Connect(client_id="\ufeff")]


# --------------------------------------------------------------------------------------
# 2.2.2 fixed-header flags, 2.3.1 packet identifiers
# --------------------------------------------------------------------------------------

RESERVED_FLAG_VIOLATIONS = {
    "connect_0x11": b"\x11" + connect_bytes()[1:],
    "connack_0x21": h("21 02 00 00"),
    "puback_0x42": h("42 02 00 01"),
    "pubrec_0x58": h("58 02 00 01"),
    "pubcomp_0x71": h("71 02 00 01"),
    "suback_0x92": h("92 03 00 01 00"),
    "unsuback_0xb1": h("b1 02 00 01"),
    "pingreq_0xc1": h("c1 00"),
    "pingresp_0xd2": h("d2 00"),
}


@pytest.mark.parametrize("data", RESERVED_FLAG_VIOLATIONS.values(),
                         ids=RESERVED_FLAG_VIOLATIONS.keys())
def test_v311_MQTT_2_2_2_2_invalid_fixed_header_flags(data):
    check(decode_error(data), MalformedPacket, "MQTT-2.2.2-2", "MQTT-2.2.2-1")


def test_v311_MQTT_2_2_2_2_invalid_flags_on_server_side_connect():
    check(decode_error(RESERVED_FLAG_VIOLATIONS["connect_0x11"], None), MalformedPacket,
          "MQTT-2.2.2-2", "MQTT-2.2.2-1")


def test_v311_MQTT_3_6_1_1_pubrel_flags_must_be_0010():
    for first in (0x60, 0x63, 0x6A):
        check(decode_error(frame(first, h("00 01"))), MalformedPacket, "MQTT-3.6.1-1")


def test_v311_MQTT_3_8_1_1_subscribe_flags_must_be_0010():
    for first in (0x80, 0x83, 0x8A):
        data = subscribe_bytes((b"a/b", 0), first=first)
        check(decode_error(data), MalformedPacket, "MQTT-3.8.1-1")


def test_v311_MQTT_3_10_1_1_unsubscribe_flags_must_be_0010():
    for first in (0xA0, 0xA3):
        check(decode_error(unsubscribe_bytes(b"a/b", first=first)), MalformedPacket,
              "MQTT-3.10.1-1")


def test_v311_MQTT_3_14_1_1_disconnect_reserved_bits():
    for first in (0xE1, 0xE2, 0xE8):
        check(decode_error(bytes((first, 0))), MalformedPacket, "MQTT-3.14.1-1")


def test_v311_MQTT_2_3_1_1_packet_id_zero_refused_on_decode():
    cases = [
        subscribe_bytes((b"a/b", 0), packet_id=0),
        unsubscribe_bytes(b"a/b", packet_id=0),
        publish_bytes(b"a/b", b"x", first=0x32, packet_id=b"\x00\x00"),  # QoS 1
        publish_bytes(b"a/b", b"x", first=0x34, packet_id=b"\x00\x00"),  # QoS 2
    ]
    for data in cases:
        check(decode_error(data), MQTTError, "MQTT-2.3.1-1")


def test_v311_MQTT_2_3_1_1_packet_id_zero_or_missing_refused_on_encode():
    sub = (Subscription("a/b"),)
    check(encode_error(Subscribe(packet_id=0, subscriptions=sub)), MQTTError, "MQTT-2.3.1-1")
    check(encode_error(Unsubscribe(packet_id=0, topic_filters=("a",))), MQTTError,
          "MQTT-2.3.1-1")
    check(encode_error(Publish(topic="a", qos=1, packet_id=0)), MQTTError, "MQTT-2.3.1-1")
    check(encode_error(Publish(topic="a", qos=2, packet_id=None)), MQTTError, "MQTT-2.3.1-1")


def test_v311_MQTT_2_3_1_5_qos0_publish_has_no_packet_id():
    check(encode_error(Publish(topic="a", qos=0, packet_id=5)), MQTTError, "MQTT-2.3.1-5")


def test_v311_MQTT_2_3_1_5_qos0_bytes_after_topic_are_payload():
    """On the wire nothing marks a QoS 0 packet id: two bytes after the topic are payload."""
    assert Decoder(V).feed(publish_bytes(b"a", h("00 05"))) == \
        [Publish(topic="a", payload=b"\x00\x05")]


def test_v311_packet_id_out_of_range_refused_on_encode():
    with pytest.raises(MQTTError):
        encode(Publish(topic="a", qos=1, packet_id=65536), V)


# --------------------------------------------------------------------------------------
# 3.1 CONNECT
# --------------------------------------------------------------------------------------

def test_v311_MQTT_3_1_0_1_server_side_first_packet_must_be_connect():
    for data in (h("c0 00"), h("32 07 00 03 61 2f 62 00 01"), h("e0 00")):
        check(decode_error(data, None), ProtocolError, "MQTT-3.1.0-1")


def test_v311_MQTT_3_1_2_1_wrong_protocol_name():
    for version in (V, None):
        err = decode_error(connect_bytes(name=b"MQTX"), version)
        check(err, ProtocolError, "MQTT-3.1.2-1")


def test_v311_MQTT_3_1_2_1_protocol_name_not_matching_level():
    """'MQIsdp' is the 3.1 name; with level 4 it is neither 3.1 nor 3.1.1."""
    err = decode_error(connect_bytes(name=b"MQIsdp", level=4), None)
    check(err, ProtocolError, "MQTT-3.1.2-1", "MQTT-3.1.2-2")


def test_v311_MQTT_3_1_2_2_unsupported_protocol_level():
    err = decode_error(connect_bytes(level=6), None)
    check(err, UnsupportedProtocolVersion, "MQTT-3.1.2-2")
    assert err.protocol_level == 6
    assert err.protocol_name == "MQTT"


def test_v311_MQTT_3_1_2_3_connect_reserved_flag():
    for version in (V, None):
        check(decode_error(connect_bytes(0x03), version), MQTTError, "MQTT-3.1.2-3")


def test_v311_MQTT_3_1_2_9_will_flag_needs_will_topic_and_message():
    check(decode_error(connect_bytes(0x06, utf8("c1"))), MalformedPacket, "MQTT-3.1.2-9")
    check(decode_error(connect_bytes(0x06, utf8("c1") + utf8("w"))), MalformedPacket,
          "MQTT-3.1.2-9")


def test_v311_MQTT_3_1_2_11_no_will_fields_without_will_flag():
    """Will topic and message present although the Will Flag is 0: bytes left over."""
    data = connect_bytes(0x02, utf8("c1") + utf8("w") + utf8("m"))
    check(decode_error(data), MalformedPacket, "MQTT-3.1.2-11", "MQTT-3.1.2-18",
          "MQTT-3.1.2-20")


def test_v311_MQTT_3_1_2_13_will_qos_without_will_flag():
    for flags in (0x0A, 0x12):  # Will QoS 1 / 2, Will Flag 0
        check(decode_error(connect_bytes(flags)), MQTTError, "MQTT-3.1.2-13", "MQTT-3.1.2-11")


def test_v311_MQTT_3_1_2_14_will_qos_3():
    data = connect_bytes(0x1E, utf8("c1") + utf8("w") + utf8("m"))  # will QoS 3, will, clean
    check(decode_error(data), MQTTError, "MQTT-3.1.2-14")
    check(encode_error(Connect(client_id="c", will=Will(topic="w", qos=3))), MQTTError,
          "MQTT-3.1.2-14")


def test_v311_MQTT_3_1_2_15_will_retain_without_will_flag():
    check(decode_error(connect_bytes(0x22)), MQTTError, "MQTT-3.1.2-15", "MQTT-3.1.2-11")


def test_v311_MQTT_3_1_2_18_no_user_name_without_flag():
    data = connect_bytes(0x02, utf8("c1") + utf8("user"))
    check(decode_error(data), MalformedPacket, "MQTT-3.1.2-18", "MQTT-3.1.2-20")


def test_v311_MQTT_3_1_2_19_user_name_flag_needs_user_name():
    check(decode_error(connect_bytes(0x82, utf8("c1"))), MalformedPacket, "MQTT-3.1.2-19")


def test_v311_MQTT_3_1_2_20_no_password_without_flag():
    data = connect_bytes(0x82, utf8("c1") + utf8("user") + utf8("pw"))
    check(decode_error(data), MalformedPacket, "MQTT-3.1.2-20")


def test_v311_MQTT_3_1_2_21_password_flag_needs_password():
    data = connect_bytes(0xC2, utf8("c1") + utf8("user"))
    check(decode_error(data), MalformedPacket, "MQTT-3.1.2-21")


def test_v311_MQTT_3_1_2_22_password_without_user_name():
    data = connect_bytes(0x42, utf8("c1") + utf8("pw"))
    check(decode_error(data), MQTTError, "MQTT-3.1.2-22")
    check(encode_error(Connect(client_id="c1", password=b"pw")), MQTTError, "MQTT-3.1.2-22")


def test_v311_MQTT_3_1_3_3_client_id_must_be_present():
    check(decode_error(connect_bytes(0x02, b"")), MalformedPacket, "MQTT-3.1.3-3")


def test_v311_MQTT_3_1_3_4_client_id_is_utf8():
    check(decode_error(connect_bytes(0x02, utf8(b"\xc0\xaf"))), MalformedPacket,
          "MQTT-3.1.3-4", "MQTT-1.5.3-1")


def test_v311_connect_with_bytes_after_the_last_field_is_malformed():
    data = connect_bytes(0xC2, utf8("c1") + utf8("u") + utf8(b"pw") + b"\x00")
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(data)


def test_v311_connect_truncated_in_variable_header_is_malformed():
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(h("10 06 00 04 4d 51 54 54   # ends after the protocol name"))


# --------------------------------------------------------------------------------------
# 3.2 CONNACK
# --------------------------------------------------------------------------------------

def test_v311_connack_reserved_acknowledge_flags():
    """3.1.1 section 3.2.2.1: bits 7-1 are reserved and must be 0 (no statement id)."""
    for flags in (0x02, 0x80, 0xFE):
        with pytest.raises(MQTTError):
            Decoder(V).feed(bytes((0x20, 0x02, flags, 0x00)))


def test_v311_connack_reserved_return_codes():
    """Return codes 6-255 are reserved (table 3.1)."""
    for code in (6, 0x80, 0xFF):
        with pytest.raises(MQTTError):
            Decoder(V).feed(bytes((0x20, 0x02, 0x00, code)))


def test_v311_MQTT_3_2_2_4_session_present_with_refusal():
    check(decode_error(h("20 02 01 05")), MQTTError, "MQTT-3.2.2-4")
    check(encode_error(Connack(session_present=True, reason_code=5)), MQTTError, "MQTT-3.2.2-4")


# --------------------------------------------------------------------------------------
# 3.3 PUBLISH
# --------------------------------------------------------------------------------------

def test_v311_MQTT_3_3_1_2_dup_must_be_0_for_qos0():
    # The spec names no error type; the codec treats it as a protocol violation.
    check(decode_error(publish_bytes(b"a/b", b"hi", first=0x38)), ProtocolError,
          "MQTT-3.3.1-2")
    check(encode_error(Publish(topic="a/b", dup=True)), MQTTError, "MQTT-3.3.1-2")


def test_v311_MQTT_3_3_1_4_qos_3():
    for first in (0x36, 0x37, 0x3E):
        data = publish_bytes(b"a/b", b"hi", first=first, packet_id=b"\x00\x01")
        check(decode_error(data), MQTTError, "MQTT-3.3.1-4")
    check(encode_error(Publish(topic="a", qos=3, packet_id=1)), MQTTError, "MQTT-3.3.1-4")


@pytest.mark.parametrize("topic", ["a/+", "+", "a/#", "#", "a+b", "sport/#/x"])
def test_v311_MQTT_3_3_2_2_no_wildcards_in_publish_topic(topic):
    check(decode_error(publish_bytes(topic.encode(), b"x")), InvalidTopic,
          "MQTT-3.3.2-2", "MQTT-4.7.1-1")
    check(encode_error(Publish(topic=topic)), InvalidTopic, "MQTT-3.3.2-2", "MQTT-4.7.1-1")


def test_v311_publish_too_short_for_its_packet_id_is_malformed():
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(h("32 05 00 03 61 2f 62   # QoS 1 but no room for the packet id"))
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(h("30 03 00 03 61   # topic length 3, one byte left"))


# --------------------------------------------------------------------------------------
# 3.8 SUBSCRIBE, 3.9 SUBACK, 3.10 UNSUBSCRIBE, 3.11 UNSUBACK
# --------------------------------------------------------------------------------------

def test_v311_MQTT_3_8_3_1_subscribe_filters_are_utf8():
    check(decode_error(subscribe_bytes((b"a/\xff", 0))), MalformedPacket,
          "MQTT-3.8.3-1", "MQTT-1.5.3-1")


def test_v311_MQTT_3_8_3_1_subscribe_filter_cut_short():
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(h("82 06 00 01 00 05 61 2f   # filter length 5, only 2 bytes"))


def test_v311_MQTT_3_8_3_3_subscribe_needs_a_filter():
    check(decode_error(h("82 02 00 01")), ProtocolError, "MQTT-3.8.3-3")
    check(encode_error(Subscribe(packet_id=1, subscriptions=())), MQTTError, "MQTT-3.8.3-3")


def test_v311_MQTT_3_8_3_3_filter_without_qos_byte():
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(h("82 07 00 01 00 03 61 2f 62   # filter, but its QoS byte missing"))


@pytest.mark.parametrize("options", [0x03, 0x04, 0x08, 0x10, 0x40, 0x80, 0xFF])
def test_v311_MQTT_3_8_3_4_requested_qos_3_or_reserved_bits(options):
    data = subscribe_bytes((b"a/b", 1), (b"c", options))
    check(decode_error(data), MalformedPacket, "MQTT-3.8.3-4")


def test_v311_MQTT_3_8_3_4_requested_qos_3_refused_on_encode():
    packet = Subscribe(packet_id=1, subscriptions=(Subscription("a", qos=3),))
    check(encode_error(packet), MQTTError, "MQTT-3.8.3-4")


@pytest.mark.parametrize("code", [0x03, 0x10, 0x81, 0x87, 0xFF])
def test_v311_MQTT_3_9_3_2_suback_return_codes(code):
    check(decode_error(bytes((0x90, 0x04, 0x00, 0x01, 0x00, code))), MQTTError,
          "MQTT-3.9.3-2")
    check(encode_error(Suback(packet_id=1, reason_codes=(0, code))), MQTTError, "MQTT-3.9.3-2")


def test_v311_MQTT_3_10_3_1_unsubscribe_filters_are_utf8():
    check(decode_error(unsubscribe_bytes(b"\xed\xa0\x80")), MalformedPacket,
          "MQTT-3.10.3-1", "MQTT-1.5.3-1")


def test_v311_MQTT_3_10_3_2_unsubscribe_needs_a_filter():
    check(decode_error(h("a2 02 00 01")), ProtocolError, "MQTT-3.10.3-2")
    check(encode_error(Unsubscribe(packet_id=1, topic_filters=())), MQTTError,
          "MQTT-3.10.3-2")


# --------------------------------------------------------------------------------------
# 4.7 topic names and filters
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("topic", ["a/+", "#"])
def test_v311_MQTT_4_7_1_1_wildcards_only_in_filters(topic):
    check(decode_error(publish_bytes(topic.encode())), InvalidTopic,
          "MQTT-4.7.1-1", "MQTT-3.3.2-2")


@pytest.mark.parametrize("bad", ["a/#/b", "a#", "#/a", "a/b#", "##"])
def test_v311_MQTT_4_7_1_2_multi_level_wildcard_last_and_alone(bad):
    check(decode_error(subscribe_bytes((bad.encode(), 0))), InvalidTopic, "MQTT-4.7.1-2")
    check(decode_error(unsubscribe_bytes(bad.encode())), InvalidTopic, "MQTT-4.7.1-2")
    packet = Subscribe(packet_id=1, subscriptions=(Subscription(bad),))
    check(encode_error(packet), InvalidTopic, "MQTT-4.7.1-2")


@pytest.mark.parametrize("bad", ["a+", "+a/b", "a/b+", "a/+b/c", "++"])
def test_v311_MQTT_4_7_1_3_single_level_wildcard_fills_a_level(bad):
    check(decode_error(subscribe_bytes((bad.encode(), 0))), InvalidTopic, "MQTT-4.7.1-3")
    check(decode_error(unsubscribe_bytes(bad.encode())), InvalidTopic, "MQTT-4.7.1-3")
    packet = Unsubscribe(packet_id=1, topic_filters=(bad,))
    check(encode_error(packet), InvalidTopic, "MQTT-4.7.1-3")


@pytest.mark.parametrize("good", ["#", "+", "+/+", "/", "a//b", "/#", "+/a/#", "$SYS/#"])
def test_v311_valid_filters_are_accepted(good):
    packet = Subscribe(packet_id=1, subscriptions=(Subscription(good, 1),))
    assert Decoder(V).feed(encode(packet, V)) == [packet]


def test_v311_MQTT_4_7_3_1_topics_are_at_least_one_character():
    check(decode_error(publish_bytes(b"", b"x")), InvalidTopic, "MQTT-4.7.3-1")
    check(decode_error(subscribe_bytes((b"", 0))), InvalidTopic, "MQTT-4.7.3-1")
    check(decode_error(unsubscribe_bytes(b"")), InvalidTopic, "MQTT-4.7.3-1")
    check(encode_error(Publish(topic="")), InvalidTopic, "MQTT-4.7.3-1")
    check(encode_error(Subscribe(packet_id=1, subscriptions=(Subscription(""),))),
          InvalidTopic, "MQTT-4.7.3-1")


def test_v311_MQTT_4_7_3_2_no_null_character_in_topics():
    check(decode_error(publish_bytes(b"a\x00b")), MQTTError, "MQTT-4.7.3-2", "MQTT-1.5.3-2")
    check(decode_error(subscribe_bytes((b"a/\x00", 0))), MQTTError,
          "MQTT-4.7.3-2", "MQTT-1.5.3-2")
    check(encode_error(Publish(topic="a\x00b")), MQTTError, "MQTT-4.7.3-2", "MQTT-1.5.3-2")


def test_v311_MQTT_4_7_3_3_topic_longer_than_65535_bytes_cannot_be_encoded():
    check(encode_error(Publish(topic="a" * 65536)), MQTTError, "MQTT-4.7.3-3")
    check(encode_error(Publish(topic="\u00e9" * 32768)), MQTTError, "MQTT-4.7.3-3")
    packet = Subscribe(packet_id=1, subscriptions=(Subscription("a" * 65536),))
    check(encode_error(packet), MQTTError, "MQTT-4.7.3-3")


# --------------------------------------------------------------------------------------
# Remaining length and packet types (section 2.2.3 / 2.2.1: no statement ids)
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [h("30 80 80 80 80 01"), h("30 ff ff ff ff 7f"),
                                  h("c0 80 80 80 80 00")], ids=["80x4-01", "ffx4-7f", "ping"])
def test_v311_remaining_length_of_five_bytes_is_malformed(data):
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(data)


def test_v311_remaining_length_fifth_byte_refused_without_waiting_for_body():
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(h("30 ff ff ff ff   # a 5th length byte must follow: already bad"))


def test_v311_largest_remaining_length_header_is_not_an_error_by_itself():
    """ff ff ff 7f = 268,435,455 is legal; the decoder just waits for the body."""
    assert Decoder(V).feed(h("30 ff ff ff 7f 00 01 74")) == []


@pytest.mark.parametrize("data", [
    h("40 01 00"),                 # PUBACK body shorter than a packet id
    h("40 00"),                    # PUBACK with no body at all
    h("b0 01 00"),                 # UNSUBACK too short
    h("20 01 00"),                 # CONNACK too short
], ids=["puback-1", "puback-0", "unsuback-1", "connack-1"])
def test_v311_remaining_length_too_short_for_the_fields(data):
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(data)


def test_v311_suback_without_return_codes_is_refused():
    """One return code per filter [MQTT-3.9.3-1], and a SUBSCRIBE has at least one."""
    with pytest.raises(MQTTError):
        Decoder(V).feed(h("90 02 00 01"))


@pytest.mark.parametrize("data", [
    h("40 03 00 01 00"),           # PUBACK with a reason code: 5.0 only
    h("50 04 00 01 00 00"),        # PUBREC with reason + property length
    h("62 03 00 01 92"),           # PUBREL with a reason code
    h("70 03 00 01 00"),           # PUBCOMP
    h("b0 03 00 01 00"),           # UNSUBACK with a reason code
    h("20 03 00 00 00"),           # CONNACK with a property length
    h("c0 01 00"),                 # PINGREQ with a body
    h("d0 01 00"),                 # PINGRESP with a body
    h("e0 01 00"),                 # DISCONNECT with a reason code
], ids=["puback", "pubrec", "pubrel", "pubcomp", "unsuback", "connack", "pingreq",
        "pingresp", "disconnect"])
def test_v311_remaining_length_with_extra_bytes_is_malformed(data):
    with pytest.raises(MalformedPacket):
        Decoder(V).feed(data)


@pytest.mark.parametrize("data", [h("00 00"), h("0f 00"), h("f0 00"), h("f0 02 00 00")],
                         ids=["type0", "type0-flags", "type15", "type15-body"])
def test_v311_reserved_packet_types_are_malformed(data):
    for version in (3, V):
        with pytest.raises(MalformedPacket):
            Decoder(version).feed(data)
    with pytest.raises(MalformedPacket):  # server side, once it knows the version
        Decoder().feed(connect_bytes() + data)
