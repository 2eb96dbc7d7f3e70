"""Figures of what happened to the messages: outcomes, latency, bytes, and sweeps over seeds.

Every function takes a ``Results`` (or the DataFrame it names), draws on ``ax`` when given
(so figures can be combined) and returns the Figure. Statistics use only the *expected*
outcome rows (a subscriber that was subscribed when the message reached the broker), and
group by the QoS the message was published at, as ``Results.summary()`` does: the bars and
lines here are the numbers of that table, drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ._base import client_outages, merge_spans, new_axes, note, scenario_of, table
from .stats import ci_table
from .style import (NEUTRAL, OUTAGE_COLOR, OUTCOME_COLORS, OUTCOME_NAMES, OUTCOMES, axis_label,
                    metric_bounds, qos_color, qos_line_style, unit_of)
from .wire import bytes_by_qos

OUTCOME_COLUMNS = ("qos_pub", "outcome", "expected")
SUMMARY_OUTCOMES = {"delivered": "delivered", "duplicate": "duplicates", "lost": "lost"}
LINESTYLES = ("-", "--", ":", "-.")


def _title(res: Any, text: str) -> str:
    """``text``, naming the scenario and seed when ``res`` is a Results."""
    scenario = getattr(res, "scenario", None)
    if scenario is None or not hasattr(res, "seed"):
        return text
    return f"{text}\n{scenario.name}, seed {res.seed}"


def _expected(res: Any) -> pd.DataFrame:
    outcomes = table(res, "outcomes", OUTCOME_COLUMNS)
    return outcomes.loc[outcomes["expected"].astype(bool)]


def outcome_counts(res: Any) -> pd.DataFrame:
    """Expected deliveries per QoS (rows) and outcome (columns delivered, duplicate, lost).

    ``res`` is a Results, its outcomes table, or a ``summary()`` table (columns delivered,
    duplicates, lost; indexed by qos)."""
    if isinstance(res, pd.DataFrame) and {"delivered", "duplicates", "lost"} <= set(res.columns):
        counts = res[list(SUMMARY_OUTCOMES.values())].copy()
        counts.columns = list(SUMMARY_OUTCOMES)
        return counts.astype(int)
    out = _expected(res)
    counts = pd.crosstab(out["qos_pub"], out["outcome"]).reindex(columns=list(OUTCOMES),
                                                                 fill_value=0)
    counts.index.name, counts.columns.name = "qos", None
    return counts.astype(int)


def outcomes_by_qos(res: Any, ax: Axes | None = None, percent: bool = False) -> Figure:
    """Stacked bars, one per QoS: delivered once, duplicated, lost (counts, or % of the
    expected deliveries with ``percent=True``). A delivery is one message reaching one
    subscriber, so a message with three subscribers counts three times.

    Every part that happened is labelled with its number; a part too thin to hold its
    label (one duplicate among a hundred) is labelled beside the bar, so it cannot be
    missed. A run at one QoS shows the other levels as empty, named slots: one bar alone
    would not say what it is compared with."""
    fig, ax = new_axes(ax, (6, 4))
    counts = outcome_counts(res)
    ax.set_title(_title(res, "What happened to each message, by QoS"))
    ax.set_xlabel("QoS the message was published at")
    ax.set_ylabel("expected deliveries (%)" if percent
                  else "expected deliveries (messages × subscribers)")
    if counts.empty:
        note(ax, "no expected deliveries in this run")
        return fig
    values = counts.astype(float)
    if percent:
        totals = values.sum(axis=1).replace(0, np.nan)
        values = values.div(totals, axis=0).fillna(0.0) * 100
    levels = [int(q) for q in values.index]
    slots = sorted(set(levels) | {0, 1, 2}) if len(levels) == 1 else levels
    x = np.array([slots.index(q) for q in levels], dtype=float)
    top = float(values.sum(axis=1).max()) or 1.0
    bottom = np.zeros(len(values))
    for outcome in OUTCOMES:
        heights = values[outcome].to_numpy()
        bars = ax.bar(x, heights, bottom=bottom, width=0.6, color=OUTCOME_COLORS[outcome],
                      edgecolor="white", label=OUTCOME_NAMES[outcome], gid=outcome)
        for bar, height, count in zip(bars, heights, counts[outcome].to_numpy()):
            if height <= 0:
                continue
            text = f"{height:.1f} %" if percent else f"{int(count):,}"
            middle = bar.get_y() + height / 2
            if height >= 0.06 * top:
                ax.text(bar.get_x() + bar.get_width() / 2, middle, text, ha="center",
                        va="center", fontsize=8, gid="outcome-label")
            else:  # a sliver: name it beside the bar, with a tick pointing at it
                ax.annotate(f"{text} {OUTCOME_NAMES[outcome]}", (bar.get_x() + bar.get_width(),
                            middle), xytext=(8, 0), textcoords="offset points", va="center",
                            fontsize=8, fontweight="bold", gid="outcome-label",
                            arrowprops=dict(arrowstyle="-", color="0.3", lw=0.8))
        bottom += heights
    for position, total in zip(x, counts.sum(axis=1).to_numpy()):
        ax.annotate(f"{int(total):,} expected", (position, top), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=7,
                    color="0.35", gid="outcome-total")
    for slot, qos in enumerate(slots):
        if qos not in levels:
            ax.text(slot, top / 2, "not published\nin this run", ha="center", va="center",
                    fontsize=8, color="0.5", gid="unused-qos")
    ax.set_xticks(range(len(slots)), [f"QoS {q}" for q in slots])
    ax.set_xlim(-0.6, len(slots) - 0.4)
    for label, qos in zip(ax.get_xticklabels(), slots):
        label.set_color(qos_color(qos) if qos in levels else "0.6")
        label.set_fontweight("bold")
    ax.set_ylim(0, 105 if percent else top * 1.1)
    if not percent:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.2 of a message
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def duplicates_and_losses(res: Any) -> Figure:
    """What each QoS promises, checked: per QoS, how many expected deliveries came more
    than once (left) and not at all (right), each panel on its own scale so that 13
    duplicates next to 500 losses are still plain. Zero is written as 0 over an empty slot:
    for QoS 2 "none" is the result, not a missing bar."""
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    counts = outcome_counts(res)
    panels = (("duplicate", "received twice or more", "duplicates"),
              ("lost", "never received", "lost"))
    axes = fig.subplots(1, 2, sharex=True)
    fig.suptitle(_title(res, "Not exactly once, by QoS"), fontsize=11)
    for ax, (outcome, title, gid) in zip(axes, panels):
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("expected deliveries")
        if counts.empty:
            note(ax, "no expected deliveries in this run")
            continue
        x = np.arange(len(counts))
        heights = counts[outcome].to_numpy()
        bars = ax.bar(x, heights, width=0.6, color=[qos_color(q) for q in counts.index],
                      edgecolor=OUTCOME_COLORS[outcome], linewidth=2, gid=gid)
        ax.bar_label(bars, labels=[f"{int(h)}" for h in heights], padding=2, fontsize=10,
                     fontweight="bold")
        ax.set_xticks(x, [f"QoS {int(q)}" for q in counts.index])
        for label, qos in zip(ax.get_xticklabels(), counts.index):
            label.set_color(qos_color(qos))
            label.set_fontweight("bold")
        ax.set_ylim(0, max(1.0, float(heights.max())) * 1.18)
        ax.grid(axis="y", alpha=0.3)
    return fig


def _check_one_row_per_run(data: pd.DataFrame, keys: list[str], metrics: list[str]) -> None:
    """A sweep over two parameters has several rows per (parameter, qos, seed): averaging
    them would mix the other parameter's values into one band. Refuse, and name it."""
    dup = data.duplicated(keys, keep=False)
    if not dup.any():
        return
    known = set(keys) | set(metrics)
    varying = [c for c in data.columns if c not in known
               and data.loc[dup].groupby(keys)[c].nunique(dropna=False).max() > 1]
    hint = (f"; it also varies {', '.join(map(repr, varying))}: pick one value first, e.g. "
            f"table[table[{varying[0]!r}] == value]" if varying else "")
    raise ValueError(f"several rows share one ({', '.join(keys)}) combination{hint}")


def against_parameter(table: Any, parameter: str,
                      metric: str | Sequence[str] = ("duplicates", "lost"),
                      ax: Axes | None = None, level: float = 0.95) -> Figure:
    """A metric against a swept parameter: one line per QoS (and per metric, by line
    style), the mean over seeds with a shaded ``level`` confidence band (Student's t),
    clipped to what the metric can be (a latency band never goes below 0, a delivery ratio
    band never above 1). Lines of different QoS differ in style and marker too, and a line
    that lies on another one says so in the legend ("QoS 1 (same as QoS 2)").

    ``table`` is tidy: one row per (parameter value, seed, qos) with summary metrics as
    columns (what a sweep returns: ``res.summary()`` rows plus the parameter and seed); a
    ``SweepResult`` from ``mqttsim.lab.sweep`` is read through its ``.table``."""
    if not isinstance(table, pd.DataFrame) and isinstance(getattr(table, "table", None),
                                                          pd.DataFrame):
        table = table.table
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected a sweep table (DataFrame), got {type(table).__name__}")
    metrics = [metric] if isinstance(metric, str) else list(metric)
    if not metrics:
        raise ValueError("metric is empty: name at least one column, e.g. 'lost'")
    missing = [c for c in [parameter, *metrics] if c not in table.columns]
    if missing:
        raise ValueError(f"the sweep table has no column(s) {', '.join(map(repr, missing))}; "
                         f"it has {', '.join(map(repr, map(str, table.columns)))}")
    units = {unit_of(m) for m in metrics}
    if len(units) > 1:
        raise ValueError(f"metrics {metrics} have different units ({', '.join(map(str, units))})"
                         "; draw them on separate axes")
    has_qos = "qos" in table.columns and parameter != "qos"
    keys = [parameter] + (["qos"] if has_qos else []) + (["seed"] if "seed" in table else [])
    _check_one_row_per_run(table, keys, metrics)
    fig, ax = new_axes(ax, (6.5, 4))

    values = table[parameter]
    numeric_x = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    categories = list(pd.unique(values)) if not numeric_x else []
    data = table.assign(_x=values if numeric_x else values.map(categories.index))
    groups = data.groupby("qos", sort=True) if has_qos else [(None, data)]
    means = {(qos, m): ci_table(group, ["_x"], m, level, metric_bounds(m))
             for qos, group in groups for m in metrics}
    for (qos, m), ci in means.items():
        parts = [f"QoS {int(qos)}"] if qos is not None else []
        if len(metrics) > 1 or qos is None:
            parts.append(m.replace("_", " "))
        same = [f"QoS {int(q)}" for (q, other), c in means.items()
                if other == m and q != qos and q is not None and qos is not None
                and _same_line(ci, c)]
        label = ": ".join(parts) + (f" (same as {' and '.join(same)})" if same else "")
        style = qos_line_style(qos)
        if len(metrics) > 1:
            style["linestyle"] = LINESTYLES[metrics.index(m) % 4]
        ax.plot(ci["_x"], ci["mean"], label=label, **style)
        band = ci["low"].notna()
        ax.fill_between(ci["_x"][band], ci["low"][band], ci["high"][band],
                        color=style["color"], alpha=0.18, linewidth=0)
    if not numeric_x:
        ax.set_xticks(range(len(categories)), [str(c) for c in categories])
    seeds = table["seed"].nunique() if "seed" in table else 1
    ax.set_xlabel(axis_label(parameter))
    unit = units.pop()
    ax.set_ylabel(axis_label(metrics[0]) if len(metrics) == 1
                  else f"{', '.join(m.replace('_', ' ') for m in metrics)}"
                       + (f" ({unit})" if unit else ""))
    what = " and ".join(m.replace("_", " ") for m in metrics)
    ax.set_title(f"{what} vs {parameter}\nmean over {seeds} seed{'s' * (seeds != 1)}, "
                 f"band: {level:.0%} confidence interval")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return fig


def _same_line(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Two (x, mean) series that would be drawn on top of each other."""
    if len(a) != len(b) or not np.allclose(a["_x"], b["_x"]):
        return False
    return bool(np.allclose(a["mean"], b["mean"], equal_nan=True))


def _log_if_wide(values: np.ndarray, set_scale: Any) -> None:
    """Log scale when latencies span more than two decades (40 ms next to 40 s)."""
    finite = values[np.isfinite(values) & (values > 0)]
    if len(finite) and finite.max() / finite.min() > 100:
        set_scale("log")


def _steady_linear_axis(ax: Axes, values: np.ndarray) -> None:
    """Plain tick labels, and zero at the bottom when the values barely vary.

    Latencies that are all 20 ms up to float rounding (1e-14 s) would otherwise get a
    zoomed-in axis with an offset label ("1e-14 + 2e-2"): rounding noise drawn as if the
    latency varied. Seen from zero, a constant latency is a flat row of points."""
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    finite = values[np.isfinite(values)]
    if len(finite) and finite.min() >= 0:
        low, high = float(finite.min()), float(finite.max())
        if high > 0 and high - low <= 0.05 * high:
            ax.set_ylim(0, high * 1.25)


def latency_cdf(res: Any, ax: Axes | None = None) -> Figure:
    """Per QoS, the share of expected messages delivered within x seconds of publishing.

    The curve is over *expected* messages, not delivered ones, so it levels off at the
    delivery ratio: a lost message never arrives, at any latency."""
    fig, ax = new_axes(ax, (6.5, 4))
    out = _expected(res)
    ax.set_title(_title(res, "Latency: publish to first delivery"))
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("delivered within latency (fraction of expected)")
    latency = pd.to_numeric(out.get("latency"), errors="coerce")
    if out.empty or latency.isna().all():
        note(ax, "no delivered messages in this run")
        return fig
    curves = {}
    for qos, group in out.assign(latency=latency).groupby("qos_pub", sort=True):
        lat = np.sort(group["latency"].dropna().to_numpy(dtype=float))
        if len(lat):
            curves[qos] = (np.r_[lat[0], lat], np.r_[0.0, np.arange(1, len(lat) + 1)
                                                    / len(group)], len(group))
    for qos, (x, y, expected) in curves.items():
        same = [f"QoS {int(q)}" for q, (x2, y2, _) in curves.items() if q != qos
                and len(x2) == len(x) and np.allclose(x2, x) and np.allclose(y2, y)]
        style = qos_line_style(qos)
        style.update(markevery=[len(x) - 1])  # a marker where the curve levels off
        ax.step(x, y, where="post",
                label=f"QoS {int(qos)}: {len(x) - 1} of {expected} delivered"
                      + (f" (same curve as {' and '.join(same)})" if same else ""), **style)
    _log_if_wide(latency.to_numpy(dtype=float), ax.set_xscale)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", frameon=False)
    return fig


def latency_over_time(res: Any, ax: Axes | None = None) -> Figure:
    """Latency of each expected message against the time it was published, per QoS; lost
    messages as crosses along the bottom; link outages (from the scenario) shaded."""
    fig, ax = new_axes(ax, (8, 4))
    out = _expected(res)
    ax.set_title(_title(res, "Latency over time"))
    ax.set_xlabel("publish time (s)")
    ax.set_ylabel("latency (s)")
    if out.empty:
        note(ax, "no expected deliveries in this run")
        return fig
    latency = pd.to_numeric(out["latency"], errors="coerce")
    t_pub = pd.to_numeric(out["t_pub"], errors="coerce")
    bottom = ax.get_xaxis_transform()  # x in seconds, y in axes fraction
    for qos, group in out.assign(latency=latency, t_pub=t_pub).groupby("qos_pub", sort=True):
        color, delivered = qos_color(qos), group["latency"].notna()
        ax.scatter(group.loc[delivered, "t_pub"], group.loc[delivered, "latency"], s=10,
                   color=color, label=f"QoS {int(qos)}", gid=f"delivered-qos{int(qos)}")
        lost = group.loc[group["outcome"] == "lost", "t_pub"]
        if len(lost):
            ax.scatter(lost, np.full(len(lost), 0.03), transform=bottom, marker="x", s=18,
                       color=color, label=f"QoS {int(qos)} lost", gid=f"lost-qos{int(qos)}")
    scenario = scenario_of(res)
    if scenario is not None:
        spans = merge_spans([s for spans in client_outages(scenario).values() for s in spans])
        for i, (start, end) in enumerate(spans):
            ax.axvspan(start, end, color=OUTAGE_COLOR, alpha=0.12, lw=0,
                       label="link outage" if i == 0 else None)
    _log_if_wide(latency.to_numpy(dtype=float), ax.set_yscale)
    if ax.get_yscale() == "linear":
        _steady_linear_axis(ax, latency.to_numpy(dtype=float))
    if (out["outcome"] == "lost").any():  # a strip below the data for the crosses
        low, high = ax.get_ylim()
        ax.set_ylim((low / (high / low) ** 0.1 if ax.get_yscale() == "log"
                     else low - 0.1 * (high - low)), high)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


def bytes_per_message(res: Any, ax: Axes | None = None) -> Figure:
    """Bytes on the wire per delivered copy, per QoS: the MQTT packets alone, and with the
    TCP/IP (or UDP/IP) segments that carried them, retransmissions included. How segments
    are shared between QoS levels is explained in ``mqttsim.lab.wire``."""
    fig, ax = new_axes(ax, (6, 4))
    data = bytes_by_qos(res)
    ax.set_title(_title(res, "Bytes per delivered copy"))
    ax.set_xlabel("QoS the message was published at")
    ax.set_ylabel("bytes per delivered copy (bytes)")
    data = data[data["copies"] > 0]
    if data.empty:
        note(ax, "no delivered messages in this run")
        return fig
    header = "UDP/IP" if res.scenario.transport == "datagram" else "TCP/IP"
    x = np.arange(len(data))
    colors = [qos_color(q) for q in data.index]
    mqtt = ax.bar(x - 0.2, data["mqtt_per_copy"], width=0.4, color=colors, gid="mqtt",
                  label="MQTT packets")
    wire = ax.bar(x + 0.2, data["wire_per_copy"], width=0.4, color=colors, alpha=0.45,
                  hatch="//", edgecolor=colors, gid="wire", label=f"with {header} segments")
    for bars in (mqtt, wire):
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks(x, [f"QoS {int(q)}" for q in data.index])
    for label, qos in zip(ax.get_xticklabels(), data.index):
        label.set_color(qos_color(qos))
        label.set_fontweight("bold")
    ax.margins(y=0.12)
    ax.legend([Patch(facecolor=NEUTRAL), Patch(facecolor=NEUTRAL, alpha=0.45, hatch="//",
                                               edgecolor=NEUTRAL)],
              ["MQTT packets", f"with {header} segments"], frameon=False)
    return fig


__all__ = ["outcome_counts", "outcomes_by_qos", "duplicates_and_losses", "against_parameter",
           "latency_cdf", "latency_over_time", "bytes_per_message"]
