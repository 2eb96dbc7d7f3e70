"""Engine throughput: publisher engine -> broker engine -> subscriber engine, in memory.

No sockets and no simulator: bytes are handed from engine to engine by a small loop, the
way a driver would after a socket read. The publisher publishes in batches (``--batch``,
default 100), then the loop moves everything each side has written, as one chunk per
direction, until the wires are quiet; then the next batch. Every run checks that the
subscriber's application received every message (and, for QoS 1/2, that the publisher saw
every acknowledgement), so the rate is of messages that really arrived.

    python benchmarks/engine.py [--count 100000] [--batch 100] [--repeat 1] [--profile]

Prints messages/s per QoS with packet events off (the engines' default: they are a trace,
turned on by the simulator and by ``mqttsim broker -v``) and on, then one JSON line (with the
default, packet events off). Rates are per second of this process's CPU time, so other load on
a shared machine does not distort them:
{"qos0_msgs_per_s": ..., "qos1_msgs_per_s": ..., "qos2_msgs_per_s": ...}
``--profile`` adds the cProfile top entries of one QoS 1 run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time

from mqttsim.protocol.broker import BrokerEngine
from mqttsim.protocol.broker_state import BrokerConfig
from mqttsim.protocol.client import ClientConfig, ClientEngine
from mqttsim.protocol.events import MessageAcknowledged, MessageReceived

TOPIC = "bench/sensor"
PAYLOAD = bytes(range(64))


class Wires:
    """One broker, two clients, and the loop that moves bytes between them."""

    def __init__(self, emit_packet_events: bool):
        self.broker = BrokerEngine(BrokerConfig(emit_packet_events=emit_packet_events))
        self.clients = {
            name: ClientEngine(ClientConfig(name, emit_packet_events=emit_packet_events))
            for name in ("sub", "pub")}
        self.received = 0  # MessageReceived at the subscriber
        self.acknowledged = 0  # MessageAcknowledged at the publisher
        for name, client in self.clients.items():
            self.broker.connection_made(name, 0.0)
            client.connect(0.0)
        self.pump(0.0)

    def pump(self, now: float) -> None:
        """Move bytes both ways until neither side has anything to write."""
        broker, clients = self.broker, self.clients
        moved = True
        while moved:
            moved = False
            for conn, client in clients.items():
                data = client.data_to_send()
                if data:
                    moved = True
                    broker.receive(conn, data, now)
                self.count(conn, client.take_events())
            for conn in broker.pending():
                data, _ = broker.take_output(conn)
                if data:
                    moved = True
                    self.count(conn, clients[conn].receive(data, now))

    def count(self, who: str, events: list) -> None:
        if who == "sub":
            self.received += sum(1 for e in events if e.__class__ is MessageReceived)
        else:
            self.acknowledged += sum(1 for e in events if e.__class__ is MessageAcknowledged)


def run_once(qos: int, count: int, batch: int, emit: bool) -> float:
    """Messages per second for ``count`` messages at ``qos``, all verified delivered."""
    wires = Wires(emit)
    wires.clients["sub"].subscribe(TOPIC, qos=2, now=0.0)
    wires.pump(0.0)
    pub = wires.clients["pub"]
    now = 0.0
    start = time.process_time()
    for first in range(0, count, batch):
        now += 0.001
        for _ in range(min(batch, count - first)):
            pub.publish(TOPIC, PAYLOAD, qos, now=now)
        wires.pump(now)
    elapsed = time.process_time() - start
    if wires.received != count:
        raise SystemExit(f"QoS {qos}: {wires.received} of {count} messages arrived")
    if qos and wires.acknowledged != count:
        raise SystemExit(f"QoS {qos}: {wires.acknowledged} of {count} acknowledged")
    return count / elapsed


def best_of(repeat: int, qos: int, count: int, batch: int, emit: bool) -> float:
    return max(run_once(qos, count, batch, emit) for _ in range(repeat))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="messages per QoS")
    parser.add_argument("--batch", type=int, default=100, help="publishes between pumps")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; best kept")
    parser.add_argument("--profile", action="store_true",
                        help="print cProfile top entries of one QoS 1 run")
    args = parser.parse_args(argv)

    results: dict[bool, dict[int, float]] = {}
    print(f"{args.count} messages per QoS, batches of {args.batch}, "
          f"{len(PAYLOAD)}-byte payload, best of {args.repeat}")
    print(f"{'packet events':>14} {'QoS 0':>12} {'QoS 1':>12} {'QoS 2':>12}   (messages/s)")
    for emit in (False, True):
        results[emit] = {qos: best_of(args.repeat, qos, args.count, args.batch, emit)
                         for qos in (0, 1, 2)}
        row = " ".join(f"{results[emit][qos]:>12,.0f}" for qos in (0, 1, 2))
        print(f"{'on' if emit else 'off':>14} {row}")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run_once(1, args.count, args.batch, False)
        profiler.disable()
        print("\ncProfile, one QoS 1 run with packet events off (top 25 by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)

    line = {f"qos{qos}_msgs_per_s": round(results[False][qos]) for qos in (0, 1, 2)}
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
