"""The middlebox with an idle timeout: the pure flow table, then its effect on MQTT.

Expectations come from the rules, not from the code: a flow idle for longer than the
timeout is forgotten (RFC 5382 REQ-5 names the "established connection idle-timeout"), a
forgotten flow's packets are dropped or answered with RSTs; MQTT's client gives up one
keepalive after an unanswered PINGREQ and the broker 1.5 keepalives after the last packet
it received [MQTT-3.1.2-24].
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mqttsim import Scenario, run
from mqttsim.scenario.checks import ScenarioError
from mqttsim.scenario.model import MiddleboxSpec
from mqttsim.world.middlebox import FlowTable, Verdict

SCENARIO = Path(__file__).resolve().parents[2] / "data/scenarios/nat-idle-timeout.toml"


# --- The flow table alone

def test_a_flow_lives_while_packets_cross_within_the_idle_timeout():
    table = FlowTable(idle_timeout=60)
    assert table.packet("f", 0.0, opens=True) is Verdict.FORWARD
    for t in (59.0, 118.0, 177.5):  # each gap under 60 s refreshes it, either way
        assert table.packet("f", t, opens=False) is Verdict.FORWARD
    assert table.counters() == {"flows": 1, "expired": 0, "dropped": 0, "resets": 0}


def test_an_idle_flow_is_forgotten_and_then_dropped_both_ways_until_a_new_syn():
    table = FlowTable(idle_timeout=60, on_idle="drop")
    table.packet("f", 0.0, opens=True)
    assert table.packet("f", 60.0, opens=False) is Verdict.FORWARD  # exactly 60 s: not more
    assert table.packet("f", 120.5, opens=False) is Verdict.DROP  # idle 60.5 s
    assert table.packet("f", 120.6, opens=False) is Verdict.DROP  # still nothing
    assert table.packet("g", 121.0, opens=False) is Verdict.DROP  # never opened
    assert table.packet("h", 121.0, opens=True) is Verdict.FORWARD  # a new connection
    assert table.counters() == {"flows": 2, "expired": 1, "dropped": 3, "resets": 0}


def test_a_resetting_middlebox_answers_a_forgotten_flow_with_a_reset():
    table = FlowTable(idle_timeout=2, on_idle="reset")
    table.packet("f", 0.0, opens=True)
    assert table.packet("f", 2.5, opens=False) is Verdict.RESET
    assert table.counters()["resets"] == 1


@pytest.mark.parametrize("kwargs, words", [({"idle_timeout": 0}, "idle_timeout must be > 0"),
                                           ({"idle_timeout": 5, "on_idle": "ignore"},
                                            "on_idle must be 'drop' or 'reset'")])
def test_a_flow_table_refuses_nonsense(kwargs, words):
    with pytest.raises(ValueError, match=words):
        FlowTable(**kwargs)


# --- The scenario format

def test_the_middlebox_layers_like_a_link_and_false_takes_a_client_out():
    sc = Scenario.from_dict({
        "middlebox": {"idle_timeout": 60}, "routers": ["home"],
        "links": [{"a": "home", "b": "broker"}],
        "clients": [{"name": "a", "attach": "home"},
                    {"name": "b", "middlebox": {"on_idle": "reset", "at": "broker"}},
                    {"name": "c", "middlebox": False}]})
    a, b, c = sc.clients
    assert a.middlebox == MiddleboxSpec(60.0, "drop", None)
    assert b.middlebox == MiddleboxSpec(60.0, "reset", "broker")
    assert c.middlebox is None
    assert Scenario.from_dict(sc.to_dict()) == sc
    assert sc.with_(**{"middlebox.idle_timeout": 30}).clients[0].middlebox.idle_timeout == 30


@pytest.mark.parametrize("data, words", [
    ({"middlebox": {"idle_timeout": 0}}, ["middlebox.idle_timeout = 0", "a number greater than 0"]),
    ({"middlebox": {"idle_timeout": 9, "on_idle": "silent"}},
     ["middlebox.on_idle = 'silent'", "'drop'", "'reset'"]),
    ({"middlebox": {"on_idle": "drop"}}, ["middlebox.idle_timeout: missing"]),
    ({"middlebox": {"idle_timeout": 9, "idle": 3}}, ["middlebox.idle = 3", "unknown key",
                                                     "idle_timeout"]),
    ({"clients": [{"name": "c", "middlebox": True}]}, ["clients[0].middlebox = True",
                                                        "or false for none"]),
    ({"routers": ["r"], "links": [{"a": "r", "b": "broker"}],
      "clients": [{"name": "c", "middlebox": {"idle_timeout": 5, "at": "r"}}]},
     ["clients[0].middlebox.at = 'r'", "not on the route of 'c'", "(c -> broker)"]),
])
def test_a_wrong_middlebox_is_named_in_one_line(data, words):
    data = {"clients": [{"name": "c"}], **data}
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_dict(data, "nat.toml")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("nat.toml: ")
    for word in words:
        assert word in message


# --- The effect: keepalive longer than the NAT's idle timeout

@pytest.fixture(scope="module")
def nat_runs():
    sc = Scenario.load(SCENARIO)
    return {mode: run(sc.with_(**{"middlebox.on_idle": mode}), seed=1)
            for mode in ("drop", "reset")}


def test_keepalive_longer_than_the_nat_timeout_silently_loses_commands(nat_runs):
    res = nat_runs["drop"]
    outcomes = res.outcomes.groupby("subscriber")["outcome"].value_counts().unstack(fill_value=0)
    assert outcomes.loc["valve-b", "delivered"] == 4 and outcomes.loc["valve-b"].sum() == 4
    assert outcomes.loc["valve-a", "lost"] >= 1  # the link never failed: the NAT forgot it
    a = res.connections[res.connections["client"] == "valve-a"]
    b = res.connections[res.connections["client"] == "valve-b"]
    assert len(b) == 1 and b["t_down"].isna().all()  # keepalive 30 < 60: never broken
    first = a.iloc[0]
    # The broker gives up 1.5 x 120 s after the last packet it got (the PUBACK at ~45 s),
    # the client one keepalive after its unanswered PINGREQ (sent 120 s after that PUBACK).
    assert first["broker_reason"] == "keepalive" and first["client_reason"] == "pingresp_timeout"
    assert first["t_down"] == pytest.approx(45 + 1.5 * 120, abs=0.5)
    segments = res.segments
    dropped = segments[segments["dropped"] == "middlebox_idle"]
    assert len(dropped) > 0 and set(dropped["hop"]) == {"middlebox@broker"}
    # Every packet the middlebox dropped belonged to valve-a's connections
    conns = set(a["conn"])
    assert set(dropped["conn"]) <= conns


def test_a_resetting_middlebox_breaks_the_connection_at_once_and_nothing_is_lost(nat_runs):
    res = nat_runs["reset"]
    assert (res.outcomes["outcome"] == "delivered").all()
    a = res.connections[res.connections["client"] == "valve-a"]
    assert len(a) >= 3 and set(a["reason"].dropna()) == {"reset"}
    # reset when valve-a's PINGREQ (120 s after its PUBACK at ~45 s) reaches the middlebox
    assert a.iloc[0]["t_down"] == pytest.approx(45 + 120, abs=0.5)
    rsts = res.segments[(res.segments["kind"] == "rst")]
    assert {"valve-a", "broker"} <= set(rsts["dst"])


def test_keepalive_below_the_idle_timeout_keeps_the_connection():
    sc = Scenario.load(SCENARIO).with_(**{"clients.valve-a.keepalive": 50})
    res = run(sc, seed=1)
    assert (res.outcomes["outcome"] == "delivered").all()
    assert res.connections["t_down"].isna().all()
    assert res.segments["dropped"].isna().all()


def test_without_a_middlebox_nothing_changes():
    sc = Scenario.load(SCENARIO)
    plain = sc.with_(**{"clients.valve-a.middlebox": False, "clients.valve-b.middlebox": False})
    res = run(plain, seed=1)
    assert (res.outcomes["outcome"] == "delivered").all()
    assert res.connections["t_down"].isna().all()


def test_clients_with_their_own_settings_at_one_node_get_a_middlebox_each():
    sc = Scenario.from_dict({
        "duration": 200, "middlebox": {"idle_timeout": 60},
        "clients": [{"name": "nat", "keepalive": 90, "subscribe": "t"},
                    {"name": "lb", "keepalive": 90, "subscribe": "t",
                     "middlebox": {"idle_timeout": 350, "on_idle": "reset"}}]})
    res = run(sc, seed=1)
    first = res.connections.groupby("client").first()
    assert first.loc["nat", "broker_reason"] == "keepalive"  # 90 s > 60 s: forgotten
    assert first.loc["lb", "t_down"] != first.loc["lb", "t_down"]  # 90 s < 350 s: NaN, kept
    hops = set(res.segments["hop"].dropna())
    assert hops == {"middlebox@broker"}  # only the 60 s one dropped anything
