"""Known-answer byte vectors for every MQTT control packet, written by hand from the specs.

Every vector was worked out from the packet-format sections of the OASIS MQTT 3.1.1 and
5.0 standards and the IBM MQTT 3.1 specification, field by field, *not* by running our
encoder: that independence is what makes them worth having. Each hex string carries one
comment per field, so a failing vector can be checked against the spec by eye.

Conventions the vectors pin down where the spec leaves the sender a choice:

* MQTT 5 properties are written in ascending identifier order (the spec allows any order;
  ``DECODE_ONLY`` checks that other orders decode to the same value).
* MQTT 5 PUBACK/PUBREC/PUBREL/PUBCOMP/DISCONNECT/AUTH use the shortest form: the reason
  code is left out when it is 0x00 and there are no properties, and the property length is
  left out when there are no properties (sections 3.4.2.1, 3.14.2.1, 3.15.2.1).

Versions are protocol levels: 3 = MQTT 3.1 ("MQIsdp"), 4 = 3.1.1, 5 = 5.0.
"""

from __future__ import annotations

from dataclasses import dataclass

from mqttsim.protocol.packets import (
    Auth, Connack, Connect, Disconnect, Pingreq, Pingresp, Puback, Pubcomp, Publish, Pubrec,
    Pubrel, Suback, Subscribe, Subscription, Unsuback, Unsubscribe, Will,
)
from mqttsim.protocol.properties import Properties

V31, V311, V5 = 3, 4, 5
OLD = (V31, V311)  # the wire format of these packets is identical in 3.1 and 3.1.1
ALL = (V31, V311, V5)


def h(text: str) -> bytes:
    """Bytes from commented hex: everything after '#' on a line is ignored."""
    return bytes.fromhex("".join(line.split("#", 1)[0] for line in text.splitlines()))


@dataclass(frozen=True)
class Vector:
    """One packet value and the exact bytes it is on the wire in ``versions``."""

    name: str
    versions: tuple[int, ...]
    packet: object
    data: bytes

    def __repr__(self) -> str:  # keeps pytest ids and failure output short
        return f"Vector({self.name})"


# --------------------------------------------------------------------------------------
# CONNECT (3.1.1 section 3.1, 5.0 section 3.1, IBM 3.1 section 3.1)
# --------------------------------------------------------------------------------------

CONNECT = [
    Vector("connect_v31_minimal", (V31,), Connect(client_id="c1", keepalive=60), h("""
        10 10                     # CONNECT, remaining length 16
        00 06 4d 51 49 73 64 70   # protocol name "MQIsdp"
        03                        # protocol level 3 (MQTT 3.1)
        02                        # connect flags: clean session
        00 3c                     # keep alive 60 s
        00 02 63 31               # client id "c1"
    """)),
    Vector("connect_v311_minimal", (V311,), Connect(client_id="c1", keepalive=60), h("""
        10 0e                     # CONNECT, remaining length 14
        00 04 4d 51 54 54         # protocol name "MQTT"
        04                        # protocol level 4 (MQTT 3.1.1)
        02                        # connect flags: clean session
        00 3c                     # keep alive 60 s
        00 02 63 31               # client id "c1"
    """)),
    Vector("connect_v311_empty_client_id", (V311,), Connect(), h("""
        10 0c                     # CONNECT, remaining length 12
        00 04 4d 51 54 54         # "MQTT"
        04                        # level 4
        02                        # clean session
        00 3c                     # keep alive 60
        00 00                     # client id "" (allowed with clean session, 3.1.3-7)
    """)),
    Vector("connect_v311_persistent_no_keepalive", (V311,),
           Connect(client_id="c1", clean_session=False, keepalive=0), h("""
        10 0e                     # CONNECT, remaining length 14
        00 04 4d 51 54 54         # "MQTT"
        04                        # level 4
        00                        # connect flags: nothing set (clean session 0)
        00 00                     # keep alive 0 = off
        00 02 63 31               # client id "c1"
    """)),
    Vector("connect_v31_all_fields", (V31,),
           Connect(client_id="client-1", clean_session=False, keepalive=30, username="user",
                   password=b"pw\x00\xff", will=Will(topic="will/t", payload=b"bye", qos=2)),
           h("""
        10 2f                     # CONNECT, remaining length 47
        00 06 4d 51 49 73 64 70   # "MQIsdp"
        03                        # level 3
        d4                        # flags: user 0x80 | password 0x40 | will QoS 2 0x10 | will 0x04
        00 1e                     # keep alive 30
        00 08 63 6c 69 65 6e 74 2d 31   # client id "client-1"
        00 06 77 69 6c 6c 2f 74   # will topic "will/t"
        00 03 62 79 65            # will message "bye"
        00 04 75 73 65 72         # user name "user"
        00 04 70 77 00 ff         # password 70 77 00 ff (binary)
    """)),
    Vector("connect_v311_all_fields", (V311,),
           Connect(client_id="client-1", clean_session=False, keepalive=30, username="user",
                   password=b"pw\x00\xff",
                   will=Will(topic="will/t", payload=b"bye", qos=1, retain=True)),
           h("""
        10 2d                     # CONNECT, remaining length 45
        00 04 4d 51 54 54         # "MQTT"
        04                        # level 4
        ec                        # flags: user 0x80 | password 0x40 | will retain 0x20
                                  #        | will QoS 1 0x08 | will 0x04; clean session 0
        00 1e                     # keep alive 30
        00 08 63 6c 69 65 6e 74 2d 31   # client id "client-1"
        00 06 77 69 6c 6c 2f 74   # will topic "will/t"
        00 03 62 79 65            # will message "bye"
        00 04 75 73 65 72         # user name "user"
        00 04 70 77 00 ff         # password
    """)),
    Vector("connect_v311_user_name_only", (V311,), Connect(client_id="c1", username="u"), h("""
        10 11                     # CONNECT, remaining length 17
        00 04 4d 51 54 54 04      # "MQTT", level 4
        82                        # flags: user name 0x80 | clean session 0x02
        00 3c                     # keep alive 60
        00 02 63 31               # client id "c1"
        00 01 75                  # user name "u"
    """)),
    Vector("connect_v5_minimal", (V5,), Connect(client_id="c1", keepalive=60), h("""
        10 0f                     # CONNECT, remaining length 15
        00 04 4d 51 54 54         # "MQTT"
        05                        # level 5
        02                        # clean start
        00 3c                     # keep alive 60
        00                        # property length 0
        00 02 63 31               # client id "c1"
    """)),
    Vector("connect_v5_empty_client_id", (V5,), Connect(), h("""
        10 0d                     # CONNECT, remaining length 13
        00 04 4d 51 54 54 05 02 00 3c   # "MQTT", level 5, clean start, keep alive 60
        00                        # property length 0
        00 00                     # client id ""
    """)),
    Vector("connect_v5_password_without_user_name", (V5,),
           Connect(client_id="c1", password=b"pw"), h("""
        10 13                     # CONNECT, remaining length 19
        00 04 4d 51 54 54 05      # "MQTT", level 5
        42                        # flags: password 0x40 | clean start 0x02 (legal in 5.0)
        00 3c                     # keep alive 60
        00                        # property length 0
        00 02 63 31               # client id "c1"
        00 02 70 77               # password "pw"
    """)),
    Vector("connect_v5_all_fields", (V5,),
           Connect(
               client_id="client-1", clean_session=True, keepalive=30, username="user",
               password=b"pw",
               will=Will(topic="will/t", payload=b"bye", qos=1, retain=False,
                         properties=Properties(
                             payload_format_indicator=1, message_expiry_interval=60,
                             content_type="text/plain", response_topic="resp",
                             correlation_data=b"\x01\x02", will_delay_interval=10,
                             user_properties=(("k", "v"),))),
               properties=Properties(
                   session_expiry_interval=3600, authentication_method="SCRAM",
                   authentication_data=b"\x00\x01", request_problem_information=0,
                   request_response_information=1, receive_maximum=20,
                   topic_alias_maximum=10, user_properties=(("a", "1"), ("a", "2")),
                   maximum_packet_size=1024)),
           h("""
        10 88 01                  # CONNECT, remaining length 136 (two-byte varint)
        00 04 4d 51 54 54 05      # "MQTT", level 5
        ce                        # flags: user 0x80 | password 0x40 | will QoS 1 0x08
                                  #        | will 0x04 | clean start 0x02
        00 1e                     # keep alive 30
        2f                        # property length 47
          11 00 00 0e 10          #   Session Expiry Interval 3600
          15 00 05 53 43 52 41 4d #   Authentication Method "SCRAM"
          16 00 02 00 01          #   Authentication Data 00 01
          17 00                   #   Request Problem Information 0
          19 01                   #   Request Response Information 1
          21 00 14                #   Receive Maximum 20
          22 00 0a                #   Topic Alias Maximum 10
          26 00 01 61 00 01 31    #   User Property ("a", "1")
          26 00 01 61 00 01 32    #   User Property ("a", "2") -- order kept
          27 00 00 04 00          #   Maximum Packet Size 1024
        00 08 63 6c 69 65 6e 74 2d 31   # client id "client-1"
        2c                        # will property length 44
          01 01                   #   Payload Format Indicator 1 (UTF-8)
          02 00 00 00 3c          #   Message Expiry Interval 60
          03 00 0a 74 65 78 74 2f 70 6c 61 69 6e   # Content Type "text/plain"
          08 00 04 72 65 73 70    #   Response Topic "resp"
          09 00 02 01 02          #   Correlation Data 01 02
          18 00 00 00 0a          #   Will Delay Interval 10
          26 00 01 6b 00 01 76    #   User Property ("k", "v")
        00 06 77 69 6c 6c 2f 74   # will topic "will/t"
        00 03 62 79 65            # will payload "bye"
        00 04 75 73 65 72         # user name "user"
        00 02 70 77               # password "pw"
    """)),
]

# --------------------------------------------------------------------------------------
# CONNACK
# --------------------------------------------------------------------------------------

CONNACK = [
    # 3.1 and 3.1.1 return codes 0-5 (3.1.1 table 3.1; the same codes in 3.1).
    *(Vector(f"connack_old_return_code_{rc}", OLD, Connack(reason_code=rc),
             bytes((0x20, 0x02, 0x00, rc)))  # CONNACK, length 2, flags 0, return code rc
      for rc in range(6)),
    Vector("connack_v311_session_present", (V311,), Connack(session_present=True), h("""
        20 02                     # CONNACK, remaining length 2
        01                        # acknowledge flags: session present (3.1.1 only)
        00                        # return code 0, accepted
    """)),
    Vector("connack_v5_minimal", (V5,), Connack(), h("""
        20 03                     # CONNACK, remaining length 3
        00                        # acknowledge flags 0
        00                        # reason code 0x00 Success
        00                        # property length 0
    """)),
    Vector("connack_v5_refused_with_reason_string", (V5,),
           Connack(reason_code=0x87, properties=Properties(reason_string="no")), h("""
        20 08                     # CONNACK, remaining length 8
        00                        # flags 0
        87                        # reason code 0x87 Not authorized
        05                        # property length 5
          1f 00 02 6e 6f          #   Reason String "no"
    """)),
    Vector("connack_v5_unsupported_version", (V5,), Connack(reason_code=0x84),
           h("20 03 00 84 00  # CONNACK, length 3, flags 0, 0x84, no properties")),
    Vector("connack_v5_all_properties", (V5,),
           Connack(session_present=True, properties=Properties(
               session_expiry_interval=300, assigned_client_identifier="auto-1",
               server_keep_alive=120, authentication_method="SCRAM",
               authentication_data=b"\x07", response_information="ri",
               server_reference="srv", reason_string="ok", receive_maximum=100,
               topic_alias_maximum=5, maximum_qos=1, retain_available=0,
               user_properties=(("x", "y"),), maximum_packet_size=65536,
               wildcard_subscription_available=1, subscription_identifier_available=0,
               shared_subscription_available=1)),
           h("""
        20 4c                     # CONNACK, remaining length 76
        01                        # session present
        00                        # reason code Success
        49                        # property length 73
          11 00 00 01 2c          #   Session Expiry Interval 300
          12 00 06 61 75 74 6f 2d 31   # Assigned Client Identifier "auto-1"
          13 00 78                #   Server Keep Alive 120
          15 00 05 53 43 52 41 4d #   Authentication Method "SCRAM"
          16 00 01 07             #   Authentication Data 07
          1a 00 02 72 69          #   Response Information "ri"
          1c 00 03 73 72 76       #   Server Reference "srv"
          1f 00 02 6f 6b          #   Reason String "ok"
          21 00 64                #   Receive Maximum 100
          22 00 05                #   Topic Alias Maximum 5
          24 01                   #   Maximum QoS 1
          25 00                   #   Retain Available 0
          26 00 01 78 00 01 79    #   User Property ("x", "y")
          27 00 01 00 00          #   Maximum Packet Size 65536
          28 01                   #   Wildcard Subscription Available 1
          29 00                   #   Subscription Identifier Available 0
          2a 01                   #   Shared Subscription Available 1
    """)),
]

# --------------------------------------------------------------------------------------
# PUBLISH
# --------------------------------------------------------------------------------------


def _big_publish(version: int, size: int, length_hex: str) -> Vector:
    """A QoS 0 PUBLISH to "t" whose payload is ``size`` bytes; ``length_hex`` is the
    remaining length worked out by hand (topic 3 bytes, + 1 property-length byte in 5.0)."""
    props = "00" if version == 5 else ""
    header = h(f"""
        30 {length_hex}           # PUBLISH QoS 0, remaining length (multi-byte varint)
        00 01 74                  # topic "t"
        {props}                   # property length 0 (5.0 only)
    """)
    payload = bytes(i % 251 for i in range(size))
    versions = (V5,) if version == 5 else OLD
    name = f"publish_{'v5' if version == 5 else 'old'}_payload_{size}"
    return Vector(name, versions, Publish(topic="t", payload=payload), header + payload)


PUBLISH = [
    Vector("publish_old_qos0", OLD, Publish(topic="a/b", payload=b"hi"), h("""
        30 07                     # PUBLISH, QoS 0, remaining length 7
        00 03 61 2f 62            # topic "a/b"
        68 69                     # payload "hi" (no packet id at QoS 0)
    """)),
    Vector("publish_old_qos1", OLD, Publish(topic="a/b", payload=b"hi", qos=1, packet_id=10), h("""
        32 09                     # PUBLISH, QoS 1 (flags 0010), remaining length 9
        00 03 61 2f 62            # topic "a/b"
        00 0a                     # packet id 10
        68 69                     # payload "hi"
    """)),
    Vector("publish_old_qos2_retain_dup", OLD,
           Publish(topic="a/b", payload=b"hi", qos=2, retain=True, dup=True, packet_id=65535),
           h("""
        3d 09                     # PUBLISH, DUP 8 | QoS 2 4 | RETAIN 1, remaining length 9
        00 03 61 2f 62            # topic "a/b"
        ff ff                     # packet id 65535
        68 69                     # payload "hi"
    """)),
    Vector("publish_old_qos1_dup", OLD,
           Publish(topic="a/b", payload=b"hi", qos=1, dup=True, packet_id=1), h("""
        3a 09                     # PUBLISH, DUP | QoS 1, remaining length 9
        00 03 61 2f 62 00 01 68 69   # topic "a/b", packet id 1, payload "hi"
    """)),
    Vector("publish_old_retain_qos0", OLD, Publish(topic="a/b", payload=b"hi", retain=True),
           h("31 07 00 03 61 2f 62 68 69   # PUBLISH RETAIN, len 7, topic a/b, payload hi")),
    Vector("publish_old_empty_payload", OLD, Publish(topic="a/b"), h("""
        30 05                     # PUBLISH QoS 0, remaining length 5
        00 03 61 2f 62            # topic "a/b"; zero-length payload
    """)),
    Vector("publish_old_retained_empty_payload", OLD, Publish(topic="a/b", retain=True),
           h("31 05 00 03 61 2f 62   # RETAIN + empty payload: clears the retained message")),
    Vector("publish_old_unicode_topic", OLD, Publish(topic="\u00fc/\u20ac", payload=b"\x00"), h("""
        30 09                     # PUBLISH QoS 0, remaining length 9
        00 06 c3 bc 2f e2 82 ac   # topic "ü/€": 2-byte and 3-byte UTF-8 sequences
        00                        # payload: one zero byte
    """)),
    Vector("publish_v5_qos0", (V5,), Publish(topic="a/b", payload=b"hi"), h("""
        30 08                     # PUBLISH QoS 0, remaining length 8
        00 03 61 2f 62            # topic "a/b"
        00                        # property length 0
        68 69                     # payload "hi"
    """)),
    Vector("publish_v5_qos1", (V5,), Publish(topic="a/b", payload=b"hi", qos=1, packet_id=10), h("""
        32 0a                     # PUBLISH QoS 1, remaining length 10
        00 03 61 2f 62            # topic "a/b"
        00 0a                     # packet id 10
        00                        # property length 0
        68 69                     # payload
    """)),
    Vector("publish_v5_qos2_retain_dup", (V5,),
           Publish(topic="a/b", payload=b"hi", qos=2, retain=True, dup=True, packet_id=65535),
           h("3d 0a 00 03 61 2f 62 ff ff 00 68 69   # DUP|QoS2|RETAIN, a/b, id 65535, no props")),
    Vector("publish_v5_empty_payload", (V5,), Publish(topic="a/b"),
           h("30 06 00 03 61 2f 62 00   # QoS 0, topic a/b, property length 0, no payload")),
    Vector("publish_v5_all_properties", (V5,),
           Publish(topic="a/b", payload=b"hi", qos=1, packet_id=7, properties=Properties(
               payload_format_indicator=1, message_expiry_interval=30, content_type="json",
               response_topic="r/1", correlation_data=b"cd", subscription_identifiers=(1, 300),
               topic_alias=3, user_properties=(("k", "v1"), ("k", "v2")))),
           h("""
        32 3b                     # PUBLISH QoS 1, remaining length 59
        00 03 61 2f 62            # topic "a/b"
        00 07                     # packet id 7
        31                        # property length 49
          01 01                   #   Payload Format Indicator 1
          02 00 00 00 1e          #   Message Expiry Interval 30
          03 00 04 6a 73 6f 6e    #   Content Type "json"
          08 00 03 72 2f 31       #   Response Topic "r/1"
          09 00 02 63 64          #   Correlation Data "cd"
          0b 01                   #   Subscription Identifier 1
          0b ac 02                #   Subscription Identifier 300 (varint ac 02)
          23 00 03                #   Topic Alias 3
          26 00 01 6b 00 02 76 31 #   User Property ("k", "v1")
          26 00 01 6b 00 02 76 32 #   User Property ("k", "v2")
        68 69                     # payload "hi"
    """)),
    Vector("publish_v5_alias_only_empty_topic", (V5,),
           Publish(topic="", payload=b"x", properties=Properties(topic_alias=1)), h("""
        30 07                     # PUBLISH QoS 0, remaining length 7
        00 00                     # zero-length topic name: the Topic Alias stands in for it
        03                        # property length 3
          23 00 01                #   Topic Alias 1
        78                        # payload "x"
    """)),
    # Remaining-length boundaries: 127 is the largest one-byte varint, 128 the smallest
    # two-byte one; 16383/16384 the same for two/three bytes (spec table 2.4 / 1.5.5).
    _big_publish(4, 124, "7f"),        # 3 + 124 = 127
    _big_publish(4, 125, "80 01"),     # 3 + 125 = 128
    _big_publish(4, 200, "cb 01"),     # 3 + 200 = 203 = 0x4b + 1*128
    _big_publish(4, 16380, "ff 7f"),   # 3 + 16380 = 16383
    _big_publish(4, 16381, "80 80 01"),  # 3 + 16381 = 16384
    _big_publish(4, 20000, "a3 9c 01"),  # 3 + 20000 = 20003 = 35 + 28*128 + 1*16384
    _big_publish(5, 123, "7f"),        # 4 + 123 = 127
    _big_publish(5, 124, "80 01"),     # 4 + 124 = 128
    _big_publish(5, 200, "cc 01"),     # 4 + 200 = 204 = 0x4c + 1*128
    _big_publish(5, 20000, "a4 9c 01"),  # 4 + 20000 = 20004
]

# --------------------------------------------------------------------------------------
# PUBACK, PUBREC, PUBREL, PUBCOMP
# --------------------------------------------------------------------------------------

ACKS = [
    Vector("puback_old", OLD, Puback(packet_id=1), h("40 02 00 01   # PUBACK, length 2, id 1")),
    Vector("pubrec_old", OLD, Pubrec(packet_id=0x1234),
           h("50 02 12 34   # PUBREC, length 2, id 0x1234")),
    Vector("pubrel_old", OLD, Pubrel(packet_id=2),
           h("62 02 00 02   # PUBREL, flags 0010 (reserved, required), length 2, id 2")),
    Vector("pubcomp_old", OLD, Pubcomp(packet_id=3), h("70 02 00 03   # PUBCOMP, length 2, id 3")),
    # 5.0: success with no properties keeps the 3.1.1 shape (remaining length 2).
    Vector("puback_v5_success", (V5,), Puback(packet_id=1),
           h("40 02 00 01   # PUBACK, length 2: reason code omitted = 0x00 Success")),
    Vector("pubrec_v5_success", (V5,), Pubrec(packet_id=2), h("50 02 00 02   # PUBREC id 2")),
    Vector("pubrel_v5_success", (V5,), Pubrel(packet_id=3), h("62 02 00 03   # PUBREL id 3")),
    Vector("pubcomp_v5_success", (V5,), Pubcomp(packet_id=4), h("70 02 00 04   # PUBCOMP id 4")),
    # Reason code only: remaining length 3, property length omitted.
    Vector("puback_v5_reason_only", (V5,), Puback(packet_id=1, reason_code=0x10), h("""
        40 03                     # PUBACK, remaining length 3
        00 01                     # packet id 1
        10                        # reason code 0x10 No matching subscribers
    """)),
    Vector("pubrec_v5_reason_only", (V5,), Pubrec(packet_id=2, reason_code=0x97),
           h("50 03 00 02 97   # PUBREC id 2, 0x97 Quota exceeded")),
    Vector("pubrel_v5_reason_only", (V5,), Pubrel(packet_id=3, reason_code=0x92),
           h("62 03 00 03 92   # PUBREL id 3, 0x92 Packet Identifier not found")),
    Vector("pubcomp_v5_reason_only", (V5,), Pubcomp(packet_id=4, reason_code=0x92),
           h("70 03 00 04 92   # PUBCOMP id 4, 0x92 Packet Identifier not found")),
    # Reason code and properties.
    Vector("puback_v5_with_properties", (V5,),
           Puback(packet_id=1, reason_code=0x80, properties=Properties(
               reason_string="err", user_properties=(("a", "b"),))), h("""
        40 11                     # PUBACK, remaining length 17
        00 01                     # packet id 1
        80                        # reason code 0x80 Unspecified error
        0d                        # property length 13
          1f 00 03 65 72 72       #   Reason String "err"
          26 00 01 61 00 01 62    #   User Property ("a", "b")
    """)),
    Vector("puback_v5_success_with_properties", (V5,),
           Puback(packet_id=1, properties=Properties(reason_string="ok")), h("""
        40 09                     # PUBACK, remaining length 9
        00 01                     # packet id 1
        00                        # reason code Success (needed: properties follow)
        05                        # property length 5
          1f 00 02 6f 6b          #   Reason String "ok"
    """)),
    Vector("pubrec_v5_with_properties", (V5,),
           Pubrec(packet_id=9, reason_code=0x10, properties=Properties(
               user_properties=(("a", "b"),))),
           h("50 0b 00 09 10 07 26 00 01 61 00 01 62   # PUBREC id 9, 0x10, len 7, (a,b)")),
    Vector("pubrel_v5_with_properties", (V5,),
           Pubrel(packet_id=3, reason_code=0x92, properties=Properties(reason_string="gone")),
           h("""
        62 0b                     # PUBREL (flags 0010), remaining length 11
        00 03                     # packet id 3
        92                        # reason code 0x92
        07                        # property length 7
          1f 00 04 67 6f 6e 65    #   Reason String "gone"
    """)),
    Vector("pubcomp_v5_with_properties", (V5,),
           Pubcomp(packet_id=4, properties=Properties(reason_string="ok")),
           h("70 09 00 04 00 05 1f 00 02 6f 6b   # PUBCOMP id 4, Success, Reason String ok")),
]

# --------------------------------------------------------------------------------------
# SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK
# --------------------------------------------------------------------------------------

SUBSCRIPTIONS = [
    Vector("subscribe_old_three_filters", OLD,
           Subscribe(packet_id=1, subscriptions=(
               Subscription("a/b", 0), Subscription("c/#", 1), Subscription("+/d", 2))), h("""
        82 14                     # SUBSCRIBE, flags 0010, remaining length 20
        00 01                     # packet id 1
        00 03 61 2f 62  00        # "a/b" requested QoS 0
        00 03 63 2f 23  01        # "c/#" requested QoS 1
        00 03 2b 2f 64  02        # "+/d" requested QoS 2
    """)),
    Vector("subscribe_v5_minimal", (V5,),
           Subscribe(packet_id=3, subscriptions=(Subscription("t"),)), h("""
        82 07                     # SUBSCRIBE, remaining length 7
        00 03                     # packet id 3
        00                        # property length 0
        00 01 74  00              # "t", options 0
    """)),
    Vector("subscribe_v5_options_and_properties", (V5,),
           Subscribe(packet_id=2, subscriptions=(
               Subscription("a/b", qos=1, no_local=True),
               Subscription("c/#", qos=2, retain_as_published=True, retain_handling=1),
               Subscription("$share/g/x", qos=0, retain_handling=2),
               Subscription("e", qos=2, no_local=True, retain_as_published=True,
                            retain_handling=2),
           ), properties=Properties(subscription_identifiers=(5,),
                                    user_properties=(("u", "v"),))), h("""
        82 29                     # SUBSCRIBE, remaining length 41
        00 02                     # packet id 2
        09                        # property length 9
          0b 05                   #   Subscription Identifier 5
          26 00 01 75 00 01 76    #   User Property ("u", "v")
        00 03 61 2f 62  05        # "a/b": QoS 1 | No Local 0x04
        00 03 63 2f 23  1a        # "c/#": QoS 2 | Retain As Published 0x08 | Retain Handling 1
        00 0a 24 73 68 61 72 65 2f 67 2f 78  20   # "$share/g/x": Retain Handling 2
        00 01 65  2e              # "e": QoS 2 | NL | RAP | Retain Handling 2
    """)),
    Vector("suback_v311", (V311,), Suback(packet_id=1, reason_codes=(0, 1, 2, 0x80)), h("""
        90 06                     # SUBACK, remaining length 6
        00 01                     # packet id 1
        00 01 02 80               # granted QoS 0, 1, 2, and 0x80 Failure (3.1.1 only)
    """)),
    Vector("suback_v31", (V31,), Suback(packet_id=1, reason_codes=(0, 1, 2)),
           h("90 05 00 01 00 01 02   # SUBACK, len 5, id 1, granted QoS 0 1 2 (no failure code)")),
    Vector("suback_v5_all_codes", (V5,),
           Suback(packet_id=2, reason_codes=(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91,
                                             0x97, 0x9E, 0xA1, 0xA2)), h("""
        90 0f                     # SUBACK, remaining length 15
        00 02                     # packet id 2
        00                        # property length 0
        00 01 02 80 83 87 8f 91 97 9e a1 a2   # every Subscribe reason code of table 3.9.3
    """)),
    Vector("suback_v5_with_properties", (V5,),
           Suback(packet_id=3, reason_codes=(1,), properties=Properties(
               reason_string="r", user_properties=(("a", "b"),))), h("""
        90 0f                     # SUBACK, remaining length 15
        00 03                     # packet id 3
        0b                        # property length 11
          1f 00 01 72             #   Reason String "r"
          26 00 01 61 00 01 62    #   User Property ("a", "b")
        01                        # granted QoS 1
    """)),
    Vector("unsubscribe_old", OLD, Unsubscribe(packet_id=4, topic_filters=("a/b", "c/#")), h("""
        a2 0c                     # UNSUBSCRIBE, flags 0010, remaining length 12
        00 04                     # packet id 4
        00 03 61 2f 62            # "a/b"
        00 03 63 2f 23            # "c/#"
    """)),
    Vector("unsubscribe_v5", (V5,), Unsubscribe(packet_id=4, topic_filters=("a/b", "c/#")),
           h("a2 0d 00 04 00 00 03 61 2f 62 00 03 63 2f 23   # id 4, no properties, a/b, c/#")),
    Vector("unsubscribe_v5_with_properties", (V5,),
           Unsubscribe(packet_id=5, topic_filters=("a/b",),
                       properties=Properties(user_properties=(("k", "v"),))), h("""
        a2 0f                     # UNSUBSCRIBE, remaining length 15
        00 05                     # packet id 5
        07 26 00 01 6b 00 01 76   # property length 7: User Property ("k", "v")
        00 03 61 2f 62            # "a/b"
    """)),
    Vector("unsuback_old", OLD, Unsuback(packet_id=4),
           h("b0 02 00 04   # UNSUBACK, length 2, packet id only")),
    Vector("unsuback_v5_all_codes", (V5,),
           Unsuback(packet_id=5, reason_codes=(0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91)), h("""
        b0 0a                     # UNSUBACK, remaining length 10
        00 05                     # packet id 5
        00                        # property length 0
        00 11 80 83 87 8f 91      # every Unsubscribe reason code of table 3.11.3
    """)),
    Vector("unsuback_v5_with_properties", (V5,),
           Unsuback(packet_id=6, reason_codes=(0,), properties=Properties(reason_string="ok")),
           h("b0 09 00 06 05 1f 00 02 6f 6b 00   # id 6, Reason String ok, Success")),
]

# --------------------------------------------------------------------------------------
# PINGREQ, PINGRESP, DISCONNECT, AUTH
# --------------------------------------------------------------------------------------

OTHERS = [
    Vector("pingreq", ALL, Pingreq(), h("c0 00   # PINGREQ, remaining length 0")),
    Vector("pingresp", ALL, Pingresp(), h("d0 00   # PINGRESP, remaining length 0")),
    Vector("disconnect", ALL, Disconnect(), h("e0 00   # DISCONNECT; in 5.0: normal, no props")),
    Vector("disconnect_v5_reason_only", (V5,), Disconnect(reason_code=0x04),
           h("e0 01 04   # DISCONNECT, length 1, 0x04 Disconnect with Will Message")),
    Vector("disconnect_v5_session_expiry", (V5,),
           Disconnect(properties=Properties(session_expiry_interval=0)), h("""
        e0 07                     # DISCONNECT, remaining length 7
        00                        # reason code Normal disconnection
        05 11 00 00 00 00         # property length 5: Session Expiry Interval 0
    """)),
    Vector("disconnect_v5_server_moved", (V5,),
           Disconnect(reason_code=0x9D, properties=Properties(
               server_reference="b2", reason_string="move")), h("""
        e0 0e                     # DISCONNECT, remaining length 14
        9d                        # reason code 0x9D Server moved
        0c                        # property length 12
          1c 00 02 62 32          #   Server Reference "b2"
          1f 00 04 6d 6f 76 65    #   Reason String "move"
    """)),
    Vector("auth_v5_success", (V5,), Auth(), h("f0 00   # AUTH, length 0 = Success, no props")),
    Vector("auth_v5_continue", (V5,),
           Auth(reason_code=0x18, properties=Properties(
               authentication_method="SCRAM", authentication_data=b"abc")), h("""
        f0 10                     # AUTH, remaining length 16
        18                        # reason code 0x18 Continue authentication
        0e                        # property length 14
          15 00 05 53 43 52 41 4d #   Authentication Method "SCRAM"
          16 00 03 61 62 63       #   Authentication Data "abc"
    """)),
    Vector("auth_v5_reauthenticate", (V5,),
           Auth(reason_code=0x19, properties=Properties(authentication_method="SCRAM")),
           h("f0 0a 19 08 15 00 05 53 43 52 41 4d   # AUTH 0x19 Re-authenticate, method SCRAM")),
]

VECTORS: list[Vector] = CONNECT + CONNACK + PUBLISH + ACKS + SUBSCRIPTIONS + OTHERS

# --------------------------------------------------------------------------------------
# Decode-only: legal encodings that are not the form our encoder chooses.
# --------------------------------------------------------------------------------------

DECODE_ONLY = [
    Vector("puback_v5_explicit_success_no_props", (V5,), Puback(packet_id=1),
           h("40 03 00 01 00   # reason code 0x00 written out, property length omitted")),
    Vector("puback_v5_explicit_success_zero_props", (V5,), Puback(packet_id=1),
           h("40 04 00 01 00 00   # reason code 0x00 and property length 0 written out")),
    Vector("pubrel_v5_reason_zero_props", (V5,), Pubrel(packet_id=3, reason_code=0x92),
           h("62 04 00 03 92 00   # PUBREL 0x92 with an explicit empty property block")),
    Vector("disconnect_v5_explicit_normal", (V5,), Disconnect(),
           h("e0 01 00   # reason code 0x00 written out")),
    Vector("disconnect_v5_explicit_zero_props", (V5,), Disconnect(reason_code=0x04),
           h("e0 02 04 00   # reason code 0x04 and property length 0")),
    Vector("auth_v5_explicit_zero_props", (V5,), Auth(reason_code=0x18),
           h("f0 02 18 00   # AUTH 0x18, property length 0")),
    Vector("publish_v5_properties_reordered", (V5,),
           Publish(topic="a", qos=1, packet_id=1, properties=Properties(
               topic_alias=2, message_expiry_interval=5, user_properties=(("b", "2"), ("a", "1")))),
           h("""
        32 1c                     # PUBLISH QoS 1, remaining length 28
        00 01 61                  # topic "a"
        00 01                     # packet id 1
        16                        # property length 22
          26 00 01 62 00 01 32    #   User Property ("b", "2") first ...
          23 00 02                #   Topic Alias 2
          26 00 01 61 00 01 31    #   ... User Property ("a", "1") later: order kept
          02 00 00 00 05          #   Message Expiry Interval 5
    """)),
    Vector("connack_v5_assigned_id_then_session_expiry", (V5,),
           Connack(properties=Properties(session_expiry_interval=1,
                                         assigned_client_identifier="x")), h("""
        20 0c                     # CONNACK, remaining length 12
        00 00                     # flags 0, Success
        09                        # property length 9
          12 00 01 78             #   Assigned Client Identifier "x"
          11 00 00 00 01          #   Session Expiry Interval 1 (higher id written first)
    """)),
]

# --------------------------------------------------------------------------------------
# Helpers for the tests
# --------------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    """A variable byte integer in the fewest bytes, computed here (not by the codec)."""
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def frame(first_byte: int, body: bytes) -> bytes:
    """A packet around ``body`` with its remaining length."""
    return bytes((first_byte,)) + varint(len(body)) + body


def props(*items: bytes) -> bytes:
    """An MQTT 5 property block: property length, then the properties as given."""
    body = b"".join(items)
    return varint(len(body)) + body


def utf8(text: str | bytes) -> bytes:
    """A two-byte-length-prefixed string; bytes are taken as already encoded (or broken)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return len(data).to_bytes(2, "big") + data


def connect_bytes(flags: int = 0x02, payload: bytes = utf8("c1"), *, version: int = 4,
                  name: bytes | None = None, level: int | None = None,
                  properties: bytes = b"\x00") -> bytes:
    """A CONNECT with chosen flags and payload, for rule tests (``properties`` in 5.0)."""
    name = name if name is not None else (b"MQIsdp" if version == 3 else b"MQTT")
    level = level if level is not None else version
    props = properties if version == 5 else b""
    return frame(0x10, utf8(name) + bytes((level, flags)) + b"\x00\x3c" + props + payload)


def cases(vectors: list[Vector] = VECTORS) -> list[tuple[int, Vector]]:
    """(version, vector) pairs, one per version a vector applies to."""
    return [(v, vec) for vec in vectors for v in vec.versions]


def case_id(case: tuple[int, Vector]) -> str:
    version, vec = case
    return f"v{version}-{vec.name}"


# -- helpers for the spec-rule tests: the error a bad packet raises, checked by rule id -----

def decode_error(data: bytes, version: int | None):
    """The codec error decoding ``data`` raises (``version`` None: a broker's decoder)."""
    import pytest

    from mqttsim.protocol import Decoder
    from mqttsim.protocol.errors import MQTTError

    with pytest.raises(MQTTError) as info:
        Decoder(version).feed(data)
    return info.value


def encode_error(packet, version: int):
    """The codec error encoding ``packet`` raises."""
    import pytest

    from mqttsim.protocol import encode
    from mqttsim.protocol.errors import MQTTError

    with pytest.raises(MQTTError) as info:
        encode(packet, version)
    return info.value


def check(err, cls: type, *rules: str) -> None:
    """``err`` is a ``cls`` naming one of ``rules`` (any rule when none are given)."""
    assert isinstance(err, cls), f"expected {cls.__name__}, got {type(err).__name__}: {err}"
    if rules:
        assert err.rule in rules, f"rule {err.rule!r}, expected {' or '.join(rules)}: {err}"
