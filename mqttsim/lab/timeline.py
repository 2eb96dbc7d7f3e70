"""When each client was connected, how each connection ended, and what the network did.

One row per client. A bar is one transport connection, from the moment MQTT was up
(CONNACK) to the moment it went down (or the end of the run); a marker at its end says why
it ended (keepalive, pingresp_timeout, tcp_timeout, takeover...). A reconnect is a new bar
on the same row, started with a ▶ (filled: the broker still had the session). Link outages
from the scenario are hatched across the rows of the clients whose path they cut, crashes
and broker restarts shaded grey: cause and effect on one picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.artist import Artist
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Text

from ._base import (client_downtime, client_outages, new_axes, numeric, publish_qos,
                    scenario_of, table)
from .style import CRASH_COLOR, NEUTRAL, OUTAGE_COLOR, qos_color, reason_style

CONNECTION_COLUMNS = ("client", "t_open", "t_up", "t_down", "reason")
MAX_TEXT_LABELS = 20  # more disconnects than this: markers and legend only


def _rows(res: Any, conns: pd.DataFrame, clients: Sequence[str] | None) -> list[str]:
    scenario = scenario_of(res)
    known = ([c.name for c in scenario.clients] if scenario is not None
             else list(pd.unique(conns["client"])))
    if clients is None:
        return known
    clients = [clients] if isinstance(clients, str) else list(clients)
    unknown = [c for c in clients if c not in known]
    if unknown:
        raise ValueError(f"no client(s) {', '.join(map(repr, unknown))} in this run; "
                         f"clients are {', '.join(map(repr, known))}")
    return clients


def connection_timeline(res: Any, ax: Axes | None = None,
                        clients: Sequence[str] | None = None) -> Figure:
    """Per client: connected intervals as bars, each disconnect marked with its reason,
    reconnects, and link outages / crashes from the scenario shaded.

    ``res`` is a Results, or its connections table (then nothing is shaded: outages come
    from the scenario). ``clients`` picks and orders the rows (default: every client)."""
    conns = table(res, "connections", CONNECTION_COLUMNS)
    rows = _rows(res, conns, clients)
    scenario = scenario_of(res)
    t_open, t_up, t_down = (numeric(conns[c]) for c in ("t_open", "t_up", "t_down"))
    # Without the scenario, the last time in the table stands in for the end of the run.
    end_of_run = (scenario.duration if scenario is not None
                  else float(np.nanmax(np.r_[t_open, t_up, t_down, 0.0])) or 1.0)
    fig, ax = new_axes(ax, (9, max(2.5, 0.45 * len(rows) + 1.5)))
    y_of = {name: i for i, name in enumerate(rows)}
    qos_of = ({c.name: publish_qos(c) for c in scenario.clients} if scenario is not None
              else {})
    legend: dict[str, Any] = {}

    if scenario is not None:
        # Over the bars: the connection often stays "up" at both ends into an outage,
        # until a keepalive or TCP timer notices; that overlap is the lesson.
        _shade(ax, y_of, client_outages(scenario), "outage", dict(
            facecolor=OUTAGE_COLOR, alpha=0.22, hatch="///", edgecolor=OUTAGE_COLOR, lw=0,
            zorder=3))
        _shade(ax, y_of, client_downtime(scenario), "down", dict(
            facecolor=CRASH_COLOR, alpha=0.35, lw=0))
        if any(ax.findobj(lambda a: a.get_gid() == "outage")):
            legend["link outage"] = Patch(facecolor=OUTAGE_COLOR, alpha=0.22, hatch="///",
                                          edgecolor=OUTAGE_COLOR)
        if any(ax.findobj(lambda a: a.get_gid() == "down")):
            legend["client or broker not running"] = Patch(facecolor=CRASH_COLOR, alpha=0.35)

    legend["connected (colour: the QoS it publishes)"] = Patch(facecolor=NEUTRAL)
    mine = np.isin(conns["client"].to_numpy(dtype=object), rows)
    order = np.argsort(np.where(np.isnan(t_open), -np.inf, t_open), kind="stable")
    seen: set[str] = set()
    ended = 0
    labels: list[tuple[float, float, str]] = []
    for i in order:
        if not mine[i]:
            continue
        row = conns.iloc[i]
        client, y = row["client"], y_of[row["client"]]
        up = not np.isnan(t_up[i])
        start = t_up[i] if up else t_open[i]
        stop = t_down[i] if not np.isnan(t_down[i]) else end_of_run
        if up:
            ax.add_patch(Rectangle((start, y - 0.22), max(stop - start, 0.0), 0.44,
                                   color=qos_color(qos_of.get(client)), gid="connection"))
        else:  # TCP or MQTT never came up: a thin hatched attempt
            ax.add_patch(Rectangle((start, y - 0.08), max(stop - start, 0.0), 0.16,
                                   facecolor="none", edgecolor=NEUTRAL, hatch="....",
                                   gid="attempt"))
            legend.setdefault("attempt, never up", Patch(facecolor="none", edgecolor=NEUTRAL,
                                                          hatch="...."))
        if client in seen and up:
            resumed = bool(row.get("session_present", False))
            ax.plot([start], [y], marker=">", ms=7, color="black",
                    mfc="black" if resumed else "white", gid="reconnect", zorder=4)
            key = f"reconnect, session {'resumed' if resumed else 'new'}"
            legend.setdefault(key, Line2D([], [], marker=">", ls="", color="black",
                                          mfc="black" if resumed else "white"))
        seen.add(client)
        if np.isnan(t_down[i]):
            continue
        reason = str(row["reason"])
        marker, color = reason_style(reason)
        ax.plot([t_down[i]], [y], marker=marker, ms=9, color=color, mec="black", mew=0.6,
                ls="", gid=f"end:{reason}", zorder=5)
        legend.setdefault(reason, Line2D([], [], marker=marker, ls="", color=color,
                                         mec="black", mew=0.6))
        other = row.get("client_reason") if row.get("side") == "broker" else None
        text = reason if pd.isna(other) or other in (None, reason) \
            else f"{reason} (client: {other})"
        labels.append((t_down[i], y, text))
        ended += 1
    if ended <= MAX_TEXT_LABELS:
        placed = _PlacedLabels(zorder=2.99)  # drawn just before the labels (zorder 3)
        ax.add_artist(placed)
        for x, y, text in labels:
            ax.add_artist(_ReasonLabel(placed, x, y - 0.3, text, ha="right", va="bottom",
                                       fontsize=7, gid="reason-label"))

    ax.set_yticks(range(len(rows)), rows)
    for label, name in zip(ax.get_yticklabels(), rows):
        label.set_color(qos_color(qos_of.get(name)))
    ax.set_ylim(len(rows) - 0.5, -0.7)
    ax.set_xlim(0, end_of_run)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("client")
    ax.grid(axis="x", alpha=0.3)
    name = f"{scenario.name}, seed {getattr(res, 'seed', '?')}" if scenario is not None else ""
    ax.set_title("Connections: bars while MQTT was up, markers say how each ended"
                 + (f"\n{name}" if name else ""))
    if legend:
        ax.legend(legend.values(), legend.keys(), loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  frameon=False, fontsize=8)
    return fig


class _PlacedLabels(Artist):
    """Draws nothing: at each draw it forgets where the reason labels went last time."""

    def __init__(self, zorder: float):
        super().__init__()
        self.set_zorder(zorder)
        self.boxes: list[Any] = []

    def draw(self, renderer: Any) -> None:
        self.boxes = []


class _ReasonLabel(Text):
    """A disconnect reason that is drawn only where it overlaps no reason already drawn.

    Two disconnects of one client a few seconds apart would print their reasons on top of
    each other (the axis is minutes wide). What a label needs is known only when it is drawn
    (the figure's final size, the font), so each one checks at draw time and the later one
    gives way; its marker and the legend still say what happened. ``drawn`` says whether it
    was shown in the last draw."""

    def __init__(self, placed: _PlacedLabels, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.placed, self.drawn = placed, False

    def draw(self, renderer: Any) -> None:
        self.drawn = False
        if not self.get_visible():
            return
        box = self.get_window_extent(renderer).expanded(1.05, 1.0)
        if any(box.overlaps(other) for other in self.placed.boxes):
            return
        self.placed.boxes.append(box)
        super().draw(renderer)
        self.drawn = True


def _shade(ax: Axes, y_of: dict[str, int], spans: dict[str, list[tuple[float, float]]],
           gid: str, style: dict) -> None:
    for client, y in y_of.items():
        for start, end in spans.get(client, ()):
            ax.add_patch(Rectangle((start, y - 0.45), end - start, 0.9, gid=gid, **style))


__all__ = ["connection_timeline"]
