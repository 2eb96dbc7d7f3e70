"""Known-answer tests: every hand-written vector in ``vectors.py`` both ways.

``encode(packet, version)`` must produce exactly the spec's bytes, and a decoder for that
version must turn exactly those bytes back into the same packet value. The server-side
decoder (no version given) must learn the version from CONNECT. Finally, encode must
refuse what the chosen version cannot express instead of silently dropping it.
"""

from __future__ import annotations

import pytest

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.errors import MQTTError
from mqttsim.protocol.packets import (
    Auth, Connack, Connect, Disconnect, Pingreq, Puback, Pubcomp, Publish, Pubrec, Pubrel, Suback,
    Subscribe, Subscription, Unsuback, Will,
)
from mqttsim.protocol.properties import Properties

from vectors import CONNECT, DECODE_ONLY, VECTORS, case_id, cases, h

ALL_CASES = cases(VECTORS)


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_encode_gives_spec_bytes(case):
    version, vec = case
    assert encode(vec.packet, version).hex(" ") == vec.data.hex(" ")


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_decode_gives_packet(case):
    version, vec = case
    assert Decoder(version).feed(vec.data) == [vec.packet]


@pytest.mark.parametrize("case", ALL_CASES, ids=case_id)
def test_encode_returns_bytes(case):
    """Drivers concatenate and hash what encode returns: it must be real ``bytes``."""
    version, vec = case
    assert type(encode(vec.packet, version)) is bytes


@pytest.mark.parametrize("case", cases(DECODE_ONLY), ids=case_id)
def test_decode_only_alternative_encodings(case):
    """Legal encodings the encoder does not choose still decode to the same value."""
    version, vec = case
    assert Decoder(version).feed(vec.data) == [vec.packet]


def test_decoded_binary_fields_are_bytes_not_views():
    """A decoded packet must not pin the decoder's buffer through a memoryview."""
    vec = next(v for v in VECTORS if v.name == "publish_v5_all_properties")
    (packet,) = Decoder(5).feed(vec.data)
    assert type(packet.payload) is bytes
    assert type(packet.properties.correlation_data) is bytes
    vec = next(v for v in VECTORS if v.name == "connect_v5_all_fields")
    (packet,) = Decoder(5).feed(vec.data)
    assert type(packet.password) is bytes
    assert type(packet.will.payload) is bytes
    assert type(packet.properties.authentication_data) is bytes


def test_decoded_sequences_are_tuples():
    """Packets are frozen values; list fields would make them unhashable and unequal."""
    vec = next(v for v in VECTORS if v.name == "subscribe_v5_options_and_properties")
    (packet,) = Decoder(5).feed(vec.data)
    assert type(packet.subscriptions) is tuple
    assert type(packet.properties.user_properties) is tuple
    assert type(packet.properties.subscription_identifiers) is tuple
    hash(packet)


def test_every_packet_type_has_a_vector_in_every_version():
    """Guards this file: AUTH only in 5.0, every other type in 3.1, 3.1.1 and 5.0."""
    seen = {(v, type(vec.packet).__name__) for v, vec in ALL_CASES}
    names = {"Connect", "Connack", "Publish", "Puback", "Pubrec", "Pubrel", "Pubcomp",
             "Subscribe", "Suback", "Unsubscribe", "Unsuback", "Pingreq", "Pingresp",
             "Disconnect"}
    for version in (3, 4, 5):
        assert {n for v, n in seen if v == version} >= names, version
    assert {v for v, n in seen if n == "Auth"} == {5}


# --------------------------------------------------------------------------------------
# Server side: the version comes from CONNECT
# --------------------------------------------------------------------------------------

FIRST_CONNECT = {
    3: next(v for v in CONNECT if v.name == "connect_v31_all_fields"),
    4: next(v for v in CONNECT if v.name == "connect_v311_all_fields"),
    5: next(v for v in CONNECT if v.name == "connect_v5_all_fields"),
}


@pytest.mark.parametrize("version", [3, 4, 5])
def test_server_decoder_learns_version_from_connect(version):
    decoder = Decoder()
    assert decoder.version is None
    vec = FIRST_CONNECT[version]
    assert decoder.feed(vec.data) == [vec.packet]
    assert decoder.version == version


def test_server_decoder_decodes_v5_packets_after_v5_connect_in_same_feed():
    publish = next(v for v in VECTORS if v.name == "publish_v5_all_properties")
    subscribe = next(v for v in VECTORS if v.name == "subscribe_v5_options_and_properties")
    decoder = Decoder()
    got = decoder.feed(FIRST_CONNECT[5].data + publish.data + subscribe.data)
    assert got == [FIRST_CONNECT[5].packet, publish.packet, subscribe.packet]
    assert decoder.version == 5


def test_server_decoder_decodes_v311_publish_after_v311_connect_in_same_feed():
    """The same bytes mean something else in 5.0 (a property length): the version matters."""
    data = h("32 09 00 03 61 2f 62 00 0a 68 69   # 3.1.1 PUBLISH QoS 1 a/b id 10 'hi'")
    decoder = Decoder()
    got = decoder.feed(FIRST_CONNECT[4].data + data)
    assert got == [FIRST_CONNECT[4].packet,
                   Publish(topic="a/b", payload=b"hi", qos=1, packet_id=10)]


def test_server_decoder_learns_version_split_across_feeds():
    decoder = Decoder()
    data = FIRST_CONNECT[5].data
    assert decoder.feed(data[:7]) == []
    assert decoder.feed(data[7:]) == [FIRST_CONNECT[5].packet]
    assert decoder.version == 5


# --------------------------------------------------------------------------------------
# encode refuses what a version cannot express (packets.py: "refuses what the chosen
# version cannot express"), and older decoders refuse what their version does not have.
# --------------------------------------------------------------------------------------

NOT_EXPRESSIBLE = [
    (4, Auth()),
    (3, Auth(reason_code=0x18)),
    (4, Puback(packet_id=1, reason_code=0x10)),
    (4, Pubrec(packet_id=1, reason_code=0x80)),
    (3, Pubrel(packet_id=1, reason_code=0x92)),
    (4, Pubcomp(packet_id=1, properties=Properties(reason_string="x"))),
    (4, Unsuback(packet_id=1, reason_codes=(0,))),
    (4, Disconnect(reason_code=0x04)),
    (4, Disconnect(properties=Properties(session_expiry_interval=5))),
    (4, Connect(client_id="c", properties=Properties(session_expiry_interval=5))),
    (4, Connect(client_id="c", will=Will(topic="w", properties=Properties(
        will_delay_interval=5)))),
    (4, Connack(reason_code=0x80)),  # a 5.0 reason code, not a 3.1.1 return code
    (4, Connack(properties=Properties(server_keep_alive=5))),
    (4, Publish(topic="t", properties=Properties(message_expiry_interval=5))),
    (4, Subscribe(packet_id=1, subscriptions=(Subscription("t", no_local=True),))),
    (4, Subscribe(packet_id=1, subscriptions=(Subscription("t", retain_as_published=True),))),
    (4, Subscribe(packet_id=1, subscriptions=(Subscription("t", retain_handling=1),))),
    (3, Connack(session_present=True)),  # MQTT 3.1 CONNACK has no session-present flag
    (3, Suback(packet_id=1, reason_codes=(0x80,))),  # 0x80 Failure is new in 3.1.1
    (4, Suback(packet_id=1, reason_codes=(0x87,))),  # a 5.0-only reason code
]


@pytest.mark.parametrize("version,packet", NOT_EXPRESSIBLE,
                         ids=[f"v{v}-{type(p).__name__}-{i}"
                              for i, (v, p) in enumerate(NOT_EXPRESSIBLE)])
def test_encode_refuses_what_the_version_cannot_express(version, packet):
    with pytest.raises(MQTTError):
        encode(packet, version)


@pytest.mark.parametrize("version", [3, 4])
def test_auth_packet_type_is_reserved_before_v5(version):
    with pytest.raises(MQTTError):
        Decoder(version).feed(h("f0 00   # type 15 is reserved in 3.1 and 3.1.1"))


def test_v31_suback_failure_code_is_refused_on_decode():
    with pytest.raises(MQTTError):
        Decoder(3).feed(h("90 03 00 01 80   # SUBACK id 1, 0x80: not defined in 3.1"))


@pytest.mark.parametrize("version", [0, 2, 6])
def test_encode_refuses_unknown_version(version):
    """A programming error, so ValueError is as good as an MQTTError here."""
    with pytest.raises((MQTTError, ValueError)):
        encode(Pingreq(), version)
