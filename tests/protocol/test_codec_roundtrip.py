"""Hypothesis round trips: every valid packet of every version survives encode -> decode.

The strategies generate only values the spec allows for the version: topic names without
wildcards, U+0000, surrogates or the control/non-characters a receiver MAY refuse
(section 1.5.3/1.5.4); QoS 0..2; packet ids 1..65535; MQTT 5 properties only where the
spec's property table allows them. For each: ``Decoder(v).feed(encode(p, v)) == [p]`` and
encoding is deterministic.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol import reason_codes as rc
from mqttsim.protocol.packets import (
    Auth, Connack, Connect, Disconnect, Pingreq, Pingresp, Puback, Pubcomp, Publish, Pubrec,
    Pubrel, Suback, Subscribe, Subscription, Unsuback, Unsubscribe, Will,
)
from mqttsim.protocol.properties import NO_PROPERTIES, SPECS, WILL, Properties

SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# Characters every receiver must accept: no surrogates (Cs), U+0000 and other control
# characters (Cc, which a receiver MAY refuse), no unassigned/non-characters (Cn).
_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn"))
_LEVEL_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn"),
                             exclude_characters="/+#")
_SHARE_CHARS = _LEVEL_CHARS

strings = st.text(_CHARS, max_size=12)
packet_ids = st.integers(1, 65535)
qos_levels = st.integers(0, 2)


def _no_share_prefix(text: str) -> bool:
    return not text.startswith("$share/")


topic_names = (st.lists(st.text(_LEVEL_CHARS, max_size=6), min_size=1, max_size=4)
               .map("/".join).filter(lambda t: t != "" and _no_share_prefix(t)))


@st.composite
def topic_filters(draw, version: int) -> str:
    levels = draw(st.lists(st.one_of(st.text(_LEVEL_CHARS, max_size=6), st.just("+")),
                           min_size=0, max_size=4))
    if draw(st.booleans()) or not levels:
        levels.append("#")
    text = "/".join(levels) or "+"  # a single empty level would be "" [MQTT-4.7.3-1]
    if version == 5 and text.startswith("$share/"):
        text = "x" + text
    if version == 5 and draw(st.integers(0, 4)) == 0:
        share = draw(st.text(_SHARE_CHARS, min_size=1, max_size=5))
        text = f"$share/{share}/{text}"
    return text


# --------------------------------------------------------------------------------------
# MQTT 5 properties, driven by the spec's table of which packet may carry which property
# --------------------------------------------------------------------------------------

_INT_RANGES = {"byte": (0, 255), "u16": (0, 65535), "u32": (0, 2**32 - 1),
               "varint": (1, 268_435_455)}


def _value_strategy(spec):
    if spec.name == "response_topic":
        return topic_names  # a Topic Name: no wildcards [MQTT-3.3.2-14]
    if spec.kind == "utf8":
        return strings
    if spec.kind == "binary":
        return st.binary(max_size=12)
    if spec.kind == "pair":
        return st.lists(st.tuples(strings, strings), min_size=1, max_size=3).map(tuple)
    low, high = _INT_RANGES[spec.kind]
    if spec.kind == "byte" and spec.check is not None:  # e.g. 0/1 flags: enumerate
        return st.sampled_from([v for v in range(256) if spec.check(v)])
    values = st.integers(low, high)
    if spec.check is not None:
        values = values.filter(spec.check)
    return values


@st.composite
def properties(draw, packet_type: int, exclude: tuple[str, ...] = ()) -> Properties:
    """Any subset of the properties ``packet_type`` may carry."""
    chosen = {}
    for spec in SPECS:
        if packet_type not in spec.allowed or spec.name in exclude:
            continue
        if not draw(st.booleans()):
            continue
        if spec.name == "subscription_identifiers":
            most = 1 if packet_type == 8 else 3  # SUBSCRIBE carries at most one
            chosen[spec.name] = tuple(draw(st.lists(_value_strategy(spec), min_size=1,
                                                    max_size=most)))
        else:
            chosen[spec.name] = draw(_value_strategy(spec))
    # Authentication Data without an Authentication Method is a Protocol Error.
    if "authentication_data" in chosen and "authentication_method" not in chosen:
        del chosen["authentication_data"]
    return Properties(**chosen)


def _props(version: int, packet_type: int, exclude: tuple[str, ...] = ()):
    return properties(packet_type, exclude) if version == 5 else st.just(NO_PROPERTIES)


@st.composite
def _payload(draw, props: Properties) -> bytes:
    """Payload; UTF-8 when the Payload Format Indicator says so (a receiver MAY check)."""
    if props.payload_format_indicator == 1:
        return draw(strings).encode("utf-8")
    return draw(st.one_of(st.binary(max_size=40), st.binary(min_size=200, max_size=2000)))


# --------------------------------------------------------------------------------------
# One strategy per packet type
# --------------------------------------------------------------------------------------

@st.composite
def connects(draw, version: int) -> Connect:
    if version == 3:  # MQTT 3.1: 1-23 characters
        client_id = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1,
                                 max_size=23))
    else:
        client_id = draw(strings)
    clean = draw(st.booleans())
    if version == 4 and client_id == "":
        clean = True  # [MQTT-3.1.3-7]
    username = draw(st.none() | strings)
    password = draw(st.none() | st.binary(max_size=12))
    if version < 5 and username is None:
        password = None  # [MQTT-3.1.2-22]
    will = None
    if draw(st.booleans()):
        will_props = draw(_props(version, WILL))
        will = Will(topic=draw(topic_names), payload=draw(_payload(will_props)),
                    qos=draw(qos_levels), retain=draw(st.booleans()), properties=will_props)
    return Connect(client_id=client_id, clean_session=clean,
                   keepalive=draw(st.integers(0, 65535)), username=username,
                   password=password, will=will, properties=draw(_props(version, 1)))


@st.composite
def connacks(draw, version: int) -> Connack:
    if version == 5:
        code = draw(st.sampled_from(sorted(rc.CONNACK_V5)))
    else:
        code = draw(st.integers(0, 5))
    present = draw(st.booleans()) and code == 0 and version != 3  # [MQTT-3.2.2-4]
    return Connack(session_present=present, reason_code=code,
                   properties=draw(_props(version, 2)))


@st.composite
def publishes(draw, version: int) -> Publish:
    props = draw(_props(version, 3))
    qos = draw(qos_levels)
    topic = draw(topic_names)
    if props.topic_alias is not None and draw(st.booleans()):
        topic = ""  # 5.0: the alias stands in for the topic name
    return Publish(topic=topic, payload=draw(_payload(props)), qos=qos,
                   retain=draw(st.booleans()),
                   dup=draw(st.booleans()) if qos else False,  # [MQTT-3.3.1-2]
                   packet_id=draw(packet_ids) if qos else None,  # [MQTT-2.3.1-5]
                   properties=props)


def _acks(cls, codes: frozenset[int], packet_type: int):
    @st.composite
    def strategy(draw, version: int):
        if version < 5:
            return cls(packet_id=draw(packet_ids))
        return cls(packet_id=draw(packet_ids), reason_code=draw(st.sampled_from(sorted(codes))),
                   properties=draw(properties(packet_type)))
    return strategy


@st.composite
def subscriptions(draw, version: int) -> Subscription:
    topic_filter = draw(topic_filters(version))
    if version < 5:
        return Subscription(topic_filter, draw(qos_levels))
    shared = topic_filter.startswith("$share/")
    return Subscription(topic_filter, draw(qos_levels),
                        no_local=False if shared else draw(st.booleans()),  # [MQTT-3.8.3-4]
                        retain_as_published=draw(st.booleans()),
                        retain_handling=draw(st.integers(0, 2)))


@st.composite
def subscribes(draw, version: int) -> Subscribe:
    subs = draw(st.lists(subscriptions(version), min_size=1, max_size=4))
    return Subscribe(packet_id=draw(packet_ids), subscriptions=tuple(subs),
                     properties=draw(_props(version, 8)))


@st.composite
def subacks(draw, version: int) -> Suback:
    allowed = {3: [0, 1, 2], 4: [0, 1, 2, 0x80], 5: sorted(rc.SUBACK_V5)}[version]
    codes = draw(st.lists(st.sampled_from(allowed), min_size=1, max_size=5))
    return Suback(packet_id=draw(packet_ids), reason_codes=tuple(codes),
                  properties=draw(_props(version, 9)))


@st.composite
def unsubscribes(draw, version: int) -> Unsubscribe:
    filters = draw(st.lists(topic_filters(version), min_size=1, max_size=4))
    return Unsubscribe(packet_id=draw(packet_ids), topic_filters=tuple(filters),
                       properties=draw(_props(version, 10)))


@st.composite
def unsubacks(draw, version: int) -> Unsuback:
    if version < 5:
        return Unsuback(packet_id=draw(packet_ids))
    codes = draw(st.lists(st.sampled_from(sorted(rc.UNSUBACK_V5)), min_size=1, max_size=5))
    return Unsuback(packet_id=draw(packet_ids), reason_codes=tuple(codes),
                    properties=draw(properties(11)))


@st.composite
def disconnects(draw, version: int) -> Disconnect:
    if version < 5:
        return Disconnect()
    return Disconnect(reason_code=draw(st.sampled_from(sorted(rc.DISCONNECT_V5))),
                      properties=draw(properties(14)))


@st.composite
def auths(draw, version: int) -> Auth:
    assert version == 5
    return Auth(reason_code=draw(st.sampled_from(sorted(rc.AUTH_V5))),
                properties=draw(properties(15)))


STRATEGIES = {
    "connect": connects,
    "connack": connacks,
    "publish": publishes,
    "puback": _acks(Puback, rc.PUBACK_V5, 4),
    "pubrec": _acks(Pubrec, rc.PUBREC_V5, 5),
    "pubrel": _acks(Pubrel, rc.PUBREL_V5, 6),
    "pubcomp": _acks(Pubcomp, rc.PUBCOMP_V5, 7),
    "subscribe": subscribes,
    "suback": subacks,
    "unsubscribe": unsubscribes,
    "unsuback": unsubacks,
    "pingreq": lambda version: st.just(Pingreq()),
    "pingresp": lambda version: st.just(Pingresp()),
    "disconnect": disconnects,
    "auth": auths,
}


def versions_for(kind: str) -> list[int]:
    return [5] if kind == "auth" else [3, 4, 5]


CLIENT_TO_SERVER = ("publish", "puback", "pubrec", "pubrel", "pubcomp", "subscribe",
                    "unsubscribe", "pingreq", "disconnect", "auth")


def client_packets(version: int):
    """Any packet a client may send after its CONNECT."""
    return st.one_of([STRATEGIES[k](version) for k in CLIENT_TO_SERVER
                      if version in versions_for(k)])


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(STRATEGIES))
@SETTINGS
@given(data=st.data())
def test_roundtrip(kind, data):
    version = data.draw(st.sampled_from(versions_for(kind)), label="version")
    packet = data.draw(STRATEGIES[kind](version), label="packet")
    wire = encode(packet, version)
    assert encode(packet, version) == wire, "encode is not deterministic"
    assert Decoder(version).feed(wire) == [packet]


@SETTINGS
@given(data=st.data())
def test_server_side_stream_roundtrip(data):
    """CONNECT of any version, then client packets of that version, cut into random chunks."""
    version = data.draw(st.sampled_from([3, 4, 5]), label="version")
    connect = data.draw(connects(version), label="connect")
    rest = data.draw(st.lists(client_packets(version), max_size=6), label="packets")
    stream = b"".join(encode(p, version) for p in [connect, *rest])
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6), label="cuts"))
    decoder = Decoder()
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        got.extend(decoder.feed(stream[start:end]))
    assert got == [connect, *rest]
    assert decoder.version == version


@SETTINGS
@given(topic=topic_names)
def test_topic_names_of_every_length_class_roundtrip(topic):
    """Long multi-byte topics too: the length prefix counts bytes, not characters."""
    long_topic = (topic * 40)[:3000]
    for version in (4, 5):
        packet = Publish(topic=long_topic, payload=b"x", qos=1, packet_id=1)
        assert Decoder(version).feed(encode(packet, version)) == [packet]


def test_longest_topic_65535_bytes_roundtrips():
    """The largest Topic Name the two-byte length prefix can carry [MQTT-4.7.3-3]."""
    topic = "a" * 65533 + "\u00e9"  # 65533 + 2 bytes
    for version in (4, 5):
        packet = Publish(topic=topic, payload=b"")
        assert Decoder(version).feed(encode(packet, version)) == [packet]
