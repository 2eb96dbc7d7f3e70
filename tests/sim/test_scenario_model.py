"""A Scenario built in code is first class: it round-trips through the file's keys and can be
changed with ``with_`` like a loaded one (issue 14, item 4)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mqttsim.netmodel.link import Bernoulli, GilbertElliott, LinkParams, Outage
from mqttsim.scenario import Scenario
from mqttsim.scenario.load import SCHEMA, ScenarioError
from mqttsim.scenario.model import (BrokerSpec, ClientSpec, Crash, EdgeSpec, LinkSpec,
                                    PublishSpec, SizeSpec, SubscriptionSpec, TcpSpec, WillSpec)

SHIPPED = sorted((Path(__file__).resolve().parents[2] / "data" / "scenarios").glob("*.toml"))
LAN = LinkSpec(LinkParams(latency=0.001), LinkParams(latency=0.001))


def in_code() -> Scenario:
    """Every kind of spec, with values away from the defaults."""
    radio = LinkSpec(LinkParams(bandwidth=40_000, latency=0.3, loss=Bernoulli(0.05), queue=8,
                                outages=(Outage(10, 20),)),
                     LinkParams(bandwidth=80_000, latency=0.3,
                                loss=GilbertElliott(0.01, 0.5, 0.0, 0.9), jitter=0.01))
    return Scenario(
        name="coded", description="built in code", duration=30.0, transport="datagram",
        tcp=TcpSpec(mss=536, min_rto=0.3, initial_rto=1.5),
        broker=BrokerSpec(max_queued=5, persistence=False, restarts=(Crash(5, 1),)),
        routers=("ap",), links=(EdgeSpec("ap", "broker", LAN),),
        clients=(
            ClientSpec("sub", "sub", version=5, keepalive=10, clean=False, session_expiry=60,
                       subscribe=(SubscriptionSpec("a/#", 1), SubscriptionSpec("b", 2),
                                  SubscriptionSpec("c", 1, no_local=True,
                                                   retain_as_published=True)),
                       link=LAN, attach="ap", will=WillSpec("gone", "bye", qos=1)),
            ClientSpec("pub", "", keepalive=10, link=radio, reconnect_delay=40.0,
                       reconnect_max_delay=50.0, crashes=(Crash(3, 2),), ping_timeout=4.0,
                       publish=(PublishSpec("a/1", pattern="burst", burst=3, interval=2.0,
                                            qos=1, retain=True, count=9,
                                            size=SizeSpec("uniform", 20, 10, 30)),
                                PublishSpec("b", pattern="once", message="hi", start=1.0))),
            ClientSpec("quiet", "q-id", keepalive=10, link=LAN, disconnect_at=25.0,
                       publish=(PublishSpec("a/2", size=SizeSpec("exponential", 50.0, 4),
                                            qos=1),)),
        ))


def keys_within(data, schema, path="") -> None:
    """Every key of ``data`` is one the file format has (load.SCHEMA); ``size`` may be a
    number and ``middlebox`` false instead of a table."""
    if isinstance(schema, list):
        for i, item in enumerate(data if isinstance(data, list) else [data]):
            if not isinstance(item, str):
                keys_within(item, schema[0], f"{path}[{i}]")
        return
    for key, value in data.items():
        assert key in schema, f"{path}.{key} is not a scenario file key"
        if schema[key] is not None and key not in ("size",) and value is not False:
            keys_within(value, schema[key], f"{path}.{key}")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_round_trips_as_loaded_and_as_written_out(path):
    sc = Scenario.load(path)
    assert Scenario.from_dict(sc.to_dict()) == sc
    fields_only = dataclasses.replace(sc)  # no raw dict: its fields are written out
    assert fields_only.raw == {}
    written = fields_only.to_dict()
    keys_within(written, SCHEMA)
    assert Scenario.from_dict(written) == sc


def test_a_scenario_built_in_code_round_trips_through_the_files_keys():
    sc = in_code()
    data = sc.to_dict()
    keys_within(data, SCHEMA)
    assert data["name"] == "coded" and data["keepalive"] == 10 and data["qos"] == 1
    assert [c["name"] for c in data["clients"]] == ["sub", "pub", "quiet"]
    assert Scenario.from_dict(data) == sc


def test_a_scenario_built_in_code_can_with_and_shared_values_are_said_once():
    sc = Scenario("two", (ClientSpec("sub", "sub", subscribe=(SubscriptionSpec("t"),), link=LAN),
                          ClientSpec("pub", "pub", publish=(PublishSpec("t"),), link=LAN)))
    assert sc.to_dict() == {"name": "two", "link": {"latency": 0.001}, "clients": [
        {"name": "sub", "subscribe": ["t"]}, {"name": "pub", "publish": [{"topic": "t"}]}]}
    changed = sc.with_(**{"link.loss": 0.1, "qos": 1, "clients.pub.keepalive": 5})
    sub, pub = changed.clients
    assert sub.link.up.loss == pub.link.down.loss == Bernoulli(0.1)
    assert sub.link.up.latency == 0.001
    assert (sub.subscribe[0].qos, pub.publish[0].qos, pub.keepalive, sub.keepalive) == (1, 1, 5, 60)
    assert changed == dataclasses.replace(sc, clients=(
        dataclasses.replace(sub), dataclasses.replace(pub)))  # nothing else moved
    assert sc.clients[0].subscribe[0].qos == 0  # the original is intact


def test_a_replaced_loaded_scenario_writes_out_its_new_fields_not_the_old_file():
    sc = Scenario.load(SHIPPED[0])
    shorter = dataclasses.replace(sc, duration=7.0)
    assert shorter.to_dict()["duration"] == 7.0
    assert shorter.with_(qos=1).duration == 7.0


def test_a_scenario_built_in_code_that_a_file_could_not_say_is_refused_by_name():
    sc = Scenario("bad", (ClientSpec("c", "c"),), tcp=TcpSpec(min_rto=2.0))  # initial_rto 1 < 2
    with pytest.raises(ScenarioError, match=r"tcp\.initial_rto"):
        Scenario.from_dict(sc.to_dict())
    with pytest.raises(ScenarioError, match=r"tcp\.initial_rto"):
        sc.with_(duration=5.0)


def test_equality_is_the_experiment_not_where_it_came_from(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('[[clients]]\nname = "c"\n')
    loaded = Scenario.load(path)
    assert loaded.source == str(path) and loaded == Scenario("x", (ClientSpec("c", "c"),))


# --- Results: the tables are properties, built once, visible to dir() and tab completion

def test_results_tables_are_listed_by_dir_and_built_once_on_first_read():
    import pandas as pd

    from mqttsim.scenario.results import TABLES, Results

    built: list[str] = []

    def maker(name: str):
        def build() -> pd.DataFrame:
            built.append(name)
            return pd.DataFrame({"table": [name]})
        return build

    res = Results(in_code(), 1, "sim", {name: maker(name) for name in TABLES})
    assert set(TABLES) <= set(dir(res))
    assert all(getattr(Results, name).__doc__ for name in TABLES)  # help(res) explains each
    assert built == []  # nothing is built before it is read
    assert res.packets is res.packets and res.packets["table"][0] == "packets"
    assert built == ["packets"]
    with pytest.raises(AttributeError):
        res.no_such_table  # noqa: B018
    with pytest.raises(ValueError, match="missing: drops"):
        Results(in_code(), 1, "sim", {name: maker(name) for name in TABLES[:-1]})
