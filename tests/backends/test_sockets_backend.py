"""The sockets backend: real asyncio sockets through the relay, in scaled real time."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mqttsim import Scenario, run
from mqttsim.scenario.compare import agreement_table
from support.mosquitto import mosquitto_broker, require_mosquitto

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "data" / "scenarios" / "seed-sensor.toml"
# The seed's story is over at 2 s (pub's DISCONNECT); its file says 5 s. Runs in real time
# (an external broker) stop at this instead.
SEED_OVER = 2.5


def story(clients: list[dict], duration: float, **top) -> Scenario:
    return Scenario.from_dict({"name": "story", "duration": duration, "clients": clients,
                               **top})


def test_sockets_run_of_the_seed_gives_the_tables_the_simulator_gives():
    res = run(Scenario.load(SEED), seed=1, backend="sockets", time_scale=5)
    assert res.backend == "sockets"
    assert [(r.topic, r.payload) for r in res.received.itertuples()] == [("sensor", b"12")]
    packets = res.packets
    kinds = list(packets.sort_values("t")["type"])
    assert kinds[:4] == ["CONNECT", "CONNACK", "SUBSCRIBE", "SUBACK"]
    assert kinds.count("PUBLISH") == 2  # pub -> broker, broker -> sub
    # Every packet reached the peer's engine, after it was sent, from the engines' events.
    assert not packets["dropped"].any()
    assert (packets["t_recv"] >= packets["t"]).all()
    # The relay carried them as the simulator's TCP model does: segments, then arrivals.
    assert {"syn", "synack", "data"} <= set(res.segments["kind"])
    assert res.segments["t_arrival"].notna().all()
    assert "Received PUBLISH from pub" in "\n".join(res.broker_log())


def test_time_scale_runs_keepalive_and_every_timer_faster_together():
    # The subscriber's link goes down at 2 s for good: the broker closes it after 1.5 x its
    # 2 s keepalive of silence [MQTT-3.1.2-24] -- at 3 s past the last packet it heard, in
    # scenario time, whatever the speed.
    clients = [{"name": "quiet", "keepalive": 2, "subscribe": ["t"],
                "link": {"outages": [[2.0, 100.0]]}}]
    sc = story(clients, duration=8.0, link={"latency": 0.005})
    sim = run(sc, seed=1)
    start = time.monotonic()
    real = run(sc, seed=1, backend="sockets", time_scale=4)
    wall = time.monotonic() - start
    assert 8.0 / 4 <= wall < 8.0 / 4 + 3.0
    for res in (sim, real):
        first = res.connections.iloc[0]
        assert first["broker_reason"] == "keepalive"
    t_sim = sim.connections.iloc[0]["t_down"]
    t_real = real.connections.iloc[0]["t_down"]
    assert abs(t_sim - t_real) < 0.25, (t_sim, t_real)


def test_a_crash_resets_the_socket_and_the_real_broker_publishes_the_will():
    watcher = {"name": "watcher", "subscribe": [{"topic": "status/#", "qos": 1}]}
    device = {"name": "device", "keepalive": 10, "crashes": [{"at": 1.0, "down": 1.0}],
              "will": {"topic": "status/device", "message": "offline", "qos": 1}}
    sc = story([watcher, device], duration=4.0, link={"latency": 0.01})
    sim = run(sc, seed=1)
    real = run(sc, seed=1, backend="sockets", time_scale=2)
    assert agreement_table(sim, real, 2).query("agree == False").empty
    for res in (sim, real):
        conns = res.connections[res.connections["client"] == "device"]
        assert list(conns["reason"])[0] == "client_crash"
        assert list(conns["broker_reason"])[0] == "reset"  # RST through the relay
        assert list(res.received["payload"]) == [b"offline"]


def test_a_broker_restart_on_sockets_keeps_the_persistent_session_in_sqlite():
    keeper = {"name": "keeper", "clean": False, "subscribe": [{"topic": "t", "qos": 1}]}
    pub = {"name": "pub", "clean": False,
           "publish": {"topic": "t", "qos": 1, "interval": 0.25, "count": 12, "start": 0.5}}
    # Over by 3.3 s (the simulator: back at 3.05 s, last delivery 3.27 s); 5 s leaves room.
    sc = story([keeper, pub], duration=5.0, link={"latency": 0.01},
               broker={"restarts": [{"at": 2.0, "down": 1.0}]})
    real = run(sc, seed=1, backend="sockets", time_scale=2)
    c = real.connections
    assert set(c[c["t_up"].notna() & c["t_down"].notna()]["reason"]) == {"broker_restart"}
    again = c[(c["client"] == "keeper") & c["t_up"].notna()].iloc[1]
    assert bool(again["session_present"])  # restored from the SQLite store
    keeper_out = real.outcomes[real.outcomes["subscriber"] == "keeper"]
    assert (keeper_out["copies"] >= 1).all() and len(keeper_out) == 12


def test_a_tcp_give_up_is_reported_as_tcp_timeout_on_both_backends():
    pub = {"name": "pub", "keepalive": 0, "clean": False,
           "publish": {"topic": "t", "qos": 1, "interval": 0.5, "start": 0.5, "count": 4},
           "link": {"outages": [[1.0, 60.0]]}}
    # TCP gives up at 4.0 s (0.2 + 0.4 + 0.8 + 1.6 s of RTOs after the outage starts); the
    # reconnect's SYN goes out at 5.0 s, 2 s before the end.
    sc = story([pub], duration=7.0, link={"latency": 0.01},
               tcp={"max_retransmits": 3, "initial_rto": 0.2, "min_rto": 0.2})
    sim = run(sc, seed=1)
    real = run(sc, seed=1, backend="sockets", time_scale=4)
    for res in (sim, real):
        first = res.connections.iloc[0]
        assert first["client_reason"] == "tcp_timeout", res.connections
    assert agreement_table(sim, real, 4).query("agree == False").empty


def test_an_external_mosquitto_serves_the_seed_scenario(tmp_path):
    require_mosquitto()
    with mosquitto_broker(tmp_path) as broker:  # real time: the seed's story ends at 2 s
        res = run(Scenario.load(SEED).with_(duration=SEED_OVER), seed=1, backend="sockets",
                  broker=f"{broker.host}:{broker.port}")
    assert [(r.topic, r.payload) for r in res.received.itertuples()] == [("sensor", b"12")]
    assert list(res.outcomes["outcome"]) == ["delivered"]
    assert res.broker_log() == []  # an external broker tells us nothing but its packets


@pytest.mark.parametrize("options, message", [
    ({"broker": "localhost", "time_scale": 1}, "broker must be HOST:PORT"),
    ({"broker": "127.0.0.1:1883", "time_scale": 10}, "external broker keeps real time"),
])
def test_what_the_sockets_backend_cannot_do_is_refused_before_it_starts(options, message):
    with pytest.raises(ValueError, match=message):
        run(Scenario.load(SEED), backend="sockets", **options)


def test_the_simulator_refuses_sockets_only_options():
    with pytest.raises(ValueError, match="for backend='sockets'"):
        run(Scenario.load(SEED), time_scale=10)


def _mqttsim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mqttsim", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_cli_run_backend_sockets_prints_what_sub_printed():
    done = _mqttsim("run", str(SEED), "--backend", "sockets", "--time-scale", "5")
    assert done.returncode == 0, done.stderr
    assert "sub: sensor 12" in done.stdout and "backend sockets" in done.stdout


def test_cli_compare_exits_0_when_the_backends_agree(tmp_path):
    done = _mqttsim("compare", str(SEED), "--time-scale", "5", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the backends agree" in done.stdout
    assert "messages with another outcome" in (tmp_path / "compare.csv").read_text()


def test_cli_compare_exits_1_when_a_real_broker_disagrees_with_the_scenario(tmp_path):
    # A mosquitto that refuses anonymous clients is not the broker the scenario describes:
    # nothing is delivered on sockets, and compare says so with exit status 1.
    require_mosquitto()
    with mosquitto_broker(tmp_path, extra_config="allow_anonymous false\n"
                          "password_file /dev/null\n") as broker:
        done = _mqttsim("compare", str(SEED), "--time-scale", "1",  # real time: cut short
                        "--set", f"duration={SEED_OVER}",
                        "--broker", f"{broker.host}:{broker.port}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the backends DISAGREE" in done.stdout
    assert "outcome: lost" in done.stdout


def test_the_datagram_contrast_runs_on_sockets_one_mqtt_packet_per_datagram(tmp_path):
    # No loss: every packet arrives, each as its own datagram of the packet's size + 28.
    sc = Scenario.load(SEED).with_(transport="datagram")
    real = run(sc, seed=1, backend="sockets", time_scale=5)
    assert [(r.topic, r.payload) for r in real.received.itertuples()] == [("sensor", b"12")]
    datagrams = real.segments
    assert set(datagrams["kind"]) == {"datagram"}
    sizes = sorted(datagrams["bytes"] - 28)
    assert sizes == sorted(real.packets["bytes"])


def test_a_sockets_run_writes_the_relayed_tcp_traffic_as_a_pcap(tmp_path):
    real = run(Scenario.load(SEED), seed=1, backend="sockets", time_scale=5)
    assert real.to_pcap(tmp_path / "real.pcap") == len(real.segments) > 0


def test_a_time_scale_the_machine_cannot_keep_up_with_is_reported_not_hidden():
    # 100 clients connecting within 5 scenario seconds played 200x faster (25 ms of real
    # time): no machine runs those timers on time, and the run says by how much.
    sc = Scenario.load(ROOT / "data" / "scenarios" / "classroom.toml").with_(duration=5.0)
    with pytest.warns(RuntimeWarning, match="fell behind its clock"):
        res = run(sc, seed=1, backend="sockets", time_scale=200)
    assert res.stats["max_lag"] > 0.1 and res.stats["time_scale"] == 200


def test_cli_run_refuses_sockets_options_for_the_simulator(capsys):
    from mqttsim.cli import main
    assert main(["run", str(SEED), "--time-scale", "5"]) == 2
    assert "--time-scale and --broker are for --backend sockets" in capsys.readouterr().err
