"""The network of a scenario: one ``LinkDirection`` per link direction, routes, and carry.

The graph, the routes and which way is up come from ``mqttsim.world.topology``; every link
gets one ``LinkDirection`` per direction (mqttsim.netmodel.link), each with its own random
stream. Carrying a packet over a path schedules one callback per hop (its arrival there) on
the backend's clock, never a process per packet.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..netmodel.link import LinkDirection, LinkParams
from .clock import Clock
from .topology import of_scenario


@dataclass(frozen=True, slots=True)
class Hop:
    """One direction of one link, named ``a->b``."""

    name: str
    src: str
    dst: str
    link: LinkDirection


class Network:
    """Builds the hops from the scenario's topology and carries packets over its paths."""

    def __init__(self, scenario: Any, clock: Clock, seed: int):
        self.clock = clock
        self.topology = of_scenario(scenario)
        if self.topology.unreachable:
            a, b, _ = self.topology.unreachable[0]
            raise ValueError(f"link {a}-{b} has no path to the broker {scenario.broker.name!r}")
        self.hops: dict[tuple[str, str], Hop] = {}
        for far, near, spec in self.topology.links:
            self._add_hop(far, near, spec.up, seed)
            self._add_hop(near, far, spec.down, seed)
        self.broker = self.topology.broker
        self._paths: dict[str, tuple[list[Hop], list[Hop]]] = {}

    def _add_hop(self, src: str, dst: str, params: LinkParams, seed: int) -> None:
        name = f"{src}->{dst}"
        # One random stream per link direction, seeded by name: adding a client elsewhere
        # does not change what happens on this link.
        rng = random.Random(f"{seed}:{name}")
        self.hops[(src, dst)] = Hop(name, src, dst, LinkDirection(params, rng))

    def paths(self, client: str, broker: str | None = None) -> tuple[list[Hop], list[Hop]]:
        """(hops from the client to the broker, hops from the broker to the client); with
        several brokers, to ``broker`` (a bridge's path starts at its own broker's node)."""
        key = client if broker is None else (client, broker)
        found = self._paths.get(key)
        if found is None:
            nodes = self.topology.route(client, broker)
            up = [self.hops[(a, b)] for a, b in zip(nodes, nodes[1:])]
            down = [self.hops[(b, a)] for a, b in reversed(list(zip(nodes, nodes[1:])))]
            found = self._paths[key] = (up, down)
        return found

    def carry(self, path: list[Hop], size: int, item: Any,
              arrive: Callable[[Any], None], lost: Callable[[Any, str, str], None]) -> None:
        """Send ``size`` bytes along ``path`` now: ``arrive(item)`` at the far end, or
        ``lost(item, reason, hop_name)`` where a link drops it."""
        self._hop(path, 0, size, item, arrive, lost)

    def _hop(self, path, index, size, item, arrive, lost) -> None:
        hop = path[index]
        fate = hop.link.send(self.clock.now, size)
        if fate.arrival is None:
            lost(item, fate.dropped, hop.name)
        elif index + 1 == len(path):
            self.clock.call_at(fate.arrival, arrive, item)
        else:
            self.clock.call_at(fate.arrival, self._hop, path, index + 1, size, item, arrive,
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
