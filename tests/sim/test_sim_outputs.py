"""What a run hands to its user: pcap for Wireshark, the CLI's report, CSV tables."""

from __future__ import annotations

import pandas as pd

from mqttsim.cli import main
from simstories import publisher, run, scenario, subscriber
from test_pcap import needs_tshark, problems, tshark

MSGTYPES = {"1": "CONNECT", "2": "CONNACK", "3": "PUBLISH", "4": "PUBACK", "5": "PUBREC",
            "6": "PUBREL", "7": "PUBCOMP", "8": "SUBSCRIBE", "9": "SUBACK", "12": "PINGREQ",
            "13": "PINGRESP", "14": "DISCONNECT"}


@needs_tshark
def test_a_lossy_run_as_pcap_dissects_without_one_malformed_packet(tmp_path):
    clients = [subscriber("sub", "t/#", qos=2, keepalive=5),
               subscriber("sub5", "t/#", qos=1, version=5),
               publisher("p1", "t/1", 1, 30, interval=0.5, size=3000),  # > MSS: 3 segments
               publisher("p2", "t/2", 2, 30, interval=0.5, version=5),
               {"name": "bye", "disconnect_at": 3.0}]
    res = run(scenario(clients, duration=40, link={"latency": 0.02, "loss": 0.05}), seed=5)
    assert res.segments["retransmission"].any()  # the capture shows TCP at work
    path = tmp_path / "run.pcap"
    assert res.to_pcap(path) == len(res.segments)
    assert problems(path) == []
    rows = tshark(path, "mqtt.msgtype", "tcp.analysis.retransmission")
    seen = [MSGTYPES[t] for types, retrans in rows if types and not retrans
            for t in types.split("|")]
    # Every MQTT packet the engines wrote is in the capture; lost segments are there as
    # sent (captured at the sender), so a packet shows up at least once.
    expected = res.packets["type"].value_counts().to_dict()
    found = pd.Series(seen).value_counts().to_dict()
    assert set(found) == set(expected)
    for kind, count in expected.items():
        assert found[kind] >= count, kind


def test_cli_run_prints_what_the_subscriber_got_the_broker_log_and_writes_tables(
        tmp_path, capsys):
    out = tmp_path / "tables"
    assert main(["run", "data/scenarios/seed-sensor.toml", "-v", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "sub: sensor 12" in text
    assert "Received PUBLISH from pub (d0, q0, r0, m0, 'sensor', ... (2 bytes))" in text
    assert "Sending PUBLISH to sub (d0, q0, r0, m0, 'sensor', ... (2 bytes))" in text
    assert "New client connected from sub:1 as sub (p2, c1, k60)." in text
    assert "1  clean (seen first by the client)" in text
    outcomes = pd.read_csv(out / "outcomes.csv")
    assert list(outcomes["outcome"]) == ["delivered"]
    summary = pd.read_csv(out / "summary.csv", index_col="qos")
    assert summary.loc[0, "delivered"] == 1 and summary.loc[0, "lost"] == 0
    assert {p.name for p in out.iterdir()} >= {"packets.csv", "connections.csv", "links.csv"}


def test_cli_run_applies_overrides_and_refuses_bad_ones_with_the_key_named(capsys):
    assert main(["run", "data/scenarios/seed-sensor.toml", "--set", "qos=1",
                 "--set", "link.latency=0.05"]) == 0
    text = capsys.readouterr().out
    assert "sub: sensor 12" in text
    assert "\n1  " in text.replace("qos\n", "\n")  # the summary has a QoS 1 row now
    assert main(["run", "data/scenarios/seed-sensor.toml", "--set", "link.loss=2"]) == 2
    err = capsys.readouterr().err
    assert "seed-sensor.toml" in err and "link.loss" in err and "0 to 1" in err


def test_summary_counts_bytes_per_qos_from_the_codec_sizes():
    res = run(scenario([subscriber("sub", "t/#", qos=2)]
                       + [publisher(f"p{q}", f"t/{q}", q, 10, size=20) for q in (0, 1, 2)],
                       duration=20, link={"latency": 0.01}), seed=1)
    s = res.summary()
    publish = {q: int(res.packets[(res.packets["src"] == f"p{q}")
                                  & (res.packets["type"] == "PUBLISH")]["bytes"].iloc[0])
               for q in (0, 1, 2)}
    # Per delivered copy: the PUBLISH on both hops, plus 4-byte acks: 1 per hop at QoS 1,
    # 3 per hop at QoS 2 (the broker's PUBLISH to the subscriber has the same size).
    assert s.loc[0, "bytes_per_copy"] == 2 * publish[0]
    assert s.loc[1, "bytes_per_copy"] == 2 * (publish[1] + 4)
    assert s.loc[2, "bytes_per_copy"] == 2 * (publish[2] + 3 * 4)
