"""The scenario's network as a graph: the one builder every part uses.

Nodes are the broker, routers and clients (node attribute ``kind``). Each edge carries its
link (``spec``: whatever the caller passes, a ``LinkSpec`` for a scenario) and which way is
*up*: ``src`` is the end farther from the broker and ``dst`` the nearer one, so a link's
``up`` parameters apply from ``src`` to ``dst``. A node reaches the broker along the fewest
hops, so clients behind one router share its uplink and queue behind each other. With
several brokers (bridged), "near" means nearer to any broker, each client's route goes to its
own broker, and a link between two nodes equally near one (two brokers joined directly) keeps
the order it was written in reverse (``b`` is ``src``), as with one broker. The
simulator's network (``mqttsim.world.network``), the scenario checks and the lab's topology
figure all read this graph, so they cannot disagree about routes or directions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

Link = tuple[str, str, Any]  # (one end, other end, link spec)


@dataclass(frozen=True)
class Topology:
    """The graph, the broker, and the links in the order they were given (scenario links
    first, then each client's access link), each oriented ``(far, near, spec)``; a link
    with no path to the broker is in ``unreachable`` instead."""

    graph: nx.Graph
    broker: str
    links: tuple[Link, ...]
    unreachable: tuple[Link, ...]
    brokers: tuple[str, ...] = ()  # every broker, ``broker`` first

    def reaches_broker(self, node: str, broker: str | None = None) -> bool:
        """Whether ``node`` is in the graph and has a path to the broker (or ``broker``)."""
        return node in self.graph and nx.has_path(self.graph, node, broker or self.broker)

    def route(self, node: str, broker: str | None = None) -> list[str]:
        """The nodes from ``node`` to the broker (or ``broker``), both included (fewest
        hops)."""
        return nx.shortest_path(self.graph, node, broker or self.broker)

    def route_links(self, node: str, broker: str | None = None) -> list[tuple[str, str]]:
        """The links ``node``'s traffic crosses to the broker, as node pairs, ``node`` first."""
        nodes = self.route(node, broker)
        return list(zip(nodes, nodes[1:]))


def build(broker: str, routers: Iterable[str], links: Iterable[Link],
          clients: Iterable[tuple[str, str, Any, Mapping[str, Any]]] = (),
          brokers: Iterable[str] = ()) -> Topology:
    """Build the graph from a broker, routers, links ``(a, b, spec)`` and clients
    ``(name, attached to, access link spec, node attributes)``; ``brokers``: more brokers."""
    graph = nx.Graph()
    graph.add_node(broker, kind="broker")
    others = tuple(brokers)
    for other in others:
        graph.add_node(other, kind="broker")
    for router in routers:
        graph.add_node(router, kind="router")
    edges = list(links)
    for name, attach, spec, attributes in clients:
        graph.add_node(name, kind="client", **attributes)
        edges.append((name, attach, spec))
    for a, b, spec in edges:
        graph.add_edge(a, b, spec=spec)
    distance = (nx.multi_source_dijkstra_path_length(graph, {broker, *others}) if others
                else nx.single_source_shortest_path_length(graph, broker))
    oriented, unreachable = [], []
    for a, b, spec in edges:
        if a not in distance or b not in distance:
            unreachable.append((a, b, spec))
            continue
        far, near = (a, b) if distance[a] > distance[b] else (b, a)
        graph.edges[a, b].update(src=far, dst=near)
        oriented.append((far, near, spec))
    return Topology(graph, broker, tuple(oriented), tuple(unreachable), (broker, *others))


def of_scenario(scenario: Any) -> Topology:
    """The topology of a ``Scenario``: its broker, routers, links and clients."""
    return build(scenario.broker.name, scenario.routers,
                 [(e.a, e.b, e.link) for e in scenario.links],
                 [(c.name, c.attach, c.link, {}) for c in scenario.clients],
                 [b.name for b in getattr(scenario, "other_brokers", ())])
