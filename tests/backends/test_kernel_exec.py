"""``mqttsim exec``: real mosquitto_sub and mosquitto_pub on a scenario's link.

The seed's walk-through (``mosquitto_sub -v -t sensor``, ``mosquitto_pub -t sensor -m 12``)
across a 300 ms one-way satellite link: ``sensor 12`` comes out, and the captured TCP
handshake shows the 600 ms round trip.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mqttsim.backends.kernel import list_namespaces, missing_requirement
from mqttsim.backends.kernel.packets import SYN, ACK, parse

MISSING = missing_requirement()
ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "data" / "scenarios" / "seed-sensor.toml"
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=f"kernel backend: {MISSING}"),
    pytest.mark.skipif(shutil.which("mosquitto_sub") is None or shutil.which("mosquitto") is None,
                       reason="needs mosquitto and mosquitto-clients (apt-get install -y "
                              "mosquitto mosquitto-clients)"),
]
ONE_WAY = 0.3


def read_pcap(path: Path) -> list[tuple[float, bytes]]:
    data = path.read_bytes()
    assert struct.unpack_from("<IHHiIII", data)[6] == 101  # LINKTYPE_RAW
    packets, at = [], 24
    while at < len(data):
        seconds, micros, length, _ = struct.unpack_from("<IIII", data, at)
        packets.append((seconds + micros / 1e6, data[at + 16:at + 16 + length]))
        at += 16 + length
    return packets


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
BROKERS = {"mqttsim": None, "mosquitto": "mosquitto -c {conf}"}


def walk_through(broker: str | None, pcap: Path) -> list[str]:
    return ["exec", str(SEED), "--set", f"link.latency={ONE_WAY}", "--client", "sub",
            "--also", "pub=sleep 1; mosquitto_pub -h {host} -t sensor -m 12",
            "--pcap", str(pcap), "--timeout", "30",
            *(["--broker-cmd", broker] if broker else []),
            "--", "mosquitto_sub", "-h", "{host}", "-v", "-t", "sensor", "-C", "1"]


class Launched:
    """``python -m mqttsim WORDS`` started now; ``done()`` waits for it (bounded)."""

    def __init__(self, *words: str):
        self.process = subprocess.Popen([sys.executable, "-m", "mqttsim", *words],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=ENV)
        self.result: subprocess.CompletedProcess | None = None

    def done(self, timeout: float = 60) -> subprocess.CompletedProcess:
        if self.result is None:
            try:
                out, err = self.process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                out, err = self.process.communicate()
            self.result = subprocess.CompletedProcess(self.process.args,
                                                      self.process.returncode, out, err)
        return self.result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every run of this module, started together: each waits seconds of real time on its own
    namespaces, so the module takes the longest run instead of their sum."""
    folder = tmp_path_factory.mktemp("exec")
    started = {f"walk-{name}": (Launched(*walk_through(cmd, folder / f"{name}.pcap")),
                                folder / f"{name}.pcap") for name, cmd in BROKERS.items()}
    started["missing"] = (Launched("exec", str(SEED), "--client", "nobody", "--", "true"), None)
    started["hangs"] = (Launched("exec", str(SEED), "--client", "sub", "--timeout", "1", "--",
                                 "sleep", "20"), None)
    started["run"] = (Launched("run", str(SEED), "--backend", "kernel", "--broker-cmd",
                               "mosquitto -c {conf}", "--pcap", str(folder / "run.pcap")),
                      folder / "run.pcap")
    try:
        yield started
    finally:
        for launched, _ in started.values():
            launched.done()


@pytest.mark.parametrize("broker", list(BROKERS))
def test_the_seed_walk_through_across_a_satellite_link_prints_sensor_12(broker, runs):
    launched, pcap = runs[f"walk-{broker}"]
    done = launched.done()
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sensor 12\n"
    assert "broker at 10.77.1.1:1883" in done.stderr
    assert "pub->broker" in done.stderr and "Traceback" not in done.stderr
    # The publisher's handshake, as the kernels sent it (each packet at its sending time):
    # its ACK of the SYN-ACK leaves one round trip after its SYN.
    pub = bytes([10, 77, 1, 3])
    packets = [(t, parse(data), data) for t, data in read_pcap(pcap)]
    sent = [(t, h) for t, h, _ in packets if h is not None and h.src == pub]
    assert sent[0][1].flags & SYN and not sent[0][1].flags & ACK
    assert sent[1][1].flags == ACK and sent[1][1].payload == 0
    assert 2 * ONE_WAY <= sent[1][0] - sent[0][0] + 1e-6 < 2 * ONE_WAY + 0.03
    # The PUBLISH crossed both links: from pub to the broker, then to sub.
    publishes = [(h.src, h.dst) for _, h, data in packets
                 if h is not None and h.payload and data[-len(b"sensor12"):] == b"sensor12"]
    assert (pub, bytes([10, 77, 1, 1])) in publishes
    assert (bytes([10, 77, 1, 1]), bytes([10, 77, 1, 2])) in publishes
    assert not_left_behind()


def not_left_behind() -> bool:
    """No mqs- namespace of a process that has ended (the exec run's own are gone)."""
    for name in list_namespaces():
        pid = int(name.split("-")[1])
        if not Path(f"/proc/{pid}").exists():
            return False
    return True


def test_exec_names_a_missing_client_and_times_out_a_program_that_hangs(runs):
    done = runs["missing"][0].done()
    assert done.returncode == 2
    assert done.stderr.strip() == ("mqttsim exec: the scenario has no client 'nobody'; it "
                                   "has: sub, pub")
    done = runs["hangs"][0].done()
    assert done.returncode == 124 and "stopped sleep after 1 s" in done.stderr
    assert not_left_behind()


def test_mqttsim_run_on_the_kernel_backend_with_mosquitto_as_the_broker(runs):
    launched, pcap = runs["run"]
    done = launched.done()
    assert done.returncode == 0, done.stderr
    assert "sub: sensor 12" in done.stdout and "backend kernel" in done.stdout
    # mosquitto answered: its CONNACKs are in the kernels' packets (from 10.77.1.1:1883).
    connacks = [h for _, data in read_pcap(pcap) if (h := parse(data)) and h.src_port == 1883
                and h.payload and data[-h.payload] == 0x20]
    assert len(connacks) == 2
    assert not_left_behind()
