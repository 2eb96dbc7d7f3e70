"""The broker engine's work for one MQTT 5 PUBLISH carrying many User Properties.

Issue 13: 200,000 user properties in one message cost the broker many times the CPU of the
same bytes as payload, and since one engine serves every client, the others waited (up to
3 s). This script feeds one such PUBLISH (``--count`` pairs "k"="v", 7 bytes each) to a
broker engine with ``--subscribers`` MQTT 5 subscribers, and the same number of bytes as a
plain payload as the reference, and reports CPU seconds for receive + routing + output, and
their ratio. What the broker does with such a packet (accept, refuse) is printed too.

    python benchmarks/user_properties.py [--count 200000] [--subscribers 3] [--repeat 3]

Prints one JSON line: {"props_s": ..., "payload_s": ..., "ratio": ..., "outcome": ...}.
"""

from __future__ import annotations

import argparse
import json
import time

from mqttsim.protocol import Decoder, encode
from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.packets import Connect, Disconnect, Publish, Subscribe, Subscription
from mqttsim.protocol.properties import Properties


def _setup(subscribers: int) -> BrokerEngine:
    b = BrokerEngine()
    for n in range(subscribers):
        conn = f"sub{n}"
        b.connection_made(conn, 0.0)
        b.receive(conn, encode(Connect(conn), 5)
                  + encode(Subscribe(1, (Subscription("t", 0),)), 5), 0.0)
        b.take_output(conn)
    b.connection_made("pub", 0.0)
    b.receive("pub", encode(Connect("pub"), 5), 0.0)
    b.take_output("pub")
    return b


def _one(data: bytes, subscribers: int) -> tuple[float, str]:
    b = _setup(subscribers)
    start = time.process_time()
    b.receive("pub", data, 1.0)
    out = {conn: b.take_output(conn)[0] for conn in list(b.pending())}
    took = time.process_time() - start
    reply = Decoder(5).feed(out.get("pub", b""))
    if reply and isinstance(reply[0], Disconnect):
        outcome = f"publisher disconnected 0x{reply[0].reason_code:02X}"
    else:
        delivered = sum(1 for n in range(subscribers) if out.get(f"sub{n}"))
        outcome = f"delivered to {delivered}/{subscribers}"
    return took, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--subscribers", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pairs = (("k", "v"),) * args.count
    with_props = encode(Publish("t", b"", 0, properties=Properties(user_properties=pairs)), 5)
    plain = encode(Publish("t", b"x" * (len(with_props) - 6), 0), 5)
    props = [_one(with_props, args.subscribers) for _ in range(args.repeat)]
    payload = [_one(plain, args.subscribers) for _ in range(args.repeat)]
    props_s, payload_s = min(t for t, _ in props), min(t for t, _ in payload)
    print(f"{args.count} user properties ({len(with_props):,} bytes): {props_s:.4f} s CPU, "
          f"{props[0][1]}")
    print(f"same bytes as payload ({len(plain):,} bytes): {payload_s:.4f} s CPU, "
          f"{payload[0][1]}")
    print(json.dumps({"count": args.count, "bytes": len(with_props), "props_s": round(props_s, 4),
                      "payload_s": round(payload_s, 4),
                      "ratio": round(props_s / max(payload_s, 1e-6), 1),
                      "outcome": props[0][1]}))


if __name__ == "__main__":
    main()
