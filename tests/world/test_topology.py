"""The one topology builder: routes by fewest hops, and *up* always points to the broker."""

from __future__ import annotations

from pathlib import Path

from mqttsim import Scenario
from mqttsim.world.topology import build, of_scenario


def test_up_points_to_the_broker_whichever_way_a_link_was_written() -> None:
    # broker - core - ap - phone; the ap-core link is written "backwards" (a = core)
    topo = build("broker", ["core", "ap"], [("core", "ap", "L1"), ("broker", "core", "L2")],
                 [("phone", "ap", "L3", {"role": "subscriber"})])
    graph = topo.graph
    assert (graph.edges["core", "ap"]["src"], graph.edges["core", "ap"]["dst"]) == ("ap", "core")
    assert graph.edges["broker", "core"]["src"] == "core"
    assert graph.nodes["phone"] == {"kind": "client", "role": "subscriber"}
    # links keep the order given (scenario links, then access links), each (far, near, spec)
    assert topo.links == (("ap", "core", "L1"), ("core", "broker", "L2"), ("phone", "ap", "L3"))
    assert topo.route("phone") == ["phone", "ap", "core", "broker"]
    assert topo.route_links("phone") == [("phone", "ap"), ("ap", "core"), ("core", "broker")]


def test_the_fewest_hops_win_and_an_island_is_unreachable() -> None:
    topo = build("broker", ["a", "b", "island"],
                 [("a", "b", "slow"), ("b", "broker", "x"), ("a", "broker", "direct"),
                  ("island", "lonely", "y")])
    assert topo.route("a") == ["a", "broker"]
    assert topo.unreachable == (("island", "lonely", "y"),)
    assert not topo.reaches_broker("island") and not topo.reaches_broker("nowhere")
    assert topo.reaches_broker("b")


def test_a_scenario_and_its_network_share_the_builder() -> None:
    sc = Scenario.load(Path(__file__).resolve().parents[2] / "data/scenarios/classroom.toml")
    topo = of_scenario(sc)
    student = sc.clients[0]
    assert topo.route(student.name)[0] == student.name
    assert topo.route(student.name)[-1] == sc.broker.name
    assert len(topo.links) == len(sc.links) + len(sc.clients)
