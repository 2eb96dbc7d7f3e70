"""read_pcap reads back what Results.to_pcap writes, field for field as tshark reads it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mqttsim import Scenario, run
from mqttsim.scenario.pcap import read_pcap

SEED = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "seed-sensor.toml"
FIELDS = ("ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw",
          "tcp.len", "tcp.payload")


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pcap") / "sensor.pcap"
    run(Scenario.load(SEED).with_(qos=1), seed=1).to_pcap(path)
    return path


def test_every_frame_agrees_with_tshark(capture: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (make test installs it as root)")
    done = subprocess.run(["tshark", "-r", str(capture), "-T", "fields", "-E", "separator=|",
                           *[a for f in FIELDS for a in ("-e", f)]],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    theirs = [line.split("|") for line in done.stdout.splitlines()]
    mine = read_pcap(capture)
    assert len(mine) == len(theirs) == 29
    for row, fields in zip(mine.itertuples(), theirs):
        ack = fields[5] if "A" in row.flags else "0"  # tshark prints ack_raw for ACKs only
        assert [row.src, row.dst, str(row.src_port), str(row.dst_port), str(row.seq),
                str(row.ack), str(row.length), row.payload.hex()] == [*fields[:5], ack,
                                                                       *fields[6:]]


def test_the_mqtt_bytes_are_the_packets_of_the_run(capture: Path) -> None:
    frames = read_pcap(capture)
    res = run(Scenario.load(SEED).with_(qos=1), seed=1)
    assert frames["t"].iloc[0] == 0 and frames["t"].is_monotonic_increasing
    # No loss: every MQTT packet in one segment, nothing resent.
    assert (frames["length"] > 0).sum() == len(res.packets)
    assert frames["length"].sum() == res.packets["bytes"].sum()
    assert set(frames.loc[frames["flags"].str.contains("S"), "flags"]) == {"S", "SA"}


def test_a_file_that_is_not_a_pcap_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_bytes(b"these are not packets, just words in a file")
    with pytest.raises(ValueError, match="not a classic pcap file"):
        read_pcap(bad)
