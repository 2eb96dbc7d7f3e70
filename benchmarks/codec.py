"""Codec speed: encode and stream-decode QoS 1 PUBLISH packets, against a bare baseline.

The baseline is the least any Python MQTT codec could do for this packet — struct packing
and slicing with no validation and no packet objects beyond a tuple — measured in the same
run, so the ratio says what validation and frozen dataclasses cost on this machine today.

    python benchmarks/codec.py [--count 100000] [--repeat 3]

Prints a table, then one JSON line:
{"encode_pps": ..., "stream_decode_pps": ..., "baseline_encode_pps": ...,
 "baseline_stream_decode_pps": ...}
"""

from __future__ import annotations

import argparse
import json
import struct
import time

from mqttsim.protocol import Decoder, Publish, encode

TOPIC = "sensor/1"
PAYLOAD = bytes(range(64))
CHUNK = 4096  # bytes handed to the decoder at a time, like a socket read


def bench_encode(count: int) -> tuple[float, list[bytes]]:
    packets = [Publish(TOPIC, PAYLOAD, qos=1, packet_id=i % 65535 + 1) for i in range(count)]
    start = time.perf_counter()
    wire = [encode(p, 4) for p in packets]
    return count / (time.perf_counter() - start), wire


def bench_decode(stream: bytes, count: int) -> float:
    decoder = Decoder(4)
    got = 0
    start = time.perf_counter()
    for offset in range(0, len(stream), CHUNK):
        got += len(decoder.feed(stream[offset:offset + CHUNK]))
    elapsed = time.perf_counter() - start
    assert got == count, (got, count)
    return count / elapsed


_HEAD = struct.Struct("!BBH")


def baseline_encode(count: int) -> tuple[float, list[bytes]]:
    topic = TOPIC.encode()
    ids = [i % 65535 + 1 for i in range(count)]
    start = time.perf_counter()
    out = []
    for packet_id in ids:
        body = _HEAD.pack(0x32, 2 + len(topic) + 2 + len(PAYLOAD), len(topic)) + topic
        out.append(body + packet_id.to_bytes(2, "big") + PAYLOAD)
    return count / (time.perf_counter() - start), out


def baseline_decode(stream: bytes, count: int) -> float:
    got = 0
    buf = b""
    start = time.perf_counter()
    for offset in range(0, len(stream), CHUNK):
        buf += stream[offset:offset + CHUNK]
        pos = 0
        while len(buf) - pos >= 2:
            length = buf[pos + 1]  # single-byte remaining length: enough for this packet
            if len(buf) - pos < 2 + length:
                break
            tlen = (buf[pos + 2] << 8) | buf[pos + 3]
            topic = buf[pos + 4:pos + 4 + tlen].decode()
            packet_id = (buf[pos + 4 + tlen] << 8) | buf[pos + 5 + tlen]
            payload = buf[pos + 6 + tlen:pos + 2 + length]
            got += (topic, packet_id, payload) is not None
            pos += 2 + length
        buf = buf[pos:]
    elapsed = time.perf_counter() - start
    assert got == count, (got, count)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    best = {"encode_pps": 0.0, "stream_decode_pps": 0.0, "baseline_encode_pps": 0.0,
            "baseline_stream_decode_pps": 0.0}
    for _ in range(args.repeat):
        enc, wire = bench_encode(args.count)
        stream = b"".join(wire)
        dec = bench_decode(stream, args.count)
        base_enc, base_wire = baseline_encode(args.count)
        assert b"".join(base_wire) == stream, "baseline and codec disagree on the bytes"
        base_dec = baseline_decode(stream, args.count)
        for key, value in zip(best, (enc, dec, base_enc, base_dec)):
            best[key] = max(best[key], value)
    print(f"{args.count:,} QoS 1 PUBLISH packets, topic {TOPIC!r}, {len(PAYLOAD)}-byte payload, "
          f"best of {args.repeat}")
    print(f"{'':16}{'mqttsim':>14}{'baseline':>14}{'ratio':>8}")
    for name, ours, base in (("encode", "encode_pps", "baseline_encode_pps"),
                             ("stream decode", "stream_decode_pps",
                              "baseline_stream_decode_pps")):
        print(f"{name:16}{best[ours]:>12,.0f}/s{best[base]:>12,.0f}/s"
              f"{best[ours] / best[base]:>8.2f}")
    print(json.dumps({k: round(v) for k, v in best.items()}))


if __name__ == "__main__":
    main()
