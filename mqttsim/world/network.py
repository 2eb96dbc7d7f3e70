"""The network of a scenario: one ``LinkDirection`` per link direction, routes, and carry.

The graph, the routes and which way is up come from ``mqttsim.world.topology``; every link
gets one ``LinkDirection`` per direction (mqttsim.netmodel.link), each with its own random
stream. Carrying a packet over a path schedules one callback per hop (its arrival there) on
the backend's clock, never a process per packet.

A client whose scenario puts a middlebox on its route (``ClientSpec.middlebox``: a NAT,
stateful firewall or load balancer with an idle timeout, ``mqttsim.world.middlebox``) gets,
for each connection it opens, paths with a ``MiddleboxHop`` in front of the middlebox's node
(``open_paths``): one flow of the middlebox's table, shared by both directions. A packet
crossing it refreshes the flow, or is dropped (reason ``middlebox_idle``) once the flow has
idled out; with ``on_idle = "reset"`` the transport is also told to reset both ends
(``when_reset``). ``paths`` stays the links alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..netmodel.link import LinkDirection, LinkParams
from .clock import Clock
from .middlebox import DROP_REASON, FlowTable, Verdict
from .topology import of_scenario

ResetEnds = Callable[[list, list], None]  # (hops from the middlebox to the client, to the broker)


@dataclass(frozen=True, slots=True)
class Hop:
    """One direction of one link, named ``a->b``."""

    name: str
    src: str
    dst: str
    link: LinkDirection


class _Flow:
    """One connection as a middlebox sees it: both directions' hops share it."""

    __slots__ = ("key", "opened", "to_client", "to_broker", "reset_ends")

    def __init__(self, key: int):
        self.key, self.opened = key, False
        self.to_client: list[Hop] = []
        self.to_broker: list[Hop] = []
        self.reset_ends: ResetEnds | None = None


class MiddleboxHop:
    """A middlebox on one connection's path, in one direction (``outbound``: from the
    client). It takes no time; it forwards, drops or resets (see ``Network._hop``)."""

    __slots__ = ("name", "table", "flow", "outbound")

    def __init__(self, name: str, table: FlowTable, flow: _Flow | None, outbound: bool):
        self.name, self.table, self.flow, self.outbound = name, table, flow, outbound


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
        # Middleboxes: one flow table per (node, settings), shared by the clients behind it.
        self.middleboxes: dict[str, FlowTable] = {}
        # client -> (middlebox name, the node it stands in front of, its table)
        self._middlebox_of: dict[str, tuple[str, str, FlowTable]] = {}
        self._flows = 0
        for client in getattr(scenario, "clients", ()):
            spec = getattr(client, "middlebox", None)
            if spec is None:
                continue
            at = spec.at or client.attach
            if at not in self.topology.route(client.name, getattr(client, "broker", None))[1:]:
                raise ValueError(f"client {client.name!r}: middlebox.at = {at!r} is not on its "
                                 f"route to the broker")
            # One table per node and settings: clients that set their own (a layer over
            # [middlebox]) get a middlebox of their own there, named with its settings.
            name = f"middlebox@{at}"
            table = self.middleboxes.get(name)
            if table is not None and (table.idle_timeout, table.on_idle) != (
                    spec.idle_timeout, spec.on_idle):
                name = f"middlebox@{at}({spec.idle_timeout:g}s,{spec.on_idle})"
                table = self.middleboxes.get(name)
            if table is None:
                table = self.middleboxes[name] = FlowTable(spec.idle_timeout, spec.on_idle)
            self._middlebox_of[client.name] = (name, at, table)

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

    def open_paths(self, client: str, broker: str | None = None) -> tuple[list, list]:
        """The paths of a new connection of ``client`` (to ``broker``, as ``paths``), with
        its own flow through the client's middlebox when it has one (a ``MiddleboxHop`` in
        each direction, in front of the middlebox's node)."""
        up, down = self.paths(client, broker)
        box = self._middlebox_of.get(client)
        if box is None:
            return up, down
        name, at, table = box
        self._flows += 1
        flow = _Flow(self._flows)
        i = next(i for i, hop in enumerate(up) if hop.dst == at) + 1
        j = next(j for j, hop in enumerate(down) if hop.src == at)
        flow.to_broker, flow.to_client = up[i:], down[j:]
        return (up[:i] + [MiddleboxHop(name, table, flow, True)] + up[i:],
                down[:j] + [MiddleboxHop(name, table, flow, False)] + down[j:])

    def when_reset(self, path: list, reset_ends: ResetEnds) -> None:
        """Who resets the connection on ``path`` (from ``open_paths``) when its middlebox
        answers an idled-out flow with RSTs: ``reset_ends(hops to the client, hops to the
        broker)``, the hops from the middlebox on. Nothing, without a middlebox."""
        for hop in path:
            if hop.__class__ is MiddleboxHop:
                hop.flow.reset_ends = reset_ends

    def middlebox_rows(self) -> list[dict]:
        """Per middlebox: its settings and what it did (flows, expired, dropped, resets)."""
        return [{"middlebox": name, "idle_timeout": t.idle_timeout, "on_idle": t.on_idle,
                 **t.counters()} for name, t in self.middleboxes.items()]

    def carry(self, path: list[Hop], size: int, item: Any,
              arrive: Callable[[Any], None], lost: Callable[[Any, str, str], None]) -> None:
        """Send ``size`` bytes along ``path`` now: ``arrive(item)`` at the far end, or
        ``lost(item, reason, hop_name)`` where a link drops it."""
        self._hop(path, 0, size, item, arrive, lost)

    def _hop(self, path, index, size, item, arrive, lost) -> None:
        hop = path[index]
        if hop.__class__ is MiddleboxHop:
            if not self._through_middlebox(hop, item, lost):
                return
            if index + 1 == len(path):
                arrive(item)
            else:
                self._hop(path, index + 1, size, item, arrive, lost)
            return
        fate = hop.link.send(self.clock.now, size)
        if fate.arrival is None:
            lost(item, fate.dropped, hop.name)
        elif index + 1 == len(path):
            self.clock.call_at(fate.arrival, arrive, item)
        else:
            self.clock.call_at(fate.arrival, self._hop, path, index + 1, size, item, arrive,
                                lost)

    def _through_middlebox(self, hop: MiddleboxHop, item: Any, lost: Callable) -> bool:
        """Whether ``item`` passes the middlebox now; if not, it is lost there, and with
        ``on_idle = "reset"`` both ends are reset from there."""
        flow = hop.flow
        opens = hop.outbound and not flow.opened  # the client's first packet (its SYN)
        flow.opened = True
        verdict = hop.table.packet(flow.key, self.clock.now, opens)
        if verdict is Verdict.FORWARD:
            return True
        lost(item, DROP_REASON, hop.name)
        if verdict is Verdict.RESET and flow.reset_ends is not None:
            reset_ends, flow.reset_ends = flow.reset_ends, None  # once per connection
            reset_ends(flow.to_client, flow.to_broker)
        return False

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
