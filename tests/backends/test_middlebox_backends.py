"""The middlebox on the real backends: the simulator's idle-timeout rule on real TCP and sockets.

First without root (pipes stand in for TUN devices): the emulator keys flows by the real
5-tuple, a client's SYN opens one, an idled-out flow's segment is dropped or answered with
two RSTs whose sequence numbers are what each receiver expects (RFC 9293 3.10.7.1, RFC 5961
3.2) and whose checksums are right (RFC 1071, checked here with a separate sum). Then on
Linux's own TCP in namespaces: a keepalive longer than the idle timeout breaks the
connection as in the simulator (the broker's keepalive when the middlebox drops silently,
a reset at the PINGREQ when it resets), and a shorter one keeps it.
"""

from __future__ import annotations

import os
import struct

import pytest

from mqttsim import Scenario, run
from mqttsim.backends.kernel import list_namespaces, missing_requirement
from mqttsim.backends.kernel.emulator import Emulator, EmulatorConfig
from mqttsim.backends.kernel.netns import address_of
from mqttsim.backends.kernel.packets import parse

SYN, RST, ACK, PSH = 0x02, 0x04, 0x10, 0x08


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
        payload: bytes = b"") -> bytes:
    size = 40 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, 0, 0, 64, 6, 0,
                     bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    return ip + struct.pack("!HHIIHHHH", sport, dport, seq, ack, (5 << 12) | flags, 65535, 0,
                            0) + payload


def ones_complement_sum_ok(data: bytes) -> bool:
    """RFC 1071's check: the sum of all 16-bit words, checksum included, is 0xFFFF."""
    total = 0
    for i in range(0, len(data), 2):
        total += int.from_bytes(data[i:i + 2].ljust(2, b"\0"), "big")
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


@pytest.fixture
def emulator_with_pipes():
    opened: list[tuple[int, int]] = []

    def make(scenario: Scenario):
        names = [scenario.broker.name] + [c.name for c in scenario.clients]
        for _ in names:
            r, w = os.pipe()
            os.set_blocking(r, False)
            opened.append((r, w))
        addresses = {name: address_of(i) for i, name in enumerate(names)}
        config = EmulatorConfig([(n, addresses[n], w) for n, (_, w) in zip(names, opened)],
                                scenario, 1, "/dev/null")
        reads = {n: r for n, (r, _) in zip(names, opened)}
        return Emulator(config, origin=0.0), reads, addresses

    yield make
    for r, w in opened:
        os.close(r)
        os.close(w)


def send(emulator, packet: bytes, src: int, t: float) -> None:
    """Host ``src`` sends ``packet`` at ``t``, after everything due before it (as the loop)."""
    emulator._due(t)
    emulator.accept(packet, src, t)


def handshake(emulator, a: str, b: str, sport: int) -> None:
    send(emulator, tcp(a, b, sport, 1883, 100, 0, SYN), 1, 0.0)
    send(emulator, tcp(b, a, 1883, sport, 500, 101, SYN | ACK), 0, 0.1)
    send(emulator, tcp(a, b, sport, 1883, 101, 501, ACK), 1, 0.2)


@pytest.mark.parametrize("on_idle", ["drop", "reset"])
def test_the_emulator_forgets_an_idle_5_tuple_and_drops_or_resets_it(emulator_with_pipes,
                                                                       on_idle):
    sc = Scenario.from_dict({"name": "mb", "duration": 30, "link": {"latency": 0.01},
                             "middlebox": {"idle_timeout": 2, "on_idle": on_idle},
                             "clients": [{"name": "dev"}]})
    emulator, reads, addresses = emulator_with_pipes(sc)
    a, b = addresses["dev"], addresses["broker"]
    handshake(emulator, a, b, 40000)
    send(emulator, tcp(a, b, 40000, 1883, 101, 501, PSH | ACK, b"\xc0\x00"), 1, 2.1)  # fresh
    send(emulator, tcp(a, b, 40000, 1883, 103, 501, PSH | ACK, b"\xc0\x00"), 1, 4.2)  # idle
    send(emulator, tcp(b, a, 1883, 40001, 900, 0, ACK), 0, 4.3)  # no flow was ever opened
    emulator._due(30.0)
    rows = emulator.log.packets
    sent = [row for row in rows if not parse(row[7]).flags & RST]  # not the forged ones
    fates = [(row[5], row[6]) for row in sent]
    assert fates[:4] == [(None, None)] * 4  # handshake and the first PINGREQ get through
    assert fates[4:] == [("middlebox_idle", "middlebox@broker")] * 2
    table = emulator.network.middleboxes["middlebox@broker"]
    assert table.created == 1 and table.expired == 1
    stats = emulator.finish(30.0).stats
    assert stats["middleboxes"][0]["dropped"] == 2
    to_broker = parse_all(os.read(reads["broker"], 65536))
    to_client = parse_all(os.read(reads["dev"], 65536))
    if on_idle == "drop":
        assert len(rows) == 6 and len(to_broker) == 3 and len(to_client) == 1
        return
    # Each end gets a RST forged in the name of the other, with the sequence number it
    # expects next: the broker the PINGREQ's own (103), the client the PINGREQ's ACK (501).
    rst_broker = next(p for p in to_broker if p.flags & RST and p.src_port == 40000)
    rst_client = next(p for p in to_client if p.flags & RST and p.dst_port == 40000)
    assert rst_broker.flags & RST and (rst_broker.src, rst_broker.src_port) == (
        bytes(map(int, a.split("."))), 40000) and rst_broker.seq == 103
    assert rst_client.flags & RST and rst_client.src_port == 1883 and rst_client.seq == 501
    forged = [row[7] for row in rows if parse(row[7]).flags & RST]
    assert len(forged) == 4  # two per segment of a forgotten flow
    for packet in forged:
        header_ok = ones_complement_sum_ok(packet[:20])
        pseudo = packet[12:20] + struct.pack("!BBH", 0, 6, len(packet) - 20)
        assert header_ok and ones_complement_sum_ok(pseudo + packet[20:])


def parse_all(data: bytes) -> list:
    packets = []
    while data:
        size = struct.unpack_from("!H", data, 2)[0]
        packets.append(parse(data[:size]))
        data = data[size:]
    return packets


# --- On Linux's TCP, and on the sockets backend's relay

MISSING = missing_requirement()
IDLE, KEEPALIVE = 1.6, 2  # and 1 s (MQTT's smallest keepalive) for "ok"
SLACK = 0.4  # seconds: real timers on a loaded machine run late


def behind_middleboxes() -> Scenario:
    """dev-drop behind a NAT that drops, dev-reset behind a load balancer that resets, both
    with a keepalive above the idle timeout; ok behind the NAT with one below it."""
    return Scenario.from_dict({
        "name": "nat", "duration": 3.8, "link": {"latency": 0.01},
        "routers": ["home", "lb"],
        "links": [{"a": "home", "b": "broker"}, {"a": "lb", "b": "broker"}],
        "middlebox": {"idle_timeout": IDLE, "on_idle": "drop"},
        "clients": [{"name": "dev-drop", "keepalive": KEEPALIVE, "attach": "home"},
                    {"name": "dev-reset", "keepalive": KEEPALIVE, "attach": "lb",
                     "middlebox": {"on_idle": "reset"}},
                    {"name": "ok", "keepalive": 1, "attach": "home"}]})


def broken_as_the_rules_say(res, backend: str) -> None:
    conns = res.connections
    backend = f"{backend}:\n{conns[['client', 't_up', 't_down', 'broker_reason', 'client_reason']]}"
    first = conns.groupby("client").first()
    # silently dropped: the broker gives up 1.5 keepalives after the CONNECT
    dropped = first.loc["dev-drop"]
    assert dropped["broker_reason"] == "keepalive", backend
    assert dropped["t_down"] == pytest.approx(1.5 * KEEPALIVE, abs=SLACK), backend
    # reset: both ends at the PINGREQ, one keepalive after the CONNECT
    reset = first.loc["dev-reset"]
    assert reset["client_reason"] == "reset", backend
    # the real server names the socket error it got: ECONNRESET
    assert reset["broker_reason"] == "reset" or (
        reset["broker_reason"] == "transport" and "reset" in reset["detail"]), backend
    assert reset["t_down"] == pytest.approx(KEEPALIVE, abs=SLACK), backend
    assert (conns["client"] == "dev-reset").sum() == 2, backend  # and it reconnected
    # keepalive 1 s < 1.5 s: never forgotten
    assert first.loc["ok", "t_down"] != first.loc["ok", "t_down"], backend  # NaN


@pytest.mark.realtime
@pytest.mark.skipif(MISSING is not None, reason=f"kernel backend: {MISSING}")
def test_kernel_a_keepalive_longer_than_the_idle_timeout_breaks_real_tcp_as_in_the_sim():
    sc = behind_middleboxes()
    try:
        res = run(sc, seed=1, backend="kernel")
    finally:
        assert not [n for n in list_namespaces() if n.startswith(f"mqs-{os.getpid()}-")]
    broken_as_the_rules_say(res, "kernel")
    broken_as_the_rules_say(run(sc, seed=1), "sim")
    assert (res.segments["dropped"] == "middlebox_idle").sum() > 0
    rows = {row["middlebox"]: row for row in res.stats["emulator_middleboxes"]}
    assert rows["middlebox@lb"]["resets"] >= 1 and rows["middlebox@home"]["dropped"] >= 1


@pytest.mark.realtime
def test_sockets_the_relay_applies_the_same_middlebox():
    res = run(behind_middleboxes(), seed=1, backend="sockets", time_scale=2)
    broken_as_the_rules_say(res, "sockets")
