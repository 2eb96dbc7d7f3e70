"""The outcomes table expects exactly the copies the broker's routing rule sends.

Both read ``mqttsim.protocol.routing``: a shared subscription group expects one copy per
message (not one per member), No Local expects none for the publisher's own subscription,
Retain As Published keeps the RETAIN flag of forwarded copies.
"""

from __future__ import annotations

import pytest

from mqttsim import Scenario, run
from mqttsim.scenario.checks import ScenarioError

MESSAGES = 12


def _mqtt5_story() -> Scenario:
    return Scenario.from_dict({
        "name": "routing", "duration": 10.0, "version": 5, "qos": 1,
        "clients": [
            {"name": "worker-a", "subscribe": "$share/workers/jobs/#"},
            {"name": "worker-b", "subscribe": "$share/workers/jobs/#"},
            {"name": "boss", "connect_at": 0.5,
             "subscribe": [{"topic": "jobs/#", "no_local": True}],
             "publish": {"topic": "jobs/new", "interval": 0.5, "count": MESSAGES,
                         "start": 1.0, "retain": True}},
            {"name": "auditor", "subscribe": [{"topic": "jobs/#", "retain_as_published": True}]},
            {"name": "plain", "subscribe": "jobs/#"},
        ]})


def test_a_share_group_expects_one_copy_per_message_and_its_members_split_them() -> None:
    res = run(_mqtt5_story(), seed=1)
    out = res.outcomes
    workers = out[out["subscriber"].isin(["worker-a", "worker-b"])]
    assert len(workers) == MESSAGES and workers["expected"].all()
    assert (workers["outcome"] == "delivered").all()
    # round robin: both members got work
    assert set(workers["subscriber"]) == {"worker-a", "worker-b"}
    assert res.summary().loc[1, "lost"] == 0


def test_no_local_expects_nothing_back_for_the_publisher() -> None:
    res = run(_mqtt5_story(), seed=1)
    out, received = res.outcomes, res.received
    assert (out["subscriber"] == "boss").sum() == 0
    assert (received["subscriber"] == "boss").sum() == 0
    assert (out.loc[out["subscriber"] == "plain", "outcome"] == "delivered").sum() == MESSAGES


def test_retain_as_published_keeps_the_retain_flag_of_live_copies() -> None:
    received = run(_mqtt5_story(), seed=1).received
    auditor = received[received["subscriber"] == "auditor"]
    plain = received[received["subscriber"] == "plain"]
    assert len(auditor) == len(plain) == MESSAGES
    assert auditor["retain"].all()  # [MQTT-3.3.1-12]: as published
    assert not plain["retain"].any()  # a live copy goes out with RETAIN 0


def test_mqtt5_subscription_options_are_refused_for_an_earlier_version() -> None:
    with pytest.raises(ScenarioError, match="no_local.*MQTT 5"):
        Scenario.from_dict({"clients": [{"name": "old", "version": 4,
                                         "subscribe": [{"topic": "t", "no_local": True}]}]})


def test_a_scenario_keeps_subscription_options_through_its_dict() -> None:
    sc = _mqtt5_story()
    assert Scenario.from_dict(sc.to_dict()) == sc
