"""What MQTT over WebSockets costs beside MQTT over TCP, through one ``mqttsim broker``.

One broker process with a TCP and a ``protocol websockets`` listener; for each transport in
turn (TCP first, then WebSockets, ``--repeat`` times, alternating so load changes hit both),
paho-mqtt (PyPI, ``transport="tcp"`` / ``"websockets"``) subscribes to a topic at QoS 1 and
publishes ``--messages`` QoS 1 messages of 64 bytes with at most 20 unacknowledged; the rate is
deliveries / (last delivery - first publish). paho is the same client on both paths, so the
ratio is what the WebSocket path costs end to end: paho's framing and masking in Python as
well as the broker's (websockets' sans-IO framing). The broker runs with
``max_queued_messages 0``, as in benchmarks/broker.py: with Mosquitto's default of 1000 a
subscriber that falls behind has copies dropped (counted, ``engine.drop_counts()``), which
would measure the limit instead of the path.

    python benchmarks/websockets.py [--messages 20000] [--repeat 3]

Prints a table, then one JSON line: {"tcp": msg/s, "websockets": msg/s, "ratio": ws/tcp}.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def one_run(port: int, transport: str, messages: int, tag: str) -> float:
    """msg/s delivered from one paho publisher to one paho subscriber, QoS 1."""
    topic = f"bench/{tag}"
    received = threading.Event()
    count = 0
    last = 0.0

    def on_message(client, userdata, message) -> None:
        nonlocal count, last
        count += 1
        if count == messages:
            last = time.perf_counter()
            received.set()

    clients = []
    for role in ("sub", "pub"):
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"{role}-{tag}",
                             transport=transport)
        client.max_inflight_messages_set(WINDOW)
        client.max_queued_messages_set(0)
        connected = threading.Event()
        client.on_connect = lambda *args, event=connected: event.set()
        client.connect("127.0.0.1", port, keepalive=60)
        client.loop_start()
        if not connected.wait(10):
            raise RuntimeError(f"{role} did not connect over {transport}")
        clients.append(client)
    sub, pub = clients
    subscribed = threading.Event()
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.on_message = on_message
    sub.subscribe(topic, 1)
    if not subscribed.wait(10):
        raise RuntimeError("no SUBACK")
    payload = b"x" * 64
    start = time.perf_counter()
    for _ in range(messages):
        pub.publish(topic, payload, 1)
    if not received.wait(120):
        raise RuntimeError(f"{count} of {messages} messages arrived over {transport}")
    for client in clients:
        client.disconnect()
        client.loop_stop()
    return messages / (last - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tcp, ws = free_port(), free_port()
    with tempfile.TemporaryDirectory() as folder:
        conf = Path(folder) / "bench.conf"
        conf.write_text(f"listener {tcp} 127.0.0.1\nlistener {ws} 127.0.0.1\n"
                        "protocol websockets\nallow_anonymous true\n"
                        # as benchmarks/broker.py: no queue limit, so a slower reader
                        # (paho's WebSocket path) is measured, not dropped for
                        "max_queued_messages 0\n")
        broker = subprocess.Popen([sys.executable, "-m", "mqttsim", "broker", "-c", str(conf)],
                                  cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            wait_listening(tcp)
            wait_listening(ws)
            rates: dict[str, list[float]] = {"tcp": [], "websockets": []}
            for run in range(args.repeat):
                for transport, port in (("tcp", tcp), ("websockets", ws)):
                    rates[transport].append(one_run(port, transport, args.messages,
                                                    f"{transport}{run}"))
        finally:
            broker.terminate()
            broker.wait(10)
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{'transport':<12} | {'msg/s (median)':>15} | runs")
    for name, values in rates.items():
        print(f"{name:<12} | {median[name]:>15,.0f} | "
              + ", ".join(f"{v:,.0f}" for v in values))
    print(json.dumps({"tcp": round(median["tcp"]), "websockets": round(median["websockets"]),
                      "ratio": round(median["websockets"] / median["tcp"], 2),
                      "messages": args.messages, "repeat": args.repeat}))


if __name__ == "__main__":
    main()
