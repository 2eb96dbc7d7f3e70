"""Figures that answer the questions MQTT users keep asking (issue 17), one per question.

- ``time_to_notice``: "why does it take 15 minutes to notice the connection is dead?" --
  per client, how long the broker and the client each took to learn that a silently dead
  link had killed their connection, and by what (keepalive, PINGRESP timeout, TCP give-up).
- ``offline_fates``: "where did my messages go while the device was offline?" -- every
  message, at its publish time, coloured by what the broker did with it for each subscriber.
- ``retained_and_wills``: what each subscriber received and when: retained copies handed
  over on subscribe, live copies, and wills.
- ``round_trips``: PUBLISH to PUBACK for each message, from a simulated run or from the CSV a
  real client printed (``notebooks/my_client.py``).

Like every lab figure they read result tables only, take an optional ``ax`` where one axes
suffices, and return the Figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ._base import client_downtime, client_outages, new_axes, note, numeric, scenario_of, table
from .style import NEUTRAL, OUTAGE_COLOR, OUTCOME_COLORS, QOS_COLORS, reason_style

SIDES = ("broker", "client")


# --- Half-open connections ---------------------------------------------------------------

def _dead_at(scenario: Any, client: str, t_up: float) -> float | None:
    """When the path of ``client`` went down under a connection that was up at ``t_up``."""
    spans = client_outages(scenario).get(client, []) if scenario is not None else []
    starts = [start for start, end in spans if end > t_up]
    return min(starts) if starts else None


def notice_times(res: Any) -> pd.DataFrame:
    """One row per (client, side) whose connection was cut by a link outage: when the link
    died (``dead_at``), when that side learned the connection was over (``t_noticed``, NaN:
    never, within the run), how (``reason``) and after how long (``seconds``)."""
    conns = table(res, "connections", ("client", "t_up", "t_broker_down", "t_client_down",
                                       "broker_reason", "client_reason"))
    scenario = scenario_of(res)
    rows = []
    for client, group in conns[conns["t_up"].notna()].groupby("client", sort=False):
        first = group.iloc[0]
        dead = _dead_at(scenario, client, float(first["t_up"]))
        if dead is None:
            continue
        for side in SIDES:
            t = pd.to_numeric(first[f"t_{side}_down"], errors="coerce")
            rows.append({"client": client, "side": side, "dead_at": dead, "t_noticed": t,
                         "reason": first[f"{side}_reason"] if pd.notna(t) else "never",
                         "seconds": t - dead if pd.notna(t) else float("nan")})
    return pd.DataFrame(rows, columns=["client", "side", "dead_at", "t_noticed", "reason",
                                       "seconds"])


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def time_to_notice(res: Any, ax: Axes | None = None, tcp_give_up: float | None = None) -> Figure:
    """Per client whose link died, two bars: how long the broker and the client each took to
    learn that the connection was dead, labelled with what told them. A side that never
    learned (a half-open connection to the end of the run) gets a hatched bar to the end.
    ``tcp_give_up`` (s) draws TCP's retransmission budget as a line, e.g. 924.6 for Linux's
    tcp_retries2 = 15 (``mqttsim.netmodel.rto.give_up_after``)."""
    times = notice_times(res)
    scenario = scenario_of(res)
    fig, ax = new_axes(ax, (9, max(2.8, 0.75 * len(times) / 2 + 1.6)))
    ax.set_title("After the link died: how long until each side noticed")
    ax.set_xlabel("time since the link died (s)")
    if times.empty:
        note(ax, "no connection was cut by a link outage in this run")
        return fig
    end = scenario.duration if scenario is not None else float(np.nanmax(times["t_noticed"]))
    clients = list(pd.unique(times["client"]))
    height = 0.38
    for row in times.itertuples(index=False):
        y = clients.index(row.client) + (-height / 2 if row.side == "broker" else height / 2)
        if np.isnan(row.seconds):
            width = end - row.dead_at
            ax.barh(y, width, height=height * 0.9, color="white", edgecolor=NEUTRAL,
                    hatch="//", gid=f"never-{row.side}")
            text = f"{row.side}: never (still half-open at the end)"
        else:
            width = row.seconds
            ax.barh(y, width, height=height * 0.9, color=reason_style(row.reason)[1],
                    alpha=0.85 if row.side == "broker" else 0.55, gid=f"noticed-{row.side}")
            text = f"{row.side}: {_duration(row.seconds)}, {row.reason}"
        ax.text(width, y, f"  {text}", va="center", fontsize=8)
    ax.set_yticks(range(len(clients)), clients)
    ax.invert_yaxis()
    if tcp_give_up is not None:
        ax.axvline(tcp_give_up, color="0.3", ls="--", lw=1)
        ax.text(tcp_give_up, len(clients) - 0.45, f"TCP gives up after {tcp_give_up:g} s ",
                fontsize=8, ha="right", va="bottom", color="0.3")
    ax.set_xlim(0, (end - float(times["dead_at"].min())) * 1.45)
    ax.grid(axis="x", alpha=0.3)
    return fig


# --- Offline queues ----------------------------------------------------------------------

FATES = {
    "live": ("delivered at once", OUTCOME_COLORS["delivered"]),
    "queued": ("kept while away, delivered on return", "#56B4E9"),
    "queue_full": ("dropped: queue full", OUTCOME_COLORS["lost"]),
    "qos0_offline": ("dropped: QoS 0 not queued", "#E69F00"),
    "no_session": ("not kept: no session (clean)", "#999999"),
    "other": ("lost, other reason", "#000000"),
}


def message_fates(res: Any) -> pd.DataFrame:
    """The expected outcome rows with a ``fate``: ``live`` (delivered while the subscriber
    was there), ``queued`` (published while it was away, delivered on its return), or why
    the broker did not deliver it (``queue_full``, ``qos0_offline``, ``no_session``)."""
    out = table(res, "outcomes", ("subscriber", "qos_pub", "outcome", "reason", "t_pub",
                                  "expected"))
    out = out.loc[out["expected"].astype(bool)].copy()
    scenario = scenario_of(res)
    away: dict[str, list[tuple[float, float]]] = {}
    if scenario is not None:
        outages, downtime = client_outages(scenario), client_downtime(scenario)
        away = {c.name: outages.get(c.name, []) + downtime.get(c.name, [])
                for c in scenario.clients}

    def fate(row: Any) -> str:
        if row.outcome != "lost":
            spans = away.get(row.subscriber, [])
            return "queued" if any(s <= row.t_pub < e for s, e in spans) else "live"
        reason = str(row.reason).split(":")[-1]
        return reason if reason in FATES else "other"

    out["fate"] = [fate(r) for r in out.itertuples(index=False)]
    return out


def offline_fates(res: Any, ax: Axes | None = None) -> Figure:
    """One row per subscriber and QoS: a dot for every message at its publish time,
    coloured by its fate for that subscriber; the time the subscriber was away is shaded.
    The legend counts each fate."""
    fates = message_fates(res)
    scenario = scenario_of(res)
    pairs = sorted({(s, int(q)) for s, q in zip(fates["subscriber"], fates["qos_pub"])})
    fig, ax = new_axes(ax, (9, max(2.6, 0.55 * len(pairs) + 1.8)))
    ax.set_title("What became of each message, per subscriber")
    ax.set_xlabel("publish time (s)")
    if fates.empty:
        note(ax, "no expected deliveries in this run")
        return fig
    for i, (subscriber, qos) in enumerate(pairs):
        rows = fates[(fates["subscriber"] == subscriber) & (fates["qos_pub"] == qos)]
        for name, (_, color) in FATES.items():
            t = numeric(rows.loc[rows["fate"] == name, "t_pub"])
            if len(t):
                ax.scatter(t, np.full(len(t), i), s=14, color=color, marker="|" if
                           name == "live" else "o", gid=f"{name}-{subscriber}-q{qos}")
    if scenario is not None:
        away = dict(client_outages(scenario))
        for c, spans in client_downtime(scenario).items():
            away[c] = away.get(c, []) + spans
        for i, (subscriber, _) in enumerate(pairs):
            for start, end in away.get(subscriber, []):
                ax.fill_between([start, end], i - 0.4, i + 0.4, color=OUTAGE_COLOR,
                                alpha=0.1, lw=0)
    counts = fates["fate"].value_counts()
    handles = [Line2D([], [], ls="", marker="o", color=color,
                      label=f"{label} ({counts.get(name, 0)})")
               for name, (label, color) in FATES.items() if counts.get(name, 0)]
    handles.append(Line2D([], [], ls="", marker="s", ms=10, color=OUTAGE_COLOR, alpha=0.2,
                          label="subscriber away"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
              fontsize=8)
    ax.set_yticks(range(len(pairs)), [f"{s}\nQoS {q} messages" for s, q in pairs],
                  fontsize=8)
    ax.set_ylim(len(pairs) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    return fig


# --- Retained messages and wills ---------------------------------------------------------

def retained_and_wills(res: Any, ax: Axes | None = None, will_payload: bytes = b"offline"
                       ) -> Figure:
    """One row per subscriber and topic: every copy it received, at the time it arrived.
    Squares: retained copies (handed over on subscribe); dots: live copies; crosses: wills
    (payload ``will_payload``). A vertical line marks each subscriber's connection and each
    silent link death from the scenario, so the delays read off the picture."""
    got = table(res, "received", ("subscriber", "topic", "payload", "retain", "t"))
    scenario = scenario_of(res)
    rows = sorted({(s, t) for s, t in zip(got["subscriber"], got["topic"])})
    fig, ax = new_axes(ax, (9.5, max(2.6, 0.4 * len(rows) + 1.6)))
    ax.set_title("What each subscriber received, and when")
    ax.set_xlabel("time (s)")
    if got.empty:
        note(ax, "nothing was received in this run")
        return fig
    for i, (subscriber, topic) in enumerate(rows):
        copies = got[(got["subscriber"] == subscriber) & (got["topic"] == topic)]
        will = copies["payload"].map(lambda p: bytes(p) == will_payload).to_numpy(dtype=bool)
        retained = copies["retain"].astype(bool).to_numpy()
        t = numeric(copies["t"])
        for mask, marker, color, size, gid in (
                (~will & ~retained, "o", QOS_COLORS[1], 22, "live"),
                (~will & retained, "s", QOS_COLORS[2], 60, "retained"),
                (will, "X", OUTCOME_COLORS["lost"], 80, "will")):
            if mask.any():
                ax.scatter(t[mask], np.full(mask.sum(), i), marker=marker, s=size,
                           color=color, edgecolor="black" if gid != "live" else color,
                           linewidth=0.5, gid=f"{gid}-{subscriber}", zorder=3)
    if scenario is not None:
        deaths = sorted({spans[0][0] for spans in client_outages(scenario).values() if spans})
        for t in deaths:
            ax.axvline(t, color=OUTAGE_COLOR, ls="--", lw=1)
            ax.text(t, len(rows) - 0.5, " link dies", color=OUTAGE_COLOR, fontsize=8,
                    va="bottom")
        joins = {c.name: c.connect_at for c in scenario.clients if c.subscribe}
        for i, (subscriber, _) in enumerate(rows):
            if subscriber in joins:
                ax.plot([joins[subscriber]] * 2, [i - 0.35, i + 0.35], color="0.3", lw=1.5)
    handles = [Line2D([], [], ls="", marker="o", color=QOS_COLORS[1], label="live copy"),
               Line2D([], [], ls="", marker="s", color=QOS_COLORS[2], mec="black",
                      label="retained copy (on subscribe)"),
               Line2D([], [], ls="", marker="X", color=OUTCOME_COLORS["lost"], mec="black",
                      label=f"will ({will_payload.decode(errors='replace')!r})"),
               Line2D([], [], color="0.3", lw=1.5, label="subscriber connects")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
              fontsize=8)
    ax.set_yticks(range(len(rows)), [f"{s}: {t}" for s, t in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.9)
    ax.grid(axis="x", alpha=0.3)
    return fig


# --- Round trips of one client -----------------------------------------------------------

def publish_round_trips(res: Any, client: str) -> pd.DataFrame:
    """Per QoS 1 message of ``client`` in a run: when its first PUBLISH left (``t_sent``)
    and when the PUBACK reached it (``t_acked``): the columns ``my_client.py`` prints."""
    packets = table(res, "packets", ("t", "src", "dst", "conn", "type", "packet_id",
                                     "t_recv"))
    sent = packets[(packets["src"] == client) & (packets["type"] == "PUBLISH")
                   & packets["packet_id"].notna()].drop_duplicates(["conn", "packet_id"])
    acks = packets[(packets["dst"] == client) & (packets["type"] == "PUBACK")]
    acked = acks.groupby(["conn", "packet_id"])["t_recv"].min()
    rows = [{"mid": int(p.packet_id), "t_sent": float(p.t),
             "t_acked": float(acked.get((p.conn, p.packet_id), np.nan))}
            for p in sent.itertuples(index=False)]
    return pd.DataFrame(rows, columns=["mid", "t_sent", "t_acked"])


def round_trips(data: pd.DataFrame, ax: Axes | None = None, rtt: float | None = None,
                title: str = "PUBLISH to PUBACK, each message") -> Figure:
    """One horizontal segment per message, from the moment it was published to the moment
    its PUBACK came back (``data``: columns ``t_sent``, ``t_acked``). Messages still waiting
    at the end are drawn to the right edge in red. ``rtt`` (s) marks the round trip of the
    link, the least any acknowledgement can take."""
    frame = table(data, "round trips", ("t_sent", "t_acked"))
    fig, ax = new_axes(ax, (7, 3.8))
    ax.set_title(title)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("message (in publish order)")
    if frame.empty:
        note(ax, "no messages")
        return fig
    sent, acked = numeric(frame["t_sent"]), numeric(frame["t_acked"])
    end = float(np.nanmax(np.r_[acked, sent])) + 0.2
    y = np.arange(1, len(frame) + 1)
    waited = acked - sent
    slow = np.isfinite(waited) & (waited > 1.5 * rtt) if rtt else np.zeros(len(y), bool)
    for i in range(len(y)):
        done = np.isfinite(acked[i])
        color = (OUTCOME_COLORS["lost"] if not done else QOS_COLORS[0] if slow[i]
                 else QOS_COLORS[1])
        ax.plot([sent[i], acked[i] if done else end], [y[i], y[i]], color=color, lw=2,
                gid="waiting" if not done else "slow" if slow[i] else "acked")
        ax.plot(sent[i], y[i], "|", color="0.2", ms=6)
    handles = [Line2D([], [], color=QOS_COLORS[1], lw=2, label="acknowledged")]
    if rtt:
        handles = [Line2D([], [], color=QOS_COLORS[1], lw=2,
                          label=f"within 1.5 x the {rtt:g} s round trip"),
                   Line2D([], [], color=QOS_COLORS[0], lw=2,
                          label=f"later: waited for a TCP retransmission ({int(slow.sum())})")]
    if not np.isfinite(acked).all():
        handles.append(Line2D([], [], color=OUTCOME_COLORS["lost"], lw=2,
                              label="no PUBACK by the end"))
    ax.legend(handles=handles, loc="upper right", frameon=False, fontsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.invert_yaxis()
    ax.grid(alpha=0.3)
    return fig


__all__ = ["notice_times", "time_to_notice", "message_fates", "offline_fates",
           "retained_and_wills", "publish_round_trips", "round_trips"]
