"""The simulated network: a networkx graph of nodes and links, routes, and hop-by-hop carry.

Nodes are the broker, routers and clients; every edge is a link with one ``LinkDirection``
per direction (mqttsim.netmodel.link). A client reaches the broker along the shortest path
(fewest hops), so clients behind one router share its uplink and queue behind each other.
``up`` is the direction towards the broker. Carrying a packet over a path schedules one
callback per hop (its arrival there), never a process per packet.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import networkx as nx

from ..netmodel.link import LinkDirection, LinkParams
from .kernel import Kernel


@dataclass(frozen=True, slots=True)
class Hop:
    """One direction of one link, named ``a->b``."""

    name: str
    src: str
    dst: str
    link: LinkDirection


class Network:
    """Builds the graph from a scenario and carries packets over its paths."""

    def __init__(self, scenario: Any, kernel: Kernel, seed: int):
        self.kernel = kernel
        broker = scenario.broker.name
        graph = nx.Graph()
        graph.add_node(broker, kind="broker")
        for router in scenario.routers:
            graph.add_node(router, kind="router")
        edges = [(e.a, e.b, e.link) for e in scenario.links]
        for client in scenario.clients:
            graph.add_node(client.name, kind="client")
            edges.append((client.name, client.attach, client.link))
        for a, b, spec in edges:
            graph.add_edge(a, b, spec=spec)
        distance = nx.single_source_shortest_path_length(graph, broker)
        self.hops: dict[tuple[str, str], Hop] = {}
        for a, b, spec in edges:
            if a not in distance or b not in distance:
                raise ValueError(f"link {a}-{b} has no path to the broker {broker!r}")
            low, high = (a, b) if distance[a] > distance[b] else (b, a)  # high: nearer the broker
            self._add_hop(low, high, spec.up, seed)
            self._add_hop(high, low, spec.down, seed)
        self.graph, self.broker = graph, broker
        self._paths: dict[str, tuple[list[Hop], list[Hop]]] = {}

    def _add_hop(self, src: str, dst: str, params: LinkParams, seed: int) -> None:
        name = f"{src}->{dst}"
        # One random stream per link direction, seeded by name: adding a client elsewhere
        # does not change what happens on this link.
        rng = random.Random(f"{seed}:{name}")
        self.hops[(src, dst)] = Hop(name, src, dst, LinkDirection(params, rng))

    def paths(self, client: str) -> tuple[list[Hop], list[Hop]]:
        """(hops from the client to the broker, hops from the broker to the client)."""
        found = self._paths.get(client)
        if found is None:
            nodes = nx.shortest_path(self.graph, client, self.broker)
            up = [self.hops[(a, b)] for a, b in zip(nodes, nodes[1:])]
            down = [self.hops[(b, a)] for a, b in reversed(list(zip(nodes, nodes[1:])))]
            found = self._paths[client] = (up, down)
        return found

    def carry(self, path: list[Hop], size: int, item: Any,
              arrive: Callable[[Any], None], lost: Callable[[Any, str, str], None]) -> None:
        """Send ``size`` bytes along ``path`` now: ``arrive(item)`` at the far end, or
        ``lost(item, reason, hop_name)`` where a link drops it."""
        self._hop(path, 0, size, item, arrive, lost)

    def _hop(self, path, index, size, item, arrive, lost) -> None:
        hop = path[index]
        fate = hop.link.send(self.kernel.now, size)
        if fate.arrival is None:
            lost(item, fate.dropped, hop.name)
        elif index + 1 == len(path):
            self.kernel.call_at(fate.arrival, arrive, item)
        else:
            self.kernel.call_at(fate.arrival, self._hop, path, index + 1, size, item, arrive,
                                lost)

    def link_rows(self, duration: float) -> list[dict]:
        """Per link direction: traffic, drops by reason, utilisation over the run."""
        rows = []
        for hop in self.hops.values():
            d, p = hop.link, hop.link.params
            busy = d.bytes_sent * 8 / p.bandwidth if p.bandwidth else 0.0
            rows.append({
                "link": hop.name, "src": hop.src, "dst": hop.dst,
                "bandwidth": p.bandwidth, "latency": p.latency, "loss": _mean_loss(p),
                "sent": d.sent, "delivered": d.delivered, "bytes": d.bytes_sent,
                "dropped_loss": d.dropped["loss"], "dropped_queue": d.dropped["queue_full"],
                "dropped_outage": d.dropped["outage"],
                "utilisation": busy / duration if duration else 0.0,
            })
        return rows


def _mean_loss(params: LinkParams) -> float:
    loss = params.loss
    return loss.p if hasattr(loss, "p") else loss.mean_loss
