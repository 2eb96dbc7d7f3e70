"""The pcap writer checked by the real dissector: tshark must read our synthetic IPv4/TCP
framing, verify its checksums, follow the streams and dissect every MQTT packet we wrote."""

from __future__ import annotations

import dataclasses
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mqttsim.protocol import (MQTT_3_1_1, MQTT_5, Connack, Connect, Disconnect, Pingreq,
                              Pingresp, Properties, Publish, Puback, Suback, Subscribe,
                              Subscription, encode)
from mqttsim.scenario.pcap import CapturedSegment, write_pcap

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed")
REPO = Path(__file__).resolve().parents[2]

SUB, BROKER, SUB_PORT, BROKER_PORT = "sub", "broker", 40001, 1883


class Connection:
    """Builds the segments of one TCP connection, keeping both sides' stream offsets, so a
    test reads like the conversation it describes. Every segment acks all the peer sent."""

    def __init__(self, a: str, a_port: int, b: str, b_port: int) -> None:
        self.ports = {a: a_port, b: b_port}
        self.peer = {a: b, b: a}
        self.next = {a: 0, b: 0}           # next stream offset each side will send
        self.syn_sent: set[str] = set()
        self.segments: list[CapturedSegment] = []
        self.t = 0.0

    def _ack(self, src: str) -> int | None:
        dst = self.peer[src]
        return self.next[dst] if dst in self.syn_sent else None

    def send(self, src: str, payload: bytes = b"", flags: str = "", *, seq: int | None = None,
             dt: float = 0.001) -> CapturedSegment:
        """Send ``payload`` (or resend it at an old offset ``seq``) from ``src``."""
        self.t += dt
        dst = self.peer[src]
        offset = self.next[src] if seq is None else seq
        seg = CapturedSegment(t=round(self.t, 6), src=src, dst=dst, src_port=self.ports[src],
                              dst_port=self.ports[dst], seq=offset, ack=self._ack(src),
                              payload=payload, flags=flags)
        self.segments.append(seg)
        if "S" in flags:
            self.syn_sent.add(src)
        if seq is None:
            self.next[src] += len(payload) + (1 if "F" in flags else 0)  # FIN takes an offset
        return seg


def mqtt_session(version: int) -> tuple[list[CapturedSegment], list[tuple[int, str]]]:
    """A full subscriber session; returns the segments and the (msgtype, topic) expected in
    tshark's output, in order (topic "" where the packet has none)."""
    props5 = version == MQTT_5
    publish = encode(Publish(topic="sensors/room1/temp", payload=b"21.5 degrees" * 20, qos=1,
                             packet_id=7, properties=Properties(
                                 user_properties=(("unit", "C"),)) if props5 else Properties()),
                     version)
    c = Connection(SUB, SUB_PORT, BROKER, BROKER_PORT)
    c.send(SUB, flags="S")
    c.send(BROKER, flags="S")
    c.send(SUB)
    c.send(SUB, encode(Connect(client_id="sub-1", keepalive=30, properties=Properties(
        session_expiry_interval=60) if props5 else Properties()), version))
    c.send(BROKER, encode(Connack(), version))
    c.send(SUB, encode(Subscribe(packet_id=1, subscriptions=(
        Subscription("sensors/+/temp", qos=1),)), version))
    c.send(BROKER, encode(Suback(packet_id=1, reason_codes=(1,)), version))
    half = len(publish) // 2
    first = c.send(BROKER, publish[:half])
    second = c.send(BROKER, publish[half:])
    c.send(BROKER, publish[half:], seq=second.seq, dt=0.2)   # the RTO fired: resend
    assert first.seq + half == second.seq
    c.send(SUB, encode(Puback(packet_id=7), version))
    c.send(SUB, encode(Pingreq(), version), dt=15)
    c.send(BROKER, encode(Pingresp(), version))
    c.send(SUB, encode(Disconnect(), version))
    c.send(SUB, flags="F")
    c.send(BROKER, flags="F")
    c.send(SUB)
    expected = [(1, ""), (2, ""), (8, "sensors/+/temp"), (9, ""), (3, "sensors/room1/temp"),
                (4, ""), (12, ""), (13, ""), (14, "")]
    return c.segments, expected


def tshark(path: Path, *fields: str, extra: tuple[str, ...] = ()) -> list[list[str]]:
    """One row per frame with the given fields, checksum validation on."""
    cmd = [TSHARK, "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE",
           "-o", "ip.check_checksum:TRUE", *extra, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=|"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
    assert out.stderr.strip() == "" or "Running as user" in out.stderr, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines()]


PI_ERROR = 0x00800000  # expert severity of malformed packets and bad checksums
ANALYSIS = ["frame.number", "ip.checksum.status", "tcp.checksum.status", "_ws.malformed",
            "_ws.expert.severity", "tcp.analysis.flags", "tcp.analysis.retransmission"]


def problems(path: Path) -> list[str]:
    """Every frame tshark finds malformed, badly checksummed or at error severity."""
    found = []
    for number, ip_ok, tcp_ok, malformed, severity, _, _ in tshark(path, *ANALYSIS):
        if ip_ok != "1" or tcp_ok != "1":
            found.append(f"frame {number}: checksum status ip={ip_ok} tcp={tcp_ok}")
        if malformed or any(int(v) >= PI_ERROR for v in severity.split("|") if v):
            found.append(f"frame {number}: malformed={malformed!r} severity={severity}")
    return found


@needs_tshark
@pytest.mark.parametrize("version", [MQTT_3_1_1, MQTT_5], ids=["3.1.1", "5.0"])
def test_tshark_dissects_every_packet_of_a_session(tmp_path, version):
    segments, expected = mqtt_session(version)
    path = tmp_path / "session.pcap"
    assert write_pcap(path, segments) == len(segments)

    rows = tshark(path, "frame.number", "mqtt.msgtype", "mqtt.topic", "mqtt.ver", "mqtt.msgid",
                  "tcp.seq", "tcp.ack", "tcp.flags.str", "mqtt.prop_key")
    assert len(rows) == len(segments)
    assert problems(path) == []
    dissected = [(int(r[1]), r[2]) for r in rows if r[1]]
    assert dissected == expected
    by_type = {int(r[1]): r for r in rows if r[1]}
    assert by_type[1][3] == str(version)                        # CONNECT carries the level
    assert by_type[3][0] == "9" and by_type[3][4] == "7"       # PUBLISH reassembled at part 2
    assert by_type[3][8] == ("unit" if version == MQTT_5 else "")
    for seg, row in zip(segments, rows):                        # tshark's relative numbers
        assert int(row[5]) == seg.seq + (0 if "S" in seg.flags else 1), row
        assert row[6] == ("0" if seg.ack is None else str(seg.ack + 1)), row

    analysed = [(r[0], bool(r[6])) for r in tshark(path, *ANALYSIS) if r[5]]
    assert analysed == [("10", True)], "only the resent segment may draw TCP analysis"


@needs_tshark
def test_the_checks_catch_corruption_and_malformed_mqtt(tmp_path):
    """Guards the assertions above: a flipped byte and a lying PUBLISH are both reported."""
    segments, _ = mqtt_session(MQTT_3_1_1)
    good = tmp_path / "good.pcap"
    write_pcap(good, segments)
    data = bytearray(good.read_bytes())
    data[-1 - 3 * (16 + 40)] ^= 0xFF           # last byte of DISCONNECT, 3 bare segments later
    flipped = tmp_path / "flipped.pcap"
    flipped.write_bytes(bytes(data))
    reported = problems(flipped)
    assert reported[0] == "frame 14: checksum status ip=1 tcp=0"
    assert {p.split(":")[0] for p in reported} == {"frame 14"}

    c = Connection(SUB, SUB_PORT, BROKER, BROKER_PORT)
    c.send(SUB, flags="S")
    c.send(BROKER, flags="S")
    c.send(SUB, encode(Connect(client_id="x"), MQTT_3_1_1))
    c.send(SUB, bytes([0x30, 6, 0, 50]) + b"ab\x01\x02")   # topic length 50 in a 6-byte body
    bad = tmp_path / "bad.pcap"
    write_pcap(bad, c.segments)
    assert [p.split(":")[0] for p in problems(bad)] == ["frame 4"]


def test_same_input_gives_identical_bytes_in_any_process(tmp_path):
    """ISNs must not come from Python's salted hash(): another interpreter, same file."""
    segments, _ = mqtt_session(MQTT_5)
    first, second = tmp_path / "a.pcap", tmp_path / "b.pcap"
    write_pcap(first, segments)
    write_pcap(second, segments)
    assert first.read_bytes() == second.read_bytes()
    script = ("import sys; from test_pcap import mqtt_session; "
              "from mqttsim.scenario.pcap import write_pcap; "
              "write_pcap(sys.argv[1], mqtt_session(5)[0])")
    for seed in ("1", "2"):
        other = tmp_path / f"seed{seed}.pcap"
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join([str(REPO), str(Path(__file__).parent)])}
        subprocess.run([sys.executable, "-c", script, str(other)], env=env, check=True,
                       timeout=60)
        assert other.read_bytes() == first.read_bytes()
    magic, major, minor, _, _, _, linktype = struct.unpack("<IHHiIII", first.read_bytes()[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 101)


def two_clients() -> list[CapturedSegment]:
    """A subscriber and a publisher, each list in time order but concatenated, not merged."""
    lists = []
    for client, port, start in ((SUB, SUB_PORT, 0.0), ("pub", 40002, 0.0005)):
        c = Connection(client, port, BROKER, BROKER_PORT)
        c.t = start
        c.send(client, flags="S")
        c.send(BROKER, flags="S")
        c.send(client, encode(Connect(client_id=client), MQTT_3_1_1))
        c.send(BROKER, encode(Connack(), MQTT_3_1_1))
        lists.append(c.segments)
    return lists[0] + lists[1]


@needs_tshark
def test_timestamps_addresses_and_headers_are_what_was_asked(tmp_path):
    segments = two_clients()
    default, chosen = tmp_path / "default.pcap", tmp_path / "chosen.pcap"
    assert write_pcap(default, segments) == 8
    write_pcap(chosen, segments, addresses={SUB: "192.168.7.20", "pub": "192.168.7.21",
                                            BROKER: "192.168.7.1"}, start_time=1_600_000_000.25)
    in_time = sorted(segments, key=lambda s: s.t)
    fields = ("frame.time_epoch", "ip.src", "ip.dst", "ip.ttl", "ip.id", "ip.len",
              "tcp.srcport", "tcp.window_size_value", "tcp.stream")
    for path, names, start in (
            (default, {SUB: "10.0.0.2", BROKER: "10.0.0.1", "pub": "10.0.0.3"}, 1_700_000_000),
            (chosen, {SUB: "192.168.7.20", BROKER: "192.168.7.1", "pub": "192.168.7.21"},
             1_600_000_000.25)):
        rows = tshark(path, *fields)
        assert problems(path) == []
        ids: dict[str, int] = {}
        for seg, (epoch, src, dst, ttl, ip_id, ip_len, sport, window, _) in zip(in_time, rows):
            assert round((float(epoch) - start) * 1e6) == round(seg.t * 1e6)
            assert (src, dst) == (names[seg.src], names[seg.dst])
            assert (ttl, window, int(sport)) == ("64", "65535", seg.src_port)
            assert int(ip_len) == 40 + len(seg.payload)
            ids[src] = ids.get(src, 0) + 1
            assert int(ip_id, 16) == ids[src], "IP id counts up per sending host"
        assert {r[8] for r in rows} == {"0", "1"}
        assert [int(r[6]) for r in rows][:4] == [SUB_PORT, 40002, BROKER_PORT, BROKER_PORT]


@pytest.mark.parametrize("change, message", [
    ({"flags": "SP"}, "only 'S', 'F' and 'R'"),
    ({"dst_port": 70000}, "dst_port 70000"),
    ({"payload": bytes(65496)}, "does not fit in one IPv4 packet"),
    ({"t": float("nan")}, "not a finite number"),
    ({"seq": -1}, "negative seq"),
])
def test_bad_segments_are_refused_before_anything_is_written(tmp_path, change, message):
    good = CapturedSegment(t=0.0, src=SUB, dst=BROKER, src_port=SUB_PORT,
                           dst_port=BROKER_PORT, seq=0, ack=None, flags="S")
    bad = dataclasses.replace(good, **change)
    path = tmp_path / "x.pcap"
    with pytest.raises(ValueError, match=message):
        write_pcap(path, [good, bad])
    assert not path.exists()
    with pytest.raises(ValueError, match="'300.1.1.1' for node 'sub'"):
        write_pcap(path, [good], addresses={SUB: "300.1.1.1"})
