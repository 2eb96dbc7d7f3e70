"""The link emulator's forwarding logic, without root: pipes stand in for TUN devices.

The emulator must carry each packet over the scenario's path hop by hop with the
simulator's own ``LinkDirection``s: behind a shared router, two clients' packets queue for
the router's uplink one after the other (serialization: size * 8 / bandwidth, then the
latency), an outage drops with the hop named, and what survives is written whole to the
destination's device.
"""

from __future__ import annotations

import os
import struct

import pytest

from mqttsim import Scenario
from mqttsim.backends.kernel.emulator import Emulator, EmulatorConfig
from mqttsim.backends.kernel.netns import address_of
from mqttsim.backends.kernel.packets import SegmentReader, kind_of, parse


def ipv4(src: str, dst: str, size: int) -> bytes:
    """An IPv4 packet of ``size`` bytes (header, then zeros), protocol 253 (experiments)."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, 0, 0, 64, 253, 0,
                         bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    return header + bytes(size - 20)


@pytest.fixture
def pipes():
    opened = []

    def make(count: int) -> list[tuple[int, int]]:
        for _ in range(count):
            r, w = os.pipe()
            os.set_blocking(r, False)
            opened.append((r, w))
        return opened[-count:]

    yield make
    for r, w in opened:
        os.close(r)
        os.close(w)


def emulator_for(scenario: Scenario, pipes) -> tuple[Emulator, dict[str, int], dict[str, str]]:
    names = [scenario.broker.name] + [c.name for c in scenario.clients]
    ends = pipes(len(names))
    addresses = {name: address_of(i) for i, name in enumerate(names)}
    config = EmulatorConfig([(n, addresses[n], w) for n, (_, w) in zip(names, ends)], scenario,
                            1, "/dev/null")
    emulator = Emulator(config, origin=0.0)
    return emulator, {n: r for n, (r, _) in zip(names, ends)}, addresses


def test_two_clients_behind_one_router_queue_for_its_uplink_hop_by_hop(pipes):
    sc = Scenario.from_dict({
        "name": "hops", "duration": 10, "routers": ["ap"],
        "links": [{"a": "ap", "b": "broker", "latency": 0.05, "bandwidth": 80_000}],
        "clients": [{"name": "a", "attach": "ap", "link": {"latency": 0.01}},
                    {"name": "b", "attach": "ap", "link": {"latency": 0.01}}]})
    emulator, reads, addresses = emulator_for(sc, pipes)
    first = ipv4(addresses["a"], addresses["broker"], 1000)
    second = ipv4(addresses["b"], addresses["broker"], 1000)
    emulator.accept(first, 1, 0.0)
    emulator.accept(second, 2, 0.0)
    emulator._due(10.0)  # every hop, in time order
    (_, _, _, _, t1, d1, _, _), (_, _, _, _, t2, d2, _, _) = emulator.log.packets
    serialization = 1000 * 8 / 80_000  # 0.1 s on the router's uplink
    assert d1 is None and t1 == pytest.approx(0.01 + serialization + 0.05)
    assert d2 is None and t2 == pytest.approx(0.01 + 2 * serialization + 0.05)  # queued behind
    assert os.read(reads["broker"], 4096) == first + second  # whole packets, in order
    links = {row["link"]: row for row in emulator.finish(10.0).links}
    assert links["ap->broker"]["sent"] == 2 and links["a->ap"]["sent"] == 1


def test_an_outage_drops_with_the_hop_named_and_unknown_addresses_are_not_forwarded(pipes):
    sc = Scenario.from_dict({"name": "o", "duration": 10,
                             "clients": [{"name": "c", "link": {"outages": [[1.0, 2.0]],
                                                                "latency": 0.02}}]})
    emulator, reads, addresses = emulator_for(sc, pipes)
    emulator.accept(ipv4(addresses["broker"], addresses["c"], 100), 0, 1.5)
    emulator.accept(ipv4(addresses["broker"], addresses["c"], 100), 0, 2.5)
    emulator.accept(ipv4(addresses["broker"], "10.99.0.1", 100), 0, 2.5)
    emulator._due(10.0)
    dropped, delivered = emulator.log.packets
    assert (dropped[4], dropped[5], dropped[6]) == (None, "outage", "broker->c")
    assert delivered[4] == pytest.approx(2.52) and delivered[5] is None
    assert emulator.unroutable == 1
    assert len(os.read(reads["c"], 4096)) == 100


def test_segment_reader_numbers_like_wireshark_and_spots_retransmissions():
    def tcp(seq: int, ack: int, flags: int, payload: bytes = b"", src=1, dst=2) -> bytes:
        size = 40 + len(payload)
        ip_header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, 0, 0, 64, 6, 0,
                                bytes([10, 0, 0, src]), bytes([10, 0, 0, dst]))
        ports = (1000, 1883) if src == 1 else (1883, 1000)
        return ip_header + struct.pack("!HHIIHHHH", *ports, seq, ack, (5 << 12) | flags,
                                       65535, 0, 0) + payload

    reader = SegmentReader()
    read = [reader.read(parse(p)) for p in (
        tcp(1000, 0, 0x02), tcp(5000, 1001, 0x12, src=2, dst=1), tcp(1001, 5001, 0x10),
        tcp(1001, 5001, 0x18, b"hello"), tcp(1001, 5001, 0x18, b"hello"),
        tcp(1006, 5001, 0x11))]
    assert read == [("syn", 0, None, False), ("synack", 0, 0, False), ("ack", 0, 0, False),
                    ("data", 0, 0, False), ("data", 0, 0, True), ("fin", 5, 0, False)]
    assert kind_of(0x04, 0) == "rst"
