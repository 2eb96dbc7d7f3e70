"""The figures of a sweep report: a metric against a grid key, and what happened to the
messages (delivered once, duplicated, lost) per QoS across the swept values.

With more than one grid key, each figure has one panel per combination of the other keys'
values (at most ``MAX_PANELS``): averaging over them would mix different experiments.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from .report_format import format_value, kind_of, parameter_title
from .style import OUTCOME_COLORS, OUTCOME_NAMES, OUTCOMES, qos_color

__all__ = ["MAX_PANELS", "other_combinations", "sweep_figure", "sweep_outcomes"]

#: Panels of a sweep figure at most (one per combination of the other grid keys' values).
MAX_PANELS = 6
_SUMMARY = {"delivered": "delivered", "duplicate": "duplicates", "lost": "lost"}


def other_combinations(result: Any, key: str) -> tuple[list[str], pd.DataFrame, int]:
    """(the other grid columns, their first ``MAX_PANELS`` value combinations, how many
    combinations there are in all)."""
    others = [c for c in result.columns.values() if c != key]
    if not others or result.table.empty:
        return others, pd.DataFrame(), 1
    every = result.table[others].drop_duplicates()
    return others, every.head(MAX_PANELS).reset_index(drop=True), len(every)


def _mask(table: pd.DataFrame, others: list[str], values: Any) -> pd.Series:
    return (table[others] == pd.Series(list(values), index=others)).all(axis=1)


def _where(others: list[str], values: Any) -> str:
    return ", ".join(f"{parameter_title(k)} = {format_value(v, kind_of(k))}"
                     for k, v in zip(others, values))


def sweep_figure(result: Any, key: str, metric: str) -> Any:
    """``metric`` against the grid column ``key``, one line per QoS; with other grid keys,
    one panel per combination of their values (at most ``MAX_PANELS``)."""
    from .plots import against_parameter
    table = result.table
    others, combos, total = other_combinations(result, key)
    if not others:
        return against_parameter(table, key, metric)
    columns = min(len(combos), 2)  # two panels side by side still read on a printed page
    rows = -(-len(combos) // columns)
    fig = Figure(figsize=(5.0 * columns, 3.8 * rows), layout="constrained")
    if total > len(combos):
        fig.suptitle(f"the first {len(combos)} of {total} combinations of "
                     f"{', '.join(others)}")
    for i, values in enumerate(combos.itertuples(index=False)):
        ax = fig.add_subplot(rows, columns, i + 1)
        against_parameter(table[_mask(table, others, values)], key, metric, ax=ax)
        ax.set_title(f"{ax.get_title()}\nwith {_where(others, values)}", fontsize="small")
    return fig


def sweep_outcomes(result: Any, key: str) -> Figure:
    """What happened to the expected messages, per QoS (one panel each) across the values
    of ``key``: stacked bars of the share delivered once, duplicated and lost (summed over
    the seeds). With other grid keys, panels for each combination of their values; a
    combination without messages at some QoS (a swept QoS setting) gets no panel."""
    table = result.table
    others, combos, total = other_combinations(result, key)
    parts = [(None, table)] if not others else [
        (values, table[_mask(table, others, values)]) for values in
        combos.itertuples(index=False)]
    panels = [(values, int(qos), part[part["qos"] == qos]) for values, part in parts
              for qos in sorted(part["qos"].dropna().unique())]
    per_part = max(len(part["qos"].dropna().unique()) for _, part in parts) if parts else 1
    columns = per_part if per_part > 1 else min(len(panels), 3)
    rows = max(1, -(-len(panels) // max(columns, 1)))
    fig = Figure(figsize=(max(3.0 * columns, 5.0), 2.9 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, max(columns, 1), squeeze=False, sharey=True).ravel()
    xs = sorted(table[key].unique(), key=lambda v: (isinstance(v, str), v))
    labels = [format_value(v, kind_of(key)) if not isinstance(v, str) else v for v in xs]
    for ax, (values, qos, mine) in zip(axes, panels):
        sums = mine.groupby(key)[["expected", *_SUMMARY.values()]].sum().reindex(xs)
        expected = sums["expected"].replace(0, np.nan)
        bottom = np.zeros(len(xs))
        for outcome in OUTCOMES:
            share = (sums[_SUMMARY[outcome]] / expected).fillna(0.0).to_numpy()
            bars = ax.bar(range(len(xs)), share, bottom=bottom, width=0.65,
                          color=OUTCOME_COLORS[outcome], edgecolor="white",
                          label=OUTCOME_NAMES[outcome], gid=f"{outcome}-qos{qos}")
            for bar, value in zip(bars, share):
                if value >= 0.08:
                    ax.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + value / 2,
                            f"{value * 100:.0f} %", ha="center", va="center", fontsize=7)
                elif value > 0:  # a sliver: its number above the bar
                    ax.annotate(f"{value * 100:.1f} % {OUTCOME_NAMES[outcome]}",
                                (bar.get_x() + bar.get_width() / 2, 1.0),
                                xytext=(0, 3 + 9 * OUTCOMES.index(outcome)),
                                textcoords="offset points", ha="center", fontsize=6.5,
                                fontweight="bold")
            bottom += share
        ax.set_xticks(range(len(xs)), labels, fontsize=8)
        ax.set_ylim(0, 1.18)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        title = f"QoS {qos}" + (f"\n{_where(others, values)}" if values is not None else "")
        ax.set_title(title, color=qos_color(qos), fontsize=9, fontweight="bold")
        ax.set_xlabel(parameter_title(key), fontsize=8)
        ax.set_ylabel("share of expected deliveries", fontsize=8)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if panels:
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside upper center", ncol=3, frameon=False)
    if total > len(parts) and others:
        fig.suptitle(f"the first {len(parts)} of {total} combinations of {', '.join(others)}",
                     fontsize="small")
    return fig
