"""What every plot needs: an Axes to draw on, a table from a Results, scenario time spans.

Figures are built as ``matplotlib.figure.Figure`` objects, not through pyplot: a notebook
shows a returned Figure exactly once (pyplot would show it a second time), scripts call
``fig.savefig``, and no global figure list grows while a sweep draws hundreds of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..world.topology import of_scenario


def show_figures_in_notebooks() -> None:
    """Let Jupyter draw a returned Figure as an image without ``%matplotlib inline``.

    IPython renders a Figure only once the inline backend has registered a PNG formatter
    for it, and a Figure built without pyplot never loads that backend: the cell would show
    ``<Figure size ...>``. Registering the formatter ourselves (when running in IPython, and
    if nothing registered one already) shows it once, as an image."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", {})
    png = formatters.get("image/png")
    if png is None:
        return
    try:
        png.lookup_by_type(Figure)
        return  # %matplotlib inline (or the user) already did
    except KeyError:
        pass
    from IPython.core.pylabtools import print_figure
    png.for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """The Figure and Axes to draw on: the caller's ``ax``, or a new figure of ``figsize``."""
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    try:
        return ax.get_figure(root=True), ax
    except TypeError:  # matplotlib < 3.10: no root= and ax.figure is the root figure
        return ax.figure, ax


def table(res: Any, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """``res.<name>`` of a Results, or ``res`` itself when it is already a DataFrame;
    checked to have ``columns`` so a wrong table fails with its missing columns named."""
    if isinstance(res, pd.DataFrame):
        frame = res
    elif isinstance(getattr(res, name, None), pd.DataFrame):
        frame = getattr(res, name)
    else:
        raise TypeError(f"expected a Results (from mqttsim.run) or its {name!r} DataFrame, "
                        f"got {type(res).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {name} table has no column(s) {', '.join(missing)}; "
                         f"it has {', '.join(map(str, frame.columns))}")
    return frame


def results_only(res: Any, what: str) -> Any:
    """``res`` if it is a Results (has tables and a scenario); otherwise a clear TypeError."""
    if not all(hasattr(res, n) for n in ("packets", "segments", "connections", "scenario")):
        raise TypeError(f"{what} needs a Results (from mqttsim.run), got {type(res).__name__}")
    return res


def numeric(series: pd.Series) -> np.ndarray:
    """A column as floats, None/NA as NaN (columns that are all None come as object)."""
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def is_dropped(series: pd.Series) -> np.ndarray:
    """``segments.dropped`` is None/NaN or a reason string: True where it names a reason."""
    return series.notna().to_numpy(dtype=bool)


def scenario_of(obj: Any) -> Any | None:
    """The Scenario behind a Results, the Scenario itself, or None."""
    if hasattr(obj, "clients") and hasattr(obj, "broker"):
        return obj
    scenario = getattr(obj, "scenario", None)
    return scenario if scenario is not None and hasattr(scenario, "clients") else None


def merge_spans(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping or touching [start, end] spans merged, in time order."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def client_outages(scenario: Any) -> dict[str, list[tuple[float, float]]]:
    """Per client, when some link between it and the broker is down (either direction),
    from the scenario's link parameters: the times its connection cannot carry anything."""
    topology = of_scenario(scenario)
    edge_outages: dict[frozenset, list[tuple[float, float]]] = {}
    for client in scenario.clients:
        edge_outages[frozenset((client.name, client.attach))] = _spans(client.link)
    for edge in scenario.links:
        edge_outages[frozenset((edge.a, edge.b))] = _spans(edge.link)
    result = {}
    for client in scenario.clients:
        spans = [s for pair in topology.route_links(client.name)
                 for s in edge_outages.get(frozenset(pair), [])]
        result[client.name] = merge_spans(spans)
    return result


def client_downtime(scenario: Any) -> dict[str, list[tuple[float, float]]]:
    """Per client, when it or the broker is not running (crashes, broker restarts)."""
    broker = [(r.at, r.at + r.down) for r in scenario.broker.restarts]
    return {c.name: merge_spans([(k.at, k.at + k.down) for k in c.crashes] + broker)
            for c in scenario.clients}


def _spans(link: Any) -> list[tuple[float, float]]:
    return [(o.start, o.end) for direction in (link.up, link.down) for o in direction.outages]


def publish_qos(client: Any) -> int | None:
    """The one QoS a client publishes at, or None (no publishing, or several QoS)."""
    levels = {p.qos for p in client.publish}
    return levels.pop() if len(levels) == 1 else None


def note(ax: Axes, text: str) -> None:
    """A centred message on an empty plot (e.g. "no delivered messages"), not an error:
    a run where nothing was delivered is a result worth showing."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")
