"""A message sequence chart ("ladder") between one client and the broker.

Two lifelines, time running down; every MQTT packet is an arrow from the moment its sender
wrote it to the moment the receiver's engine read it, labelled the way mosquitto's log
writes it: ``PUBLISH (d0, q1, m1)``, ``PUBACK (m1)``. A packet that never arrived ends in a
cross halfway. With ``tcp="problems"`` (the default) TCP's own trouble is drawn too: thin
grey arrows for retransmitted segments, thin red ones ending in a cross for lost segments,
so a late PUBLISH arrow can be traced to the segment that was lost and sent again.

Readability over scale: the time axis is real time while things happen, but every idle
gap longer than a couple of one-way transit times is shortened (the axis says by how much),
and packets written at the same instant are drawn as parallel arrows one under the other.
The tick labels always give the real time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Rectangle

from ._base import client_outages, is_dropped, new_axes, note, numeric, results_only
from .style import LOST_COLOR, OUTAGE_COLOR, RETRANSMIT_COLOR, qos_color
from .wire import packet_qos

TCP_MODES = ("none", "problems", "all")
STAGGER = 0.45  # display units between arrows written at the same instant
GAP_UNIT = 1.5  # an idle gap is cut to this many one-way transit times
MQTT_DARK = "#444444"  # packets of no QoS: CONNECT, PINGREQ, SUBSCRIBE...


@dataclass
class _Arrow:
    gid: str  # mqtt, mqtt-lost, tcp-retransmission, tcp-lost, tcp
    x0: float
    x1: float  # 0.5 when it never arrived
    t0: float
    t1: float  # arrival time, or t0 + transit / 2 when lost
    label: str
    color: str
    j0: int = 0  # stagger slot at the sending end
    j1: int = 0  # stagger slot at the receiving end


def packet_label(row: Any) -> str:
    """A packet as mosquitto's ``-v`` log names it: ``PUBLISH (d1, q1, m7)``, ``PUBACK (m7)``."""
    kind = row.type
    pid = None if pd.isna(row.packet_id) else int(row.packet_id)
    if kind == "PUBLISH":
        qos = 0 if pd.isna(row.qos) else int(row.qos)
        text = f"PUBLISH (d{int(bool(row.dup))}, q{qos}, m{pid or 0})"
        return text + " DUP" if row.dup else text
    return f"{kind} (m{pid})" if pid is not None else kind


def _window(times: np.ndarray, start: float | None, end: float | None,
            max_packets: int) -> tuple[float, float, int]:
    """(start, end, packets left out after end because of max_packets)."""
    first = float(times.min()) if len(times) else 0.0
    start = first if start is None else float(start)
    if end is not None:
        return start, float(end), 0
    later = np.sort(times[times >= start])
    if len(later) <= max_packets:
        return start, float(later[-1]) if len(later) else start, 0
    cut = float(later[max_packets - 1])
    return start, cut, int((later > cut).sum())


def ladder(res: Any, client: str, start: float | None = None, end: float | None = None,
           ax: Axes | None = None, tcp: str = "problems", max_packets: int = 60,
           compress: bool = True) -> Figure:
    """The packets between ``client`` and the broker from ``start`` to ``end`` (seconds).

    Without ``end``, the chart stops after ``max_packets`` packets (the title says how many
    more there were). ``tcp``: "problems" draws retransmitted and lost segments, "all" every
    segment, "none" only MQTT. ``compress=False`` keeps the time axis linear."""
    res = results_only(res, "ladder")
    if tcp not in TCP_MODES:
        raise ValueError(f"tcp must be one of {', '.join(TCP_MODES)}, got {tcp!r}")
    broker = res.scenario.broker.name
    names = [c.name for c in res.scenario.clients]
    if client not in names:
        raise ValueError(f"no client {client!r} in this run; clients are "
                         f"{', '.join(map(repr, names))}")
    x_of = {client: 0.0, broker: 1.0}
    p = res.packets
    mine = p[((p["src"] == client) & (p["dst"] == broker))
             | ((p["src"] == broker) & (p["dst"] == client))]
    t_all = numeric(mine["t"])
    start, end, left_out = _window(t_all, start, end, max_packets)
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    shown = mine[(t_all >= start) & (t_all <= end)]
    t_recv_all = numeric(mine["t_recv"])
    delays = t_recv_all - t_all
    # The usual one-way trip sets the scale; packets held up by TCP retransmissions or a
    # slow queue are the exceptions the chart should show as long arrows, not the ruler.
    transit = float(np.nanpercentile(delays, 10)) if np.isfinite(delays).any() else 0.0

    arrows = _mqtt_arrows(shown, x_of, transit)
    if tcp != "none":
        arrows += _tcp_arrows(res.segments, client, broker, x_of, start, end, transit, tcp)
    lines = _connection_lines(res.connections, client, start, end)
    outages = [(max(s, start), min(e, end)) for s, e in client_outages(res.scenario)[client]
               if s <= end and e >= start]

    scale = _TimeScale(arrows, lines, outages, start, end, transit, compress)
    height = scale.bottom() + 1.0
    fig, ax = new_axes(ax, (7.5, min(40.0, 1.6 + 0.5 * height)))
    _draw_lifelines(ax, client, broker, height)
    for t0, t1 in outages:
        y0, y1 = scale.display(t0), scale.display(t1)
        ax.add_patch(Rectangle((0, y0), 1, max(y1 - y0, 0.05), facecolor=OUTAGE_COLOR,
                               alpha=0.12, hatch="///", edgecolor=OUTAGE_COLOR, lw=0,
                               gid="outage"))
        ax.text(0.5, y0, "link down", ha="center", va="bottom", fontsize=7,
                color=OUTAGE_COLOR, gid="outage-label")
    for arrow in arrows:
        _draw_arrow(ax, arrow, scale)
    if shown.empty:
        note(ax, f"no MQTT packets between {client} and {broker} in this window")
    for t, text, j in lines:  # beside the broker's lifeline, clear of the arrow labels
        y = scale.display(t) + j * STAGGER
        ax.plot([0, 1.04], [y, y], ls=":", color="0.35", lw=1, gid="connection-event")
        ax.text(1.05, y, text, ha="left", va="center", fontsize=6.5, color="0.2",
                gid="connection-label", wrap=True)
    scale.mark_gaps(ax)
    scale.ticks(ax)
    ax.set_xlim(-0.42, 1.55 if lines else 1.2)
    ax.set_ylim(height, -1.0)
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_ylabel("time (s)" + (", idle gaps shortened" if scale.gaps else ""))
    more = (f"\nfirst {len(shown)} packets; {left_out} more after {end:g} s: pass start/end"
            if left_out else "")
    ax.set_title(f"{client} ⇄ {broker}, {start:g} to {end:g} s ({res.scenario.name}, "
                 f"seed {res.seed}){more}", fontsize=10)
    _legend(ax, arrows)
    return fig


def _mqtt_arrows(shown: pd.DataFrame, x_of: dict, transit: float) -> list[_Arrow]:
    arrows = []
    levels = packet_qos(shown).to_numpy()
    for row, qos in zip(shown.itertuples(index=False), levels):
        color = qos_color(qos) if not math.isnan(qos) else MQTT_DARK
        t0, t_recv = float(row.t), float(row.t_recv) if not pd.isna(row.t_recv) else math.nan
        lost = bool(row.dropped) or math.isnan(t_recv)
        x0 = x_of[row.src]
        arrows.append(_Arrow("mqtt-lost" if lost else "mqtt", x0,
                             0.5 if lost else x_of[row.dst], t0,
                             t0 + transit / 2 if lost else t_recv,
                             packet_label(row) + (" never arrived" if lost else ""), color))
    return arrows


def _tcp_arrows(segments: pd.DataFrame, client: str, broker: str, x_of: dict, start: float,
                end: float, transit: float, mode: str) -> list[_Arrow]:
    s = segments[((segments["src"] == client) & (segments["dst"] == broker))
                 | ((segments["src"] == broker) & (segments["dst"] == client))]
    t = numeric(s["t"])
    s = s[(t >= start) & (t <= end)]
    dropped = is_dropped(s["dropped"])
    retrans = s["retransmission"].astype(bool).to_numpy()
    arrows = []
    for row, lost, again in zip(s.itertuples(index=False), dropped, retrans):
        if mode == "problems" and not (lost or again):
            continue
        what = (f"{int(row.payload_bytes)} B" if row.kind in ("data", "datagram")
                else row.kind.upper())
        t0 = float(row.t)
        if lost:
            label = f"TCP {'retransmission' if again else 'segment'} ({what}) lost: {row.dropped}"
            arrows.append(_Arrow("tcp-lost", x_of[row.src], 0.5, t0, t0 + transit / 2,
                                 label, LOST_COLOR))
        else:
            label = f"TCP retransmission ({what})" if again else f"TCP {what}"
            arrows.append(_Arrow("tcp-retransmission" if again else "tcp", x_of[row.src],
                                 x_of[row.dst], t0, float(row.t_arrival), label,
                                 RETRANSMIT_COLOR))
    return arrows


def _connection_lines(connections: pd.DataFrame, client: str, start: float,
                      end: float) -> list[tuple[float, str, int]]:
    """(time, text, slot) for each connection of the client coming up or going down."""
    lines = []
    for row in connections[connections["client"] == client].itertuples(index=False):
        up, down = numeric(pd.Series([row.t_up, row.t_down]))
        if start <= up <= end:
            session = ", session present" if getattr(row, "session_present", False) else ""
            lines.append((float(up), f"connection {row.conn} up{session}", 0))
        if start <= down <= end:
            text = f"connection {row.conn} ended: {row.reason} (noticed by {row.side})"
            other = getattr(row, "client_reason", None)
            if row.side == "broker" and isinstance(other, str) and other != row.reason:
                text += f"; client: {other}"
            lines.append((float(down), text, 0))
    return lines


class _TimeScale:
    """Real time -> display units: linear while busy, idle gaps cut to ``GAP_UNIT`` transit
    times, and room made wherever several arrows share one instant (their slots)."""

    def __init__(self, arrows: list[_Arrow], lines: list, outages: list, start: float,
                 end: float, transit: float, compress: bool):
        slots: dict[tuple, int] = {}

        def slot(key: tuple) -> int:
            slots[key] = slots.get(key, -1) + 1
            return slots[key]

        for a in arrows:
            a.j0 = slot((a.x0, a.t0, "out"))
            a.j1 = a.j0 if a.x1 == 0.5 else slot((a.x1, a.t1, "in"))
        for i, (t, text, _) in enumerate(lines):
            lines[i] = (t, text, slot(("line", t, "line")))
        times = {start, end, *(t for span in outages for t in span),
                 *(t for t, _, _ in lines)}
        times |= {a.t0 for a in arrows} | {a.t1 for a in arrows if math.isfinite(a.t1)}
        self.times = np.array(sorted(times))
        room = {}
        for (_, t, _), j in slots.items():
            room[t] = max(room.get(t, 0), j)
        self.unit = GAP_UNIT * transit if transit > 0 else max((end - start) / 50, 1e-3)
        if not compress:
            self.unit = max((end - start) / 40, 1e-9)
        steps = np.diff(self.times) / self.unit
        self.gaps = []
        if compress:
            for i in np.flatnonzero(steps > 1.0):
                self.gaps.append((self.times[i], self.times[i + 1]))
            steps = np.minimum(steps, 1.0)
        extra = np.array([room.get(t, 0) * STAGGER for t in self.times[:-1]])
        self.positions = np.r_[0.0, np.cumsum(steps + extra)]
        self.room_after_last = room.get(self.times[-1], 0) * STAGGER
        self.decimals = int(min(6, max(0, math.ceil(-math.log10(self.unit)))))

    def display(self, t: float) -> float:
        return float(np.interp(t, self.times, self.positions))

    def bottom(self) -> float:
        """The lowest display position in use, stagger slots included."""
        return float(self.positions[-1] + self.room_after_last)

    def mark_gaps(self, ax: Axes) -> None:
        for a, b in self.gaps:
            y = (self.display(a) + self.display(b)) / 2
            ax.text(-0.03, y, f"≈ +{b - a:.{self.decimals}f} s", ha="right", va="center",
                    fontsize=7, color="0.45", style="italic", gid="gap")
            for x in (0.0, 1.0):
                ax.text(x, y, "≈", ha="center", va="center", fontsize=10, color="0.45",
                        bbox=dict(fc="white", ec="none", pad=0.5))

    def ticks(self, ax: Axes) -> None:
        kept: list[float] = []
        for t in self.times:
            y = self.display(t)
            if not kept or y - self.display(kept[-1]) >= 0.9:
                kept.append(float(t))
        decimals = self.decimals  # enough digits that neighbouring ticks differ
        while decimals < 6 and len({f"{t:.{decimals}f}" for t in kept}) < len(kept):
            decimals += 1
        ax.set_yticks([self.display(t) for t in kept],
                      [f"{t:.{decimals}f}" for t in kept], fontsize=7)


def _draw_lifelines(ax: Axes, client: str, broker: str, height: float) -> None:
    for x, name in ((0.0, client), (1.0, broker)):
        ax.plot([x, x], [-0.6, height], color="0.25", lw=1.2, gid="lifeline")
        ax.text(x, -0.6, name, ha="center", va="bottom", fontsize=9, fontweight="bold",
                bbox=dict(boxstyle="round,pad=0.3", fc="0.92", ec="0.25"), gid="lifeline-name")


def _draw_arrow(ax: Axes, a: _Arrow, scale: _TimeScale) -> None:
    y0 = scale.display(a.t0) + a.j0 * STAGGER
    y1 = scale.display(a.t1) + a.j1 * STAGGER
    mqtt, lost = a.gid.startswith("mqtt"), a.gid.endswith("lost")
    style = dict(lw=1.4 if mqtt else 0.8, color=a.color,
                 linestyle="--" if lost or a.gid == "tcp-retransmission" else "-")
    ax.add_patch(FancyArrowPatch((a.x0, y0), (a.x1, y1), shrinkA=0, shrinkB=0,
                                 arrowstyle="-" if lost else "-|>", mutation_scale=10,
                                 gid=a.gid, zorder=3 if mqtt else 2, **style))
    if lost:
        ax.plot([a.x1], [y1], marker="x", ms=9, mew=2, color=LOST_COLOR, zorder=6,
                gid=f"{a.gid}-cross")
    xm, ym = (a.x0 + a.x1) / 2, (y0 + y1) / 2
    ax.text(xm, ym, a.label, ha="center", va="center", fontsize=7.5 if mqtt else 6.5,
            color=a.color,
            fontweight="bold" if " DUP" in a.label else "normal",
            style="normal" if mqtt else "italic", gid=f"{a.gid}-label", zorder=5,
            bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.85))


def _legend(ax: Axes, arrows: list[_Arrow]) -> None:
    kinds = {a.gid for a in arrows}
    entries = [("mqtt", "MQTT packet (colour: its QoS)", dict(color=MQTT_DARK, lw=1.4)),
               ("mqtt-lost", "MQTT packet that never arrived",
                dict(color=MQTT_DARK, lw=1.4, ls="--", marker="x", mec=LOST_COLOR)),
               ("tcp-retransmission", "TCP retransmission",
                dict(color=RETRANSMIT_COLOR, lw=0.8, ls="--")),
               ("tcp-lost", "TCP segment lost", dict(color=LOST_COLOR, lw=0.8, ls="--",
                                                     marker="x")),
               ("tcp", "TCP segment", dict(color=RETRANSMIT_COLOR, lw=0.8))]
    handles = [Line2D([], [], label=text, **style) for gid, text, style in entries
               if gid in kinds]
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2,
                  frameon=False, fontsize=7)


__all__ = ["ladder", "packet_label"]
