"""How much the kernel backend's link emulator costs, against a direct veth path in the same run.

Two namespaces joined two ways, measured the same way:
- through the emulator (TUN devices, a link with no impairment: latency 0, no bandwidth
  limit, no loss), as every kernel-backend run is joined;
- through a veth pair (the kernel forwarding with no user space at all): the reference.

Measured on each: the TCP round trip of a 1-byte ping-pong (median and p99 of ROUND_TRIPS
exchanges), so the emulator's added latency per round trip (two passes through it) is the
difference; and a bulk TCP transfer for BULK_SECONDS, so the packets per second the emulator
sustains (every packet it forwarded, data and ACKs, from its own log) and the goodput. A
third measurement checks the emulator's accuracy: with 50 ms one-way latency, how far the
round trip is above 100 ms.

Run as root: ``python benchmarks/kernel_emulator.py`` (about 20 s). Bounded: fixed counts,
and every phase stops at its time limit. Everything it creates is removed at the end.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mqttsim import Scenario  # noqa: E402
from mqttsim.backends.kernel.netns import (PREFIX, ip, missing_requirement,  # noqa: E402
                                           socket_in)
from mqttsim.backends.kernel.network import KernelNetwork  # noqa: E402

ROUND_TRIPS = 2000
BULK_SECONDS = 3.0
PHASE_LIMIT = 20.0  # seconds, at most, for any one measurement
PORT = 5001


def echo_server(namespace: str, address: str, stop: threading.Event) -> socket.socket:
    """A server in ``namespace``: echoes each connection's bytes, or (first byte b"B")
    swallows a bulk transfer. Runs on daemon threads until ``stop``."""
    server = socket_in(namespace)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, PORT))
    server.listen(4)
    server.settimeout(0.2)

    def serve(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(0.5)
        with conn:
            while not stop.is_set():
                try:
                    data = conn.recv(262144)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                if data[:1] != b"B":
                    conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server


def ping_pong(namespace: str, address: str) -> list[float]:
    client = socket_in(namespace)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.settimeout(5)
    client.connect((address, PORT))
    times = []
    deadline = time.monotonic() + PHASE_LIMIT
    with client:
        for _ in range(20):  # warm up
            client.sendall(b"p")
            client.recv(1)
        for _ in range(ROUND_TRIPS):
            if time.monotonic() > deadline:
                break
            start = time.perf_counter()
            client.sendall(b"p")
            client.recv(1)
            times.append(time.perf_counter() - start)
    return times


def bulk(namespace: str, address: str) -> tuple[float, float]:
    """(bytes sent, seconds) of a bulk transfer lasting BULK_SECONDS."""
    client = socket_in(namespace)
    client.settimeout(5)
    client.connect((address, PORT))
    chunk = b"B" * 65536
    sent = 0
    start = time.monotonic()
    with client:
        while time.monotonic() - start < BULK_SECONDS:
            sent += client.send(chunk)
        elapsed = time.monotonic() - start
    return sent, elapsed


def over_emulator(latency: float, with_bulk: bool) -> dict:
    sc = Scenario.from_dict({"name": "bench", "duration": 3600,
                             "clients": [{"name": "c"}], "link": {"latency": latency}})
    stop = threading.Event()
    with KernelNetwork(sc, 1, capture=False) as net:
        net.start()
        server = echo_server(net.broker.namespace, net.broker.address, stop)
        try:
            rtts = ping_pong(net.hosts["c"].namespace, net.broker.address)
            before = time.monotonic()
            sent, elapsed = (bulk(net.hosts["c"].namespace, net.broker.address) if with_bulk
                             else (0, 0.0))
        finally:
            stop.set()
            server.close()
        log = net.stop()
    packets_in_bulk = sum(1 for row in log.packets if row[0] >= before - net.origin)
    return {"rtts": rtts, "sent": sent, "elapsed": elapsed, "packets": packets_in_bulk,
            "late_max": log.stats["late_max"], "late_mean": log.stats["late_mean"]}


def over_veth() -> dict:
    names = [f"{PREFIX}{os.getpid()}-0-{i}" for i in (90, 91)]
    stop = threading.Event()
    made = []
    try:
        for name in names:
            ip("netns", "add", name)
            made.append(name)
        ip("link", "add", "mqsva", "netns", names[0], "type", "veth", "peer", "name", "mqsvb",
           "netns", names[1])
        for name, dev, address in ((names[0], "mqsva", "10.78.0.1"),
                                   (names[1], "mqsvb", "10.78.0.2")):
            ip("-batch", "-", namespace=name, stdin=f"link set lo up\naddr add {address}/24 "
               f"dev {dev}\nlink set {dev} up\n")
        server = echo_server(names[0], "10.78.0.1", stop)
        try:
            rtts = ping_pong(names[1], "10.78.0.1")
            sent, elapsed = bulk(names[1], "10.78.0.1")
        finally:
            stop.set()
            server.close()
        return {"rtts": rtts, "sent": sent, "elapsed": elapsed}
    finally:
        for name in made:
            ip("netns", "del", name)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    missing = missing_requirement()
    if missing:
        print(f"kernel_emulator: {missing}", file=sys.stderr)
        return 2
    veth = over_veth()
    emu = over_emulator(0.0, with_bulk=True)
    slow = over_emulator(0.05, with_bulk=False)
    v50, e50 = statistics.median(veth["rtts"]), statistics.median(emu["rtts"])
    print(f"TCP 1-byte round trip, median of {len(emu['rtts'])} (p99):")
    print(f"  veth (reference)     {v50 * 1e6:8.0f} us ({quantile(veth['rtts'], .99) * 1e6:.0f})")
    print(f"  emulator, no impair. {e50 * 1e6:8.0f} us ({quantile(emu['rtts'], .99) * 1e6:.0f})"
          f"   ratio {e50 / v50:.1f}x")
    print(f"  added by the emulator: {(e50 - v50) * 1e6:.0f} us per round trip "
          f"({(e50 - v50) / 2 * 1e6:.0f} us per pass)")
    veth_rate = veth["sent"] * 8 / veth["elapsed"] / 1e6
    emu_rate = emu["sent"] * 8 / emu["elapsed"] / 1e6
    print(f"bulk TCP for {BULK_SECONDS:g} s:")
    print(f"  veth (reference)     {veth_rate:9.1f} Mbit/s")
    print(f"  emulator             {emu_rate:9.1f} Mbit/s   ratio {emu_rate / veth_rate:.3f}; "
          f"{emu['packets'] / emu['elapsed']:,.0f} packets/s forwarded (data and ACKs)")
    print(f"  emulator writes late by {emu['late_mean'] * 1e6:.0f} us on average, "
          f"{emu['late_max'] * 1e3:.1f} ms at worst")
    s50 = statistics.median(slow["rtts"])
    print(f"accuracy: 50 ms one way each direction -> round trip {s50 * 1e3:.2f} ms "
          f"(p99 {quantile(slow['rtts'], .99) * 1e3:.2f} ms; the model says 100.00)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
