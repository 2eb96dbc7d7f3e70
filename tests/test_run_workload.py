"""Runs that would never end are refused up front; long simulated runs show their progress.

Issue 13: ``duration = 1e300`` or a periodic publisher with ``interval = 1e-9`` made ``mqttsim
run`` hang with no output. The loader now estimates the MQTT packets a scenario makes
(``checks.workload``) and refuses more than ``checks.MAX_PACKETS`` naming the biggest source;
the estimate is checked against what the simulator really sends.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from mqttsim.cli import main
from mqttsim.scenario import Scenario, ScenarioError, run
from mqttsim.scenario import checks, cli_run

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "data" / "scenarios" / "seed-sensor.toml"


def mqttsim(*args: str) -> subprocess.CompletedProcess[str]:
    # Before the check, both cases below ran until this timeout (hours to centuries).
    return subprocess.run([sys.executable, "-m", "mqttsim", *args], capture_output=True,
                          text=True, timeout=30, cwd=ROOT)


def story(interval: float = 0.05, duration: float = 20.0, qos: int = 1, **publish) -> dict:
    return {"name": "work", "duration": duration, "qos": qos, "clients": [
        {"name": "sub", "subscribe": ["t/#"]},
        {"name": "sub2", "subscribe": [{"topic": "t/1", "qos": 0}]},
        {"name": "pub", "count": 2, "keepalive": 5,
         "publish": {"topic": "t/1", "interval": interval, **publish}}]}


@pytest.mark.realtime
def test_duration_1e300_is_refused_at_once_naming_the_keepalive_pings() -> None:
    done = mqttsim("run", str(SEED), "--set", "duration=1e300")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "more than the limit of 5,000,000" in done.stderr
    assert "clients[0] (client sub): PINGREQ and PINGRESP every keepalive = 60 s" in done.stderr


@pytest.mark.realtime
def test_a_periodic_interval_of_1e_9_is_refused_naming_the_publish_table(tmp_path) -> None:
    path = tmp_path / "fast.toml"
    path.write_text('duration = 60\n[[clients]]\nname = "sub"\nsubscribe = ["t"]\n'
                    '[[clients]]\nname = "pub"\n[[clients.publish]]\ntopic = "t"\n'
                    'pattern = "periodic"\ninterval = 1e-9\n')
    done = mqttsim("run", str(path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "clients[1].publish[0] (client pub): 6e+10 messages (periodic every 1e-09 s for " \
           "60 s), 2 packets each at QoS 0 with 1 subscriber copies" in done.stderr
    assert "set count or stop" in done.stderr


def test_count_stop_and_disconnect_bound_the_estimate_so_fast_but_short_runs_pass() -> None:
    Scenario.from_dict(story(interval=1e-9, count=50))
    # 2 publishers x 1e5 messages x 5 packets (QoS 1, a QoS 1 and a QoS 0 copy): 1e6
    Scenario.from_dict(story(interval=1e-5, stop=1.0))
    with pytest.raises(ScenarioError, match="about 1e[+]07 MQTT packets"):
        Scenario.from_dict(story(interval=1e-5, stop=10.0))
    data = story(interval=1e-6)
    data["clients"][2]["disconnect_at"] = 0.2
    Scenario.from_dict(data)


def test_a_burst_counts_every_message_of_the_burst() -> None:
    with pytest.raises(ScenarioError, match=r"\(1000 a burst\)"):
        Scenario.from_dict(story(pattern="burst", burst=1000, interval=0.01, duration=100))


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_the_estimate_bounds_what_the_simulator_sends_and_is_close(qos: int) -> None:
    """Upper estimate: every subscriber connected throughout; it must not undercount (or
    the limit means nothing) and should be within 25% of the real count for a plain run."""
    sc = Scenario.from_dict(story(qos=qos))
    estimate = sum(item.packets for item in checks.workload(
        ((c, f"clients[{i}]") for i, c in enumerate(sc.clients)), sc.duration))
    res = run(sc, seed=1, capture=False)
    sent = len(res.packets)
    assert sent <= estimate + 8 * len(sc.clients)  # + CONNECT/CONNACK/SUBSCRIBE/SUBACK
    assert estimate <= 1.25 * sent


def test_every_shipped_scenario_is_within_the_limit() -> None:
    for path in sorted((ROOT / "data" / "scenarios").glob("*.toml")):
        Scenario.load(path)


# --- progress


@pytest.mark.realtime
def test_progress_reports_simulated_time_and_changes_nothing() -> None:
    sc = Scenario.from_dict(story(interval=0.002, duration=4.0))
    stream = io.StringIO()
    progress = cli_run.Progress(sc.duration, stream, every=0.05)
    try:
        watched = run(sc, seed=3, capture=False, watch=progress.watch)
    finally:
        progress.close()
    plain = run(sc, seed=3, capture=False)
    assert progress.reports >= 2, stream.getvalue()
    lines = stream.getvalue().splitlines()
    assert all(line.startswith("simulated ") and " of 4 s (" in line for line in lines)
    reached = [float(line.split()[1]) for line in lines]
    assert reached == sorted(reached) and 0 < reached[-1] <= 4
    assert watched.packets.equals(plain.packets) and watched.outcomes.equals(plain.outcomes)


@pytest.mark.realtime
def test_run_shows_progress_when_asked_and_not_otherwise(capsys, monkeypatch,
                                                        tmp_path) -> None:
    monkeypatch.setattr(cli_run, "PROGRESS_EVERY", 0.05)
    path = tmp_path / "long.toml"
    path.write_text('duration = 4\nqos = 1\n[[clients]]\nname = "sub"\nsubscribe = ["t"]\n'
                    '[[clients]]\nname = "pub"\n[[clients.publish]]\ntopic = "t"\n'
                    'interval = 0.002\n')
    assert main(["run", str(path)]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""  # not a terminal, not asked: the output tests read is unchanged
    assert main(["run", str(path), "--progress"]) == 0
    shown = capsys.readouterr()
    assert "simulated " in shown.err and " of 4 s (" in shown.err
    assert shown.out == quiet.out
