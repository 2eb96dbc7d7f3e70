"""The scenario's network as a networkx graph, and a drawing of it with link parameters.

The graph is the simulator's own (``mqttsim.world.topology``): a client reaches the broker
along the fewest hops, and a link's ``up`` direction points towards the broker. ``topology()`` draws it as a balloon
tree around the broker; with ``group=True`` identical clients (same attachment, link and
workload, like the 100 students of classroom.toml) become one node "student-1..100 (×100)".
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import replace
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..world.topology import build as build_topology
from ..world.topology import of_scenario
from ._base import new_axes, publish_qos, scenario_of
from .style import BROKER_COLOR, NEUTRAL, QOS_COLORS, ROUTER_COLOR, qos_color

GROUP_MIN = 3  # fewer identical clients than this stay separate nodes
MAX_LABELLED = 30  # above this many nodes, clients are drawn without name labels


def topology_graph(scenario: Any, group: bool = False) -> nx.Graph:
    """Nodes (attribute ``kind``: broker, router, client; clients also ``qos``, the one
    QoS they publish at or None, ``members`` and ``count``) and edges (``up``/``down``
    LinkParams, ``src``: the end farther from the broker, ``dst``: the nearer one), as
    ``mqttsim.world.topology`` builds it for the simulator."""
    sc = scenario_of(scenario)
    if sc is None:
        raise TypeError(f"expected a Scenario or a Results, got {type(scenario).__name__}")
    clients = []
    for name, members in _client_groups(sc, group):
        first = members[0]
        clients.append((name, first.attach, first.link, {
            "qos": publish_qos(first), "count": len(members),
            "members": tuple(m.name for m in members), "role": _role(first)}))
    graph = build_topology(sc.broker.name, sc.routers, [(e.a, e.b, e.link) for e in sc.links],
                           clients, [b.name for b in getattr(sc, "other_brokers", ())]).graph
    for a, b, spec in graph.edges(data="spec"):
        graph.edges[a, b].update(up=spec.up, down=spec.down)
    return graph


def path_edges(scenario: Any, client: str) -> list[tuple[str, str]]:
    """The links (as node pairs, client first) a client's traffic crosses to the broker."""
    return of_scenario(scenario_of(scenario)).route_links(client)


def _role(client: Any) -> str:
    return {(True, True): "publisher and subscriber", (True, False): "publisher",
            (False, True): "subscriber"}.get((bool(client.publish), bool(client.subscribe)),
                                             "client")


def _client_groups(sc: Any, group: bool) -> list[tuple[str, list[Any]]]:
    """[(node name, member ClientSpecs)] in scenario order; identical clients together."""
    if not group:
        return [(c.name, [c]) for c in sc.clients]
    by_key: dict[Any, list[Any]] = {}
    for c in sc.clients:
        by_key.setdefault(replace(c, name="", client_id=""), []).append(c)
    result, seen = [], set()
    for c in sc.clients:
        key = replace(c, name="", client_id="")
        if key in seen:
            continue
        seen.add(key)
        members = by_key[key]
        if len(members) < GROUP_MIN:
            result.extend((m.name, [m]) for m in members)
        else:
            result.append((_group_name([m.name for m in members]), members))
    return result


def _group_name(names: list[str]) -> str:
    """"student-1..100 (×100)" for student-1..student-100; "a, b, ... (×n)" otherwise."""
    prefix = names[0]
    for n in names[1:]:
        while not n.startswith(prefix):
            prefix = prefix[:-1]
    first, last = names[0][len(prefix):], names[-1][len(prefix):]
    if prefix and first and last:
        return f"{prefix}{first}..{last} (×{len(names)})"
    return f"{names[0]}, ..., {names[-1]} (×{len(names)})"


# --- Labels ------------------------------------------------------------------------------

def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:g} {prefix}{unit}"
    return f"{value:g} {unit}"


def describe_link(params: Any) -> str:
    """One direction in a few words: "300 ms +50 ms jitter, 40 kbit/s, loss 5 %, queue 50"."""
    parts = [f"{params.latency * 1000:g} ms"]
    if params.jitter:
        parts[0] += f" +{params.jitter * 1000:g} ms jitter"
    if params.bandwidth:
        parts.append(_si(params.bandwidth, "bit/s"))
    loss = getattr(params.loss, "p", None)
    mean_loss = loss if loss is not None else getattr(params.loss, "mean_loss", 0.0)
    if mean_loss:
        kind = "" if loss is not None else "bursty "
        parts.append(f"{kind}loss {mean_loss * 100:.3g} %")
    if params.queue is not None:
        parts.append(f"queue {params.queue}")
    if params.outages:
        spans = ", ".join(f"{o.start:g}-{o.end:g} s" for o in params.outages)
        parts.append(f"down {spans}")
    return ", ".join(parts)


def describe_workload(client: Any) -> str:
    """What a client does, in a few words: "publishes meters/q1 at QoS 1 every 1 s;
    subscribes meters/# (QoS 2)"."""
    parts = []
    for p in client.publish:
        if p.pattern == "once" or p.count == 1:
            when = f"once at {p.start:g} s"
        elif p.pattern == "periodic":
            when = f"every {p.interval:g} s" + (f", {p.count} times" if p.count else "")
        else:
            when = f"{p.pattern}, mean interval {p.interval:g} s"
        parts.append(f"publishes {p.topic} at QoS {p.qos} {when}")
    if client.subscribe:
        topics = ", ".join(f"{s.topic} (QoS {s.qos})" for s in client.subscribe)
        parts.append(f"subscribes {topics}")
    return "; ".join(parts) or "connects only"


def _edge_label(data: dict, utilisation: tuple[float, float] | None) -> str:
    up, down = describe_link(data["up"]), describe_link(data["down"])
    text = up if up == down else f"↑ {up}\n↓ {down}"
    if utilisation is not None:
        text += f"\nutilisation ↑ {utilisation[0] * 100:.3g} % ↓ {utilisation[1] * 100:.3g} %"
    return text


def _utilisation(graph: nx.Graph, links: pd.DataFrame) -> dict[tuple[str, str], tuple]:
    """Per edge (up, down) utilisation as a fraction; a grouped edge gets its members' max."""
    by_name = dict(zip(links["link"], pd.to_numeric(links["utilisation"], errors="coerce")))
    result = {}
    for a, b, data in graph.edges(data=True):
        far, near = data["src"], data["dst"]
        members = graph.nodes[far].get("members", (far,))
        up = [by_name.get(f"{m}->{near}", np.nan) for m in members]
        down = [by_name.get(f"{near}->{m}", np.nan) for m in members]
        result[(a, b)] = (float(np.nanmax(up)) if not np.isnan(up).all() else 0.0,
                          float(np.nanmax(down)) if not np.isnan(down).all() else 0.0)
    return result


# --- Layout ------------------------------------------------------------------------------

def balloon_layout(graph: nx.Graph, root: str) -> dict[str, tuple[float, float]]:
    """The broker in the middle, its neighbours on a ring around it, and every router's
    clients on a fan around the router, opening away from the broker: a router's 100
    clients never cross the broker's other links."""
    tree = nx.bfs_tree(graph, root)
    pos = {root: (0.0, 0.0)}

    def ring(node: str) -> float:
        kids = list(tree.successors(node))
        return max(1.5, 0.15 * len(kids) / (2 * math.pi if node == root else 1.4 * math.pi))

    def reach(node: str) -> float:  # how far a node's subtree extends from it
        kids = list(tree.successors(node))
        return 0.0 if not kids else ring(node) + max(reach(k) for k in kids)

    def place(node: str, heading: float) -> None:
        kids = list(tree.successors(node))
        if not kids:
            return
        span = 2 * math.pi if node == root else 1.4 * math.pi
        start = heading - span / 2 if node != root else 0.0
        r = ring(node)
        x0, y0 = pos[node]
        for i, kid in enumerate(kids):
            # the broker's neighbours start on its right (two of them: left and right);
            # a router's fan is centred on the direction away from the broker
            angle = start + span * (i if node == root else i + 0.5) / len(kids)
            dist = r + (reach(kid) + 0.6 if reach(kid) else 0.0)
            pos[kid] = (x0 + dist * math.cos(angle), y0 + dist * math.sin(angle))
            place(kid, angle)

    place(root, 0.0)
    return pos


# --- Drawing -----------------------------------------------------------------------------

def topology(res_or_scenario: Any, ax: Axes | None = None, utilisation: bool = False,
             group: bool = True) -> Figure:
    """The network: broker, routers and clients (coloured by the QoS they publish at),
    each link labelled with its parameters; with ``utilisation=True`` (needs a Results)
    also how busy each direction was, as edge width and colour and in the label."""
    sc = scenario_of(res_or_scenario)
    if sc is None:
        raise TypeError(f"expected a Scenario or a Results, got "
                        f"{type(res_or_scenario).__name__}")
    links = getattr(res_or_scenario, "links", None)
    if utilisation and not isinstance(links, pd.DataFrame):
        raise ValueError("utilisation=True needs a Results (from mqttsim.run): a Scenario "
                         "alone has not carried any traffic")
    graph = topology_graph(sc, group=group)
    fan = (not sc.routers and not getattr(sc, "other_brokers", ())
           and graph.number_of_nodes() <= MAX_LABELLED)
    if fan:  # every client straight to the broker: a column of clients, room for words
        pos = fan_layout(graph, sc.broker.name)
        # wide enough for the longest line of text beside a client (8 pt: ~0.065 in a char)
        text_width = 0.065 * max(_fan_text_length(graph, sc, n) for n in graph
                                 if n != sc.broker.name) if graph.number_of_nodes() > 1 else 0
        fig, ax = new_axes(ax, (2.2 + text_width,
                                1.0 + 0.75 * max(graph.number_of_nodes() - 1, 2)))
    else:
        pos = balloon_layout(graph, sc.broker.name)
        fig, ax = new_axes(ax, (7, 6))
    edges = list(graph.edges())
    util = _utilisation(graph, links) if utilisation else {}
    if utilisation:
        busiest = np.array([max(util[e]) for e in edges]) if edges else np.zeros(0)
        collection = nx.draw_networkx_edges(graph, pos, edgelist=edges, ax=ax,
                                            width=1 + 8 * busiest, edge_color=busiest * 100,
                                            edge_cmap=_cmap(), edge_vmin=0, edge_vmax=100)
        mappable = collection if hasattr(collection, "get_array") else None
        if mappable is not None:
            fig.colorbar(mappable, ax=ax, label="link utilisation, busier direction (%)",
                         shrink=0.6)
    else:
        collection = nx.draw_networkx_edges(graph, pos, edgelist=edges, ax=ax,
                                            edge_color="0.55", width=1.2)
    if hasattr(collection, "set_gid"):
        collection.set_gid("links")
    _draw_nodes(graph, pos, ax, sc if fan else None)
    _draw_edge_labels(graph, pos, ax, util if utilisation else None, fan)
    title = f"Network of {sc.name}"
    if utilisation:
        title += f", seed {getattr(res_or_scenario, 'seed', '?')}"
    ax.set_title(title)
    ax.text(0.0, 1.0, "links: one-way latency, bandwidth, loss, queue (packets); "
            "↑ towards the broker", transform=ax.transAxes, fontsize=7, color="0.35",
            va="top")
    if fan:
        ys = [y for _, y in pos.values()]
        ax.set_xlim(-0.4, 1.8 + 1.1 * text_width)  # nodes in the first 2 in, then text
        ax.set_ylim(min(ys) - 0.7, max(ys) + 0.6)
    else:
        _square_limits(ax, pos)
    ax.axis("off")
    return fig


def _fan_text_length(graph: nx.Graph, sc: Any, node: str) -> int:
    """Characters in the longer of the two lines the fan layout writes beside a client
    (what it does, its link): they set the figure's width."""
    members = graph.nodes[node].get("members", (node,))
    spec = next(c for c in sc.clients if c.name == members[0])
    edge = next(iter(graph.edges(node, data=True)))[2]
    link = f"link: {_edge_label(edge, None)}".replace("\n", "; ")
    return max(len(describe_workload(spec)), len(link))


def fan_layout(graph: nx.Graph, root: str) -> dict[str, tuple[float, float]]:
    """The broker on the left, its clients in a column on the right (scenario order, top
    to bottom): each client's name, workload and link read as a line of text beside it."""
    clients = [n for n in graph if n != root]
    middle = (len(clients) - 1) / 2
    pos = {root: (0.0, 0.0)}
    pos.update({n: (1.6, middle - i) for i, n in enumerate(clients)})
    return pos


def _square_limits(ax: Axes, pos: dict) -> None:
    """Equal scales on both axes, with room for labels (a 2-node network is a vertical
    line: without this its x range would be zero wide)."""
    xy = np.array(list(pos.values()))
    low, high = xy.min(axis=0), xy.max(axis=0)
    centre, half = (low + high) / 2, max(float((high - low).max()) / 2, 1.0) + 0.8
    ax.set_xlim(centre[0] - half, centre[0] + half)
    ax.set_ylim(centre[1] - half, centre[1] + half)
    ax.set_aspect("equal", adjustable="box")


def _cmap() -> Any:
    """Yellow to red, without the near-white start: an idle link must still be visible."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap
    return ListedColormap(colormaps["YlOrRd"](np.linspace(0.25, 1.0, 256)))


def _draw_nodes(graph: nx.Graph, pos: dict, ax: Axes, fan_of: Any = None) -> None:
    """Nodes and their names; ``fan_of`` (the Scenario, for the fan layout): client names
    beside the node with what the client does."""
    kinds = nx.get_node_attributes(graph, "kind")
    many = graph.number_of_nodes() > MAX_LABELLED
    broker = [n for n in graph if kinds[n] == "broker"]
    routers = [n for n in graph if kinds[n] == "router"]
    clients = [n for n in graph if kinds[n] == "client"]
    sizes = [(60 if many else 300) * (2.5 if graph.nodes[n]["count"] > 1 else 1)
             for n in clients]
    drawn = [
        (broker, dict(node_shape="s", node_color=BROKER_COLOR, node_size=700), "broker"),
        (routers, dict(node_shape="D", node_color=ROUTER_COLOR, node_size=450), "routers"),
        (clients, dict(node_shape="o", node_size=sizes,
                       node_color=[qos_color(graph.nodes[n]["qos"]) for n in clients]),
         "clients"),
    ]
    for nodes, style, gid in drawn:
        if nodes:
            nx.draw_networkx_nodes(graph, pos, nodelist=nodes, ax=ax, edgecolors="white",
                                   **style).set_gid(gid)
    for n in broker + routers + ([] if many else clients):
        if fan_of is not None and n in clients:
            members = graph.nodes[n].get("members", (n,))
            spec = next(c for c in fan_of.clients if c.name == members[0])
            ax.annotate(n, pos[n], xytext=(12, 2), textcoords="offset points", ha="left",
                        va="bottom", fontsize=9, fontweight="bold", gid="node-label")
            ax.annotate(describe_workload(spec), pos[n], xytext=(12, -3),
                        textcoords="offset points", ha="left", va="top", fontsize=8,
                        color="0.2", gid="workload-label")
            continue
        drop = -17 if n in broker else -14 if n in routers else -11  # below the marker
        ax.annotate(n, pos[n], xytext=(0, drop), textcoords="offset points", ha="center",
                    va="top", fontsize=9 if fan_of is not None else 8, gid="node-label",
                    fontweight="bold" if n in broker + routers else "normal")
    levels = sorted({graph.nodes[n]["qos"] for n in clients} - {None})
    handles = [Line2D([], [], marker="o", ls="", color=QOS_COLORS[q], label=f"publishes QoS {q}")
               for q in levels]
    if any(graph.nodes[n]["qos"] is None for n in clients):
        handles.append(Line2D([], [], marker="o", ls="", color=NEUTRAL,
                              label="subscribes only / several QoS"))
    handles += [Line2D([], [], marker="s", ls="", color=BROKER_COLOR, label="broker")]
    if routers:
        handles.append(Line2D([], [], marker="D", ls="", color=ROUTER_COLOR, label="router"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False,
              fontsize=8, ncol=3)


def _draw_edge_labels(graph: nx.Graph, pos: dict, ax: Axes, util: dict | None,
                      fan: bool = False) -> None:
    """Every link labelled: a client's access link under the client's name (it is that
    client's link), a link between routers and the broker at its middle. With many client
    links, those are summarised in one note when they are all alike, else left unlabelled."""
    kinds = nx.get_node_attributes(graph, "kind")
    labels = {(a, b): _edge_label(data, util.get((a, b)) if util is not None else None)
              for a, b, data in graph.edges(data=True)}
    client_edges = [e for e in labels if "client" in (kinds[e[0]], kinds[e[1]])]
    if graph.number_of_nodes() > MAX_LABELLED:
        texts = {labels[e] for e in client_edges}
        if len(texts) == 1:
            ax.text(0.0, 0.0, f"every client link: {texts.pop()}", transform=ax.transAxes,
                    fontsize=7, va="bottom", gid="client-links-note")
        labels = {e: t for e, t in labels.items() if e not in client_edges}
    box = dict(boxstyle="round,pad=0.2", fc="white", ec="0.8", alpha=0.85)
    for (a, b), text in labels.items():
        wrapped = "\n".join(textwrap.fill(line, 32) for line in text.split("\n"))
        if (a, b) in client_edges and fan:  # one line under the client's name
            client = a if kinds[a] == "client" else b
            ax.annotate(f"link: {text}".replace("\n", "; "), pos[client], xytext=(12, -15),
                        textcoords="offset points", ha="left", va="top", fontsize=8,
                        color="0.25", gid="link-label")
        elif (a, b) in client_edges:
            client = a if kinds[a] == "client" else b
            ax.annotate(wrapped, pos[client], xytext=(0, -24), textcoords="offset points",
                        ha="center", va="top", fontsize=6.5, color="0.25", linespacing=1.1,
                        gid="link-label", bbox=box)
        else:
            (x1, y1), (x2, y2) = pos[a], pos[b]
            ax.text((x1 + x2) / 2, (y1 + y2) / 2, wrapped, ha="center", va="center",
                    fontsize=6.5, color="0.25", linespacing=1.1, gid="link-label", bbox=box)


__all__ = ["topology", "topology_graph", "path_edges", "describe_link", "describe_workload",
           "balloon_layout", "fan_layout"]
