"""Fuzzing the decoder: whatever bytes arrive, it raises only its own error types.

A broker reads bytes from strangers. Random bytes, valid vectors with flipped bits,
truncated or extended, and well-framed packets with random bodies go into decoders of
every version and the server-side decoder. The ONLY exceptions allowed are subclasses of
``MQTTError``; an IndexError, struct.error, UnicodeDecodeError or ValueError escaping
would take a server connection handler down instead of closing one connection cleanly.

Whatever the decoder *does* accept must be a packet the encoder also accepts, and that
decodes back to itself: decoder and encoder validate the same rules.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.errors import MQTTError
from mqttsim.protocol.packets import PACKET_CLASSES, Connect

from vectors import VECTORS, cases
from vectors import varint as _varint  # written there, not by the codec

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
DECODER_VERSIONS = [3, 4, 5, None]  # None: server side, version learned from CONNECT
SMALL_CASES = [(v, vec) for v, vec in cases(VECTORS) if len(vec.data) <= 300]
CONNECT_BYTES = {v: encode(Connect(client_id="fuzz"), v) for v in (3, 4, 5)}
PACKET_TYPES = tuple(PACKET_CLASSES.values())


def feed(version, chunks, max_packet_size=None) -> None:
    """Feed ``chunks``; allow only MQTTError; check what was decoded is consistent."""
    decoder = Decoder(version, max_packet_size=max_packet_size)
    decoded = []
    try:
        for chunk in chunks:
            decoded.extend(decoder.feed(chunk))
    except MQTTError as exc:
        assert isinstance(exc.decoded, list)
        decoded.extend(exc.decoded)
    if decoded:
        assert decoder.version in (3, 4, 5)
    for packet in decoded:
        assert isinstance(packet, PACKET_TYPES), packet
        # What the decoder accepted, the encoder must accept and reproduce.
        try:
            again = encode(packet, decoder.version)
        except MQTTError as exc:
            raise AssertionError(f"v{decoder.version} decoder accepted {packet!r} from "
                                 f"{b''.join(chunks).hex(' ')} but encode refuses it: {exc}")
        assert Decoder(decoder.version).feed(again) == [packet]


def _feed_everywhere(data: bytes, version: int | None = None) -> None:
    for dv in DECODER_VERSIONS:
        feed(dv, [data])
    if version is not None:  # the server side after a valid CONNECT of that version
        feed(None, [CONNECT_BYTES[version], data])


# --------------------------------------------------------------------------------------
# Hypothesis
# --------------------------------------------------------------------------------------

@SETTINGS
@given(data=st.binary(max_size=400), version=st.sampled_from(DECODER_VERSIONS))
def test_random_bytes(data, version):
    feed(version, [data])


@SETTINGS
@given(first=st.integers(0, 255), body=st.binary(max_size=200),
       version=st.sampled_from([3, 4, 5]))
def test_well_framed_packets_with_random_bodies(first, body, version):
    """Random bytes rarely frame a whole packet; these always do, so every body parser runs."""
    data = bytes((first,)) + _varint(len(body)) + body
    feed(version, [data])
    feed(None, [CONNECT_BYTES[version], data])


@SETTINGS
@given(level=st.integers(0, 255), flags=st.integers(0, 255), body=st.binary(max_size=80),
       name=st.sampled_from([b"MQTT", b"MQIsdp", b"MQTX", b"", b"MQTTT"]))
def test_connect_with_random_level_flags_and_payload(level, flags, body, name):
    """The server side must survive any CONNECT header before it knows the version."""
    variable = len(name).to_bytes(2, "big") + name + bytes((level, flags)) + b"\x00\x3c"
    for props in (b"", b"\x00"):
        rest = variable + props + body
        feed(None, [b"\x10" + _varint(len(rest)) + rest])


@st.composite
def mutated_vectors(draw):
    version, vec = draw(st.sampled_from(SMALL_CASES))
    data = bytearray(vec.data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "extend", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0xC0, 0xED, 0x23, 0x2B]))
        elif op == "truncate":
            del data[pos:]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=20))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[pos]
    return version, bytes(data)


@SETTINGS
@given(case=mutated_vectors())
def test_mutated_vectors(case):
    version, data = case
    _feed_everywhere(data, version)


@SETTINGS
@given(case=mutated_vectors(), cuts=st.lists(st.integers(0, 400), max_size=5),
       limit=st.one_of(st.none(), st.integers(2, 300)))
def test_mutated_vectors_in_chunks_with_size_limit(case, cuts, limit):
    version, data = case
    cuts = sorted(c for c in cuts if c <= len(data))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    feed(version, chunks, max_packet_size=limit)
    feed(None, [CONNECT_BYTES[version], *chunks], max_packet_size=limit)


# --------------------------------------------------------------------------------------
# A seeded random loop: many cheap cases, reproducible from the seed
# --------------------------------------------------------------------------------------

def test_seeded_random_mutation_loop():
    rng = random.Random(20240611)
    for _ in range(6000):
        version, vec = rng.choice(SMALL_CASES)
        data = bytearray(vec.data)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(data)) if data else 0
            op = rng.randrange(5)
            if op == 0 and data:
                data[pos] ^= 1 << rng.randrange(8)
            elif op == 1 and data:
                data[pos] = rng.randrange(256)
            elif op == 2:
                del data[pos:]
            elif op == 3:
                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif data:
                del data[pos]
        _feed_everywhere(bytes(data), version)


def test_seeded_random_framed_bodies_loop():
    rng = random.Random(7)
    for _ in range(6000):
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        data = bytes((rng.randrange(256),)) + _varint(len(body)) + body
        version = rng.choice([3, 4, 5])
        feed(version, [data])
        feed(None, [CONNECT_BYTES[version], data])


def test_seeded_random_bytes_loop():
    rng = random.Random(99)
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 60)))
        feed(rng.choice(DECODER_VERSIONS), [data])
