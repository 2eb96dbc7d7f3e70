"""data/scenarios/stuck-subscriber.toml: a subscriber that stops reading (``stop_reading_at``)
loses copies to the broker's bounded queue, counted per client as ``broker:queue_full``,
while the publisher is acknowledged and the other subscriber gets everything (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqttsim.cli import main
from mqttsim.scenario import Scenario, ScenarioError, run

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "data" / "scenarios" / "stuck-subscriber.toml"


@pytest.fixture(scope="module")
def result():
    return run(Scenario.load(SCENARIO), seed=1)


def expected(res, subscriber: str):
    out = res.outcomes
    return out[out["expected"] & (out["subscriber"] == subscriber)]


def test_the_logger_loses_its_copies_to_queue_full_and_only_it(result) -> None:
    logger = expected(result, "logger")
    reasons = logger["reason"].value_counts().to_dict()
    delivered = (logger["outcome"] == "delivered").sum()
    # 20 msg/s: about 200 copies read before it hangs at 10 s; then max_inflight = 20 in
    # flight and max_queued = 100 queued stay with the broker; every further copy is dropped.
    assert 190 <= delivered <= 205
    assert reasons["broker:queue_full"] == len(logger) - delivered - 20 - 100
    queue_full = result.outcomes[result.outcomes["reason"] == "broker:queue_full"]
    assert set(queue_full["subscriber"]) == {"logger"}


def test_the_dashboard_gets_every_message_and_the_sensor_every_puback(result) -> None:
    dashboard = expected(result, "dashboard")
    assert len(dashboard) > 1000 and (dashboard["outcome"] == "delivered").all()
    packets = result.packets
    publishes = packets[(packets["src"] == "sensor") & (packets["type"] == "PUBLISH")]
    pubacks = packets[(packets["dst"] == "sensor") & (packets["type"] == "PUBACK")]
    assert len(publishes) == len(pubacks) > 1000


def test_without_stop_reading_at_nothing_is_dropped() -> None:
    res = run(Scenario.load(SCENARIO).with_(**{"clients.logger.stop_reading_at": None}), 1)
    logger = expected(res, "logger")
    assert (logger["outcome"] == "delivered").all()


def test_the_same_seed_gives_the_same_drops(result) -> None:
    again = run(Scenario.load(SCENARIO), seed=1)
    assert again.outcomes.equals(result.outcomes)


def test_mqttsim_run_prints_the_drops_per_subscriber(capsys) -> None:
    assert main(["run", str(SCENARIO)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    at = lines.index("dropped by the broker, queue full (max_queued), per subscriber:")
    count, name = lines[at + 1].split()
    assert name == "logger" and int(count) > 700


def test_stop_reading_at_before_connect_at_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"clients\[0\]\.stop_reading_at = 1: expected a "
                                            r"number >= 2"):
        Scenario.from_dict({"clients": [{"name": "c", "subscribe": ["t"], "connect_at": 2,
                                         "stop_reading_at": 1}]})


@pytest.mark.realtime
@pytest.mark.timeout(60)
def test_on_real_sockets_the_broker_drops_the_same_copies(result) -> None:
    """The sockets backend runs the same engines over asyncio sockets (10x faster than
    written): the same subscriber loses about the same number of copies to queue_full."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # clock lag is reported, not judged
        real = run(Scenario.load(SCENARIO), seed=1, backend="sockets", time_scale=10)
    simulated = (expected(result, "logger")["reason"] == "broker:queue_full").sum()
    on_sockets = (expected(real, "logger")["reason"] == "broker:queue_full").sum()
    assert abs(on_sockets - simulated) <= 10, (on_sockets, simulated)
    assert (expected(real, "dashboard")["outcome"] == "delivered").all()
